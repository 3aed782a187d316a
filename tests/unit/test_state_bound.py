"""The state's stated bound (workflows/ticket/state.py: STATE_BOUND): with every field at its maximum, what travels
whole (the `state` query's answer, the continue-as-new input) stays well below Temporal's 512 KiB payload warning."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from starter.runtime.policy_file import load_policy
from starter.runtime.temporal import data_converter
from workflows import ticket as core
from workflows.common.policy import Policy
from workflows.ticket import TicketInput, TicketState
from workflows.ticket.state import record_breach

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
PAYLOAD_WARNING = 512 * 1024
LONG = "x" * 20_000  # the longest note, reply and description a ticket takes


def _largest_ticket() -> core.Ticket:
    return core.Ticket(id="T-" + "9" * 98, subject="s" * 500, description=LONG, customer_id="c" * 100,
                       customer_plan="p" * 64, priority="P3", tags=[f"t{i:02d}" + "g" * 60 for i in range(50)],
                       opened_at=T0)


def _payload_bytes(value: object) -> int:
    return len(data_converter().payload_converter.to_payloads([value])[0].data)


def _after(events: int) -> tuple[TicketState, Policy]:
    """A ticket that took `events` notes and replies of the longest text, with the longest actors and message ids
    (500 pass every bound: 250 entries, 200 reply ids)."""
    policy = load_policy()
    state = core.open_ticket(_largest_ticket(), policy, T0).state
    now = T0
    for i in range(events):
        now += timedelta(minutes=1)
        event: core.Event = (core.AddNote(actor="a" * 190 + f"{i:010d}", text=LONG) if i % 2 else
                             core.CustomerReply(message=LONG, message_id=f"<{i}-" + "m" * 500 + "@mail.example.com>"))
        state = core.step(state, event, now, policy).state
    return state, policy


def test_the_state_query_answer_stays_within_the_stated_bound_at_the_maximum_sizes() -> None:
    state, _ = _after(500)
    assert len(state.timeline) == core.TIMELINE_KEPT and state.timeline_dropped > 0  # the bound was reached
    size = _payload_bytes(state)
    assert size <= core.STATE_BOUND < PAYLOAD_WARNING, f"state query answer: {size} bytes"


def test_the_continue_as_new_input_stays_within_the_bound_and_keeps_it_across_runs() -> None:
    state, policy = _after(500)
    carried = TicketInput(ticket=state.ticket, policy=policy, state=state)
    size = _payload_bytes(carried)
    assert size <= core.STATE_BOUND, f"continue-as-new input: {size} bytes"
    # the next run starts from the decoded input and keeps taking events: still within the bound
    decoded = data_converter().payload_converter.from_payloads(
        data_converter().payload_converter.to_payloads([carried]), [TicketInput])[0]
    assert decoded.state is not None
    more = decoded.state
    for i in range(100):
        more = core.step(more, core.AddNote(actor="agent:z", text=LONG), T0 + timedelta(days=2, minutes=i),
                         policy).state
    assert _payload_bytes(TicketInput(ticket=more.ticket, policy=policy, state=more)) <= core.STATE_BOUND


def test_older_entries_keep_a_folded_text_and_the_latest_keep_theirs() -> None:
    state, _ = _after(60)
    recent, older = state.timeline[-core.RECENT_KEPT_WHOLE:], state.timeline[:-core.RECENT_KEPT_WHOLE]
    assert all(len(e.summary) <= core.TEXT_FOLDED and len(e.reason) <= core.TEXT_FOLDED for e in older)
    assert any(len(e.summary) > core.TEXT_FOLDED for e in recent)


def test_the_oldest_breaches_drop_out_counted_and_the_ticket_stays_breached() -> None:
    state, _ = _after(0)
    for i in range(core.BREACHES_KEPT + 7):
        record_breach(state, core.Breach(clock="resolution", tier="tier1", due_at=T0, at=T0 + timedelta(i)))
    assert len(state.breaches) == core.BREACHES_KEPT and state.breaches_dropped == 7
    assert state.breaches[-1].at == T0 + timedelta(core.BREACHES_KEPT + 6)  # the latest kept
    state.breaches.clear()
    assert state.sla_breached  # a dropped breach still counts
