"""The customer hears back: public replies reach them, and the policy's customer_update rule reminds or writes."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.test_ticket_core import POLICY, T0, UPD, M, Sim, make_ticket, policy_variant
from workflows import ticket as tc
from workflows.common.policy import Policy
from workflows.ticket import Acknowledge, AddNote, Assign, Notify


def customer_update_on_breach(rule: str) -> Policy:
    def edit(data: dict[str, Any]) -> None:
        data["clocks"]["customer_update"]["on_breach"] = rule
    return policy_variant(edit)


def noticed(policy: Policy = POLICY) -> Sim:
    """A ticket opened under the `customer-notices` patch (the workflow decides it at opening)."""
    sim = Sim(policy=policy)
    sim.state = tc.open_ticket(sim.ticket, policy, sim.ticket.opened_at, customer_notices=True).state
    return sim


def kinds(fx: list[Notify]) -> list[tuple[str, list[str]]]:
    """The notifications about the customer_update clock falling due (not its warnings, not other clocks')."""
    return [(f.kind, f.recipients) for f in fx
            if f.kind != "warning" and ("customer_update" in f.subject or f.kind in ("customer_update", "public_reply"))]


def test_a_public_reply_is_sent_to_the_customer() -> None:
    sim = noticed()
    fx = sim.do(AddNote(text="We are on it.", public=True), T0 + M)
    assert kinds(fx) == [("public_reply", ["customer"])] and fx[0].body == "We are on it."


def test_an_internal_note_is_not_sent_to_the_customer() -> None:
    assert noticed().do(AddNote(text="db looks fine", public=False), T0 + M) == []


def test_tickets_opened_before_the_patch_send_no_public_replies() -> None:
    """Their histories scheduled no such notification: replay must see the same commands."""
    assert Sim().do(AddNote(text="We are on it.", public=True), T0 + M) == []


def test_customer_update_notify_rule_keeps_todays_breach_notification() -> None:
    sim = noticed()
    sim.do(Acknowledge(), T0 + M)
    fx = sim.advance(T0 + 40 * M)  # P1: customer_update every 30 minutes, restarted by the acknowledgement
    assert [k for k, _ in kinds(fx)] == ["breach"]


def test_remind_tells_the_assignee_not_the_breach_recipients() -> None:
    sim = noticed(customer_update_on_breach("remind"))
    sim.do(Acknowledge(), T0 + M)
    sim.do(Assign(assignee="agent:ana"), T0 + 2 * M)
    fx = sim.advance(T0 + 40 * M)
    assert kinds(fx) == [("reminder", ["assignee"])]
    assert sim.clock(UPD).breached, "the breach is still recorded"


def test_remind_with_nobody_assigned_tells_the_tiers_on_duty_contacts() -> None:
    sim = noticed(customer_update_on_breach("remind"))
    sim.do(Acknowledge(), T0 + M)
    fx = sim.advance(T0 + 40 * M)
    assert kinds(fx) == [("reminder", [f"tier:{sim.s.tier}"])]


def test_message_customer_sends_the_status_update_and_restarts_the_clock() -> None:
    sim = noticed(customer_update_on_breach("message_customer"))
    sim.do(Acknowledge(), T0 + M)
    fx = sim.advance(T0 + 40 * M)
    assert kinds(fx) == [("reminder", [f"tier:{sim.s.tier}"]), ("customer_update", ["customer"])]
    assert [e.action for e in sim.entries("customer_updated")] == ["customer_updated"]
    clock = sim.clock(UPD)
    assert clock.phase == "running" and clock.due_at == T0 + 31 * M + 30 * M, "the next update is due 30 min later"
    again = sim.advance(T0 + 62 * M)
    assert [k for k, _ in kinds(again)] == ["reminder", "customer_update"], "every 30 minutes while nobody writes"


@pytest.mark.parametrize("rule", ["remind", "message_customer"])
def test_the_policy_accepts_the_customer_update_rules(rule: str) -> None:
    assert customer_update_on_breach(rule).clocks[UPD].on_breach == rule


def test_an_unknown_on_breach_rule_names_the_allowed_ones() -> None:
    with pytest.raises(ValueError, match="message_customer"):
        customer_update_on_breach("page_everyone")


def test_the_contact_is_kept_on_the_ticket_but_not_in_its_search_attributes_or_memo() -> None:
    t = make_ticket(customer_contact="ana@example.com")
    s = tc.open_ticket(t, POLICY, T0).state
    assert s.ticket.customer_contact == "ana@example.com"
    assert "ana@example.com" not in repr(tc.search_attributes(s)) + repr(tc.list_memo(t))
