"""Intake: one route per channel, each taking that channel's own payload (POST /v1/intake/{channel})."""


from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Request, Response
from pydantic import BaseModel

from starter.client import TicketNotFound
from starter.client.principal import Permission, Principal
from starter.http.deps import Api, requires, temporal
from starter.http.errors import errors
from starter.http.models import IntakeOutcome, IntakeResult, out
from starter.http.routers.actions import full_view
from starter.http.routers.tickets import open_ticket
from starter.intake import mapping as intake
from workflows.common.vocabulary import Channel
from workflows.ticket.workflow import CLOCK_SKEW

router = APIRouter(tags=["intake"])

_IDENTITY = {Channel.email: "Message-ID (a reply, by In-Reply-To/References, goes to its ticket)",
             Channel.chat: "conversation id", Channel.phone: "call id", Channel.social: "network and post id",
             Channel.portal: "submission id", Channel.bot: "bot conversation id"}


async def take_in(request: Request, response: Response, api: Api, who: Principal, channel: Channel,
                  payload: intake._Payload) -> IntakeResult:
    now = datetime.now(UTC)
    mapped = intake.map_payload(channel, payload, now, max_backdate=api.max_backdate, skew=CLOCK_SKEW)  # type: ignore[arg-type]
    if isinstance(payload, intake.EmailIntake) and mapped.reply_targets:
        replied = await _email_reply(request, payload, mapped.reply_targets, who)
        if replied is not None:
            response.status_code = 201 if replied.outcome == IntakeOutcome.follow_up else 200
            return replied
    result = await open_ticket(request, mapped.ticket, mapped.exact_time, mapped.handoff)
    response.status_code = 201 if result.created else 200
    response.headers["Location"] = f"/v1/tickets/{result.view.id}"
    return IntakeResult(outcome=IntakeOutcome.opened if result.created else IntakeOutcome.existing, ticket=out(result.view),
                        sensitive=mapped.sensitive)


async def _email_reply(request: Request, p: intake.EmailIntake, targets: list[str],
                       who: Principal) -> IntakeResult | None:
    """An email answering one of our tickets goes to the first of them that exists (None: no such ticket)."""
    reply = intake.email_reply(p, who.actor)
    for tid in targets:
        try:
            result = await temporal(request, lambda c, tid=tid: c.relay_customer_reply(  # type: ignore[misc]
                tid, reply, principal=who))
        except TicketNotFound:
            continue
        if result.duplicate:
            return IntakeResult(outcome=IntakeOutcome.duplicate, ticket=out(await full_view(request, result.view, who)),
                                replied_to=tid)
        if result.follow_up_ticket_id:
            return IntakeResult(outcome=IntakeOutcome.follow_up, ticket=out(result.view), replied_to=tid)
        view = await full_view(request, result.view, who)
        return IntakeResult(outcome=IntakeOutcome.customer_reply, ticket=out(view), replied_to=tid)
    return None


def _add_intake_route(channel: Channel, model: type[BaseModel]) -> None:
    async def endpoint(request: Request, response: Response, api: Api,
                       who: Annotated[Principal, Depends(requires(Permission.intake))],
                       payload: Annotated[model, Body()]) -> IntakeResult:  # type: ignore[valid-type]
        return await take_in(request, response, api, who, channel, payload)

    doc = (model.__doc__ or "").strip()
    router.post(f"/v1/intake/{channel.value}", response_model=IntakeResult, status_code=201,
                summary=f"Intake: {channel.value}", operation_id=f"intake_{channel.value}",
                description=f"{doc}\n\nOne ticket per {_IDENTITY[channel]}: a repeated delivery opens nothing new (200).",
                responses={200: {"model": IntakeResult, "description": "already taken in (or an email reply to a ticket)"},
                           **errors(403, 409, 413, 500)})(endpoint)


for _channel, _model in intake.PAYLOADS.items():
    _add_intake_route(_channel, _model)
