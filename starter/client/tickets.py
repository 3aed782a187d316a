"""The one client: the CLI and the HTTP API are thin layers over it.

It opens tickets idempotently (workflow id `ticket-<id>`, an id conflict
policy that returns the running ticket and a reuse policy that rejects a
second one), sends agent actions as Updates, reads state by Query (or by the
result of a closed ticket), lists through Temporal visibility, and maps
Temporal's errors onto the few our users need to tell apart.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field
from temporalio.client import (
    Client,
    WorkflowFailureError,
    WorkflowHandle,
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
    IdConflict,
    InvalidInput,
    TemporalUnavailable,
    TicketNotFound,
)
from starter.runtime.sdk_private import started_new
from workflows import ticket as core
from workflows.common import search_attributes as sa
from workflows.common.policy import Policy
from workflows.common.vocabulary import ID_PATTERN, PRIORITIES, Status
from workflows.ticket import Ticket, workflow_id
from workflows.ticket.views import TicketView, action_view, as_action_result, ticket_view
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


def no_answer(ticket_id: str, task_queue: str | None) -> TemporalUnavailable:
    return TemporalUnavailable(
        f"ticket {ticket_id} did not answer within {RPC_TIMEOUT.seconds}s: is a worker polling task queue "
        f"{task_queue!r}? An action sent may or may not be applied: read the ticket before sending it again")


def is_closed(exc: RPCError) -> bool:
    """The server's answer to an Update or Signal sent to a ticket that has completed (or is completing)."""
    return exc.status == RPCStatusCode.NOT_FOUND and any(w in exc.message.lower() for w in ("completed", "closing"))


@asynccontextmanager
async def _temporal_errors(ticket_id: str | None = None, task_queue: str | None = None) -> AsyncIterator[None]:
    """Temporal's errors as the few our users tell apart; never a raw RPC error."""
    try:
        yield
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND and ticket_id is not None:
            raise TicketNotFound(f"no ticket with id {ticket_id!r}") from None
        if exc.status in (RPCStatusCode.CANCELLED, RPCStatusCode.DEADLINE_EXCEEDED) and ticket_id is not None:
            raise no_answer(ticket_id, task_queue) from None
        if exc.status == RPCStatusCode.INVALID_ARGUMENT and "search attribute" in exc.message:
            raise TemporalUnavailable(f"Temporal does not know our search attributes ({exc.message}); "
                                      "`make run` registers them, docker-compose's temporal-setup too") from None
        raise TemporalUnavailable(f"Temporal refused or failed the request: {exc.message}") from None


RPC_TIMEOUT = timedelta(seconds=15)


class EscalationClient:
    def __init__(self, client: Client, policy: Policy, task_queue: str,
                 max_backdate: timedelta = DEFAULT_MAX_BACKDATE) -> None:
        self.temporal = client
        self.policy = policy
        self.task_queue = task_queue
        self.max_backdate = max_backdate

    @classmethod
    async def connect(cls, policy: Policy | None = None) -> EscalationClient:
        from starter.runtime.policy_file import load_policy
        from starter.runtime.settings import settings
        from starter.runtime.temporal import connect

        s = settings()
        try:
            client = await connect()
        except RuntimeError as exc:  # the core SDK reports connection failures this way
            reason = "connection refused" if "refused" in str(exc).lower() else str(exc)
            raise TemporalUnavailable(f"cannot reach Temporal at {s.temporal_address} ({reason}); is it running? "
                                      "`make run` starts one, or set TEMPORAL_ADDRESS") from None
        return cls(client, policy or load_policy(s.escalation_policy), s.escalation_task_queue,
                   timedelta(days=s.escalation_max_backdate_days))

    def handle(self, ticket_id: str) -> WorkflowHandle[Any, core.TicketState]:
        if not re.match(ID_PATTERN, ticket_id):
            raise InvalidInput(f"ticket id {ticket_id!r} must be 1-100 letters, digits, '.', '_' or '-'")
        return self.temporal.get_workflow_handle_for(TicketWorkflow.run, workflow_id(ticket_id))  # type: ignore[arg-type]

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
        if created and not wait_for_worker:
            return OpenResult(created=True, view=ticket_view(core.catch_up(opened.state, now, self.policy).state, now))
        state = await self.state(ticket.id)
        if not created and not same_request(state.ticket, ticket, compare_opened_at=not opened_at_defaulted):
            raise IdConflict(f"ticket {ticket.id} exists with a different request; use another id")
        return OpenResult(created=created, view=ticket_view(state, now))

    async def _start(self, ticket: Ticket, opened: core.TicketState, *, actor: str | None = None,
                     handoff: core.Handoff | None = None) -> bool:
        """Start the ticket's workflow unless one with its id exists (running or closed); True if it was new."""
        inp = TicketInput(ticket=ticket, policy=self.policy, opened_by=actor, handoff=handoff)
        async with _temporal_errors():
            try:
                handle = await self.temporal.start_workflow(
                    TicketWorkflow.run, inp, id=workflow_id(ticket.id),
                    task_queue=self.task_queue, id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                    id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                    # listable at once, before a worker runs the first task
                    search_attributes=TypedSearchAttributes(sa.pairs(core.search_attributes(opened))),
                    memo=core.list_memo(ticket),
                )
            except WorkflowAlreadyStartedError:
                return False  # closed ticket: reuse rejected
        # `started` is False when USE_EXISTING returned a running ticket
        return started_new(handle)

    # ----- reading ---------------------------------------------------------------

    async def state(self, ticket_id: str) -> core.TicketState:
        handle = self.handle(ticket_id)
        async with _temporal_errors(ticket_id, self.task_queue):
            desc = await handle.describe(rpc_timeout=RPC_TIMEOUT)
            if desc.status in (ExecStatus.COMPLETED,):
                return await handle.result()
            if desc.status != ExecStatus.RUNNING:
                raise TicketNotFound(f"ticket {ticket_id} ended abnormally ({desc.status.name if desc.status else '?'})")
            try:
                return await handle.query(TicketWorkflow.current_state, rpc_timeout=RPC_TIMEOUT)
            except WorkflowQueryFailedError as exc:
                raise TemporalUnavailable(f"ticket {ticket_id} could not be read yet: {exc}") from None

    async def view(self, ticket_id: str, now: datetime | None = None) -> TicketView:
        return ticket_view(await self.state(ticket_id), now or datetime.now(UTC))

    async def history_json(self, ticket_id: str) -> dict[str, Any]:
        """The full event history (every run), the auditor's export."""
        handle = self.handle(ticket_id)
        async with _temporal_errors(ticket_id):
            history = await handle.fetch_history()
        return history.to_json_dict()

    def _known_value(self, attr: str, value: str) -> str:
        """A filter on a closed vocabulary must use one of its words: a typo is an error, not an empty list."""
        allowed = {"TicketStatus": [x.value for x in Status], "TicketTier": self.policy.tier_ids(),
                   "TicketPriority": list(PRIORITIES), "TicketDepartment": self.policy.department_ids()}.get(attr)
        if allowed is not None and value not in allowed:
            field = FILTER_FIELDS[attr]
            raise InvalidInput(f"{field} {value!r} is not one of: {', '.join(allowed)}", field=field)
        return _filter_value(attr, value)

    # ----- acting ---------------------------------------------------------------

    async def act(self, ticket_id: str, event: core.Event) -> TicketView:
        """Send an agent action as an Update; return the ticket as it is after it."""
        name = _action_name(event)
        handle = self.handle(ticket_id)
        async with _temporal_errors(ticket_id, self.task_queue):
            try:
                # Decoded by shape, not by type: a worker of before answers with the state (rolling deploy).
                answer = await handle.execute_update(name, event, rpc_timeout=RPC_TIMEOUT, result_type=dict)
            except WorkflowUpdateFailedError as exc:
                cause = exc.cause
                if isinstance(cause, ApplicationError):
                    raise ActionRejected(cause.type or "rejected", cause.message) from None
                raise
            except RPCError as exc:
                if is_closed(exc):
                    raise ActionRejected("ticket_closed", f"ticket {ticket_id} is closed") from None
                raise
            except WorkflowUpdateRPCTimeoutOrCancelledError:
                raise no_answer(ticket_id, self.task_queue) from None
            except WorkflowFailureError as exc:  # pragma: no cover - defensive
                raise ActionRejected("rejected", str(exc)) from None
        return action_view(await self.state(ticket_id), as_action_result(answer, name), datetime.now(UTC))

    async def customer_reply(self, ticket_id: str, reply: core.CustomerReply) -> tuple[TicketView, bool]:
        """A customer message: on a closed ticket it opens a new one linked to the old (True: new ticket)."""
        try:
            return await self.act(ticket_id, reply), False
        except ActionRejected as exc:
            if exc.code != "ticket_closed":
                raise
        return await self._follow_up(ticket_id, reply), True

    async def signal_customer_reply(self, ticket_id: str, reply: core.CustomerReply) -> ReplyAccepted:
        """Fire and forget: the message as a Signal, which the ticket applies when its worker next runs; nothing
        waits for a worker. The answer names the follow-up ticket when the ticket had completed (one closed but
        still finishing opens the follow-up itself). A Signal cannot be refused:
        one the ticket cannot apply is recorded in the worker's log."""
        handle = self.handle(ticket_id)
        async with _temporal_errors(ticket_id, self.task_queue):
            try:
                await handle.signal(TicketWorkflow.customer_replied, reply, rpc_timeout=RPC_TIMEOUT)
                return ReplyAccepted(ticket_id=ticket_id)
            except RPCError as exc:
                if not is_closed(exc):
                    raise
        # The closed ticket is read from its recorded result and the follow-up is only started (a redelivery finds
        # it started): no worker is needed on this path either.
        follow = core.follow_up_ticket(await self.state(ticket_id), reply, datetime.now(UTC))
        await self._start(follow, core.open_ticket(follow, self.policy, datetime.now(UTC)).state)
        return ReplyAccepted(ticket_id=ticket_id, follow_up_ticket_id=follow.id)

    async def _follow_up(self, ticket_id: str, reply: core.CustomerReply) -> TicketView:
        """The new ticket, linked to the closed one, that a customer's message after closing opens (idempotent)."""
        follow = core.follow_up_ticket(await self.state(ticket_id), reply, datetime.now(UTC))
        try:
            return (await self.open(follow)).view
        except IdConflict:  # the same message delivered again: the follow-up exists
            return await self.view(follow.id)

    # ----- added for the HTTP API (starter/api.py) -------------------------------

    async def list(self, *, tiers: Collection[str] | None = None, departments: Collection[str] | None = None,
                          status: str | None = None, tier: str | None = None, priority: str | None = None,
                          department: str | None = None, customer_id: str | None = None, breached: bool | None = None,
                          assignee: str | None = None, page_size: int = 50, cursor: str | None = None) -> TicketPage:
        """Tickets through Temporal visibility, filtered; `tiers`/`departments` restrict to a scope (None: any)."""
        clauses = ["WorkflowType = 'Ticket'"]
        for attr, value in (("TicketStatus", status), ("TicketTier", tier), ("TicketPriority", priority),
                            ("TicketDepartment", department), ("TicketCustomerId", customer_id),
                            ("TicketAssignee", assignee)):
            if value is not None:
                clauses.append(f"{attr} = '{self._known_value(attr, value)}'")
        for attr, values in (("TicketTier", tiers), ("TicketDepartment", departments)):
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
            raise InvalidInput("cursor is not one this API returned") from None
        async with _temporal_errors():
            try:
                it = self.temporal.list_workflows(" AND ".join(clauses), page_size=page_size, next_page_token=token)
                await it.fetch_next_page(page_size=page_size)
            except RPCError as exc:
                if exc.status == RPCStatusCode.INVALID_ARGUMENT and token is not None:
                    raise InvalidInput("cursor is not one this API returned") from None
                raise
        return TicketPage(tickets=[await _summary(w) for w in it.current_page or []],
                          next_cursor=it.next_page_token.hex() if it.next_page_token else None)

    async def workflow_pollers(self, within: timedelta = timedelta(minutes=2)) -> int:
        """How many workers polled this client's task queue for workflow tasks within `within`."""
        from temporalio.api.enums.v1 import TaskQueueType
        from temporalio.api.taskqueue.v1 import TaskQueue
        from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

        async with _temporal_errors():
            resp = await self.temporal.workflow_service.describe_task_queue(DescribeTaskQueueRequest(
                namespace=self.temporal.namespace, task_queue=TaskQueue(name=self.task_queue),
                task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW))
        since = datetime.now(UTC) - within
        return sum(1 for p in resp.pollers
                   if not p.HasField("last_access_time") or p.last_access_time.ToDatetime(tzinfo=UTC) >= since)



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

