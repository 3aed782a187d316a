"""Agent actions (one route per action, each an Update) and relaying a customer's reply.

The rules (scope, the executive tier, the retry of an action that races the ticket's closing, a reply's follow-up
ticket and de-duplication) are the client's: a route builds the event, with the token's principal as actor."""


from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from starter.client import OutOfScope, ReplyAccepted, TemporalUnavailable, TicketNotFound
from starter.client.principal import Permission, Principal
from starter.http.deps import TicketClient, requires, temporal
from starter.http.errors import Shed, errors
from starter.http.models import ACTION_BODIES, ACTION_DOCS, ACTION_EVENTS, ACTION_PERMISSIONS, TicketIdPath, TicketOut
from workflows import ticket as core
from workflows.ticket.views import TicketView, ticket_view

router = APIRouter(tags=["actions"])


def _event(action: str, body: BaseModel | None, who: Principal) -> core.Event:
    fields = body.model_dump(exclude_unset=True) if body is not None else {}
    event: core.Event = ACTION_EVENTS[action](**fields, actor=who.actor)  # type: ignore[assignment]
    return event


async def full_view(request: Request, view: TicketView, who: Principal) -> TicketView:
    """An Update returns the ticket with only the timeline entries it added (so histories do not grow
    quadratically); the answer shows the whole ticket, read by query. Should that read fail (or the action have
    moved the ticket out of the principal's scope), the Update's own result is still the truth about the action."""
    try:
        state = await temporal(request, lambda c: c.state(view.id, principal=who))
    except (TemporalUnavailable, TicketNotFound, OutOfScope, Shed):  # the action was applied: never a 503 overloaded
        return view
    last_seq = max((e.seq for e in view.timeline), default=0)
    return ticket_view(state, datetime.now(UTC)) if state.seq >= last_seq else view


async def perform(request: Request, ticket_id: str, who: Principal, action: str, body: BaseModel | None) -> TicketView:
    event = _event(action, body, who)
    view = await temporal(request, lambda c: c.perform(ticket_id, event, principal=who))
    return await full_view(request, view, who)


def _add_action_route(action: str) -> None:
    model = ACTION_BODIES[action]
    optional = not any(f.is_required() for f in model.model_fields.values())
    dependency = requires(ACTION_PERMISSIONS.get(action, Permission.act))
    kwargs: dict[str, Any] = {"response_model": TicketOut, "responses": errors(403, 404, 409, 413, 500),
                              "summary": action.replace("-", " ").capitalize(), "description": ACTION_DOCS[action],
                              "operation_id": f"ticket_{action.replace('-', '_')}"}
    path = f"/v1/tickets/{{ticket_id}}/{action}"
    if optional:
        async def endpoint_optional(request: Request, ticket_id: TicketIdPath,
                                    who: Annotated[Principal, Depends(dependency)],
                                    body: Annotated[model | None, Body()] = None) -> TicketView:  # type: ignore[valid-type]
            return await perform(request, ticket_id, who, action, body)
        router.post(path, **kwargs)(endpoint_optional)
    else:
        async def endpoint(request: Request, ticket_id: TicketIdPath, who: Annotated[Principal, Depends(dependency)],
                           body: Annotated[model, Body()]) -> TicketView:  # type: ignore[valid-type]
            return await perform(request, ticket_id, who, action, body)
        router.post(path, **kwargs)(endpoint)


for _action in ACTION_EVENTS:
    if _action != "customer-reply":
        _add_action_route(_action)


ReplyBody = ACTION_BODIES["customer-reply"]
REPLY_RESPONSES = {
    **errors(403, 404, 409, 413, 500),
    201: {"model": TicketOut, "description": "the ticket was closed: a new ticket linked to it was opened"},
    202: {"model": ReplyAccepted, "description": "`wait=false`: handed to the ticket as a Signal"},
}


@router.post("/v1/tickets/{ticket_id}/customer-reply", response_model=TicketOut, responses=REPLY_RESPONSES,
             summary="Customer reply", description=ACTION_DOCS["customer-reply"], operation_id="ticket_customer_reply")
async def customer_reply(request: Request, response: Response, ticket_id: TicketIdPath,
                         who: Annotated[Principal, Depends(requires(Permission.customer_reply))],
                         body: Annotated[ReplyBody, Body()],  # type: ignore[valid-type]
                         wait: Annotated[bool, Query(description="false: fire and forget (a Signal; 202, no view); "
                                                                 "the ticket applies it when its worker next runs")] = True,
                         ) -> TicketView | JSONResponse:
    reply = _event("customer-reply", body, who)
    assert isinstance(reply, core.CustomerReply)
    if not wait:  # fire and forget: a Signal, no worker needed to answer
        accepted = await temporal(request, lambda c: c.signal_customer_reply(ticket_id, reply, principal=who))
        headers = {"Location": f"/v1/tickets/{accepted.follow_up_ticket_id or ticket_id}"}
        return JSONResponse(accepted.model_dump(mode="json"), status_code=202, headers=headers)
    result = await temporal(request, lambda c: c.relay_customer_reply(ticket_id, reply, principal=who))
    if result.follow_up_ticket_id:
        response.status_code = 201
        response.headers["Location"] = f"/v1/tickets/{result.follow_up_ticket_id}"
        return result.view
    return await full_view(request, result.view, who)  # a duplicate too: the ticket as it is


class AgentReplyIn(BaseModel):
    """A customer-facing reply: its `text`, or a `macro` (a canned reply rendered for this ticket and agent)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"macro": "investigating"},
                                                                              {"text": "We are on it."}]})
    text: Annotated[str | None, Field(min_length=1, max_length=20_000)] = None
    macro: Annotated[str | None, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$", description="GET /v1/macros lists them")] = None


@router.post("/v1/tickets/{ticket_id}/reply", response_model=TicketOut, responses=errors(403, 404, 409, 413, 500),
             summary="Reply to the customer (text or a macro)", operation_id="ticket_reply")
async def agent_reply(request: Request, ticket_id: TicketIdPath, body: AgentReplyIn,
                      who: Annotated[Principal, Depends(requires(Permission.act))]) -> TicketView:
    """A public reply, as `note` with `public: true`: the customer is told and the customer_update clock restarts.
    With `macro`, the text is the macro rendered for this ticket and the replying agent (422 names the macros when
    there is no such one)."""
    view = await temporal(request, lambda c: c.reply(ticket_id, principal=who, text=body.text, macro=body.macro))
    return await full_view(request, view, who)


class MacrosOut(BaseModel):
    macros: list[str]


@router.get("/v1/macros", response_model=MacrosOut, responses=errors(403), summary="The macros agents may reply with")
async def list_macros(request: Request, who: Annotated[Principal, Depends(requires(Permission.act))]) -> MacrosOut:
    return MacrosOut(macros=list(await temporal(request, _names)))


async def _names(c: TicketClient) -> Sequence[str]:
    return c.macro_names()
