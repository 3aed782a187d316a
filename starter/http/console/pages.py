"""The console's routes: sign-in and sign-out, queues, a ticket and its actions, incidents, post-mortems,
sponsorships. Each reads or acts through `deps.temporal` (the API's back-pressure and timing) with the session's
principal; the client's errors become pages that say why, with the API's status for the same error."""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ParamSpec
from urllib.parse import parse_qs, urlencode

import structlog
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import BaseModel, ValidationError

from starter.client import EscalationError, InvalidInput, plots
from starter.client.metrics import MetricsReport
from starter.client.principal import Permission, Principal
from starter.client.queues import QUEUE_STATUSES, open_until, queue, remaining_text
from starter.http.console import session as sessions
from starter.http.deps import ApiState, _limit, api_state, temporal
from starter.http.errors import ApiError, escalation_error_response
from starter.http.models import ACTION_BODIES, ACTION_EVENTS, ACTION_PERMISSIONS
from workflows import ticket as core
from workflows.common.vocabulary import ID_PATTERN, PRIORITIES, Status
from workflows.ticket.views import ticket_view

log = structlog.get_logger("escalation.console")
HERE = Path(__file__).parent
P = ParamSpec("P")

# Scripts only from our own origin (the vendored countdown), no inline script or style, nothing framed or fetched.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")
HEADERS = {"Content-Security-Policy": CSP, "Cache-Control": "no-store", "Referrer-Policy": "no-referrer",
           "X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY"}
FILTER_VALUE = re.compile(r"^[A-Za-z0-9._:@-]{1,100}$")
PAGE_SIZE = 25
# The agent actions the ticket page offers, in its order (reply is the client's `reply`: text or a macro).
ACTIONS = ("acknowledge", "escalate", "escalate-to-executive", "transfer", "wait-on-customer", "reply", "note",
           "change-priority", "assign", "resolve", "reopen", "close")

env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(default=True),
                  trim_blocks=True, lstrip_blocks=True)
env.filters["remaining"] = remaining_text
env.filters["when"] = lambda d: d.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if d else ""
env.filters["iso"] = lambda d: d.astimezone(UTC).isoformat(timespec="seconds") if d else ""
env.filters["duration"] = lambda td: remaining_text(int(td.total_seconds())) if td is not None else "no goal"

router = APIRouter(prefix="/console", include_in_schema=False)


class Problem(Exception):
    """A page that says what went wrong, with the status an API caller would get."""

    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status, self.title, self.message = status, title, message


class SignInFirst(Exception):
    pass


def render(request: Request, template: str, status: int = 200, session: sessions.Session | None = None,
           **context: Any) -> HTMLResponse:
    html = env.get_template(template).render(request=request, session=session,
                                             who=session.principal if session else None, **context)
    return HTMLResponse(html, status_code=status, headers=HEADERS)


TITLES = {400: "Bad request", 401: "Not signed in", 403: "Not allowed", 404: "Not found", 409: "Refused",
          410: "Gone", 422: "Invalid input", 429: "Too many requests", 500: "Something went wrong",
          503: "Temporal is not answering"}


def page(handler: Callable[P, Awaitable[Response]]) -> Callable[P, Awaitable[Response]]:
    """A console route: the client's errors, the API's refusals and our own as pages (never a stack trace)."""
    @functools.wraps(handler)
    async def wrapped(*args: P.args, **kwargs: P.kwargs) -> Response:
        request = kwargs["request"]
        assert isinstance(request, Request)
        try:
            return await handler(*args, **kwargs)
        except SignInFirst:
            return RedirectResponse("/console/sign-in", status_code=303, headers=HEADERS)
        except Problem as exc:
            status, title, message = exc.status, exc.title, exc.message
        except EscalationError as exc:
            status = escalation_error_response(request, exc).status_code
            title, message = TITLES.get(status, "Refused"), exc.message
        except ApiError as exc:  # rate limited, overloaded
            status, title, message = exc.status_code, TITLES.get(exc.status_code, "Refused"), exc.message
        s = sessions.current(api_state(request), request)
        return render(request, "problem.html", status, s, title=title, message=message, status_code=status)
    return wrapped


def signed_in(request: Request, permission: Permission | None = None) -> sessions.Session:
    """The session's principal (rate-limited as its token is on the API); a page that says so if its role may not."""
    api = api_state(request)
    s = sessions.current(api, request)
    if s is None:
        raise SignInFirst
    who = s.principal
    request.state.principal = who.actor
    _limit(api, api.limiter.for_token(who.name), who.actor)
    if permission is not None and not who.can(permission):
        raise Problem(403, "Not allowed", f"role {who.role.value} may not {permission.value.replace('_', ' ')}")
    return s


async def form_of(request: Request, s: sessions.Session | None = None, pre: str | None = None) -> dict[str, str]:
    """The posted form's fields (first value of each), after its CSRF token was checked against the session's (or,
    signing in, against the sign-in cookie's)."""
    raw = await request.body()
    fields = {k: v[0] for k, v in parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True).items()}
    expected = s.csrf if s is not None else pre
    if not sessions.same(fields.pop("csrf", None), expected):
        raise Problem(403, "Not allowed", "the form's CSRF token is missing or stale; reload the page and try again")
    return fields


# ----- signing in and out --------------------------------------------------------------------------------------------


def sign_in_page(request: Request, problem: str = "", status: int = 200, notice: str = "") -> HTMLResponse:
    pre = sessions.secrets.token_urlsafe(32)
    response = render(request, "sign_in.html", status, csrf=pre, problem=problem, notice=notice)
    sessions.set_cookie(response, request, sessions.PRE_COOKIE, pre, 600)
    return response


@router.get("/sign-in")
async def sign_in_form(request: Request, signed_out: bool = False) -> Response:
    return sign_in_page(request, notice="You are signed out." if signed_out else "")


@router.post("/sign-in")
@page
async def sign_in(request: Request) -> Response:
    api = api_state(request)
    fields = await form_of(request, pre=request.cookies.get(sessions.PRE_COOKIE))
    who = api.tokens.authenticate(fields.get("token", "").strip())
    if who is None:  # guessing tokens is rate-limited per address, as on the API
        _limit(api, api.limiter.for_address(request.client.host if request.client else "?"), "this address")
        return sign_in_page(request, "That token is not valid.", 401)
    if not (who.can(Permission.read) or who.can(Permission.read_incident)):
        return sign_in_page(request, f"Role {who.role.value} has nothing to see in the console.", 403)
    sid = sessions.open_session(api, who)
    home = "/console/queues" if who.can(Permission.list) else "/console/incidents"
    response = RedirectResponse(home, status_code=303, headers=HEADERS)
    sessions.set_cookie(response, request, sessions.COOKIE, sid, int(sessions.TTL.total_seconds()))
    sessions.clear_cookie(response, request, sessions.PRE_COOKIE)
    log.info("console_sign_in", principal=who.actor)
    return response


@router.post("/sign-out")
@page
async def sign_out(request: Request) -> Response:
    api = api_state(request)
    s = sessions.current(api, request)
    if s is not None:
        await form_of(request, s)
        sessions.close(api, request)
    response = RedirectResponse("/console/sign-in?signed_out=true", status_code=303, headers=HEADERS)
    sessions.clear_cookie(response, request, sessions.COOKIE)
    return response


@router.get("")
@router.get("/")
@page
async def home(request: Request) -> Response:
    s = signed_in(request)
    return RedirectResponse("/console/queues" if s.principal.can(Permission.list) else "/console/incidents",
                            status_code=303, headers=HEADERS)


@router.get("/queues")
@page
async def queues_page(request: Request) -> Response:
    """The queues in the principal's scope, one link each: the landing page reads no ticket (a queue reads up to
    QUEUE_SCAN tickets' states, too slow a page to land on)."""
    s = signed_in(request, Permission.list)
    api, who = api_state(request), s.principal
    return render(request, "queues.html", session=s,
                  tiers=[(t.id, t.name) for t in api.policy.tiers if t.id in _scope_list(who.tiers, api.policy.tier_ids())],
                  departments=[(d.id, d.name) for d in api.policy.departments
                               if d.id in _scope_list(who.departments, api.policy.department_ids())])


# ----- queues --------------------------------------------------------------------------------------------------------


def _choice(field: str, value: str | None, allowed: list[str] | tuple[str, ...]) -> str | None:
    if not value:
        return None
    if value not in allowed:
        raise Problem(422, "Invalid input", f"{field} {value!r} is not one of: {', '.join(allowed)}")
    return value


def _word(field: str, value: str | None) -> str | None:
    if not value:
        return None
    if not FILTER_VALUE.match(value):
        raise Problem(422, "Invalid input", f"{field} {value!r} may hold only letters, digits and . _ : @ - "
                                            "(1-100 characters)")
    return value


def _scope_list(scope: frozenset[str] | None, every: list[str]) -> list[str]:
    return [v for v in every if scope is None or v in scope]


@router.get("/queue")
@page
async def queue_page(request: Request, tier: str | None = None, department: str | None = None,
                     status: str | None = None, priority: str | None = None, assignee: str | None = None,
                     customer: str | None = None, tag: str | None = None, page: int = 1) -> Response:
    s = signed_in(request, Permission.list)
    api, who = api_state(request), s.principal
    filters = {"tier": _choice("tier", tier, api.policy.tier_ids()),
               "department": _choice("department", department, api.policy.department_ids()),
               "status": _choice("status", status, (*QUEUE_STATUSES, Status.resolved.value)),
               "priority": _choice("priority", priority, PRIORITIES),
               "assignee": _word("assignee", assignee), "customer": _word("customer", customer),
               "tag": _word("tag", tag)}
    page = max(1, min(page, 1000))
    now = datetime.now(UTC)
    q, items = await temporal(request, lambda c: queue(
        c, principal=who, now=now, tier=filters["tier"], department=filters["department"], status=filters["status"],
        priority=filters["priority"], assignee=filters["assignee"], customer_id=filters["customer"],
        tag=filters["tag"], offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE))
    set_filters = {k: v for k, v in filters.items() if v}
    pages = max(1, -(-q.total // PAGE_SIZE))

    def link(n: int) -> str:
        return "/console/queue?" + urlencode({**set_filters, "page": n})
    title = " / ".join(_name(api, k, v) for k, v in set_filters.items() if k in ("tier", "department")) or "All tickets"
    return render(request, "queue.html", session=s, q=q, items=items, filters=filters, page=page, pages=pages,
                  prev=link(page - 1) if page > 1 else None, next=link(page + 1) if page < pages else None,
                  tiers=[(t.id, t.name) for t in api.policy.tiers if t.id in _scope_list(who.tiers, api.policy.tier_ids())],
                  departments=[(d.id, d.name) for d in api.policy.departments
                               if d.id in _scope_list(who.departments, api.policy.department_ids())],
                  statuses=(*QUEUE_STATUSES, Status.resolved.value), priorities=PRIORITIES, title=title)


def _name(api: ApiState, kind: str, value: str) -> str:
    items = api.policy.tiers if kind == "tier" else api.policy.departments
    return next((i.name for i in items if i.id == value), value)


# ----- a ticket ------------------------------------------------------------------------------------------------------


def _ticket_id(ticket_id: str) -> str:
    if not re.match(ID_PATTERN, ticket_id) or len(ticket_id) > 100:
        raise Problem(404, "Not found", "no ticket with that id")
    return ticket_id


@router.get("/tickets/{ticket_id}")
@page
async def ticket_page(request: Request, ticket_id: str) -> Response:
    s = signed_in(request, Permission.read)
    api, who = api_state(request), s.principal
    state = await temporal(request, lambda c: c.state(_ticket_id(ticket_id), principal=who))
    now = datetime.now(UTC)
    view = ticket_view(state, now)

    macros = list((await api.client()).macro_names()) if who.can(Permission.act) else []
    flash = s.pop_flash()
    return render(request, "ticket.html", session=s, t=view, state=state, flash=flash, macros=macros,
                  contact=state.ticket.customer_contact if who.can(Permission.read_contact) else None,
                  may_see_contact=who.can(Permission.read_contact), ticks_until=open_until(state.calendar, now),
                  actions=[a for a in ACTIONS if who.can(ACTION_PERMISSIONS.get(a, Permission.act))],
                  tiers=[(t.id, t.name) for t in api.policy.tiers], priorities=PRIORITIES,
                  departments=[(d.id, d.name) for d in api.policy.departments],
                  tier_name=_name(api, "tier", view.tier), department_name=_name(api, "department", view.department))


def _action_event(action: str, fields: dict[str, str], who: Principal) -> core.Event:
    """The form's fields as the action's event, validated by the API's own body model for that action."""
    model: type[BaseModel] = ACTION_BODIES[action]
    values: dict[str, Any] = {k: v for k, v in fields.items() if v.strip() and k in model.model_fields}
    if "public" in model.model_fields:
        values["public"] = fields.get("public") == "on"
    if action == "assign":
        values["assignee"] = fields.get("assignee", "").strip() or None  # empty: unassign
    try:
        body = model.model_validate(values)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "form"
        raise InvalidInput(f"{where}: {first['msg']}", field=where) from None
    event: core.Event = ACTION_EVENTS[action](**body.model_dump(exclude_unset=True), actor=who.actor)  # type: ignore[assignment]
    return event


LABELS = {a: a.replace("-", " ").capitalize() for a in ACTIONS}


@router.post("/tickets/{ticket_id}/actions/{action}")
@page
async def act(request: Request, ticket_id: str, action: str) -> Response:
    s = signed_in(request)
    who = s.principal
    ticket_id = _ticket_id(ticket_id)
    if action not in ACTIONS:
        raise Problem(404, "Not found", f"no action {action!r}; the actions: {', '.join(ACTIONS)}")
    fields = await form_of(request, s)
    back = RedirectResponse(f"/console/tickets/{ticket_id}", status_code=303, headers=HEADERS)
    try:
        permission = ACTION_PERMISSIONS.get(action, Permission.act)
        if not who.can(permission):
            raise Problem(403, "Not allowed", f"role {who.role.value} may not {action.replace('-', ' ')}")
        if action == "reply":
            text, macro = fields.get("text", "").strip() or None, fields.get("macro", "").strip() or None
            await temporal(request, lambda c: c.reply(ticket_id, principal=who, text=text, macro=macro))
        else:
            event = _action_event(action, fields, who)
            await temporal(request, lambda c: c.perform(ticket_id, event, principal=who))
    except (EscalationError, Problem) as exc:  # refused: the reason on the ticket's page, after the redirect
        s.flash = ("error", f"{LABELS[action]} refused: {exc.message}")
        log.info("console_action_refused", action=action, principal=who.actor, reason=exc.message)
        return back
    s.flash = ("ok", f"{LABELS[action]}: done.")
    return back


# ----- the metrics dashboard ----------------------------------------------------------------------------------------


def _days(days: int | None) -> int:
    if days is None:
        return 30
    if not 1 <= days <= 366:
        raise Problem(422, "Invalid input", f"days {days} is out of range: 1 to 366")
    return days


async def _metrics(request: Request, s: sessions.Session, days: int) -> MetricsReport:
    now = datetime.now(UTC)
    who = s.principal
    return await temporal(request, lambda c: c.metrics(principal=who, start=now - timedelta(days=days), end=now,
                                                       now=now))


@router.get("/metrics")
@page
async def metrics_page(request: Request, days: int | None = None) -> Response:
    """GET /v1/metrics's figures as tables, and the same charts as `escalation metrics --plot` (one PNG)."""
    s = signed_in(request, Permission.list)
    window = _days(days)
    report = await _metrics(request, s, window)
    return render(request, "metrics.html", session=s, r=report, days=window, panels=plots.series(report))


@router.get("/metrics.png")
@page
async def metrics_chart(request: Request, days: int | None = None) -> Response:
    s = signed_in(request, Permission.list)
    report = await _metrics(request, s, _days(days))
    png = await asyncio.to_thread(plots.render_png, report)  # 0.3-0.7 s of drawing: not on the event loop
    return Response(png, media_type="image/png", headers=HEADERS)


# ----- incidents, post-mortems, sponsorships ------------------------------------------------------------------------


@router.get("/incidents")
@page
async def incidents_page(request: Request, service: str | None = None) -> Response:
    s = signed_in(request, Permission.read_incident)
    if service:
        _word("service", service)
        return RedirectResponse(f"/console/incidents/{service}", status_code=303, headers=HEADERS)
    who = s.principal
    listed = await temporal(request, lambda c: c.list_incidents(principal=who))
    return render(request, "incidents.html", session=s, incidents=listed)


@router.get("/incidents/{service}")
@page
async def incident_page(request: Request, service: str) -> Response:
    s = signed_in(request, Permission.read_incident)
    who = s.principal
    _word("service", service)
    incident = await temporal(request, lambda c: c.incident(service, principal=who))
    tickets = await temporal(request, lambda c: c.incident_tickets(service, principal=who, page_size=100))
    return render(request, "incident.html", session=s, i=incident, tickets=tickets)


@router.get("/postmortems")
@page
async def postmortems_page(request: Request, ref: str | None = None) -> Response:
    s = signed_in(request, Permission.read)
    if ref:
        _word("post-mortem", ref)
        return RedirectResponse(f"/console/postmortems/{ref}", status_code=303, headers=HEADERS)
    who = s.principal
    listed = await temporal(request, lambda c: c.list_postmortems(principal=who))
    return render(request, "postmortems.html", session=s, postmortems=listed)


@router.get("/postmortems/{postmortem_id}")
@page
async def postmortem_page(request: Request, postmortem_id: str) -> Response:
    s = signed_in(request, Permission.read)
    who = s.principal
    _word("post-mortem", postmortem_id)
    pm = await temporal(request, lambda c: c.postmortem(postmortem_id, principal=who))
    return render(request, "postmortem.html", session=s, pm=pm)


@router.get("/sponsorships")
@page
async def sponsorships_page(request: Request, active: bool | None = None) -> Response:
    s = signed_in(request, Permission.list)
    who = s.principal
    listed = await temporal(request, lambda c: c.list_sponsorships(principal=who, active=active, page_size=100))
    return render(request, "sponsorships.html", session=s, page=listed, active=active)


@router.get("/sponsorships/{account_id}")
@page
async def sponsorship_page(request: Request, account_id: str) -> Response:
    s = signed_in(request, Permission.read)
    who = s.principal
    _word("account", account_id)
    sp = await temporal(request, lambda c: c.sponsorship(account_id, principal=who))
    return render(request, "sponsorship.html", session=s, sp=sp)


@router.get("/{rest:path}")
@page
async def not_found(request: Request, rest: str) -> Response:
    signed_in(request)
    raise Problem(404, "Not found", "no such page in the console")


def mount(app: FastAPI) -> None:
    """The console's routes and its static files (a stylesheet and the countdown script) on the API's app."""
    app.mount("/console/static", StaticFiles(directory=HERE / "static"), name="console-static")
    app.include_router(router)
