"""What the ticket's durable shell decides from the pure core's output, as plain functions: how long it waits (its
durable timer), when deadlines are caught up, an action's answer. The shell (workflow.py) and the auditor's decision
verifier (starter/runtime/decisions.py) both call these, so a recorded history is checked against the one rule."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from workflows.common.policy import Policy
from workflows.ticket.clocks import Deadline, deadlines, next_due
from workflows.ticket.effects import StepResult
from workflows.ticket.rules import catch_up
from workflows.ticket.state import TicketState, TimelineEntry
from workflows.ticket.views import ActionResult, action_result

# A deadline already due is waited for this long (a zero timeout would not start a durable timer).
SHORTEST_WAIT = timedelta(milliseconds=1)


def next_wait(state: TicketState, policy: Policy, now: datetime) -> tuple[timedelta, Deadline] | None:
    """The shell's next durable timer: the earliest deadline and how long from `now` (None: no deadline ahead)."""
    upcoming = deadlines(state, policy)
    if not upcoming:
        return None
    return max(upcoming[0].at - now, SHORTEST_WAIT), upcoming[0]


def due_caught_up(state: TicketState, now: datetime, policy: Policy, supersede: Callable[[], bool],
                  acted_at: Callable[[], bool]) -> StepResult | None:
    """Every deadline passed by `now` applied (None when none has passed: nothing to record). `acted_at`: the
    catch-up rule of `catch_up` (the shell answers with its patch: before it, each deadline at its due time)."""
    if next_due(state, now, policy) is None:
        return None
    return catch_up(state, now, policy, supersede=supersede, acted_at=acted_at)


def added_since(state: TicketState, seq: int) -> list[TimelineEntry]:
    """The timeline entries recorded after `seq` (what one action added)."""
    return [e for e in state.timeline if e.seq > seq]


def action_answer(state: TicketState, outcome: str, added: list[TimelineEntry], now: datetime,
                  small: bool) -> ActionResult | TicketState:
    """An Update's answer: the ActionResult, or (histories from before `small-action-answer`) the state with only
    the entries the action added."""
    if not small:
        return state.model_copy(update={"timeline": added})
    return action_result(state, outcome, added, now)
