"""The customer replies a ticket remembers by message_id, to recognise a retried one: bounded, carried in the state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from starter.runtime.policy_file import DEFAULT_POLICY, load_policy
from workflows import ticket as core
from workflows.ticket.state import REPLY_KEY_MAX, reply_key

POLICY = load_policy(DEFAULT_POLICY)
T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


def opened() -> core.TicketState:
    t = core.Ticket(id="T-1", subject="down", customer_id="c-1", priority="P3", opened_at=T0)
    return core.open_ticket(t, POLICY, T0).state


def replied(s: core.TicketState, *ids: str | None) -> core.TicketState:
    for i, message_id in enumerate(ids):
        s = core.step(s, core.CustomerReply(message="more", message_id=message_id), T0 + timedelta(seconds=i), POLICY).state
    return s


def test_a_reply_applied_is_seen_by_its_message_id() -> None:
    s = replied(opened(), "m-1")
    assert core.reply_seen(s, "m-1") and not core.reply_seen(s, "m-2")


def test_a_reply_without_a_message_id_is_never_seen() -> None:
    s = replied(opened(), None)
    assert not core.reply_seen(s, None) and s.reply_ids == []


def test_only_the_latest_ids_are_kept() -> None:
    s = replied(opened(), *(f"m-{i}" for i in range(core.REPLY_IDS_KEPT + 5)))
    assert len(s.reply_ids) == core.REPLY_IDS_KEPT
    assert not core.reply_seen(s, "m-0") and core.reply_seen(s, f"m-{core.REPLY_IDS_KEPT + 4}")


def test_a_long_message_id_is_kept_as_a_short_digest() -> None:
    long_id = "<" + "x" * 900 + "@mail.example>"
    s = replied(opened(), long_id)
    assert len(s.reply_ids[0]) <= REPLY_KEY_MAX and s.reply_ids[0] == reply_key(long_id)
    assert core.reply_seen(s, long_id)


def test_the_ids_survive_the_state_round_trip_of_continue_as_new() -> None:
    s = replied(opened(), "m-1")
    inp = core.TicketInput(ticket=s.ticket, policy=POLICY, state=s)
    again = core.TicketInput.model_validate_json(inp.model_dump_json())
    assert again.state is not None and core.reply_seen(again.state, "m-1")
