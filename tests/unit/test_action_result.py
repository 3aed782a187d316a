"""An Update's answer: small (no ticket, no calendar), and decodable from either shape during a rolling deploy."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from starter.runtime.policy_file import DEFAULT_POLICY, load_policy
from workflows import ticket as core
from workflows.common.vocabulary import ClockName, Status
from workflows.ticket.views import ActionResult, action_result, action_view, as_action_result, ticket_view

POLICY = load_policy(DEFAULT_POLICY)
T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
LONG = "x" * 20_000  # the longest description a ticket may carry


def acknowledged() -> tuple[core.TicketState, list[core.TimelineEntry]]:
    """A ticket with a 20 KB description, acknowledged; the state after it and the entries the action added."""
    t = core.Ticket(id="T-1", subject="down", description=LONG, customer_id="c-1", priority="P1", opened_at=T0)
    opened = core.open_ticket(t, POLICY, T0).state
    after = core.step(opened, core.Acknowledge(actor="agent:a"), T0 + timedelta(minutes=5), POLICY).state
    return after, [e for e in after.timeline if e.seq > opened.seq]


def test_the_answer_names_the_action_and_where_the_ticket_now_is() -> None:
    state, added = acknowledged()
    r = action_result(state, "acknowledge", added)
    assert (r.outcome, r.status, r.tier, r.priority) == ("acknowledge", Status.open, "tier1", "P1")
    assert [e.action for e in r.timeline] == ["acknowledged"]
    assert set(r.due) == {c.name for c in state.clocks.values() if c.phase == "running"}
    assert ClockName.tier in r.due, "acknowledging starts the tier clock"


def test_the_answer_carries_neither_the_description_nor_the_calendar() -> None:
    state, added = acknowledged()
    answer = action_result(state, "acknowledge", added).model_dump_json()
    assert LONG not in answer and "calendar" not in answer
    assert len(answer) < 2_000 < len(state.model_dump_json())


def test_a_new_workers_answer_decodes_as_itself() -> None:
    state, added = acknowledged()
    r = action_result(state, "acknowledge", added)
    assert as_action_result(json.loads(r.model_dump_json()), "acknowledge") == r
    assert as_action_result(r, "acknowledge") == r


def test_an_old_workers_answer_the_state_decodes_to_the_same_result() -> None:
    """A worker of before answered with the state, its timeline cut to the entries the action added."""
    state, added = acknowledged()
    old_answer = json.loads(state.model_copy(update={"timeline": added}).model_dump_json())
    assert as_action_result(old_answer, "acknowledge") == action_result(state, "acknowledge", added)


def test_the_view_after_an_action_shows_only_the_entries_it_added() -> None:
    state, added = acknowledged()
    v = action_view(state, action_result(state, "acknowledge", added), T0 + timedelta(minutes=5))
    full = ticket_view(state, T0 + timedelta(minutes=5))
    assert [e.action for e in v.timeline] == ["acknowledged"] and not v.timeline_complete
    assert v.model_dump(exclude={"timeline", "timeline_complete"}) == full.model_dump(
        exclude={"timeline", "timeline_complete"})


def test_the_result_model_is_the_documented_one() -> None:
    assert set(ActionResult.model_fields) == {"outcome", "status", "tier", "priority", "department", "assignee",
                                              "due", "timeline"}
