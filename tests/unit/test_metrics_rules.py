"""The metrics' pure rules (starter/client/metrics.py) and a ticket's published figures (workflows/ticket/figures.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from starter.client.metrics import (
    TicketFacts,
    compute,
    facts_from,
    movers,
    percentile,
    rate,
    tag_trends,
    window,
)
from starter.runtime.policy_file import load_policy
from workflows import ticket as core
from workflows.ticket import figures

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def facts(i: int, **kw: object) -> TicketFacts:
    return TicketFacts(id=f"T-{i}", opened_at=T0 + timedelta(minutes=i), **kw)  # type: ignore[arg-type]


def test_percentile_is_nearest_rank() -> None:
    values = list(range(1, 11))
    assert (percentile(values, 50), percentile(values, 90), percentile(values, 100)) == (5, 9, 10)
    assert percentile([7.0], 50) == 7.0 and percentile([], 90) is None
    assert percentile([3, 1, 2], 50) == 2  # unsorted input
    with pytest.raises(ValueError, match=r"p=0 must be in \(0, 100\]"):
        percentile(values, 0)


def test_rate_rounds_and_has_no_rate_without_a_denominator() -> None:
    assert rate(1, 3).rate == 0.3333
    assert rate(0, 0).rate is None


def test_tag_shares_and_the_tags_that_moved_most() -> None:
    now = [facts(1, escalations=1, tags=["a", "b"]), facts(2, escalations=2, tags=["a"]), facts(3, tags=["c"])]
    before = [facts(4, escalations=1, tags=["b"]), facts(5, escalations=1, tags=["c"])]
    shares = tag_trends(now, before)
    assert [(s.tag, s.escalations, s.share, s.previous_share, s.change) for s in shares] == [
        ("a", 2, 1.0, 0.0, 1.0), ("b", 1, 0.5, 0.5, 0.0), ("c", 0, 0.0, 0.5, -0.5)]
    assert [s.tag for s in movers(shares)] == ["a", "c"]  # b did not move
    assert [s.tag for s in movers(shares, 1)] == ["a"]


def test_a_tag_counted_once_per_ticket() -> None:
    shares = tag_trends([facts(1, escalations=1, tags=["a", "a"])], [])
    assert (shares[0].escalations, shares[0].share) == (1, 1.0)


def test_report_rates_and_durations() -> None:
    tickets = [
        facts(0, opened_tier="tier1", department="billing", escalations=1, breaches=["acknowledge:tier1"],
              acknowledged_at=T0 + timedelta(hours=2), ack_business_s=3600.0),
        facts(0, opened_tier="tier1", department="billing", resolved_at=T0 + timedelta(hours=3),
              resolve_business_s=7200.0, reopens=1, csat=5),
        facts(0, opened_tier="tier2", department="general", resolved_at=T0 + timedelta(hours=1),
              resolve_business_s=600.0, csat=2),
        facts(0, opened_tier="tier2", department="general", breaches=["resolution:tier2", "acknowledge:tier2"]),
    ]
    r = compute(tickets, [], start=T0, end=T0 + timedelta(days=1), group_by="department")
    assert r.previous_start == T0 - timedelta(days=1)
    assert (r.tickets_opened, r.escalation.rate) == (4, 0.25)
    assert {k: v.count for k, v in r.escalation_by_tier.items()} == {"tier1": 1, "tier2": 0}
    assert {k: v.rate for k, v in r.escalation_by_department.items()} == {"billing": 0.5, "general": 0.0}
    assert (r.breach.count, {k: v.count for k, v in r.breach_by_clock.items()}) == (2, {"acknowledge": 2,
                                                                                        "resolution": 1})
    assert {c: {t: v.count for t, v in by.items()} for c, by in r.breach_by_clock_and_tier.items()} == {
        "acknowledge": {"tier1": 1, "tier2": 1}, "resolution": {"tier2": 1}}
    assert (r.time_to_acknowledge.wall.median_s, r.time_to_acknowledge.business.median_s) == (7200.0, 3600.0)
    assert (r.time_to_resolution.wall.n, r.time_to_resolution.wall.median_s, r.time_to_resolution.wall.p90_s) == (
        2, 3600.0, 10800.0)
    assert (r.first_contact_resolution.count, r.first_contact_resolution.of) == (1, 2)  # the reopened one is not
    assert (r.reopen.count, r.reopen.of) == (1, 2)
    assert (r.csat.responses, r.csat.mean_score, r.csat.satisfied.count) == (2, 3.5, 1)
    assert [(g.group, g.tickets, g.breach.count) for g in r.groups] == [("billing", 2, 1), ("general", 2, 1)]


def test_an_empty_window_has_no_rates() -> None:
    r = compute([], [], start=T0, end=T0 + timedelta(days=1))
    assert r.tickets_opened == 0 and r.escalation.rate is None and r.time_to_resolution.wall.median_s is None


def test_bad_group_by_and_windows_are_named() -> None:
    with pytest.raises(ValueError, match="group_by 'x' is not one of tier, department, priority, channel"):
        compute([], [], start=T0, end=T0 + timedelta(days=1), group_by="x")
    assert window(None, None, T0) == (T0 - timedelta(days=30), T0)
    with pytest.raises(ValueError, match="must be before"):
        window(T0, T0, T0)
    with pytest.raises(ValueError, match="longer than 366 days"):
        window(T0 - timedelta(days=400), T0, T0)
    with pytest.raises(ValueError, match="has no time zone"):
        window(datetime(2026, 1, 1), T0, T0)


def test_facts_from_a_listed_ticket_without_figures() -> None:
    f = facts_from("T-1", T0, {"TicketTier": "tier2", "TicketEscalationCount": 2, "TicketTags": ["x"]}, None)
    assert (f.has_figures, f.opened_tier, f.escalations, f.tags) == (False, "tier2", 2, ["x"])


def test_a_ticket_publishes_its_figures() -> None:
    policy = load_policy()
    t = core.Ticket(id="T-9", subject="refund", customer_id="c-1", priority="P1", opened_at=T0, tags=["billing"])
    s = core.open_ticket(t, policy, T0).state
    assert figures.search_attributes(s) == {"TicketOpenedAt": T0, "TicketTags": ["billing"]}
    assert figures.counts(s, s.timeline)[0].name == "escalation_tickets_opened"
    s = core.step(s, core.Escalate(actor="agent:a", reason="stuck"), T0 + timedelta(minutes=5), policy).state
    s = core.step(s, core.Acknowledge(actor="agent:a"), T0 + timedelta(minutes=10), policy).state
    s = core.step(s, core.Resolve(actor="agent:a", summary="done"), T0 + timedelta(hours=1), policy).state
    m = figures.memo(s)
    assert (m["opened_tier"], m["escalations"], m["ack_business_s"], m["resolve_business_s"]) == (
        figures.opening_tier(s), 1, 600.0, 3600.0)  # P1: around the clock
    assert m["opened_tier"] != s.tier
    escalated = [c for c in figures.counts(s, s.timeline) if c.name == "escalation_escalations"]
    assert [c.labels for c in escalated] == [{"reason": "manual", "tier": s.tier}]


def test_breach_counts_and_lateness() -> None:
    policy = load_policy()
    t = core.Ticket(id="T-8", subject="down", customer_id="c-1", priority="P1", opened_at=T0)
    s = core.open_ticket(t, policy, T0).state
    due = core.next_due(s, T0 + timedelta(hours=2), policy)
    assert due is not None
    late = figures.lateness(s, policy, T0 + timedelta(hours=1, seconds=30))
    breach = {c.labels["clock"]: c.value for c in late if c.name == "escalation_sla_breach_lateness_seconds"}
    assert (breach["acknowledge"], breach["customer_update"]) == (30.0, 1830.0)  # due at 1 h and at 30 min
    assert not [c for c in late if c.name == "escalation_sla_warning_lateness_seconds"
                and c.labels["clock"] == "acknowledge"]  # superseded by its breach
    s = core.catch_up(s, T0 + timedelta(hours=1, seconds=30), policy).state
    breaches = [c for c in figures.counts(s, s.timeline) if c.name == "escalation_sla_breaches"]
    assert {"clock": "acknowledge", "tier": "tier1"} in [c.labels for c in breaches]
    auto = [c for c in figures.counts(s, s.timeline) if c.name == "escalation_escalations"]
    assert auto and all(c.labels["reason"] == "auto" for c in auto)
