"""Executive escalation: to the executive tier, the executives told, an agent's is a request."""

from __future__ import annotations

import pytest

from tests.unit.test_ticket_core import POLICY, T0, M, Sim
from workflows import ticket as tc
from workflows.ticket import Acknowledge, EscalateToExecutive, Notify, Rejected, Resolve


def test_it_moves_the_ticket_to_the_executive_tier_and_tells_the_executives() -> None:
    sim = Sim()
    fx = sim.do(EscalateToExecutive(actor="supervisor:sam", reason="customer threatens to cancel"), T0 + M)
    assert sim.s.tier == tc.executive_tier(POLICY) and sim.s.executive_attention
    told = [f for f in fx if isinstance(f, Notify)]
    assert [f.kind for f in told] == ["executive", "escalation"]
    assert told[0].recipients == POLICY.executive.notify
    assert [e.action for e in sim.s.timeline[-2:]] == ["executive_escalation", "escalated"]
    assert sim.s.timeline[-2].reason == "customer threatens to cancel"


def test_an_agents_request_tells_the_escalation_manager_and_moves_nothing() -> None:
    sim = Sim()
    tier = sim.s.tier
    fx = sim.do(EscalateToExecutive(actor="agent:ana", reason="threatens to leave", request_only=True), T0 + M)
    assert [(f.kind, f.recipients) for f in fx if isinstance(f, Notify)] == [("executive_request", ["escalation_manager"])]
    assert sim.s.tier == tier and not sim.s.executive_attention
    assert sim.s.timeline[-1].action == "executive_escalation_requested"


def test_a_second_executive_escalation_is_rejected_before_it_touches_the_ticket() -> None:
    sim = Sim()
    sim.do(EscalateToExecutive(actor="supervisor:sam", reason="churn risk"), T0 + M)
    with pytest.raises(Rejected) as err:
        tc.check(sim.s, EscalateToExecutive(actor="supervisor:sam", reason="again"), POLICY)
    assert err.value.code == "already_executive"


def test_a_resolved_ticket_cannot_be_escalated_to_the_executives() -> None:
    sim = Sim()
    sim.do(Acknowledge(), T0 + M)
    sim.do(Resolve(summary="fixed"), T0 + 2 * M)
    with pytest.raises(Rejected) as err:
        tc.check(sim.s, EscalateToExecutive(actor="supervisor:sam", reason="x"), POLICY)
    assert err.value.code == "ticket_resolved"


def test_the_reason_is_required() -> None:
    with pytest.raises(ValueError, match="reason"):
        EscalateToExecutive(actor="supervisor:sam", reason="")


def test_the_escalation_manager_hears_of_transfers_and_the_resolution() -> None:
    from workflows.ticket import AssignManager, Transfer

    sim = Sim()
    sim.do(AssignManager(actor="supervisor:sam", manager="mia"), T0 + M)
    assert sim.s.escalation_manager == "mia" and sim.s.timeline[-1].action == "escalation_manager_assigned"
    moved = sim.do(Transfer(department="billing"), T0 + 2 * M)
    sim.do(Acknowledge(), T0 + 3 * M)
    done = sim.do(Resolve(summary="fixed"), T0 + 4 * M)
    assert "escalation_manager" in next(f for f in moved if f.kind == "transferred").recipients
    assert "escalation_manager" in next(f for f in done if f.kind == "resolved").recipients


def test_without_an_escalation_manager_the_recipients_are_todays() -> None:
    from workflows.ticket import Transfer

    moved = Sim().do(Transfer(department="billing"), T0 + M)
    assert next(f for f in moved if f.kind == "transferred").recipients == ["department:billing"]
