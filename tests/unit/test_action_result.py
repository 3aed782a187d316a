"""An Update's answer: small (no description, no calendar, no whole timeline), decodable from every shape
it has had during a rolling deploy."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from starter.runtime.policy_file import DEFAULT_POLICY, load_policy
from workflows import ticket as core
from workflows.common.vocabulary import ClockName, Status
from workflows.ticket.views import ActionResult, action_result, answer_lacks_ticket, as_action_result, ticket_view

POLICY = load_policy(DEFAULT_POLICY)
T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
LONG = "x" * 20_000  # the longest description a ticket may carry


def acknowledged() -> tuple[core.TicketState, list[core.TimelineEntry]]:
    """A ticket with a 20 KB description, acknowledged; the state after it and the entries the action added."""
    t = core.Ticket(id="T-1", subject="down", description=LONG, customer_id="c-1", priority="P1", opened_at=T0)
    opened = core.open_ticket(t, POLICY, T0).state
    after = core.step(opened, core.Acknowledge(actor="agent:a"), T0 + timedelta(minutes=5), POLICY).state
    return after, [e for e in after.timeline if e.seq > opened.seq]


NOW = T0 + timedelta(minutes=5)


def test_the_answer_names_the_action_and_where_the_ticket_now_is() -> None:
    state, added = acknowledged()
    r = action_result(state, "acknowledge", added, NOW)
    t = r.ticket
    assert (r.outcome, t.status, t.tier, t.priority) == ("acknowledge", Status.open, "tier1", "P1")
    assert [e.action for e in t.timeline] == ["acknowledged"] and not t.timeline_complete
    running = {c.name: c.due_at for c in state.clocks.values() if c.phase == "running"}
    assert {c.name: c.due_at for c in t.clocks if c.phase == "running"} == running
    assert ClockName.tier in running, "acknowledging starts the tier clock"


def test_the_answer_carries_neither_the_description_nor_the_calendar() -> None:
    state, added = acknowledged()
    answer = action_result(state, "acknowledge", added, NOW).model_dump_json()
    assert LONG not in answer
    calendar = state.calendar.model_dump_json()
    assert '"holidays"' in calendar and '"holidays"' not in answer, "only the calendar's name, not its days"
    assert len(answer) < 2_500 < len(state.model_dump_json())


def test_the_answer_shows_the_ticket_as_a_read_after_the_action_would() -> None:
    """The view in the answer is the ticket's view (same clocks, due times, counts) but for the timeline: only the
    entries the action added."""
    state, added = acknowledged()
    shown = action_result(state, "acknowledge", added, NOW).ticket
    full = ticket_view(state, NOW)
    assert shown.model_dump(exclude={"timeline", "timeline_complete"}) == full.model_dump(
        exclude={"timeline", "timeline_complete"})
    assert full.timeline_complete and not shown.timeline_complete


def test_a_new_workers_answer_decodes_as_itself() -> None:
    state, added = acknowledged()
    r = action_result(state, "acknowledge", added, NOW)
    assert as_action_result(json.loads(r.model_dump_json()), "acknowledge", NOW) == r
    assert as_action_result(r, "acknowledge", NOW) == r


def test_an_old_workers_answer_the_state_decodes_to_the_same_result() -> None:
    """A worker of before `small-action-answer` answered with the state, its timeline cut to the entries added."""
    state, added = acknowledged()
    old_answer = json.loads(state.model_copy(update={"timeline": added}).model_dump_json())
    assert not answer_lacks_ticket(old_answer)
    assert as_action_result(old_answer, "acknowledge", NOW) == action_result(state, "acknowledge", added, NOW)


def test_an_answer_without_the_ticket_is_shown_from_the_state_the_caller_read() -> None:
    """A worker whose ActionResult carried no ticket (outcome, status, tier, due times, entries added) during a
    rolling deploy: the caller must read the ticket, and the result is then the same as a new worker's."""
    state, added = acknowledged()
    slim: dict[str, Any] = {
        "outcome": "acknowledge", "status": "open", "tier": "tier1", "priority": "P1", "department": "general",
        "assignee": None, "due": {}, "timeline": [json.loads(e.model_dump_json()) for e in added]}
    assert answer_lacks_ticket(slim)
    with pytest.raises(ValueError, match="needs the ticket's state"):
        as_action_result(slim, "acknowledge", NOW)
    assert as_action_result(slim, "acknowledge", NOW, state) == action_result(state, "acknowledge", added, NOW)


def test_the_result_model_is_the_documented_one() -> None:
    assert set(ActionResult.model_fields) == {"outcome", "ticket"}
