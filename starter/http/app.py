"""The HTTP JSON API: intake from every channel, agent actions, roles. A thin layer over EscalationClient.

`create_app()` builds the FastAPI application; `serve()` runs it with uvicorn
(`escalation api`, `python -m starter.http`). Everything is under /v1; the
OpenAPI schema is at /openapi.json, the docs at /docs and /redoc.

Errors are JSON of one shape (`ErrorBody`):
    {"error": {"code": "...", "message": "...", "details": [...], "request_id": "..."}}
"""

import argparse
import asyncio
import hashlib
import hmac
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal, TypeVar

import structlog
from fastapi import Body, Depends, FastAPI, HTTPException, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    WithJsonSchema,
    create_model,
    field_validator,
)
from pydantic.fields import FieldInfo
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from temporalio.service import RPCError, RPCStatusCode

from starter.client import (
    ActionRejected,
    EscalationClient,
    EscalationError,
    IdConflict,
    InvalidInput,
    OpenResult,
    ReplyAccepted,
    TemporalUnavailable,
    TicketNotFound,
    TicketPage,
)
from starter.http.input_guard import BodyProblem, InputGuard
from starter.intake import mapping as intake
from starter.runtime.settings import Settings, settings_or_exit
from starter.runtime.settings import settings as default_settings
from starter.runtime.validation import allowed_values, problem
from starter.security.auth import Permission, Principal, TokenStore, load_tokens
from starter.security.ratelimit import RateLimiter
from workflows import ticket as core
from workflows.common.policy import Policy
from workflows.common.vocabulary import ID_PATTERN, Channel, CustomerId, Status
from workflows.ticket import Ticket
from workflows.ticket.views import ClockView, TicketView, ticket_view
from workflows.ticket.workflow import CLOCK_SKEW

log = structlog.get_logger("escalation.api")
T = TypeVar("T")
RETRY_AFTER_S = 5
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")

# ----- error shape -----------------------------------------------------------------------


class ErrorDetail(BaseModel):
    loc: list[str | int] = Field(description="where: e.g. ['body', 'subject'] or ['query', 'status']")
    message: str
    type: str = Field(description="the kind of problem, e.g. missing, string_too_long, enum")
    allowed: list[str] | None = Field(None, description="the values allowed here, where there is a fixed set")


class ErrorInfo(BaseModel):
    code: str = Field(description="machine-readable: unauthorized, forbidden, out_of_scope, not_found, id_conflict, "
                                  "method_not_allowed, invalid_request, payload_too_large, rate_limited, "
                                  "temporal_unavailable, or a rejected action's "
                                  "reason (ticket_closed, top_tier, unknown_department, ...)")
    message: str
    details: list[ErrorDetail] = Field(default_factory=list)
    request_id: str


class ErrorBody(BaseModel):
    error: ErrorInfo


class ApiError(HTTPException):
    """An error answered in the one error shape (an HTTPException, so FastAPI re-raises it untouched)."""

    def __init__(self, status: int, code: str, message: str, *, details: list[ErrorDetail] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(status_code=status, detail=message, headers=headers)
        self.code = code
        self.message = message
        self.details = details or []


class BodyTooLarge(ApiError):
    def __init__(self, limit: int) -> None:
        super().__init__(413, "payload_too_large", f"request body larger than {limit} bytes")


STATUS_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
                406: "not_acceptable", 409: "conflict", 413: "payload_too_large", 415: "unsupported_media_type",
                422: "invalid_request", 429: "too_many_requests", 503: "temporal_unavailable"}


def _request_id(request: Request) -> str:
    return getattr(request.state, "request_id", None) or uuid.uuid4().hex


def error_response(request: Request, status: int, code: str, message: str, details: list[ErrorDetail] | None = None,
                   headers: Mapping[str, str] | None = None) -> JSONResponse:
    body = ErrorBody(error=ErrorInfo(code=code, message=message, details=details or [], request_id=_request_id(request)))
    return JSONResponse(body.model_dump(mode="json", exclude_none=True), status_code=status, headers=headers)


def validation_details(errors: Sequence[Any], prefix: tuple[str, ...] = ()) -> list[ErrorDetail]:
    out = []
    for err in errors:
        kind = str(err.get("type", "invalid"))
        loc = [*prefix, *(p if isinstance(p, int) else str(p) for p in err.get("loc", ()))]
        if kind == "json_invalid":  # FastAPI puts the character position into loc
            error = (err.get("ctx") or {}).get("error", "")
            out.append(ErrorDetail(loc=["body"], message=f"the body is not valid JSON: {error} (at position {loc[-1]})",
                                   type=kind))
            continue
        message = problem(err)
        if kind == "string_pattern_mismatch" and loc and loc[-1] == "cursor":
            message = "not a cursor this API returned (use next_cursor from the previous page)"
        out.append(ErrorDetail(loc=loc, message=message, type=kind, allowed=allowed_values(err)))
    return out


ERRORS = {
    400: {"model": ErrorBody, "description": "malformed request"},
    401: {"model": ErrorBody, "description": "no valid bearer token (`unauthorized`)"},
    403: {"model": ErrorBody, "description": "the token's role may not do this (`forbidden`), or the ticket is outside "
                                             "an agent's tiers and departments (`out_of_scope`)"},
    404: {"model": ErrorBody, "description": "no such ticket (`not_found`)"},
    409: {"model": ErrorBody, "description": "rejected: the workflow's reason (`ticket_closed`, `top_tier`, "
                                             "`unknown_department`, ...), or `id_conflict`"},
    413: {"model": ErrorBody, "description": "request body too large (`payload_too_large`)"},
    422: {"model": ErrorBody, "description": "invalid input: each bad field with its location, message and allowed values"},
    429: {"model": ErrorBody, "description": "this token (or, without a valid token, this address) sent too many "
                                             "requests (`rate_limited`); see Retry-After"},
    503: {"model": ErrorBody, "description": "Temporal unreachable or not answering (`temporal_unavailable`); see Retry-After"},
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {c: ERRORS[c] for c in (401, 422, 429, 503, *codes)}


# ----- request bodies derived from the core's events ---------------------------------------


DEFAULT_MAX_STR = 200


def body_model(event: type[BaseModel]) -> type[BaseModel]:
    """The request body of an action: the event's own fields minus `actor` (from the token) and `type` (from the path).

    Strings the core leaves unbounded get a length limit here."""
    fields: dict[str, Any] = {}
    for name, f in event.model_fields.items():
        if name in ("actor", "type"):
            continue
        info = f
        has_max = any(getattr(m, "max_length", None) is not None for m in f.metadata)
        if not has_max and _is_str(f.annotation):
            info = FieldInfo.merge_field_infos(f, Field(max_length=DEFAULT_MAX_STR))
        fields[name] = (f.annotation, info)
    doc = (event.__doc__ or "").strip()
    return create_model(f"{event.__name__}Body", __config__=ConfigDict(extra="forbid"), __doc__=doc or None, **fields)


def _is_str(annotation: Any) -> bool:
    return annotation is str or (getattr(annotation, "__args__", None) is not None and str in annotation.__args__)


ACTION_EVENTS: dict[str, type[BaseModel]] = {name.replace("_", "-"): cls for name, cls in core.ACTIONS.items()}
ACTION_BODIES: dict[str, type[BaseModel]] = {action: body_model(cls) for action, cls in ACTION_EVENTS.items()}
ACTION_PERMISSIONS = {"assign": Permission.assign, "customer-reply": Permission.customer_reply}
ACTION_DOCS = {
    "acknowledge": "Acknowledge the ticket (stops the acknowledge clock).",
    "escalate": "Hierarchical escalation: to the next tier up, or to `to_tier` (may jump several). Escalating into "
                "a tier only a person may enter (executive) needs a supervisor or admin.",
    "transfer": "Functional escalation: move the ticket sideways to another department; the tier stays.",
    "wait-on-customer": "Wait on the customer: clocks that pause while waiting pause.",
    "resolve": "Resolve with a fix or a workaround; the ticket closes after the reopen window.",
    "reopen": "Reopen a resolved ticket.",
    "close": "Close a resolved ticket now.",
    "assign": "Assign (or with `null`, unassign). Supervisors and admins only.",
    "note": "Add a note; `public: true` makes it a customer-facing reply.",
    "change-priority": "Change the priority; accrued SLA time is kept.",
    "customer-reply": "Relay a customer's message. On a closed ticket it opens a new ticket linked to it (201). "
                      "With `wait=false` it is handed over as a Signal (fire and forget, 202): nothing waits for "
                      "a worker, and the answer carries no view.",
}


class TicketIn(Ticket):
    """A ticket to open. `id` is the caller's: a retry with the same body returns the existing ticket."""

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra={"examples": [{
        "id": "HD-10442", "subject": "Streaming app fails on smart TV", "customer_id": "cust-1042",
        "description": "The app crashes at start since the last update.", "priority": "P2", "tags": ["smart-tv"],
    }]})
    opened_at: AwareDatetime | None = Field(  # type: ignore[assignment]
        None, description="when the customer reported it; default: when the API received it")

    @field_validator("opened_at")
    @classmethod
    def _aware(cls, v: datetime | None) -> datetime | None:  # type: ignore[override]
        return v  # AwareDatetime checks the zone; None means "now"

    def ticket(self, now: datetime) -> Ticket:
        return Ticket(**{**self.model_dump(exclude={"opened_at"}), "opened_at": self.opened_at or now})


def iso_duration(value: timedelta) -> str:
    """ISO 8601, whole seconds, a leading '-' when overdue: 'PT1H30M', 'P2DT4H', '-PT5M'."""
    total = round(value.total_seconds())
    sign, total = ("-", -total) if total < 0 else ("", total)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    clock = "".join(f"{n}{u}" for n, u in ((hours, "H"), (minutes, "M"), (seconds, "S")) if n)
    return f"{sign}P{f'{days}D' if days else ''}{'T' + clock if clock else ('' if days else 'T0S')}"


Duration = Annotated[timedelta, PlainSerializer(iso_duration, return_type=str), WithJsonSchema({
    "type": "string", "pattern": r"^-?P(\d+D)?(T(\d+H)?(\d+M)?(\d+S)?)?$", "examples": ["PT1H30M", "-PT5M"],
    "description": "ISO 8601 duration in whole seconds; negative when overdue"})]


class ClockOut(ClockView):
    """A clock as shown: business time accrued and remaining (negative when overdue), and the due time."""

    target: Duration | None  # type: ignore[assignment]
    accrued: Duration  # type: ignore[assignment]
    remaining: Duration | None  # type: ignore[assignment]


class TicketOut(TicketView):
    """The ticket as a person sees it at `as_of`: state, SLA clocks, timeline."""

    clocks: list[ClockOut]  # type: ignore[assignment]



def out(view: TicketView) -> TicketOut:
    return TicketOut.model_validate(view, from_attributes=True)


class Outcome(StrEnum):
    opened = "opened"
    existing = "existing"
    customer_reply = "customer_reply"
    follow_up = "follow_up"
    duplicate = "duplicate"


class IntakeResult(BaseModel):
    outcome: Outcome = Field(description="opened: a new ticket (201); existing: a repeated delivery (200); "
                                         "customer_reply: an email reply added to its ticket (200); follow_up: a reply "
                                         "to a closed ticket opened a linked ticket (201); duplicate: that reply was "
                                         "already recorded (200)")
    ticket: TicketOut
    replied_to: str | None = Field(None, description="the ticket an email replied to")
    sensitive: list[str] = Field(default_factory=list, description="sensitive data found on a public channel: "
                                 "the ticket is flagged and the reply must move to a private channel")


class TimelineOut(BaseModel):
    id: str
    status: Status
    timeline: list[core.TimelineEntry]


class Health(BaseModel):
    status: Literal["ok", "ready"]
    checks: dict[str, str] = Field(default_factory=dict)


TicketIdPath = Annotated[str, Path(pattern=ID_PATTERN, max_length=100, description="the ticket id",
                                   examples=["HD-10442"])]


# ----- context: settings, tokens, the Temporal client --------------------------------------


class ApiContext:
    def __init__(self, settings: Settings, policy: Policy, tokens: TokenStore, client: EscalationClient | None) -> None:
        self.settings = settings
        self.policy = policy
        self.tokens = tokens
        self._client = client
        self._lock: asyncio.Lock | None = None
        self.executive_tiers = frozenset(t.id for t in policy.tiers if not t.automatic_entry)
        self.limiter = RateLimiter(settings.escalation_api_rate_per_s, settings.escalation_api_burst)
        self.max_backdate = timedelta(days=settings.escalation_max_backdate_days)

    async def client(self) -> EscalationClient:
        """Connect on first use (and again after a failure): the API starts, and reports 503, while Temporal is down."""
        if self._client is not None:
            return self._client
        self._lock = self._lock or asyncio.Lock()
        async with self._lock:
            if self._client is None:
                from starter.runtime.temporal import connect

                s = self.settings
                try:
                    temporal = await asyncio.wait_for(connect(s.temporal_address, s.temporal_namespace),
                                                      s.escalation_api_timeout_s)
                except (RuntimeError, OSError, TimeoutError) as exc:
                    raise TemporalUnavailable(f"cannot reach Temporal at {s.temporal_address}: {exc}") from None
                self._client = EscalationClient(temporal, self.policy, s.escalation_task_queue)
        return self._client

    async def temporal(self, request: Request, call: Callable[[EscalationClient], Awaitable[T]]) -> T:
        """One call to Temporal, bounded in time, its duration added to the request's Server-Timing."""
        started = time.perf_counter()
        try:
            client = await self.client()
            return await asyncio.wait_for(call(client), self.settings.escalation_api_timeout_s)
        except TimeoutError:
            raise TemporalUnavailable(
                f"Temporal did not answer within {self.settings.escalation_api_timeout_s:g}s "
                f"(is a worker polling task queue {self.settings.escalation_task_queue!r}?)") from None
        finally:
            request.state.temporal_ms = getattr(request.state, "temporal_ms", 0.0) + (time.perf_counter() - started) * 1000


# ----- middleware: request id, body size limit, access log ----------------------------------


class RequestMiddleware:
    """Pure ASGI: gives each request an id (X-Request-ID), limits the body size (413), logs one access line."""

    def __init__(self, app: ASGIApp, max_body: int) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        incoming = headers.get("x-request-id", "")
        rid = incoming if REQUEST_ID.match(incoming) else uuid.uuid4().hex
        state = scope.setdefault("state", {})
        state["request_id"] = rid
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                h = MutableHeaders(scope=message)
                h["X-Request-ID"] = rid
                total = (time.perf_counter() - started) * 1000
                temporal_ms = state.get("temporal_ms")
                timing = f"app;dur={total:.1f}" + (f", temporal;dur={temporal_ms:.1f}" if temporal_ms is not None else "")
                h["Server-Timing"] = timing
            await send(message)

        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise BodyTooLarge(self.max_body)
            return message

        try:
            length = headers.get("content-length")
            if length is not None and (not length.isdigit() or int(length) > self.max_body):
                code, msg = (413, f"request body larger than {self.max_body} bytes") if length.isdigit() else (
                    400, "invalid Content-Length")
                body = ErrorBody(error=ErrorInfo(code=STATUS_CODES[code], message=msg, request_id=rid))
                await JSONResponse(body.model_dump(mode="json"), status_code=code, headers={"Connection": "close"})(
                    scope, receive, send_wrapper)
                return
            await self.app(scope, limited_receive, send_wrapper)
        finally:
            log.info("request", request_id=rid, method=scope.get("method"), path=scope.get("path"), status=status,
                     duration_ms=round((time.perf_counter() - started) * 1000, 2), principal=state.get("principal"),
                     temporal_ms=round(state["temporal_ms"], 2) if "temporal_ms" in state else None,
                     client=(scope.get("client") or ("?",))[0])


# ----- the application ----------------------------------------------------------------------

DESCRIPTION = """\
Open tickets from other systems (idempotent on the caller's id), take them in from every
channel, act on them as an agent, list them, and export their histories.

**Authentication**: `Authorization: Bearer <token>`. Roles: `intake` (open tickets, intake,
relay customer replies), `agent` (read, list and act on tickets in its tiers and departments;
relay customer replies), `supervisor` (an agent's rights everywhere, plus assignment and
escalation into the executive tier), `auditor` (read-only, including histories), `admin`
(everything). The actor recorded in a ticket's timeline is the token's principal, e.g.
`agent:alice`.

**Errors** are JSON of one shape:
`{"error": {"code": "...", "message": "...", "details": [{"loc": [...], "message": "...",
"type": "...", "allowed": [...]}], "request_id": "..."}}`. Every response carries `X-Request-ID`
(send one to correlate) and `Server-Timing`.
"""


def _serve_docs_offline(app: FastAPI) -> None:
    """Swagger UI and ReDoc from a pinned PyPI package, not a CDN: /docs and /redoc work without internet."""
    from pathlib import Path

    import fastapi_offline
    from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
    from fastapi.staticfiles import StaticFiles

    app.mount("/static/docs", StaticFiles(directory=Path(fastapi_offline.__file__).parent / "static"), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=openapi_url, title=f"{app.title} - docs",
                                   swagger_js_url="/static/docs/swagger-ui-bundle.js",
                                   swagger_css_url="/static/docs/swagger-ui.css",
                                   swagger_favicon_url="/static/docs/favicon.png")

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(openapi_url=openapi_url, title=f"{app.title} - ReDoc",
                              redoc_js_url="/static/docs/redoc.standalone.js", redoc_favicon_url="/static/docs/favicon.png",
                              with_google_fonts=False)


def create_app(settings: Settings | None = None, *, client: EscalationClient | None = None,
               tokens: TokenStore | None = None, policy: Policy | None = None) -> FastAPI:
    """The API. Without arguments: settings, tokens and policy from the environment; Temporal connected on first use."""
    s = settings or default_settings()
    if policy is None:
        if client is not None:
            policy = client.policy
        else:
            from starter.runtime.policy_file import load_policy

            policy = load_policy(s.escalation_policy)
    if tokens is None:
        tokens = load_tokens(s.escalation_tokens_file, s.escalation_tokens, policy)
        if not len(tokens):
            log.warning("no_api_tokens", hint="set ESCALATION_TOKENS_FILE or ESCALATION_TOKENS; every request gets 401")
    ctx = ApiContext(s, policy, tokens, client)

    app = FastAPI(title="Escalation engine API", version="1.0.0", description=DESCRIPTION, docs_url=None, redoc_url=None,
                  openapi_tags=[
        {"name": "tickets", "description": "open, read and list tickets"},
        {"name": "actions", "description": "agent actions: sent to the ticket's workflow as Updates; each returns the new view"},
        {"name": "intake", "description": "one endpoint per channel, each taking that channel's own payload"},
        {"name": "health", "description": "liveness and readiness"},
    ])
    app.state.ctx = ctx
    _serve_docs_offline(app)
    app.add_middleware(InputGuard, reject=_input_rejected)  # inside the size limit: added before it
    app.add_middleware(RequestMiddleware, max_body=s.escalation_max_body_bytes)
    _install_error_handlers(app)
    bearer = HTTPBearer(auto_error=False, description="a token from ESCALATION_TOKENS_FILE / ESCALATION_TOKENS")

    def limit(wait: float, who: str) -> None:
        if wait:
            raise ApiError(429, "rate_limited",
                           f"{who} sent more than {ctx.limiter.rate:g} requests/s (burst {ctx.limiter.burst}); "
                           f"retry after {wait:.1f}s", headers={"Retry-After": RateLimiter.retry_after(wait)})

    def requires(permission: Permission) -> Callable[..., Awaitable[Principal]]:
        async def principal(request: Request,
                            creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Principal:
            who = ctx.tokens.authenticate(creds.credentials if creds else None)
            if who is None:  # guessing tokens is rate-limited too, per client address
                limit(ctx.limiter.for_address(request.client.host if request.client else "?"), "this address")
                raise ApiError(401, "unauthorized", "a valid bearer token is required",
                               headers={"WWW-Authenticate": "Bearer"})
            request.state.principal = who.actor
            limit(ctx.limiter.for_token(who.name), who.actor)
            if not who.can(permission):
                raise ApiError(403, "forbidden", f"role {who.role.value} may not {permission.value.replace('_', ' ')}")
            return who
        return principal

    async def scoped_state(request: Request, who: Principal, ticket_id: str) -> core.TicketState:
        state = await ctx.temporal(request, lambda c: c.state(ticket_id))
        if not who.in_scope(state.tier, state.department):
            raise ApiError(403, "out_of_scope", f"ticket {ticket_id} (tier {state.tier}, department {state.department}) "
                                                f"is outside the scope of {who.actor}")
        return state

    # ----- health -------------------------------------------------------------------------

    @app.get("/healthz", tags=["health"], response_model=Health)
    async def healthz() -> Health:
        """The process is up."""
        return Health(status="ok")

    @app.get("/readyz", tags=["health"], response_model=Health, responses={503: ERRORS[503]})
    async def readyz(request: Request) -> Any:
        """Temporal is reachable and a worker polls the task queue."""
        try:
            pollers = await ctx.temporal(request, lambda c: c.workflow_pollers())
        except (TemporalUnavailable, RPCError) as exc:
            return error_response(request, 503, "not_ready", f"Temporal unreachable: {getattr(exc, 'message', exc)}",
                                  [ErrorDetail(loc=["temporal"], message="unreachable", type="temporal")],
                                  headers={"Retry-After": str(RETRY_AFTER_S)})
        tq = s.escalation_task_queue
        if pollers == 0:
            return error_response(request, 503, "not_ready", f"no worker polls task queue {tq!r}",
                                  [ErrorDetail(loc=["worker"], message=f"no poller on {tq!r}", type="worker")],
                                  headers={"Retry-After": str(RETRY_AFTER_S)})
        return Health(status="ready", checks={"temporal": "ok", "worker": f"{pollers} poller(s) on task queue {tq!r}"})

    # ----- tickets -------------------------------------------------------------------------

    async def open_ticket(request: Request, ticket: Ticket, exact_time: bool) -> OpenResult:
        return await ctx.temporal(request, lambda c: c.open(ticket, opened_at_defaulted=not exact_time, wait_for_worker=False))

    @app.post("/v1/tickets", tags=["tickets"], response_model=TicketOut, status_code=201,
              responses={200: {"model": TicketOut, "description": "the ticket with this id already exists "
                                                                   "(a retried request with the same body)"},
                         **errors(403, 409, 413)})
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

    @app.get("/v1/tickets", tags=["tickets"], response_model=TicketPage, responses=errors(403))
    async def list_tickets(
        request: Request, who: Annotated[Principal, Depends(requires(Permission.list))],
        status: Annotated[Status | None, Query(description="ticket status")] = None,
        tier: Annotated[Literal[tuple(policy.tier_ids())] | None, Query()] = None,  # type: ignore[valid-type]
        priority: Annotated[Literal["P1", "P2", "P3", "P4"] | None, Query()] = None,
        department: Annotated[Literal[tuple(policy.department_ids())] | None, Query()] = None,  # type: ignore[valid-type]
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
            page = await ctx.temporal(request, lambda c: c.list(
                tiers=who.tiers, departments=who.departments, status=status.value if status else None, tier=tier,
                priority=priority, department=department, customer_id=customer, assignee=assignee, breached=breached,
                page_size=limit, cursor=token))
        except RPCError as exc:
            if token is None:
                raise
            log.info("bad_cursor", status=exc.status.name if exc.status else None, message=exc.message)
            raise _bad_cursor() from None
        return TicketPage(tickets=page.tickets, next_cursor=_wrap_cursor(page.next_cursor) if page.next_cursor else None)

    @app.get("/v1/tickets/{ticket_id}", tags=["tickets"], response_model=TicketOut, responses=errors(403, 404))
    async def get_ticket(request: Request, ticket_id: TicketIdPath,
                         who: Annotated[Principal, Depends(requires(Permission.read))]) -> TicketView:
        """The ticket as a person sees it now: state, clocks (due times, remaining business time), timeline."""
        state = await scoped_state(request, who, ticket_id)
        return ticket_view(state, datetime.now(UTC))

    @app.get("/v1/tickets/{ticket_id}/timeline", tags=["tickets"], response_model=TimelineOut,
             responses=errors(403, 404))
    async def get_timeline(request: Request, ticket_id: TicketIdPath,
                           who: Annotated[Principal, Depends(requires(Permission.read))]) -> TimelineOut:
        """Who did what when, and the policy rule behind every automatic decision."""
        state = await scoped_state(request, who, ticket_id)
        return TimelineOut(id=state.ticket.id, status=state.status, timeline=state.timeline)

    @app.get("/v1/tickets/{ticket_id}/history", tags=["tickets"], response_model=dict[str, Any],
             responses=errors(403, 404))
    async def get_history(request: Request, ticket_id: TicketIdPath,
                          who: Annotated[Principal, Depends(requires(Permission.history))]) -> dict[str, Any]:
        """The ticket's Temporal event history as JSON (auditors and admins): replayable against the code."""
        return await ctx.temporal(request, lambda c: c.history_json(ticket_id))

    # ----- actions -------------------------------------------------------------------------

    async def act(request: Request, response: Response, ticket_id: str, who: Principal, action: str,
                  body: BaseModel | None, wait: bool = True) -> TicketView | JSONResponse:
        event_cls = ACTION_EVENTS[action]
        fields = body.model_dump(exclude_unset=True) if body is not None else {}
        event = event_cls(**fields, actor=who.actor)
        state = None
        if who.scoped or (action == "escalate" and not who.can(Permission.escalate_executive)):
            state = await scoped_state(request, who, ticket_id)
        if action == "escalate" and not who.can(Permission.escalate_executive):
            assert state is not None and isinstance(event, core.Escalate)
            target = event.to_tier or (ctx.policy.next_tier(state.tier) if state.tier in ctx.policy.tier_ids() else None)
            if target in ctx.executive_tiers:
                raise ApiError(403, "forbidden", f"escalating into {target} needs a supervisor or admin "
                                                 f"({who.actor} is {who.role.value})")
        if not wait:  # fire and forget: a Signal, no worker needed to answer
            assert isinstance(event, core.CustomerReply)
            accepted = await ctx.temporal(request, lambda c: c.signal_customer_reply(ticket_id, event))
            headers = {"Location": f"/v1/tickets/{accepted.follow_up_ticket_id or ticket_id}"}
            return JSONResponse(accepted.model_dump(mode="json"), status_code=202, headers=headers)
        for attempt in (1, 2):
            try:
                if action == "customer-reply":
                    assert isinstance(event, core.CustomerReply)
                    view, new = await ctx.temporal(request, lambda c: c.customer_reply(ticket_id, event))
                    if new:
                        response.status_code = 201
                        response.headers["Location"] = f"/v1/tickets/{view.id}"
                        return view
                else:
                    view = await ctx.temporal(request, lambda c: c.act(ticket_id, event))  # type: ignore[arg-type]
                return await full_view(request, view)
            except TicketNotFound:
                # An update that races the ticket's closing is aborted with NOT_FOUND ("workflow update was
                # aborted by closing workflow"): tell that apart from a ticket that does not exist.
                state = await ctx.temporal(request, lambda c: c.state(ticket_id))  # TicketNotFound if truly missing
                if not state.closed or (action == "customer-reply" and attempt == 1):
                    continue  # retry once: a reply to a closed ticket opens a follow-up
                raise ActionRejected("ticket_closed", f"ticket {ticket_id} is closed; open a new ticket instead") from None
        raise ActionRejected("rejected", f"ticket {ticket_id} changed while {action} was being applied; retry")

    async def full_view(request: Request, view: TicketView) -> TicketView:
        """An Update returns the ticket with only the timeline entries it added (so histories do not grow
        quadratically); the answer shows the whole ticket, read by query. Should that read fail, the
        Update's own result is still the truth about the action."""
        try:
            state = await ctx.temporal(request, lambda c: c.state(view.id))
        except (TemporalUnavailable, TicketNotFound):
            return view
        return ticket_view(state, datetime.now(UTC)) if state.seq >= _last_seq(view) else view

    for action in ACTION_EVENTS:
        _add_action_route(app, action, requires(ACTION_PERMISSIONS.get(action, Permission.act)), act)

    # ----- intake --------------------------------------------------------------------------

    async def take_in(request: Request, response: Response, who: Principal, channel: Channel,
                      payload: intake._Payload) -> IntakeResult:
        now = datetime.now(UTC)
        mapped = intake.map_payload(channel, payload, now, max_backdate=ctx.max_backdate, skew=CLOCK_SKEW)  # type: ignore[arg-type]
        if isinstance(payload, intake.EmailIntake) and mapped.reply_targets:
            replied = await _email_reply(request, payload, mapped.reply_targets, who)
            if replied is not None:
                response.status_code = 201 if replied.outcome == Outcome.follow_up else 200
                return replied
        result = await open_ticket(request, mapped.ticket, mapped.exact_time)
        response.status_code = 201 if result.created else 200
        response.headers["Location"] = f"/v1/tickets/{result.view.id}"
        return IntakeResult(outcome=Outcome.opened if result.created else Outcome.existing, ticket=out(result.view),
                            sensitive=mapped.sensitive)

    async def _email_reply(request: Request, p: intake.EmailIntake, targets: list[str],
                           who: Principal) -> IntakeResult | None:
        state = await _first_existing(request, targets)
        if state is None:
            return None
        tid, now = state.ticket.id, datetime.now(UTC)
        reply = intake.email_reply(p, who.actor)
        mid = reply.message_id or ""
        if state.closed:
            try:
                follow = await ctx.temporal(request, lambda c: c.state(core.follow_up_id(tid, mid)))
                return IntakeResult(outcome=Outcome.duplicate, ticket=out(ticket_view(follow, now)), replied_to=tid)
            except TicketNotFound:
                pass
        elif already_relayed(state, mid):
            return IntakeResult(outcome=Outcome.duplicate, ticket=out(ticket_view(state, now)), replied_to=tid)
        view, new = await ctx.temporal(request, lambda c: c.customer_reply(tid, reply))
        view = view if new else await full_view(request, view)
        return IntakeResult(outcome=Outcome.follow_up if new else Outcome.customer_reply, ticket=out(view), replied_to=tid)

    async def _first_existing(request: Request, ticket_ids: list[str]) -> core.TicketState | None:
        for tid in ticket_ids:
            try:
                return await ctx.temporal(request, lambda c, tid=tid: c.state(tid))  # type: ignore[misc]
            except TicketNotFound:
                continue
        return None

    for channel, model in intake.PAYLOADS.items():
        _add_intake_route(app, channel, model, requires(Permission.intake), take_in)

    return app


def _last_seq(view: TicketView) -> int:
    return max((e.seq for e in view.timeline), default=0)


def already_relayed(state: core.TicketState, message_id: str) -> bool:
    """Whether the customer message with this id is already in the timeline (a redelivered email)."""
    return bool(message_id) and any(
        e.action == "customer_replied" and e.summary.endswith(f"({message_id})") for e in state.timeline)


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


def _add_action_route(app: FastAPI, action: str, dependency: Callable[..., Awaitable[Principal]],
                      act: Callable[..., Awaitable[TicketView | JSONResponse]]) -> None:
    model = ACTION_BODIES[action]
    optional = not any(f.is_required() for f in model.model_fields.values())
    responses = errors(403, 404, 409, 413)
    if action == "customer-reply":
        _add_customer_reply_route(app, model, dependency, act, responses)
        return
    kwargs: dict[str, Any] = {"tags": ["actions"], "response_model": TicketOut, "responses": responses,
                              "summary": action.replace("-", " ").capitalize(), "description": ACTION_DOCS[action],
                              "operation_id": f"ticket_{action.replace('-', '_')}"}
    path = f"/v1/tickets/{{ticket_id}}/{action}"
    if optional:
        async def endpoint_optional(request: Request, response: Response, ticket_id: TicketIdPath,
                                    who: Annotated[Principal, Depends(dependency)],
                                    body: Annotated[model | None, Body()] = None) -> TicketView | JSONResponse:  # type: ignore[valid-type]
            return await act(request, response, ticket_id, who, action, body)
        app.post(path, **kwargs)(endpoint_optional)
    else:
        async def endpoint(request: Request, response: Response, ticket_id: TicketIdPath,
                           who: Annotated[Principal, Depends(dependency)],
                           body: Annotated[model, Body()]) -> TicketView | JSONResponse:  # type: ignore[valid-type]
            return await act(request, response, ticket_id, who, action, body)
        app.post(path, **kwargs)(endpoint)


def _add_customer_reply_route(app: FastAPI, model: type[BaseModel], dependency: Callable[..., Awaitable[Principal]],
                              act: Callable[..., Awaitable[TicketView | JSONResponse]],
                              responses: dict[int | str, dict[str, Any]]) -> None:
    responses[201] = {"model": TicketOut, "description": "the ticket was closed: a new ticket linked to it was opened"}
    responses[202] = {"model": ReplyAccepted, "description": "`wait=false`: handed to the ticket as a Signal"}

    async def endpoint(request: Request, response: Response, ticket_id: TicketIdPath,
                       who: Annotated[Principal, Depends(dependency)], body: Annotated[model, Body()],  # type: ignore[valid-type]
                       wait: Annotated[bool, Query(description="false: fire and forget (a Signal; 202, no view); the "
                                                               "ticket applies it when its worker next runs")] = True,
                       ) -> TicketView | JSONResponse:
        return await act(request, response, ticket_id, who, "customer-reply", body, wait)

    app.post("/v1/tickets/{ticket_id}/customer-reply", tags=["actions"], response_model=TicketOut, responses=responses,
             summary="Customer reply", description=ACTION_DOCS["customer-reply"],
             operation_id="ticket_customer_reply")(endpoint)


def _add_intake_route(app: FastAPI, channel: Channel, model: type[BaseModel],
                      dependency: Callable[..., Awaitable[Principal]],
                      take_in: Callable[..., Awaitable[IntakeResult]]) -> None:
    async def endpoint(request: Request, response: Response, who: Annotated[Principal, Depends(dependency)],
                       payload: Annotated[model, Body()]) -> IntakeResult:  # type: ignore[valid-type]
        return await take_in(request, response, who, channel, payload)

    doc = (model.__doc__ or "").strip()
    app.post(f"/v1/intake/{channel.value}", tags=["intake"], response_model=IntakeResult, status_code=201,
             summary=f"Intake: {channel.value}", operation_id=f"intake_{channel.value}",
             description=f"{doc}\n\nOne ticket per {_IDENTITY[channel]}: a repeated delivery opens nothing new (200).",
             responses={200: {"model": IntakeResult, "description": "already taken in (or an email reply to a ticket)"},
                        **errors(403, 409, 413)})(endpoint)


_IDENTITY = {Channel.email: "Message-ID (a reply, by In-Reply-To/References, goes to its ticket)",
             Channel.chat: "conversation id", Channel.phone: "call id", Channel.social: "network and post id",
             Channel.portal: "submission id", Channel.bot: "bot conversation id"}


def _summary_of(details: list[ErrorDetail]) -> str:
    """The top-level message: the first few problems in full, so a log line alone says what was wrong."""
    shown = "; ".join(f"{'.'.join(str(p) for p in d.loc)}: {d.message}" for d in details[:3])
    more = f" (and {len(details) - 3} more)" if len(details) > 3 else ""
    return f"invalid input: {shown}{more}"


def _input_rejected(problems: list[BodyProblem]) -> ApiError:
    """The input guard's refusal (too deep, control characters) as the API's 422."""
    details = [ErrorDetail(loc=list(p.loc), message=p.message, type=p.type) for p in problems]
    return ApiError(422, "invalid_request", _summary_of(details), details=details)


def _install_error_handlers(app: FastAPI) -> None:
    async def on_escalation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, EscalationError)
        if isinstance(exc, TicketNotFound):
            return error_response(request, 404, "not_found", exc.message)
        if isinstance(exc, ActionRejected | IdConflict):
            return error_response(request, 409, exc.code, exc.message)
        if isinstance(exc, InvalidInput):
            details = [ErrorDetail(loc=["body", exc.field], message=exc.message, type="value_error")] if exc.field else None
            return error_response(request, 422, "invalid_request", exc.message, details)
        if isinstance(exc, TemporalUnavailable):
            return error_response(request, 503, "temporal_unavailable", exc.message,
                                  headers={"Retry-After": str(RETRY_AFTER_S)})
        return error_response(request, 500, "internal_error", exc.message)

    async def on_http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        if isinstance(exc, ApiError):
            return error_response(request, exc.status_code, exc.code, exc.message, exc.details, exc.headers)
        if exc.status_code == 400 and exc.detail == "There was an error parsing the body":  # e.g. not UTF-8
            message = "the body is not valid JSON (UTF-8)"
            return error_response(request, 422, "invalid_request", message,
                                  [ErrorDetail(loc=["body"], message=message, type="json_invalid")])
        code = STATUS_CODES.get(exc.status_code, "error")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        if exc.status_code == 404:
            message = f"no route {request.method} {request.url.path}"
        return error_response(request, exc.status_code, code, message, headers=getattr(exc, "headers", None))

    async def on_request_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        details = validation_details(exc.errors())
        return error_response(request, 422, "invalid_request", _summary_of(details), details)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ValidationError)  # a model built in a handler (e.g. a mapped ticket)
        details = validation_details(exc.errors(), ("body",))
        return error_response(request, 422, "invalid_request", _summary_of(details), details)

    async def on_rpc_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RPCError)
        if exc.status == RPCStatusCode.INVALID_ARGUMENT:
            return error_response(request, 422, "invalid_request", exc.message)
        if exc.status == RPCStatusCode.NOT_FOUND:
            return error_response(request, 404, "not_found", exc.message)
        log.warning("temporal_error", status=exc.status.name if exc.status else None, message=exc.message)
        return error_response(request, 503, "temporal_unavailable", f"Temporal error: {exc.message}",
                              headers={"Retry-After": str(RETRY_AFTER_S)})

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled_error", request_id=_request_id(request), error_type=type(exc).__name__)
        return error_response(request, 500, "internal_error", "internal error; quote the request_id when reporting it")

    app.add_exception_handler(EscalationError, on_escalation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(RequestValidationError, on_request_validation)
    app.add_exception_handler(ValidationError, on_validation)
    app.add_exception_handler(RPCError, on_rpc_error)
    app.add_exception_handler(Exception, on_unexpected)


# ----- running ------------------------------------------------------------------------------


def serve(host: str | None = None, port: int | None = None) -> None:
    """Run the API with uvicorn (`escalation api`); host and port default to ESCALATION_API_HOST/PORT."""
    import uvicorn

    from starter.runtime.logs import configure_logging

    s = settings_or_exit()
    configure_logging(s.escalation_log_level)
    logging.getLogger("uvicorn.access").disabled = True  # our middleware logs each request, with its id
    app = create_app(s)
    host, port = host or s.escalation_api_host, port or s.escalation_api_port
    log.info("api_starting", host=host, port=port, temporal=s.temporal_address, task_queue=s.escalation_task_queue)
    proxies = s.escalation_api_trusted_proxies.strip()
    uvicorn.run(app, host=host, port=port, access_log=False, log_config=None, server_header=False,
                proxy_headers=bool(proxies), forwarded_allow_ips=proxies or None, timeout_graceful_shutdown=10)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m starter.http", description="serve the escalation HTTP API")
    parser.add_argument("--host", help="default: ESCALATION_API_HOST (127.0.0.1)")
    parser.add_argument("--port", type=int, help="default: ESCALATION_API_PORT (8000)")
    args = parser.parse_args(argv)
    serve(args.host, args.port)


if __name__ == "__main__":
    main()
