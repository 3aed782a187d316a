"""The one client: the CLI and the HTTP API are thin layers over it.

It opens tickets idempotently (workflow id `ticket-<id>`, an id conflict
policy that returns the running ticket and a reuse policy that rejects a
second one), sends agent actions as Updates, reads state by Query (or by the
result of a closed ticket), lists through Temporal visibility, and maps
Temporal's errors onto the few our users need to tell apart.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, ValidationError
from temporalio.client import (
    Client,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowHistory,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.client import (
    WorkflowExecutionStatus as ExecStatus,
)
from temporalio.common import TypedSearchAttributes, WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from starter.client.errors import (
    ActionRejected,
    Busy,
    EscalationError,
    Forbidden,
    IdConflict,
    InvalidInput,
    OutOfScope,
    TemporalUnavailable,
    TicketNotFound,
    WorkflowTaskFailed,
)
from starter.client.handles import crowded, too_busy, while_crowded
from starter.client.histories import closed_chains, every_run, export_runs, matching_workflow_ids, runs_of_each

if TYPE_CHECKING:
    from starter.runtime.replay import ReplayAudit
    from starter.runtime.report import AuditReport
from starter.client import metrics as metrics_rules
from starter.client import metrics_source
from starter.client.incidents import Declared, IncidentClient, TicketIdsPage
from starter.client.macros import MacroRenderer
from starter.client.metrics import MetricsReport
from starter.client.migrations import MAX_MIGRATIONS_PER_CALL, MigrationReport, migrate_all
from starter.client.postmortems import PostmortemClient
from starter.client.principal import Permission, Principal
from starter.client.schedules import ScheduleClient
from starter.client.sponsorships import SponsorshipClient, SponsorshipPage
from starter.client.surveys import SurveyClient
from starter.runtime.sdk_private import started_new
from starter.runtime.settings import Settings, survey_secret
from workflows import ticket as core
from workflows.common import search_attributes as sa
from workflows.common.directory import Directory
from workflows.common.policy import Policy
from workflows.common.vocabulary import ID_PATTERN, PRIORITIES, Status
from workflows.incident import IncidentState, IncidentUpdate, LinkRequest, PostUpdate, ResolveIncident
from workflows.postmortem import ActionItemIn, AssignIn, CompleteIn, PostmortemState, ReviewIn, RootCauseIn
from workflows.sponsorship import CheckIn, ExitRequest, SponsorshipState
from workflows.survey import SurveyAnswer, SurveyState
from workflows.ticket import Ticket, figures, workflow_id
from workflows.ticket.routing import route
from workflows.ticket.views import DUPLICATE, ActionResult, TicketView, answer_lacks_ticket, as_action_result, ticket_view
from workflows.ticket.workflow import CLOCK_SKEW, TicketInput, TicketWorkflow, update_names

FILTER_VALUE = re.compile(r"^[A-Za-z0-9._:@-]{1,100}$")


class OpenResult(BaseModel):
    created: bool
    view: TicketView


class TicketSummary(BaseModel):
    id: str
    subject: str | None = None
    status: str | None
    tier: str | None
    priority: str | None
    department: str | None
    channel: str | None
    customer_id: str | None
    assignee: str | None
    escalation_count: int | None
    sla_breached: bool | None
    opened_at: datetime | None
    closed_at: datetime | None


class ReplyAccepted(BaseModel):
    """A customer reply handed over as a Signal (`wait=false`): the ticket applies it when its worker next runs."""

    ticket_id: str = Field(description="the ticket the reply went to")
    follow_up_ticket_id: str | None = Field(None, description="set when the ticket was closed: the new ticket, "
                                                              "linked to it, that the reply opened")


class ReplyResult(BaseModel):
    """A customer message relayed and waited for: the ticket that holds it now."""

    view: TicketView = Field(description="the ticket the message went to, or the follow-up it opened")
    follow_up_ticket_id: str | None = Field(None, description="set when the ticket was closed: the new ticket, "
                                                              "linked to it, that the message opened (or had opened)")
    duplicate: bool = Field(False, description="the message (same message_id) was already recorded: nothing changed")


class TicketPage(BaseModel):
    tickets: list[TicketSummary]
    next_cursor: str | None


DEFAULT_MAX_BACKDATE = timedelta(days=30)


def check_opened_at(opened_at: datetime, now: datetime, max_backdate: timedelta) -> None:
    """A ticket is opened now-ish: not in the future (beyond clock skew), not older than `max_backdate`."""
    if opened_at > now + CLOCK_SKEW:
        raise InvalidInput(f"opened_at {opened_at.isoformat()} is in the future (now {now.isoformat(timespec='seconds')})",
                           field="opened_at")
    if opened_at < now - max_backdate:
        raise InvalidInput(f"opened_at {opened_at.isoformat()} is more than {max_backdate.days} days in the past",
                           field="opened_at")


def same_request(existing: Ticket, requested: Ticket, *, compare_opened_at: bool = True) -> bool:
    skip = set() if compare_opened_at else {"opened_at"}
    return existing.model_dump(exclude=skip) == requested.model_dump(exclude=skip)


def no_answer(ticket_id: str, task_queue: str | None, timeout: timedelta) -> TemporalUnavailable:
    return TemporalUnavailable(
        f"ticket {ticket_id} did not answer within {timeout.total_seconds():g}s: is a worker polling task queue "
        f"{task_queue!r}? An action sent may or may not be applied: read the ticket before sending it again")


def is_closed(exc: RPCError) -> bool:
    """The server's answer to an Update or Signal sent to a ticket that has completed (or is completing)."""
    return exc.status == RPCStatusCode.NOT_FOUND and any(w in exc.message.lower() for w in ("completed", "closing"))


BUSY_RETRY_AFTER_S = 2


def not_ready(ticket_id: str, exc: RPCError) -> EscalationError | None:
    """Temporal answered but the ticket could not (the server's WorkflowNotReady, a failed precondition).

    "... due to Workflow Task in failed state": the ticket's workflow task has failed several times in a row (a bug
    in the code the worker runs, or a history it cannot replay); it will not answer until that is fixed. Anything
    else (a task in flight after a worker restart, buffered events, a full query buffer): it will answer shortly."""
    message = exc.message or ""
    if exc.status == RPCStatusCode.FAILED_PRECONDITION and "failed state" in message.lower():
        return WorkflowTaskFailed(f"ticket {ticket_id} cannot answer: its workflow task keeps failing ({message}); "
                                  "the worker's log names the error")
    if exc.status == RPCStatusCode.FAILED_PRECONDITION or (
            exc.status == RPCStatusCode.RESOURCE_EXHAUSTED and "query buffer" in message.lower()):
        return Busy(f"ticket {ticket_id} is busy ({message}); try again in {BUSY_RETRY_AFTER_S}s",
                    retry_after=BUSY_RETRY_AFTER_S)
    return None


@asynccontextmanager
async def _temporal_errors(ticket_id: str | None = None, task_queue: str | None = None,
                           timeout: timedelta = timedelta(seconds=10)) -> AsyncIterator[None]:
    """Temporal's errors as the few our users tell apart; never a raw RPC error."""
    try:
        yield
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND and ticket_id is not None:
            raise TicketNotFound(f"no ticket with id {ticket_id!r}") from None
        if exc.status in (RPCStatusCode.CANCELLED, RPCStatusCode.DEADLINE_EXCEEDED) and ticket_id is not None:
            raise no_answer(ticket_id, task_queue, timeout) from None
        if ticket_id is not None and (refused := not_ready(ticket_id, exc)) is not None:
            raise refused from None
        if crowded(exc):
            raise too_busy(exc) from None
        if exc.status == RPCStatusCode.INVALID_ARGUMENT and "search attribute" in exc.message:
            raise TemporalUnavailable(f"Temporal does not know our search attributes ({exc.message}); "
                                      "`make run` registers them, docker-compose's temporal-setup too") from None
        raise TemporalUnavailable(f"Temporal refused or failed the request: {exc.message}") from None


DEFAULT_RPC_TIMEOUT = timedelta(seconds=10)
# A worker heartbeats every 3 s (worker.py): three missed in a row mean it is gone (/readyz).
WORKER_HEARTBEAT_WINDOW = timedelta(seconds=10)


def _environment_survey_secret() -> str:
    return survey_secret()


PERSON_PREFIXES = ("agent", "supervisor", "admin", "person")
MAX_REPLAYS_PER_CALL = 100  # workflows per replay over the API (each ~0.1 s of the API process's CPU)


class EscalationClient:
    """Every rule that runs outside a workflow and depends on who acts (scope, the executive tier) is checked here,
    against the `principal` each reading or acting method takes: the API passes its token's, the CLI an operator."""

    def __init__(self, client: Client, policy: Policy, task_queue: str,
                 max_backdate: timedelta = DEFAULT_MAX_BACKDATE, rpc_timeout: timedelta = DEFAULT_RPC_TIMEOUT,
                 survey_secret: Callable[[], str] | None = None, macros: MacroRenderer | None = None,
                 directory: Callable[[], Directory] | None = None) -> None:
        self.macros = macros
        self.directory = directory  # the people a commander or escalation manager must be one of (None: unchecked)
        self.surveys = SurveyClient(client, rpc_timeout, survey_secret or _environment_survey_secret)
        self.sponsorships = SponsorshipClient(client, policy, task_queue, rpc_timeout)
        self.incidents = IncidentClient(client, policy, task_queue, rpc_timeout)
        self.schedules = ScheduleClient(client, task_queue, rpc_timeout)
        self.postmortems = PostmortemClient(client, rpc_timeout, self.incidents.show,
                                            frozenset(policy.postmortems.severities))
        self.temporal = client
        self.policy = policy
        self.task_queue = task_queue
        self.max_backdate = max_backdate
        self.rpc_timeout = rpc_timeout  # every call to Temporal; the "did not answer" messages name it
        self.executive_tiers = frozenset(t.id for t in policy.tiers if not t.automatic_entry)
        self._replaying = asyncio.Semaphore(1)  # replays run on the caller's event loop: one at a time

    @classmethod
    async def connect(cls, policy: Policy | None = None, *, address: str | None = None, namespace: str | None = None,
                      timeout: float | None = None, settings: Settings | None = None) -> EscalationClient:
        """Connect to Temporal; address, namespace and the per-call timeout (seconds) default to `settings` (default:
        the environment's), as do the policy, the task queue and the backdating limit."""
        from starter.runtime.directory_file import directory_reader
        from starter.runtime.directory_file import macros as load_macros
        from starter.runtime.policy_file import load_policy
        from starter.runtime.settings import settings as environment_settings
        from starter.runtime.temporal import connect

        s = settings or environment_settings()
        address = address or s.temporal_address
        seconds = timeout if timeout is not None else s.escalation_api_timeout_s
        try:
            client = await asyncio.wait_for(connect(address, namespace or s.temporal_namespace), seconds)
        except (RuntimeError, OSError, TimeoutError) as exc:  # the core SDK reports connection failures as RuntimeError
            text = str(exc) or f"no answer within {seconds:g}s"
            reason = "connection refused" if "refused" in text.lower() else text
            raise TemporalUnavailable(f"cannot reach Temporal at {address} ({reason}); is it running? "
                                      "`make run` starts one, or set TEMPORAL_ADDRESS") from None
        return cls(client, policy or load_policy(s.escalation_policy), s.escalation_task_queue,
                   timedelta(days=s.escalation_max_backdate_days), timedelta(seconds=seconds),
                   lambda: survey_secret(s), load_macros(s), directory_reader(s))

    def handle(self, ticket_id: str) -> WorkflowHandle[Any, core.TicketState]:
        if not re.match(ID_PATTERN, ticket_id):
            raise InvalidInput(f"ticket id {ticket_id!r} must be 1-100 letters, digits, '.', '_' or '-'")
        return self.temporal.get_workflow_handle_for(TicketWorkflow.run, workflow_id(ticket_id))  # type: ignore[arg-type]

    def _errors(self, ticket_id: str | None = None) -> AbstractAsyncContextManager[None]:
        return _temporal_errors(ticket_id, self.task_queue, self.rpc_timeout)

    # ----- opening ---------------------------------------------------------------

    async def open(self, ticket: Ticket, *, now: datetime | None = None, opened_at_defaulted: bool = False,
                   wait_for_worker: bool = True, actor: str | None = None,
                   handoff: core.Handoff | None = None) -> OpenResult:
        """Open a ticket, or return the one with that id (running or closed) if the request is the same.

        `opened_at_defaulted`: the caller filled opened_at with "now", so a retry differs only there
        and still counts as the same request. `wait_for_worker=False`: for a new ticket, compute the view
        with the same pure functions the workflow runs on its first task (`open_ticket`, `catch_up`) from
        the same policy snapshot, so the caller waits only for the server to accept the start.
        `actor`: who opens it (None: `system:intake`); `handoff`: the bot that handed the customer over."""
        now = now or datetime.now(UTC)
        check_opened_at(ticket.opened_at, now, self.max_backdate)
        opened = core.open_ticket(ticket, self.policy, now, opened_by=actor, handoff=handoff)  # as the first task will
        created = await self._start(ticket, opened.state, actor=actor, handoff=handoff)
        incident = await self._join_incident(ticket) if created else None
        if created and not wait_for_worker:
            view = ticket_view(core.catch_up(opened.state, now, self.policy).state, now)
            return OpenResult(created=True, view=view.model_copy(update={"incident_id": incident or view.incident_id}))
        state = await self._state(ticket.id)
        if not created and not same_request(state.ticket, ticket, compare_opened_at=not opened_at_defaulted):
            raise IdConflict(f"ticket {ticket.id} exists with a different request; use another id")
        view = ticket_view(state, now)
        if not created and self._may_rejoin(state):  # a retried open whose first try failed before joining
            incident = await self._join_incident(ticket)
            view = view.model_copy(update={"incident_id": incident or view.incident_id})
        return OpenResult(created=created, view=view)

    @staticmethod
    def _may_rejoin(state: core.TicketState) -> bool:
        """Not in an incident, open, and never taken out of one (an unlink is the commander's decision)."""
        return (state.incident_id is None and not state.closed
                and not any(e.action == "incident_unlinked" for e in state.timeline))

    async def _join_incident(self, ticket: Ticket) -> str | None:
        """A routing rule may name a service (`then: {incident: ...}`): a new matching ticket joins that service's
        open incident, found by the id derived from the service (no visibility query: it lags). None: no rule, or no
        open incident for the service."""
        service = route(ticket, self.policy).incident
        if service is None:
            return None
        async with self._errors():
            joined = await self.incidents.join(service, ticket.id, "system:routing")
        return service if joined else None

    async def _start(self, ticket: Ticket, opened: core.TicketState, *, actor: str | None = None,
                     handoff: core.Handoff | None = None) -> bool:
        """Start the ticket's workflow unless one with its id exists (running or closed); True if it was new."""
        inp = TicketInput(ticket=ticket, policy=self.policy, opened_by=actor, handoff=handoff)
        async with self._errors():
            try:
                handle = await self.temporal.start_workflow(
                    TicketWorkflow.run, inp, id=workflow_id(ticket.id),
                    task_queue=self.task_queue, id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                    id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                    # listable at once, before a worker runs the first task
                    search_attributes=TypedSearchAttributes(sa.pairs({**core.search_attributes(opened),
                                                                        **figures.search_attributes(opened)})),
                    memo=core.list_memo(ticket), rpc_timeout=self.rpc_timeout,
                )
            except WorkflowAlreadyStartedError:
                return False  # closed ticket: reuse rejected
        # `started` is False when USE_EXISTING returned a running ticket
        return started_new(handle)

    async def _start_follow_up(self, closed: core.TicketState, reply: core.CustomerReply) -> tuple[Ticket, bool]:
        """Start the ticket, linked to the closed one, that a customer's message after closing opens. Its id comes
        from the message, so a redelivery finds it started (False) and opens nothing new. No worker is needed."""
        now = datetime.now(UTC)
        follow = core.follow_up_ticket(closed, reply, now)
        return follow, await self._start(follow, core.open_ticket(follow, self.policy, now).state)

    async def open_follow_up(self, closed: core.TicketState, reply: core.CustomerReply) -> OpenResult:
        """The follow-up of a closed ticket (see `_start_follow_up`), as it is once its worker has opened it."""
        follow, created = await self._start_follow_up(closed, reply)
        return OpenResult(created=created, view=ticket_view(await self._state(follow.id), datetime.now(UTC)))

    # ----- reading ---------------------------------------------------------------

    async def _state(self, ticket_id: str) -> core.TicketState:
        """The ticket's state whoever asks: for the client's own rules, never handed out unchecked."""
        handle = self.handle(ticket_id)
        async with self._errors(ticket_id):
            desc = await handle.describe(rpc_timeout=self.rpc_timeout)
            if desc.status in (ExecStatus.COMPLETED,):
                return await handle.result(rpc_timeout=self.rpc_timeout)
            if desc.status != ExecStatus.RUNNING:
                raise TicketNotFound(f"ticket {ticket_id} ended abnormally ({desc.status.name if desc.status else '?'})")
            try:
                return await handle.query(TicketWorkflow.current_state, rpc_timeout=self.rpc_timeout)
            except WorkflowQueryFailedError as exc:  # the worker answered: the code it runs failed the query
                raise WorkflowTaskFailed(f"ticket {ticket_id} cannot be read: its query failed in the worker ({exc}); "
                                         "the worker's log names the error") from None

    def check_scope(self, state: core.TicketState, principal: Principal) -> None:
        if not principal.in_scope(state.tier, state.department):
            raise OutOfScope(f"ticket {state.ticket.id} (tier {state.tier}, department {state.department}) "
                             f"is outside the scope of {principal.actor}")

    async def state(self, ticket_id: str, *, principal: Principal) -> core.TicketState:
        """The ticket's state, if it is within the principal's scope (else OutOfScope)."""
        state = await self._state(ticket_id)
        self.check_scope(state, principal)
        return state

    async def view(self, ticket_id: str, *, principal: Principal, now: datetime | None = None) -> TicketView:
        """The ticket as a person sees it; a closed one with its satisfaction survey (a workflow of its own)."""
        state = await self.state(ticket_id, principal=principal)
        view = ticket_view(state, now or datetime.now(UTC))
        if state.closed:
            async with self._errors():
                view.survey = await self.surveys.of_ticket(ticket_id)
        return view.model_copy(update={"postmortem_id": state.postmortem_id})

    # ----- post-mortems ----------------------------------------------------------

    async def postmortem(self, postmortem_id: str, *, principal: Principal) -> PostmortemState:
        """A scoped agent reads a ticket's post-mortem only while the ticket is in its scope (its draft and
        timeline tell the ticket's story)."""
        async with self._errors():
            pm = await self.postmortems.show(await self.postmortems.resolve(postmortem_id))
        if principal.scoped and pm.kind == "ticket":
            await self.state(pm.subject_id, principal=principal)  # OutOfScope otherwise
        return pm

    async def postmortem_step(self, postmortem_id: str, step: str, *, principal: Principal, text: str = "",
                              factors: Sequence[str] = (), owner: str | None = None, number: int | None = None,
                              due_in_days: int | None = None) -> PostmortemState:
        """One step of a post-mortem: review, root_cause, add_action_item, complete_action_item, assign (another
        owner), complete (the owner, supervisors and admins; the workflow refuses a step its state does not allow)."""
        async with self._errors():
            postmortem_id = await self.postmortems.resolve(postmortem_id)
        if not principal.can(Permission.escalate_executive) and not principal.is_person(
                (await self.postmortem(postmortem_id, principal=principal)).owner):
            raise Forbidden(f"post-mortem steps need its owner, a supervisor or an admin ({principal.actor})")
        by = principal.actor
        args: dict[str, BaseModel | int] = {}
        try:
            if step == "review":
                args[step] = ReviewIn(by=by, notes=text)
            elif step == "root_cause":
                args[step] = RootCauseIn(by=by, root_cause=text, contributing_factors=list(factors))
            elif step == "add_action_item":
                self.check_person(owner or by, "owner")  # reminded until done: someone the directory can reach
                args[step] = ActionItemIn(by=by, text=text, owner=owner or by, due_in_days=due_in_days)
            elif step == "complete_action_item":
                if number is None:
                    raise InvalidInput("which action item: its number", field="number")
                args[step] = number
            elif step == "complete":
                args[step] = CompleteIn(by=by, summary=text)
            elif step == "assign":
                if not owner:
                    raise InvalidInput("assign to whom: an owner", field="owner")
                self.check_person(owner, "owner")  # reminded until it completes
                args[step] = AssignIn(by=by, owner=owner)
            else:
                raise InvalidInput(f"no step {step!r}; the steps: review, root_cause, add_action_item, "
                                   "complete_action_item, assign, complete", field="step")
        except ValidationError as exc:
            raise InvalidInput(f"{step}: {exc.errors()[0]['msg']} ({'.'.join(map(str, exc.errors()[0]['loc']))})",
                               field=str(exc.errors()[0]["loc"][0])) from None
        async with self._errors():
            state = await self.postmortems.act(postmortem_id, step, args[step])
            return await self.postmortems.published(state) if step == "complete" else state

    # ----- incidents -------------------------------------------------------------

    async def declare_incident(self, service: str, title: str, severity: str, commander: str, *,
                               principal: Principal) -> Declared:
        """Declare an outage of `service` (supervisors, admins, a monitoring token for its services); a second
        declare answers with the open one."""
        self._require(principal, Permission.declare_incident, "declare an incident")
        self._watching(principal, service)
        self.check_person(commander, "commander")
        async with self._errors():
            return await self.incidents.declare(service, title, severity, commander, principal.actor)

    async def incident(self, service: str, *, principal: Principal) -> IncidentState:
        self._watching(principal, service)
        async with self._errors():
            return await self.incidents.show(service)

    async def incident_tickets(self, service: str, *, principal: Principal, page_size: int = 100,
                               cursor: str | None = None) -> TicketIdsPage:
        self._watching(principal, service)
        async with self._errors():
            return await self.incidents.tickets(service, page_size=page_size, cursor=cursor)

    async def list_incidents(self, *, principal: Principal, limit: int = 50) -> list[IncidentState]:
        """The newest incidents (visibility, then each one's state), those of the principal's services."""
        ids = await self.workflow_ids("WorkflowType = 'IncidentWorkflow'", limit)
        services = [i.removeprefix("incident-") for i in ids]
        return list(await asyncio.gather(*(self.incident(svc, principal=principal) for svc in services
                                           if principal.watches(svc))))

    async def list_postmortems(self, *, principal: Principal, limit: int = 50) -> list[PostmortemState]:
        """The newest post-mortems (visibility, then each one's state); a scoped agent's, those of its tickets."""
        ids = await self.workflow_ids("WorkflowType = 'PostmortemWorkflow'", limit)

        async def read(pm_id: str) -> PostmortemState | None:
            try:
                return await self.postmortem(pm_id, principal=principal)
            except (OutOfScope, TicketNotFound):
                return None
        return [pm for pm in await asyncio.gather(*(read(i) for i in ids)) if pm is not None]

    @staticmethod
    def _watching(principal: Principal, service: str) -> None:
        if not principal.watches(service):
            raise Forbidden(f"{principal.actor} watches {', '.join(sorted(principal.services or ()))}, "
                            f"not service {service!r}")

    async def link_to_incident(self, service: str, tickets: Sequence[str], *, principal: Principal,
                               unlink: bool = False) -> list[str]:
        """Link (or unlink) tickets; a scoped agent only tickets within their scope (each is read first). Linking a
        ticket that does not exist is refused (TicketNotFound naming them) before the incident is asked: it would
        be listed, never told, and a later link of the same id would change nothing."""
        if principal.scoped:
            for ticket_id in tickets:
                await self.state(ticket_id, principal=principal)
        elif not unlink:
            missing = await self._missing(tickets)
            if missing:
                raise TicketNotFound(f"no ticket with id {', '.join(repr(t) for t in missing[:10])}"
                                     + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
                                     + "; nothing was linked")
        request = LinkRequest(tickets=list(tickets), by=principal.actor)
        async with self._errors():
            if unlink:
                return await self.incidents.unlink(service, request)
            return await self.incidents.link(service, request)

    async def _missing(self, tickets: Sequence[str]) -> list[str]:
        """The ids among `tickets` of no ticket (running or closed), asked 20 at a time."""
        sem = asyncio.Semaphore(20)

        async def gone(ticket_id: str) -> bool:
            async with sem, self._errors():
                try:
                    await self.handle(ticket_id).describe(rpc_timeout=self.rpc_timeout)
                except RPCError as exc:
                    if exc.status == RPCStatusCode.NOT_FOUND:
                        return True
                    raise
            return False
        found = await asyncio.gather(*(gone(t) for t in tickets))
        return [t for t, g in zip(tickets, found, strict=True) if g]

    async def _check_commands(self, service: str, principal: Principal, what: str) -> None:
        """Updates and resolution: the commander, supervisors and admins."""
        if principal.can(Permission.escalate_executive):
            return
        if not principal.is_person((await self.incident(service, principal=principal)).commander):
            raise Forbidden(f"to {what} needs the incident's commander, a supervisor or an admin "
                            f"({principal.actor} is {principal.role.value})")

    async def post_incident_update(self, service: str, text: str, *, principal: Principal) -> IncidentUpdate:
        await self._check_commands(service, principal, "post an incident update")
        async with self._errors():
            return await self.incidents.post_update(service, PostUpdate(text=text, by=principal.actor))

    async def resolve_incident(self, service: str, summary: str, *, principal: Principal,
                               resolution: str = "fix") -> IncidentState:
        await self._check_commands(service, principal, "resolve an incident")
        async with self._errors():
            return await self.incidents.resolve(service, ResolveIncident(summary=summary, resolution=resolution,  # type: ignore[arg-type]
                                                                         by=principal.actor))

    # ----- sponsorships ----------------------------------------------------------

    async def sponsorship(self, account_id: str, *, principal: Principal) -> SponsorshipState:
        self._unscoped(principal)
        async with self._errors():
            return await self.sponsorships.show(account_id)

    async def list_sponsorships(self, *, principal: Principal, active: bool | None = None, page_size: int = 50,
                                cursor: str | None = None) -> SponsorshipPage:
        self._unscoped(principal)
        async with self._errors():
            return await self.sponsorships.list(active=active, page_size=page_size, cursor=cursor)

    async def enrol_sponsorship(self, account_id: str, reason: str, *, principal: Principal,
                                request_key: str | None = None) -> SponsorshipState:
        """A person enrols an account (supervisors and admins, as for entering the executive tier)."""
        self._require(principal, Permission.escalate_executive, "enrol an account in the sponsorship program")
        async with self._errors():
            return await self.sponsorships.enrol(account_id, reason, principal.actor, request_key=request_key)

    async def sponsorship_check_in(self, account_id: str, notes: str, *, principal: Principal) -> SponsorshipState:
        self._require(principal, Permission.escalate_executive, "record a sponsorship check-in")
        async with self._errors():
            return await self.sponsorships.check_in(account_id, CheckIn(by=principal.actor, notes=notes))

    async def exit_sponsorship(self, account_id: str, reason: str, *, principal: Principal) -> SponsorshipState:
        self._require(principal, Permission.escalate_executive, "end a sponsorship")
        async with self._errors():
            return await self.sponsorships.exit(account_id, ExitRequest(by=principal.actor, reason=reason))

    @staticmethod
    def _unscoped(principal: Principal) -> None:
        """A sponsorship spans the account's tickets in every tier and department: not for a scoped agent."""
        if principal.scoped:
            raise OutOfScope(f"sponsorships span every tier and department; {principal.actor} is scoped")

    @staticmethod
    def _require(principal: Principal, permission: Permission, what: str) -> None:
        if not principal.can(permission):
            raise Forbidden(f"to {what} needs a supervisor or admin ({principal.actor} is {principal.role.value})")

    # ----- surveys ---------------------------------------------------------------

    async def survey(self, ticket_id: str, *, principal: Principal) -> SurveyState | None:
        """The ticket's satisfaction survey (None: none was sent), if the ticket is within the principal's scope."""
        await self.state(ticket_id, principal=principal)
        async with self._errors():
            return await self.surveys.of_ticket(ticket_id)

    async def survey_by_link(self, token: str) -> SurveyState:
        """The survey a signed link names (the link is the credential); reading it changes nothing."""
        async with self._errors():
            return await self.surveys.by_link(token)

    async def answer_survey(self, token: str, answer: SurveyAnswer) -> SurveyState:
        """The customer's answer through the signed link: once, before it expires."""
        async with self._errors():
            return await self.surveys.answer(token, answer)

    async def timeline(self, ticket_id: str, *, principal: Principal) -> list[core.TimelineEntry]:
        """Who did what when (the entries the state keeps), if the ticket is within the principal's scope."""
        return (await self.state(ticket_id, principal=principal)).timeline

    async def history_json(self, ticket_id: str, *, principal: Principal) -> dict[str, Any]:
        """The full event history (every run), the auditor's export."""
        if principal.scoped:
            await self.state(ticket_id, principal=principal)
        async with self._errors(ticket_id):
            runs = await every_run(self.temporal, workflow_id(ticket_id), self.rpc_timeout)
        return export_runs(workflow_id(ticket_id), runs)

    async def report(self, ticket_id: str, *, principal: Principal) -> AuditReport:
        """The ticket's audit report from its history alone (every run replayed, its decisions recomputed): works for
        completed and terminated tickets, with no worker. One report or replay at a time per process (CPU-bound)."""
        from starter.runtime.report import build_report  # here: the report's modules import the client's

        if principal.scoped:
            await self.state(ticket_id, principal=principal)
        wid = workflow_id(ticket_id)
        async with self._errors(ticket_id):
            runs = await every_run(self.temporal, wid, self.rpc_timeout)
        async with self._replaying:
            return await build_report(wid, [(f"server:{wid}", h) for h in runs])

    async def closed_chains(self, since: datetime, until: datetime | None, limit: int) -> list[tuple[str, str]]:
        """(workflow id, last run id) of each chain of runs (every type) that closed in [since, until), for the
        archive."""
        return await closed_chains(self.temporal, since, until, limit, self.rpc_timeout)

    async def workflow_export(self, workflow_id: str, last_run_id: str | None = None) -> dict[str, Any]:
        """Every run of any workflow (the auditor's archive; `last_run_id`: one execution of a reused id), in
        `ticket history`'s format."""
        async with self._errors():
            return export_runs(workflow_id, await every_run(self.temporal, workflow_id, self.rpc_timeout, last_run_id))

    async def workflow_ids(self, query: str, limit: int) -> list[str]:
        """The workflows (any type) a visibility query matches, for the auditor's replay."""
        return await matching_workflow_ids(self.temporal, query, limit, self.rpc_timeout)

    async def server_histories(self, workflow_ids: list[str]) -> AsyncIterator[tuple[str, WorkflowHistory | ValueError]]:
        """Every run of each workflow, fetched as the caller goes (the replay's sources); a workflow the server does
        not have is one unreadable entry naming it."""
        async for wid, runs in runs_of_each(self.temporal, workflow_ids, self.rpc_timeout):
            if isinstance(runs, TicketNotFound):
                yield wid, ValueError(runs.message)
                continue
            for history in runs:
                yield "server", history

    async def replay(self, *, principal: Principal, tickets: Sequence[str] = (), query: str | None = None,
                     limit: int = MAX_REPLAYS_PER_CALL) -> ReplayAudit:
        """Replay every run of the tickets named and of the workflows the query matches (at most `limit` in all)
        against the code in hand: the auditor's bounded replay over the API (`audit replay` for more). A query
        reaches every workflow type, so a principal scoped to some tiers or departments may not replay."""
        from starter.runtime.replay import replay_all  # here: the replayer's module imports the client's errors

        if principal.scoped:
            raise Forbidden(f"{principal.actor} is scoped to some tiers or departments; replays are for auditors "
                            "and admins")

        ids = list(dict.fromkeys(workflow_id(t) for t in tickets))
        if query:
            ids += [w for w in await self.workflow_ids(query, limit + 1) if w not in ids]  # one more: too many?
        if not ids:
            raise InvalidInput("name tickets or a query that matches a workflow; nothing to replay", field="query")
        if len(ids) > limit:
            raise InvalidInput(f"{len(ids)} workflows to replay; at most {limit} in one call "
                               "(`escalation audit replay` has no such bound)", field="tickets")
        async with self._replaying:
            return await replay_all(self.server_histories(ids))

    # ----- moving tickets to a new policy version ------------------------------------

    async def migrate_policy(self, policy: Policy, *, principal: Principal, tickets: Sequence[str] = (),
                             query: str | None = None, dry_run: bool = False, reason: str = "",
                             limit: int = MAX_MIGRATIONS_PER_CALL) -> MigrationReport:
        """Move the open tickets named, and the running tickets a visibility query matches, to `policy` (admins):
        the dry run shows each one's due times before and after and changes nothing. One result per ticket."""
        if not principal.can(Permission.policy_migrate):
            raise Forbidden(f"moving tickets to another policy needs an admin ({principal.actor} is "
                            f"{principal.role.value})")
        ids = list(dict.fromkeys(tickets))
        for ticket_id in ids:
            self.handle(ticket_id)  # a malformed id is bad input, before anything is read
        if query:
            scope = f"WorkflowType = 'Ticket' AND ExecutionStatus = 'Running' AND ({query})"
            async with self._errors():
                matched = await self.workflow_ids(scope, limit + 1)  # one more: too many?
            ids += [t for w in matched if (t := w.removeprefix("ticket-")) not in ids]
        if not ids:
            raise InvalidInput("name tickets or a query that matches an open ticket; nothing to move", field="query")
        if len(ids) > limit:
            raise InvalidInput(f"{len(ids)} tickets to move; at most {limit} in one call (narrow the query)",
                               field="tickets")
        return await migrate_all(self, ids, policy, principal.actor, dry_run=dry_run, reason=reason)

    async def snapshot(self, ticket_id: str) -> tuple[core.TicketState, Policy | None]:
        """The ticket's state and the policy snapshot it runs (None: its workflow has completed)."""
        state = await self._state(ticket_id)
        if state.closed:
            return state, None
        async with self._errors(ticket_id):
            try:
                policy = await self.handle(ticket_id).query(TicketWorkflow.policy_snapshot, rpc_timeout=self.rpc_timeout)
            except WorkflowQueryFailedError as exc:
                raise WorkflowTaskFailed(f"ticket {ticket_id} cannot be read: its query failed in the worker ({exc})") \
                    from None
        return state, policy

    async def send_migration(self, ticket_id: str, inp: core.MigratePolicy) -> core.MigrationPlan:
        """The `migrate_policy` Update; its validator refuses (writing nothing) what the core refuses."""
        handle = self.handle(ticket_id)
        async with self._errors(ticket_id), self._update_errors(ticket_id):
            return await while_crowded(lambda: handle.execute_update(
                TicketWorkflow.migrate_policy, inp, rpc_timeout=self.rpc_timeout))

    @asynccontextmanager
    async def _update_errors(self, ticket_id: str) -> AsyncIterator[None]:
        """An Update's failures in the client's words: the validator's or handler's refusal (ActionRejected with
        its code), a closed ticket, no answer in time (it may or may not be applied)."""
        try:
            yield
        except WorkflowUpdateFailedError as exc:
            if isinstance(exc.cause, ApplicationError):
                raise ActionRejected(exc.cause.type or "rejected", exc.cause.message) from None
            raise
        except RPCError as exc:
            if is_closed(exc):
                raise ActionRejected("ticket_closed", f"ticket {ticket_id} is closed") from None
            raise
        except WorkflowUpdateRPCTimeoutOrCancelledError:
            raise no_answer(ticket_id, self.task_queue, self.rpc_timeout) from None

    def _known_value(self, attr: str, value: str) -> str:
        """A filter on a closed vocabulary must use one of its words: a typo is an error, not an empty list."""
        allowed = {"TicketStatus": [x.value for x in Status], "TicketTier": self.policy.tier_ids(),
                   "TicketPriority": list(PRIORITIES), "TicketDepartment": self.policy.department_ids()}.get(attr)
        if allowed is not None and value not in allowed:
            field = FILTER_FIELDS[attr]
            raise InvalidInput(f"{field} {value!r} is not one of: {', '.join(allowed)}", field=field)
        return _filter_value(attr, value)

    # ----- acting ---------------------------------------------------------------

    def check_may_escalate(self, state: core.TicketState, event: core.Escalate, principal: Principal) -> None:
        """Escalating into a tier only a person may enter (automatic_entry false: executives) needs
        Permission.escalate_executive."""
        if principal.can(Permission.escalate_executive):
            return
        target = event.to_tier or (self.policy.next_tier(state.tier) if state.tier in self.policy.tier_ids() else None)
        if target in self.executive_tiers:
            raise Forbidden(f"escalating into {target} needs a supervisor or admin "
                            f"({principal.actor} is {principal.role.value})")

    async def _check_rules(self, ticket_id: str, event: core.Event, principal: Principal) -> None:
        """The rules that depend on who acts; the ticket is read only when one of them needs it."""
        needs_executive = isinstance(event, core.Escalate) and not principal.can(Permission.escalate_executive)
        if not (principal.scoped or needs_executive):
            return
        state = await self.state(ticket_id, principal=principal)
        if isinstance(event, core.Escalate):
            self.check_may_escalate(state, event, principal)

    def check_person(self, who: str, field: str) -> None:
        """`who` (`mia` or `agent:mia`) must be a person of the directory, when there is one: someone to remind."""
        prefix, _, pid = who.partition(":") if ":" in who else ("", "", who)  # as Principal.is_person reads it
        if prefix and prefix not in PERSON_PREFIXES:
            raise InvalidInput(f"{field} {who!r} is not a person: a directory id (`mia`) or an actor "
                               f"({', '.join(p + ':mia' for p in PERSON_PREFIXES)})", field=field)
        people = self.directory().people if self.directory is not None else []
        if people and not any(p.id == pid for p in people):
            known = sorted(p.id for p in people)
            raise InvalidInput(f"{field} {who!r} is not a person of the directory; its people: "
                               f"{', '.join(known[:30])}{' ...' if len(known) > 30 else ''}", field=field)

    async def perform(self, ticket_id: str, event: core.Event, *, principal: Principal) -> TicketView:
        """Send an agent action as an Update, if the principal may; return the ticket as the Update answered it
        (with only the timeline entries it added)."""
        await self._check_rules(ticket_id, event, principal)
        if isinstance(event, core.AssignManager):  # after the caller's rights: its answer lists the directory
            self.check_person(event.manager, "manager")
        return (await self._update(ticket_id, self._as_permitted(event, principal))).ticket

    # ----- replies with macros -----------------------------------------------------

    def macro_names(self) -> list[str]:
        return self.macros.names() if self.macros is not None else []

    async def reply(self, ticket_id: str, *, principal: Principal, text: str | None = None,
                    macro: str | None = None) -> TicketView:
        """A customer-facing reply (a public note: the customer is told, the customer_update clock restarts), its
        text given or rendered from a macro for this ticket and this agent."""
        if (text is None) == (macro is None):
            raise InvalidInput("a reply takes either text or a macro (one of them)", field="macro")
        if macro is not None:
            state = await self.state(ticket_id, principal=principal)
            text = self._render_macro(macro, state, principal)
        assert text is not None
        return await self.perform(ticket_id, core.AddNote(actor=principal.actor, text=text, public=True),
                                  principal=principal)

    def _render_macro(self, name: str, state: core.TicketState, principal: Principal) -> str:
        if self.macros is None:
            raise InvalidInput("no macros are configured for this client", field="macro")
        tier_name = next((t.name for t in self.policy.tiers if t.id == state.tier), state.tier)
        try:
            return self.macros.render(name, state, principal.actor, tier_name)
        except ValueError as exc:
            raise InvalidInput(str(exc), field="macro") from None

    @staticmethod
    def _as_permitted(event: core.Event, principal: Principal) -> core.Event:
        """An executive escalation by someone who may not enter the executive tier is a request: the escalation
        manager is told (the ticket stays where it is)."""
        if isinstance(event, core.EscalateToExecutive) and not principal.can(Permission.escalate_executive):
            return event.model_copy(update={"request_only": True})
        return event

    async def _update(self, ticket_id: str, event: core.Event) -> ActionResult:
        """An Update that races the ticket's closing is aborted with NOT_FOUND ("workflow update was aborted by
        closing workflow"): told apart from a ticket that does not exist by reading it, and sent once more if the
        ticket is still open."""
        for _attempt in (1, 2):
            try:
                return await self._execute_update(ticket_id, event)
            except TicketNotFound:
                if (await self._state(ticket_id)).closed:  # TicketNotFound again if it truly does not exist
                    raise ActionRejected("ticket_closed",
                                         f"ticket {ticket_id} is closed; open a new ticket instead") from None
        raise ActionRejected("rejected", f"ticket {ticket_id} changed while {event.type} was being applied; retry")

    async def _execute_update(self, ticket_id: str, event: core.Event) -> ActionResult:
        name = _action_name(event)
        handle = self.handle(ticket_id)
        async with self._errors(ticket_id), self._update_errors(ticket_id):
            try:
                # Decoded by shape, not by type: a worker of before answers with the state (rolling deploy).
                answer = await while_crowded(lambda: handle.execute_update(
                    update_names()[name], event, rpc_timeout=self.rpc_timeout, result_type=dict))
            except WorkflowFailureError as exc:  # pragma: no cover - defensive
                raise ActionRejected("rejected", str(exc)) from None
        # A worker of before the answer carried the ticket (rolling deploy): the ticket is read to show it.
        state = await self._state(ticket_id) if answer_lacks_ticket(answer) else None
        return as_action_result(answer, name, datetime.now(UTC), state)

    async def relay_customer_reply(self, ticket_id: str, reply: core.CustomerReply, *,
                                   principal: Principal) -> ReplyResult:
        """A customer message: recorded on its ticket; on a closed ticket it opens a new one linked to the old
        (follow_up_ticket_id). A message already recorded (same message_id) is answered as a duplicate: the ticket
        itself remembers the ids of its latest replies (the workflow answers `duplicate`), and a closed ticket's
        follow-up has an id derived from the message, so a redelivery finds it started."""
        if principal.scoped:
            await self.state(ticket_id, principal=principal)  # out of scope: refused before anything is sent
        try:
            result = await self._update(ticket_id, reply)
            return ReplyResult(view=result.ticket, duplicate=result.outcome == DUPLICATE)
        except ActionRejected as exc:
            if exc.code != "ticket_closed":
                raise
        follow = await self.open_follow_up(await self._state(ticket_id), reply)
        return ReplyResult(view=follow.view, follow_up_ticket_id=follow.view.id, duplicate=not follow.created)

    async def signal_customer_reply(self, ticket_id: str, reply: core.CustomerReply, *,
                                    principal: Principal) -> ReplyAccepted:
        """Fire and forget: the message as a Signal, which the ticket applies when its worker next runs; nothing
        waits for a worker. The answer names the follow-up ticket when the ticket had completed (one closed but
        still finishing opens the follow-up itself). A Signal cannot be refused:
        one the ticket cannot apply is recorded in the worker's log."""
        if principal.scoped:
            await self.state(ticket_id, principal=principal)
        handle = self.handle(ticket_id)
        async with self._errors(ticket_id):
            try:
                await handle.signal(TicketWorkflow.customer_replied, reply, rpc_timeout=self.rpc_timeout)
                return ReplyAccepted(ticket_id=ticket_id)
            except RPCError as exc:
                if not is_closed(exc):
                    raise
        # The closed ticket is read from its recorded result and the follow-up is only started: no worker is needed.
        follow, _created = await self._start_follow_up(await self._state(ticket_id), reply)
        return ReplyAccepted(ticket_id=ticket_id, follow_up_ticket_id=follow.id)

    # ----- listing ---------------------------------------------------------------

    async def list(self, *, principal: Principal, status: str | None = None, tier: str | None = None,
                   priority: str | None = None, department: str | None = None, customer_id: str | None = None,
                   breached: bool | None = None, assignee: str | None = None, page_size: int = 50,
                   cursor: str | None = None) -> TicketPage:
        """Tickets through Temporal visibility, filtered, within the principal's tiers and departments."""
        clauses = ["WorkflowType = 'Ticket'"]
        for attr, value in (("TicketStatus", status), ("TicketTier", tier), ("TicketPriority", priority),
                            ("TicketDepartment", department), ("TicketCustomerId", customer_id),
                            ("TicketAssignee", assignee)):
            if value is not None:
                clauses.append(f"{attr} = '{self._known_value(attr, value)}'")
        for attr, values in (("TicketTier", principal.tiers), ("TicketDepartment", principal.departments)):
            if values is not None:
                if not values:
                    return TicketPage(tickets=[], next_cursor=None)
                listed = ", ".join(f"'{_filter_value(attr, v)}'" for v in sorted(values))
                clauses.append(f"{attr} IN ({listed})")
        if breached is not None:
            clauses.append(f"TicketSlaBreached = {str(breached).lower()}")
        try:
            token = bytes.fromhex(cursor) if cursor else None
        except ValueError:
            raise InvalidInput("cursor is not one this API returned", field="cursor") from None
        async with self._errors():
            try:
                it = self.temporal.list_workflows(" AND ".join(clauses), page_size=page_size, next_page_token=token,
                                                  rpc_timeout=self.rpc_timeout)
                await it.fetch_next_page(page_size=page_size)
            except RPCError as exc:
                if exc.status == RPCStatusCode.INVALID_ARGUMENT and token is not None:
                    raise InvalidInput("cursor is not one this API returned", field="cursor") from None
                raise
        return TicketPage(tickets=[await _summary(w) for w in it.current_page or []],
                          next_cursor=it.next_page_token.hex() if it.next_page_token else None)

    async def metrics(self, *, principal: Principal, start: datetime | None = None, end: datetime | None = None,
                      group_by: str | None = None, now: datetime | None = None) -> MetricsReport:
        """The escalation metrics of the tickets opened in [start, end) (default: the last 30 days), within the
        principal's tiers and departments; the previous window of the same length gives the tag trends."""
        try:
            start, end = metrics_rules.window(start, end, now or datetime.now(UTC))
        except ValueError as exc:
            raise InvalidInput(str(exc), field="from") from None
        if group_by is not None and group_by not in metrics_rules.GROUP_BY:
            raise InvalidInput(f"group_by {group_by!r} is not one of {', '.join(metrics_rules.GROUP_BY)}",
                               field="group_by")
        scope: list[str] = []
        for attr, values in (("TicketTier", principal.tiers), ("TicketDepartment", principal.departments)):
            if values is not None:
                listed = ", ".join(f"'{_filter_value(attr, v)}'" for v in sorted(values)) or "''"
                scope.append(f"{attr} IN ({listed})")
        previous_start = start - (end - start)
        async with self._errors():
            current = await metrics_source.list_facts(self.temporal, start, end, scope, rpc_timeout=self.rpc_timeout)
            previous = await metrics_source.list_facts(self.temporal, previous_start, start, scope,
                                                       rpc_timeout=self.rpc_timeout)
            scores = await metrics_source.survey_scores(self.temporal, start, rpc_timeout=self.rpc_timeout)
        return metrics_rules.compute(metrics_source.with_csat(current, scores), previous, start=start, end=end,
                                     group_by=group_by)

    async def backfill_figures(self, *, principal: Principal, limit: int = 100_000) -> FiguresBackfill:
        """The metrics' backfill (admins, the CLI's operator): every running ticket without the figures' memo (it runs
        from before patch `metrics-figures`) is asked, by the publish_figures Update, to publish its figures now and
        as they change. Idempotent: a ticket publishing them already answers False."""
        if not principal.can(Permission.policy_migrate):
            raise Forbidden(f"{principal.actor} may not backfill the metrics' figures (admins only)")
        asked = published = 0
        async with self._errors():
            async for w in self.temporal.list_workflows("WorkflowType = 'Ticket' AND ExecutionStatus = 'Running'",
                                                        page_size=1000, limit=limit, rpc_timeout=self.rpc_timeout):
                # the memo, not TicketOpenedAt: a ticket opened by this client on a worker of before has the attribute
                # (the client sets it at start) but publishes no figures
                if figures.MEMO_KEY in w.raw_info.memo.fields:
                    continue
                asked += 1
                with contextlib.suppress(RPCError):  # closed meanwhile: nothing to publish
                    published += await self._publish_figures(w.id, principal.actor)
        return FiguresBackfill(asked=asked, published=published)

    async def _publish_figures(self, workflow_id: str, actor: str) -> bool:
        handle = self.temporal.get_workflow_handle(workflow_id)

        async def ask() -> bool:
            return bool(await handle.execute_update("publish_figures", actor, result_type=bool,
                                                    rpc_timeout=self.rpc_timeout))

        return await while_crowded(ask)

    async def workflow_pollers(self, within: timedelta = timedelta(minutes=2)) -> int:
        """How many workers polled this client's task queue for workflow tasks within `within`."""
        from temporalio.api.enums.v1 import TaskQueueType
        from temporalio.api.taskqueue.v1 import TaskQueue
        from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

        async with self._errors():
            resp = await self.temporal.workflow_service.describe_task_queue(DescribeTaskQueueRequest(
                namespace=self.temporal.namespace, task_queue=TaskQueue(name=self.task_queue),
                task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW), timeout=self.rpc_timeout)
        since = datetime.now(UTC) - within
        return sum(1 for p in resp.pollers
                   if not p.HasField("last_access_time") or p.last_access_time.ToDatetime(tzinfo=UTC) >= since)

    async def live_workers(self, within: timedelta = WORKER_HEARTBEAT_WINDOW) -> int | None:
        """How many workers on this client's task queue are running and sent the server a worker heartbeat within
        `within` (Temporal's own worker heartbeats: the worker's SDK sends one every few seconds, see worker.py; a
        SIGKILLed worker simply stops). None when the server does not offer them (ListWorkers disabled or older
        than 1.29): the caller falls back to the pollers."""
        from temporalio.api.enums.v1 import WorkerStatus
        from temporalio.api.workflowservice.v1 import ListWorkersRequest

        request = ListWorkersRequest(namespace=self.temporal.namespace, query=f"TaskQueue = '{self.task_queue}'")
        async with self._errors():
            try:
                resp = await self.temporal.workflow_service.list_workers(request, timeout=self.rpc_timeout)
            except RPCError as exc:
                if exc.status in (RPCStatusCode.UNIMPLEMENTED, RPCStatusCode.PERMISSION_DENIED,
                                  RPCStatusCode.FAILED_PRECONDITION):
                    return None
                raise
        since = datetime.now(UTC) - within
        return sum(1 for w in resp.workers_info
                   if w.worker_heartbeat.status == WorkerStatus.WORKER_STATUS_RUNNING
                   and w.worker_heartbeat.heartbeat_time.ToDatetime(tzinfo=UTC) >= since)


FILTER_FIELDS = {"TicketStatus": "status", "TicketTier": "tier", "TicketPriority": "priority",
                 "TicketDepartment": "department", "TicketCustomerId": "customer", "TicketAssignee": "assignee"}


def _filter_value(attr: str, value: str) -> str:
    if not FILTER_VALUE.match(value):
        raise InvalidInput(f"filter {attr} value {value!r} may hold only letters, digits and . _ : @ -")
    return value


def _action_name(event: core.Event) -> str:
    if event.type not in update_names():
        raise InvalidInput(f"{event.type!r} is not an agent action; allowed: {', '.join(update_names())}")
    return event.type


class FiguresBackfill(BaseModel):
    asked: int = Field(description="running tickets without the metrics' figures, asked to publish them")
    published: int = Field(description="of those, the ones that published them now")


async def _summary(w: Any) -> TicketSummary:
    sa = w.typed_search_attributes
    from workflows.common import search_attributes as keys

    memo = await w.memo()
    opened = memo.get("opened_at")
    return TicketSummary(
        id=w.id.removeprefix("ticket-"), subject=memo.get("subject"), status=sa.get(keys.STATUS), tier=sa.get(keys.TIER),
        priority=sa.get(keys.PRIORITY), department=sa.get(keys.DEPARTMENT), channel=sa.get(keys.CHANNEL),
        customer_id=sa.get(keys.CUSTOMER_ID), assignee=sa.get(keys.ASSIGNEE) or None,
        escalation_count=sa.get(keys.ESCALATION_COUNT), sla_breached=sa.get(keys.SLA_BREACHED),
        opened_at=datetime.fromisoformat(opened) if opened else w.start_time,  # the ticket's time, not the start's
        closed_at=w.close_time,
    )

