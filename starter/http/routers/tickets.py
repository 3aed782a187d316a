"""Tickets: open, list, read, timeline, history."""


import hashlib
import hmac
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import structlog
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import AfterValidator

from starter.client import InvalidInput, OpenResult, TicketPage
from starter.client.principal import Permission, Principal
from starter.http.deps import one_of_policy, requires, temporal
from starter.http.errors import ApiError, ErrorDetail, errors
from starter.http.models import TicketIdPath, TicketIn, TicketOut, TimelineOut
from starter.runtime.report import AuditReport, render_html
from workflows.common.vocabulary import CustomerId, Priority, Status
from workflows.ticket import Handoff, Ticket
from workflows.ticket.views import TicketView

log = structlog.get_logger("escalation.api")
router = APIRouter(tags=["tickets"])


async def open_ticket(request: Request, ticket: Ticket, exact_time: bool, handoff: Handoff | None = None) -> OpenResult:
    """Open (or find, for a retried request) a ticket without waiting for a worker: the API's and intake's way
    (`handoff`: the bot that handed the customer over, recorded in the timeline)."""
    return await temporal(request, lambda c: c.open(ticket, opened_at_defaulted=not exact_time, wait_for_worker=False,
                                                    handoff=handoff))


@router.post("/v1/tickets", response_model=TicketOut, status_code=201,
             responses={200: {"model": TicketOut, "description": "the ticket with this id already exists "
                                                                  "(a retried request with the same body)"},
                        **errors(403, 409, 413, 500)})
async def open_ticket_route(request: Request, response: Response, body: TicketIn,
                            who: Annotated[Principal, Depends(requires(Permission.open))]) -> Any:
    """Open a ticket (201), or return the existing one with this id (200) if the body is the same.

    The same id with a different body is 409 `id_conflict`; a closed ticket's id returns the closed ticket.
    """
    now = datetime.now(UTC)
    result = await open_ticket(request, body.ticket(now), exact_time=body.opened_at is not None)
    response.status_code = 201 if result.created else 200
    response.headers["Location"] = f"/v1/tickets/{result.view.id}"
    return result.view


# The policy's tiers and departments are known per app: validated against it here, and shown as enums in the
# OpenAPI document by `policy_enums` (create_app), as a Literal of them would be.
TierFilter = Annotated[str | None, AfterValidator(one_of_policy("tier")), Query()]
DepartmentFilter = Annotated[str | None, AfterValidator(one_of_policy("department")), Query()]


@router.get("/v1/tickets", response_model=TicketPage, responses=errors(403))
async def list_tickets(
    request: Request, who: Annotated[Principal, Depends(requires(Permission.list))],
    status: Annotated[Status | None, Query(description="ticket status")] = None,
    tier: TierFilter = None,
    priority: Annotated[Priority | None, Query()] = None,
    department: DepartmentFilter = None,
    customer: Annotated[CustomerId | None, Query(max_length=100, description="opaque customer id")] = None,
    assignee: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9._:@-]{1,100}$")] = None,
    breached: Annotated[bool | None, Query(description="only tickets whose SLA was (not) breached")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(pattern=r"^(?:[0-9a-f]{2}){5,4096}$",
                                        description="next_cursor of the previous page")] = None,
) -> TicketPage:
    """List tickets through Temporal visibility, newest first; an agent sees only its tiers and departments."""
    token = _unwrap_cursor(cursor) if cursor else None
    try:
        page = await temporal(request, lambda c: c.list(
            principal=who, status=status.value if status else None, tier=tier, priority=priority,
            department=department, customer_id=customer, assignee=assignee, breached=breached, page_size=limit,
            cursor=token))
    except InvalidInput as exc:  # Temporal refused the page token
        if exc.field != "cursor":
            raise
        log.info("bad_cursor", message=exc.message)
        raise _bad_cursor() from None
    return TicketPage(tickets=page.tickets, next_cursor=_wrap_cursor(page.next_cursor) if page.next_cursor else None)


def policy_enums(schema: dict[str, Any], tiers: list[str], departments: list[str]) -> None:
    """Show the list filters `tier` and `department` as the enums of the app's policy."""
    for param in schema["paths"]["/v1/tickets"]["get"]["parameters"]:
        values = {"tier": tiers, "department": departments}.get(param["name"])
        if values is not None:
            param["schema"]["anyOf"][0] = {"enum": values, "type": "string"}


@router.get("/v1/tickets/{ticket_id}", response_model=TicketOut, responses=errors(403, 404, 500))
async def get_ticket(request: Request, ticket_id: TicketIdPath,
                     who: Annotated[Principal, Depends(requires(Permission.read))]) -> TicketView:
    """The ticket as a person sees it now: state, clocks (due times, remaining business time), timeline."""
    return await temporal(request, lambda c: c.view(ticket_id, principal=who))


@router.get("/v1/tickets/{ticket_id}/timeline", response_model=TimelineOut, responses=errors(403, 404, 500))
async def get_timeline(request: Request, ticket_id: TicketIdPath,
                       who: Annotated[Principal, Depends(requires(Permission.read))]) -> TimelineOut:
    """Who did what when, and the policy rule behind every automatic decision."""
    state = await temporal(request, lambda c: c.state(ticket_id, principal=who))
    return TimelineOut(id=state.ticket.id, status=state.status, timeline=state.timeline)


@router.get("/v1/tickets/{ticket_id}/history", response_model=dict[str, Any], responses=errors(403, 404, 500))
async def get_history(request: Request, ticket_id: TicketIdPath,
                      who: Annotated[Principal, Depends(requires(Permission.history))]) -> dict[str, Any]:
    """The ticket's Temporal event history as JSON (auditors and admins): replayable against the code."""
    return await temporal(request, lambda c: c.history_json(ticket_id, principal=who))


# The HTML report is a document, never an app: no script may run in it, nothing is fetched; its styles are inline.
REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
# It holds customer data: no cache keeps a copy, and a link followed from it does not carry its address.
REPORT_PRIVATE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


@router.get("/v1/tickets/{ticket_id}/report", response_model=AuditReport, responses={
    **errors(403, 404, 500), 200: {"content": {"text/html": {}}, "description": "the report (JSON, or the HTML page)"}})
async def get_report(request: Request, response: Response, ticket_id: TicketIdPath,
                     who: Annotated[Principal, Depends(requires(Permission.history))],
                     format: Annotated[Literal["json", "html"], Query(
                         description="json (default), or html: one self-contained page to attach to a finding")] = "json",
                     ) -> AuditReport | HTMLResponse:
    """The ticket's audit report from its history alone (auditors and admins): each decision with who, when, why,
    rule and clock (due time, lateness); each notification and its delivery; the policy version; the verdicts (every
    run replayed against the API's code, its decisions recomputed from the recorded inputs). Completed and
    terminated tickets too."""
    built = await temporal(request, lambda c: c.report(ticket_id, principal=who))
    if format == "html":
        page = render_html(built, generated_at=datetime.now(UTC), source=f"the server's history of ticket {ticket_id}")
        return HTMLResponse(page, headers={"Content-Security-Policy": REPORT_CSP, "X-Content-Type-Options": "nosniff",
                                           **REPORT_PRIVATE})
    response.headers.update(REPORT_PRIVATE)
    return built


# ----- cursors ---------------------------------------------------------------------------------------------------


def _cursor_check(token_hex: str) -> str:
    return hashlib.sha256(b"escalation-cursor:" + token_hex.encode()).hexdigest()[:8]


def _wrap_cursor(token_hex: str) -> str:
    """Temporal's page token plus a check value, so a mangled cursor is a 422 here, not an error in Temporal."""
    return token_hex + _cursor_check(token_hex)


def _unwrap_cursor(cursor: str) -> str:
    token_hex, check = cursor[:-8], cursor[-8:]
    if not token_hex or not hmac.compare_digest(check, _cursor_check(token_hex)):
        raise _bad_cursor()
    return token_hex


def _bad_cursor() -> ApiError:
    message = "cursor is not one this API returned (pass next_cursor from the previous page unchanged)"
    return ApiError(422, "invalid_request", message,
                    details=[ErrorDetail(loc=["query", "cursor"], message=message, type="value_error")])
