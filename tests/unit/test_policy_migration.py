"""Moving an open ticket to a new policy version (the pure core): accrued time kept, due times recomputed, the
timeline says who moved it from which version to which; a policy that cannot govern the ticket is refused."""

from __future__ import annotations

import json
from datetime import UTC, timedelta
from typing import Any

import pytest

from tests.unit.test_ticket_core import POLICY, T0, H, M, Sim, make_ticket, policy_variant
from workflows import ticket as tc
from workflows.common.policy import Policy
from workflows.common.vocabulary import ClockName, Status
from workflows.ticket import Acknowledge, Rejected, Resolve, WaitOnCustomer

ACK, TIER, RES, UPD = ClockName.acknowledge, ClockName.tier, ClockName.resolution, ClockName.customer_update
ADMIN = "admin:root"


def p1(**fields: Any) -> Policy:
    """The default policy with P1's SLA fields changed."""
    return policy_variant(lambda d: d["priorities"]["P1"].update(fields))


def renamed(old: str, new: str) -> Policy:
    """The default policy with one id (a tier or a department) renamed wherever it appears."""
    text = json.dumps(POLICY.model_dump(mode="json", by_alias=True)).replace(f'"{old}"', f'"{new}"')
    return Policy.model_validate(json.loads(text))


def change(plan: tc.MigrationPlan, clock: ClockName) -> tc.DueChange:
    return next(c for c in plan.changes if c.clock == clock)


def acknowledged_p1() -> Sim:
    """A P1 at Tier 1, acknowledged at +10 min (its 20 tier minutes start then), looked at +15 min."""
    sim = Sim()
    sim.do(Acknowledge(actor="agent:alice"), T0 + 10 * M)
    sim.advance(T0 + 15 * M)
    return sim


def test_migration_keeps_accrued_time_and_moves_due_times() -> None:
    sim = acknowledged_p1()
    new = p1(tier={"tier0": "5m", "tier1": "40m", "tier2": "4h", "tier3": "8h"}, resolution="10h")
    before = sim.s.model_dump()
    out = tc.migrate(sim.s, POLICY, new, T0 + 15 * M, ADMIN, "tier 1 gets more time")
    assert sim.s.model_dump() == before, "migrate() mutated its input"
    s = out.state
    assert s.policy_version == new.version() != POLICY.version()
    tier, res = s.clocks[TIER], s.clocks[RES]
    assert tier.accrued == 5 * M and tier.target == 40 * M, "the 5 minutes used at Tier 1 are kept"
    assert tier.due_at == T0 + 15 * M + 35 * M
    assert res.accrued == 15 * M and res.due_at == T0 + 10 * H
    assert tier.started_at == sim.clock(TIER).started_at, "the clock is not restarted"
    c = change(out.plan, TIER)
    assert (c.due_before, c.due_after) == (T0 + 30 * M, T0 + 50 * M)
    assert (c.target_before, c.target_after) == (20 * M, 40 * M) and c.changed and not c.overdue
    assert change(out.plan, UPD).changed is False, "an unchanged target keeps its due time"
    entry = s.timeline[-1]
    assert (entry.action, entry.actor, entry.reason, entry.rule) == (tc.MIGRATED, ADMIN, "tier 1 gets more time",
                                                                    "policy")
    assert POLICY.version() in entry.summary and new.version() in entry.summary
    assert "tier due 2026-11-25 09:30:00Z -> 2026-11-25 09:50:00Z" in entry.summary


def test_migrated_ticket_breaches_at_the_new_due_time() -> None:
    sim = acknowledged_p1()
    new = p1(tier={"tier0": "5m", "tier1": "40m", "tier2": "4h", "tier3": "8h"})
    sim.state = tc.migrate(sim.s, POLICY, new, sim.now, ADMIN).state
    sim.policy = new
    sim.advance(T0 + 49 * M)
    assert sim.s.tier == "tier1", "the old due time (+30 min) no longer applies"
    sim.advance(T0 + 51 * M)
    assert sim.s.tier == "tier2"
    esc = sim.entries("escalated")[-1]
    assert esc.clock == TIER and esc.due_at == T0 + 50 * M


def test_warnings_follow_the_new_percentages() -> None:
    sim = acknowledged_p1()
    plan = tc.preview(sim.s, POLICY, p1(warn_at_percent=[90]), sim.now)
    c = change(plan, TIER)
    assert set(c.warnings_before) == {50, 75} and set(c.warnings_after) == {90}
    assert c.warnings_after[90] == T0 + 10 * M + 18 * M and c.due_after == c.due_before


def test_a_shorter_target_than_the_time_used_is_overdue_and_breaches_at_once() -> None:
    sim = acknowledged_p1()
    new = p1(tier={"tier0": "5m", "tier1": "3m", "tier2": "4h", "tier3": "8h"})
    out = tc.migrate(sim.s, POLICY, new, sim.now, ADMIN)
    assert change(out.plan, TIER).overdue
    caught = tc.catch_up(out.state, sim.now, new)
    assert caught.state.tier == "tier2" and [b.clock for b in caught.state.breaches] == [TIER]
    kinds = [e.kind for e in caught.effects if isinstance(e, tc.Notify)]
    assert "warning" not in kinds, "warnings whose breach is due too are superseded"


def test_a_paused_clock_stays_paused_with_its_accrued_time() -> None:
    sim = acknowledged_p1()
    sim.do(WaitOnCustomer(actor="agent:alice"), T0 + 15 * M)
    new = p1(tier={"tier0": "5m", "tier1": "40m", "tier2": "4h", "tier3": "8h"})
    s = tc.migrate(sim.s, POLICY, new, T0 + 2 * H, ADMIN).state
    tier = s.clocks[TIER]
    assert (tier.phase, tier.accrued, tier.target, tier.due_at) == ("paused", 5 * M, 40 * M, None)
    assert s.status == Status.waiting_on_customer


def test_a_new_calendar_counts_the_past_in_the_old_one() -> None:
    """P3 moves from office hours to around the clock: what accrued counts as the office calendar counted it."""
    sim = Sim(make_ticket(priority="P3", opened_at=T0))  # Wednesday 10:00 Berlin
    sim.advance(T0 + 12 * H)  # 21:00 Berlin: 8 office hours accrued (10:00-18:00)
    new = policy_variant(lambda d: d["priorities"]["P3"].update(calendar="around-the-clock"))
    s = tc.migrate(sim.s, POLICY, new, sim.now, ADMIN).state
    res = s.clocks[RES]
    assert s.calendar.name == "around-the-clock"
    assert res.accrued == 8 * H and res.due_at == sim.now + 19 * H  # 27h target, 8h used


@pytest.mark.parametrize(("old", "new", "code", "named"), [
    ("tier1", "frontline", "unknown_tier", "tier 'tier1'"),
    ("general", "helpdesk", "unknown_department", "department 'general'"),
])
def test_a_policy_lacking_the_tickets_tier_or_department_is_refused(old: str, new: str, code: str,
                                                                     named: str) -> None:
    sim = acknowledged_p1()
    policy = renamed(old, new)
    before = sim.s.model_dump()
    with pytest.raises(Rejected) as info:
        tc.migrate(sim.s, POLICY, policy, sim.now, ADMIN)
    assert info.value.code == code
    assert named in info.value.message and new in info.value.message and policy.version() in info.value.message
    assert sim.s.model_dump() == before


def test_only_open_tickets_move() -> None:
    sim = acknowledged_p1()
    sim.do(Resolve(actor="agent:alice", summary="fixed"), T0 + 20 * M)
    with pytest.raises(Rejected) as info:
        tc.check_migration(sim.s, p1(resolution="10h"))
    assert info.value.code == "not_open" and "resolved" in info.value.message


def test_same_version_and_a_stale_preview_are_refused() -> None:
    sim = acknowledged_p1()
    with pytest.raises(Rejected) as same:
        tc.check_migration(sim.s, POLICY)
    assert same.value.code == "same_policy"
    new = p1(resolution="10h")
    with pytest.raises(Rejected) as stale:
        tc.check_migration(sim.s, new, from_version="default@000000000000")
    assert stale.value.code == "policy_changed"
    tc.check_migration(sim.s, new, from_version=POLICY.version())


def test_the_update_input_round_trips_as_json() -> None:
    new = p1(resolution="10h")
    inp = tc.MigratePolicy(actor=ADMIN, policy=new, reason="why")
    back = tc.MigratePolicy.model_validate_json(inp.model_dump_json())
    assert back.policy.version() == new.version()
    plan = tc.preview(acknowledged_p1().s, POLICY, new, T0 + 15 * M)
    assert tc.MigrationPlan.model_validate_json(plan.model_dump_json()) == plan
    assert plan.at.tzinfo is not None and plan.at == (T0 + 15 * M).astimezone(UTC)
    assert change(plan, RES).accrued == timedelta(minutes=15)


def test_a_clock_not_started_takes_the_new_target_when_it_starts() -> None:
    """An unacknowledged Tier 1 ticket's tier clock waits for the acknowledgement: migrated, it stays idle (no
    target shown), then starts with the new policy's 40 minutes."""
    sim = Sim()
    new = p1(tier={"tier0": "5m", "tier1": "40m", "tier2": "4h", "tier3": "8h"})
    s = tc.migrate(sim.s, POLICY, new, T0 + 5 * M, ADMIN).state
    assert (s.clocks[TIER].phase, s.clocks[TIER].target) == ("idle", None)
    sim.state, sim.policy = s, new
    sim.do(Acknowledge(actor="agent:alice"), T0 + 10 * M)
    assert sim.clock(TIER).target == 40 * M and sim.clock(TIER).due_at == T0 + 50 * M
