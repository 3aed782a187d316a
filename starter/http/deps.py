"""What the routes depend on, as FastAPI dependencies over the one `ApiState` kept on `app.state.api`:
the settings, the policy, the token store, the rate limiter, and the client (connected on first use).

The routes reach Temporal only through `TicketClient`, the part of EscalationClient the API uses: tests may inject
any object with these methods (e.g. a fake) through `create_app(client=...)`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar
from datetime import datetime, timedelta
from typing import Annotated, Any, Protocol, TypeVar

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic_core import PydanticCustomError

from starter.client import EscalationClient, OpenResult, ReplyAccepted, ReplyResult, TicketPage
from starter.client.incidents import Declared, TicketIdsPage
from starter.client.metrics import MetricsReport
from starter.client.migrations import MigrationReport
from starter.client.principal import Permission, Principal
from starter.client.sponsorships import SponsorshipPage
from starter.http.errors import ApiError, Shed
from starter.runtime.replay import ReplayAudit
from starter.runtime.report import AuditReport
from starter.runtime.settings import Settings
from starter.security.auth import TokenStore
from starter.security.backpressure import InFlightLimit, Overloaded
from starter.security.ratelimit import RateLimiter
from workflows import ticket as core
from workflows.common.policy import Policy
from workflows.incident import IncidentState, IncidentUpdate
from workflows.postmortem import PostmortemState
from workflows.sponsorship import SponsorshipState
from workflows.survey import SurveyAnswer, SurveyState
from workflows.ticket import Ticket
from workflows.ticket.views import TicketView

T = TypeVar("T")


class TicketClient(Protocol):
    """The client's interface as the API uses it (EscalationClient implements it)."""

    policy: Policy
    task_queue: str

    async def open(self, ticket: Ticket, *, now: datetime | None = None, opened_at_defaulted: bool = False,
                   wait_for_worker: bool = True, actor: str | None = None,
                   handoff: core.Handoff | None = None) -> OpenResult: ...
    async def state(self, ticket_id: str, *, principal: Principal) -> core.TicketState: ...
    async def view(self, ticket_id: str, *, principal: Principal, now: datetime | None = None) -> TicketView: ...
    async def history_json(self, ticket_id: str, *, principal: Principal) -> dict[str, Any]: ...
    async def report(self, ticket_id: str, *, principal: Principal) -> AuditReport: ...
    async def replay(self, *, principal: Principal, tickets: Sequence[str] = (), query: str | None = None,
                     limit: int = ...) -> ReplayAudit: ...
    async def migrate_policy(self, policy: Policy, *, principal: Principal, tickets: Sequence[str] = (),
                             query: str | None = None, dry_run: bool = False, reason: str = "",
                             limit: int = ...) -> MigrationReport: ...
    async def metrics(self, *, principal: Principal, start: datetime | None = None, end: datetime | None = None,
                      group_by: str | None = None, now: datetime | None = None) -> MetricsReport: ...
    async def list(self, *, principal: Principal, status: str | None = None, tier: str | None = None,
                   priority: str | None = None, department: str | None = None, customer_id: str | None = None,
                   breached: bool | None = None, assignee: str | None = None, page_size: int = 50,
                   cursor: str | None = None) -> TicketPage: ...
    async def perform(self, ticket_id: str, event: core.Event, *, principal: Principal) -> TicketView: ...
    async def relay_customer_reply(self, ticket_id: str, reply: core.CustomerReply, *,
                                   principal: Principal) -> ReplyResult: ...
    async def signal_customer_reply(self, ticket_id: str, reply: core.CustomerReply, *,
                                    principal: Principal) -> ReplyAccepted: ...
    async def workflow_pollers(self, within: timedelta = ...) -> int: ...
    async def live_workers(self, within: timedelta = ...) -> int | None: ...
    async def reply(self, ticket_id: str, *, principal: Principal, text: str | None = None,
                    macro: str | None = None) -> TicketView: ...
    def macro_names(self) -> Sequence[str]: ...
    async def postmortem(self, postmortem_id: str, *, principal: Principal) -> PostmortemState: ...
    async def postmortem_step(self, postmortem_id: str, step: str, *, principal: Principal, text: str = "",
                              factors: Sequence[str] = (), owner: str | None = None, number: int | None = None,
                              due_in_days: int | None = None) -> PostmortemState: ...
    async def declare_incident(self, service: str, title: str, severity: str, commander: str, *,
                               principal: Principal) -> Declared: ...
    async def incident(self, service: str, *, principal: Principal) -> IncidentState: ...
    async def list_incidents(self, *, principal: Principal, limit: int = ...) -> Sequence[IncidentState]: ...
    async def list_postmortems(self, *, principal: Principal, limit: int = ...) -> Sequence[PostmortemState]: ...
    async def incident_tickets(self, service: str, *, principal: Principal, page_size: int = 100,
                               cursor: str | None = None) -> TicketIdsPage: ...
    async def link_to_incident(self, service: str, tickets: Sequence[str], *, principal: Principal,
                               unlink: bool = False) -> Sequence[str]: ...
    async def post_incident_update(self, service: str, text: str, *, principal: Principal) -> IncidentUpdate: ...
    async def resolve_incident(self, service: str, summary: str, *, principal: Principal,
                               resolution: str = "fix") -> IncidentState: ...
    async def sponsorship(self, account_id: str, *, principal: Principal) -> SponsorshipState: ...
    async def list_sponsorships(self, *, principal: Principal, active: bool | None = None, page_size: int = 50,
                                cursor: str | None = None) -> SponsorshipPage: ...
    async def enrol_sponsorship(self, account_id: str, reason: str, *, principal: Principal,
                                request_key: str | None = None) -> SponsorshipState: ...
    async def sponsorship_check_in(self, account_id: str, notes: str, *,
                                   principal: Principal) -> SponsorshipState: ...
    async def exit_sponsorship(self, account_id: str, reason: str, *, principal: Principal) -> SponsorshipState: ...
    async def survey(self, ticket_id: str, *, principal: Principal) -> SurveyState | None: ...
    async def survey_by_link(self, token: str) -> SurveyState: ...
    async def answer_survey(self, token: str, answer: SurveyAnswer) -> SurveyState: ...


class ApiState:
    """One per app: what every request shares."""

    def __init__(self, settings: Settings, policy: Policy, tokens: TokenStore, client: TicketClient | None) -> None:
        self.settings = settings
        self.policy = policy
        self.tokens = tokens
        self.connected = client
        self._lock = asyncio.Lock()
        self.limiter = RateLimiter(settings.escalation_api_rate_per_s, settings.escalation_api_burst)
        self.in_flight = InFlightLimit(settings.escalation_api_max_in_flight,
                                       settings.escalation_api_queue_wait_ms / 1000)
        self.max_backdate = timedelta(days=settings.escalation_max_backdate_days)

    async def client(self) -> TicketClient:
        """Connect on first use (and again after a failure): the API starts, and reports 503, while Temporal is down."""
        if self.connected is None:
            async with self._lock:
                if self.connected is None:
                    s = self.settings
                    self.connected = await EscalationClient.connect(self.policy, settings=s)
        return self.connected


def api_state(request: Request) -> ApiState:
    state: ApiState = request.app.state.api
    return state


Api = Annotated[ApiState, Depends(api_state)]


# ----- Temporal, timed --------------------------------------------------------------------------------------------


async def temporal(request: Request, call: Callable[[TicketClient], Awaitable[T]], *, shed: bool = True) -> T:
    """One use of the client (each of its calls to Temporal bounded by its rpc_timeout), its duration added to the
    request's Server-Timing.

    Back-pressure: the use holds one of the process's in-flight slots (ESCALATION_API_MAX_IN_FLIGHT); without one
    after the queue wait, the request is answered 503 `overloaded` and nothing was sent to Temporal. `shed=False`
    (readiness) neither takes a slot nor is refused: a probe must report Temporal's state, not the API's load."""
    api = api_state(request)
    started = time.perf_counter()
    try:
        if not shed:
            return await call(await api.client())
        try:
            async with api.in_flight.slot():
                return await call(await api.client())
        except Overloaded as exc:
            raise Shed(exc.limit) from None
    finally:
        request.state.temporal_ms = getattr(request.state, "temporal_ms", 0.0) + (time.perf_counter() - started) * 1000


# ----- who is calling -----------------------------------------------------------------------------------------------

bearer = HTTPBearer(auto_error=False, description="a token from ESCALATION_TOKENS_FILE / ESCALATION_TOKENS")


def _limit(api: ApiState, wait: float, who: str) -> None:
    if wait:
        raise ApiError(429, "rate_limited",
                       f"{who} sent more than {api.limiter.rate:g} requests/s (burst {api.limiter.burst}); "
                       f"retry after {wait:.1f}s", headers={"Retry-After": RateLimiter.retry_after(wait)})


async def limit_by_address(request: Request, api: Api) -> None:
    """For routes without a bearer token (a survey's signed link): the per-address rate limit still applies."""
    _limit(api, api.limiter.for_address(request.client.host if request.client else "?"), "this address")


def requires(permission: Permission) -> Callable[..., Awaitable[Principal]]:
    """The dependency that authenticates the bearer token, rate-limits it, and checks its role has `permission`."""
    async def principal(request: Request, api: Api,
                        creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Principal:
        who = api.tokens.authenticate(creds.credentials if creds else None)
        if who is None:  # guessing tokens is rate-limited too, per client address
            _limit(api, api.limiter.for_address(request.client.host if request.client else "?"), "this address")
            raise ApiError(401, "unauthorized", "a valid bearer token is required", headers={"WWW-Authenticate": "Bearer"})
        request.state.principal = who.actor
        _limit(api, api.limiter.for_token(who.name), who.actor)
        if not who.can(permission):
            raise ApiError(403, "forbidden", f"role {who.role.value} may not {permission.value.replace('_', ' ')}")
        return who
    return principal


# ----- the policy's values, for validating query parameters ----------------------------------------------------------

_policy: ContextVar[Policy] = ContextVar("policy")


async def bind_policy(request: Request) -> None:
    """An app-wide dependency: the app's policy for this request's validators (`one_of_policy`)."""
    _policy.set(api_state(request).policy)


def one_of_policy(kind: str) -> Callable[[str | None], str | None]:
    """A validator: the value must be one of the policy's tier or department ids (a literal_error, as an enum is)."""
    def check(value: str | None) -> str | None:
        policy = _policy.get()
        allowed = policy.tier_ids() if kind == "tier" else policy.department_ids()
        if value is not None and value not in allowed:
            quoted = [repr(v) for v in allowed]  # as pydantic words a Literal's
            expected = " or ".join([", ".join(quoted[:-1]), quoted[-1]]) if len(quoted) > 1 else "".join(quoted)
            raise PydanticCustomError("literal_error", "Input should be {expected}", {"expected": expected})
        return value
    return check
