"""The client with Temporal replaced by a dict: for API tests of routing, validation and authorization.

`FakeTicketClient` is the real `EscalationClient` (so every rule the client owns runs as in production: scope, the
executive tier, opened_at bounds, same-request idempotency, reply de-duplication, follow-up tickets, the retry of
an action that races the ticket's closing) over an in-memory store in place of Temporal. Only the calls that would
go to Temporal are replaced, each by what the ticket's workflow would do with the pure core (`workflows.ticket`):
start (store the opened state), query (the state, its passed deadlines applied), update (one `step`), signal,
visibility (the same filters over the stored states), history (none is kept) and the poller count.

Anything not replaced that still reaches for Temporal fails the test loudly (`NoTemporal`), rather than pass
against nothing. What needs Temporal itself (timers firing, visibility lag, histories, workers) stays in the tests
against the real dev server (tests/api/test_api.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn, cast

from temporalio.client import Client

from starter.client import ActionRejected, EscalationClient, InvalidInput, ReplyAccepted, TicketNotFound, TicketPage
from starter.client.principal import Principal
from starter.client.tickets import TicketSummary
from starter.runtime.replay import ReplayAudit
from workflows import ticket as core
from workflows.common.policy import Policy
from workflows.postmortem import postmortem_workflow_id
from workflows.ticket import Ticket
from workflows.ticket.views import DUPLICATE, ActionResult, action_result


class NoTemporal:
    """Stands in for the Temporal client: any use of it is a path the fake does not cover."""

    def __getattr__(self, name: str) -> NoReturn:
        raise AssertionError(f"FakeTicketClient reached for Temporal (Client.{name}): fake that call too")


class FakeTicketClient(EscalationClient):
    """TicketClient (starter/http/deps.py) in memory: the client's rules, the ticket's core, no server."""

    def __init__(self, policy: Policy, task_queue: str = "fake", max_backdate: timedelta = timedelta(days=30)) -> None:
        super().__init__(cast(Client, NoTemporal()), policy, task_queue, max_backdate=max_backdate)
        self.tickets: dict[str, core.TicketState] = {}
        self.pollers = 1  # workers polling the task queue, for /readyz

    # ----- what Temporal would do -------------------------------------------------------------------------------

    async def _start(self, ticket: Ticket, opened: core.TicketState, *, actor: str | None = None,
                     handoff: core.Handoff | None = None) -> bool:
        """A workflow id is used once (conflict: use existing; reuse: rejected): a known id starts nothing."""
        if ticket.id in self.tickets:
            return False
        self.tickets[ticket.id] = opened
        return True

    async def _state(self, ticket_id: str) -> core.TicketState:
        """The ticket as its workflow holds it now: every deadline that has passed applied (its timers fired)."""
        if ticket_id not in self.tickets:
            raise TicketNotFound(f"no ticket with id {ticket_id!r}")
        state = self.tickets[ticket_id]
        if not state.closed:
            state = self.tickets[ticket_id] = core.catch_up(state, datetime.now(UTC), self.policy).state
        return state

    async def _execute_update(self, ticket_id: str, event: core.Event) -> ActionResult:
        """The workflow's Update: a closed ticket refuses it, a repeated reply is a duplicate, else one `step`."""
        state, now = await self._state(ticket_id), datetime.now(UTC)
        if state.closed:
            raise ActionRejected("ticket_closed", f"ticket {ticket_id} is closed")
        if isinstance(event, core.CustomerReply) and core.reply_seen(state, event.message_id):
            return action_result(state, DUPLICATE, [], now)
        try:
            stepped = core.step(state, event, now, self.policy)
        except core.Rejected as exc:
            raise ActionRejected(exc.code, exc.message) from None
        after = stepped.state
        added = [e for e in after.timeline if e.seq > state.seq]
        answer = action_result(after, event.type, added, now)
        if any(isinstance(f, core.StartPostmortem) for f in stepped.effects):  # as the workflow's shell does, after
            after = core.postmortem_started(after, postmortem_workflow_id("ticket", ticket_id), now)
        self.tickets[ticket_id] = after
        return answer

    async def signal_customer_reply(self, ticket_id: str, reply: core.CustomerReply, *,
                                    principal: Principal) -> ReplyAccepted:
        """The Signal applied at once (as if the worker ran now); a closed ticket's reply starts its follow-up."""
        state = await self.state(ticket_id, principal=principal)
        if state.closed:
            follow, _created = await self._start_follow_up(state, reply)
            return ReplyAccepted(ticket_id=ticket_id, follow_up_ticket_id=follow.id)
        with contextlib.suppress(ActionRejected):  # a Signal cannot be refused: the workflow logs it and moves on
            await self._execute_update(ticket_id, reply)
        return ReplyAccepted(ticket_id=ticket_id)

    async def history_json(self, ticket_id: str, *, principal: Principal) -> dict[str, Any]:
        """No event history is kept in memory: an empty one, for a ticket the principal may see."""
        await self.state(ticket_id, principal=principal)
        return {"workflow_id": f"ticket-{ticket_id}", "runs": []}

    async def replay(self, *, principal: Principal, tickets: Sequence[str] = (), query: str | None = None,
                     limit: int = 100) -> ReplayAudit:
        """No event history is kept in memory: nothing to replay (the real replay: tests/api/test_audit_api.py)."""
        raise InvalidInput("the in-memory client keeps no history to replay", field="tickets")

    async def list(self, *, principal: Principal, status: str | None = None, tier: str | None = None,
                   priority: str | None = None, department: str | None = None, customer_id: str | None = None,
                   breached: bool | None = None, assignee: str | None = None, page_size: int = 50,
                   cursor: str | None = None) -> TicketPage:
        """Visibility over the stored states: the same filters, the principal's scope, newest first; the cursor
        is the offset of the next page (any other is refused, as Temporal refuses a page token it did not issue)."""
        wanted = {"TicketStatus": status, "TicketTier": tier, "TicketPriority": priority,
                  "TicketDepartment": department, "TicketCustomerId": customer_id, "TicketAssignee": assignee}
        for attr, value in wanted.items():
            if value is not None:
                self._known_value(attr, value)
        try:
            start = int(cursor, 16) if cursor else 0
        except ValueError:
            raise InvalidInput("cursor is not one this API returned", field="cursor") from None
        states = [await self._state(tid) for tid in self.tickets]
        matching = [s for s in sorted(states, key=lambda s: s.ticket.opened_at, reverse=True)
                    if principal.in_scope(s.tier, s.department) and _matches(s, wanted, breached)]
        page = matching[start:start + page_size]
        more = start + page_size < len(matching)
        return TicketPage(tickets=[_summary(s) for s in page], next_cursor=f"{start + page_size:08x}" if more else None)

    async def workflow_pollers(self, within: timedelta = timedelta(minutes=2)) -> int:
        return self.pollers

    async def live_workers(self, within: timedelta = timedelta(seconds=10)) -> int | None:
        return self.pollers


def _matches(s: core.TicketState, wanted: dict[str, str | None], breached: bool | None) -> bool:
    """The visibility query's clauses, over the search attributes the workflow publishes."""
    published = core.search_attributes(s)
    return (all(v is None or published[k] == v for k, v in wanted.items())
            and (breached is None or published["TicketSlaBreached"] == breached))


def _summary(s: core.TicketState) -> TicketSummary:
    return TicketSummary(id=s.ticket.id, subject=s.ticket.subject, status=s.status.value, tier=s.tier,
                         priority=s.priority, department=s.department, channel=s.ticket.channel.value,
                         customer_id=s.ticket.customer_id, assignee=s.assignee, escalation_count=s.escalation_count,
                         sla_breached=s.sla_breached, opened_at=s.ticket.opened_at, closed_at=s.closed_at)
