"""The ticket state machine with the default policy: the seed example, clocks, rejections, properties.

Deadlines are fed the way the workflow does it: ask `next_due`, step it, repeat until None,
with `now` = the deadline's own instant (timers firing on time).
"""

from __future__ import annotations

import copy
import itertools
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from starter.runtime.policy_file import DEFAULT_POLICY, load_policy
from workflows import ticket as tc
from workflows.common import clocks
from workflows.common.policy import Policy
from workflows.common.vocabulary import PRIORITIES, Channel, ClockName, ResolutionKind, Status
from workflows.ticket import (
    Acknowledge,
    AddNote,
    Assign,
    ChangePriority,
    Close,
    CustomerReply,
    DeadlineReached,
    Escalate,
    Notify,
    Rejected,
    Reopen,
    Resolve,
    Ticket,
    TicketState,
    Transfer,
    WaitOnCustomer,
)

POLICY = load_policy(DEFAULT_POLICY)
BERLIN = ZoneInfo("Europe/Berlin")
T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)  # a Wednesday
M = timedelta(minutes=1)
H = timedelta(hours=1)
ACK, TIER, RES, UPD = ClockName.acknowledge, ClockName.tier, ClockName.resolution, ClockName.customer_update


def make_ticket(subject: str = "Printer on fire", description: str = "", *, priority: str | None = "P1",
                opened_at: datetime = T0, **kw: Any) -> Ticket:
    return Ticket(id="T-1", subject=subject, description=description, customer_id="cust-1", priority=priority,
                  opened_at=opened_at, **kw)


def notices(effects: list[tc.Effect]) -> list[Notify]:
    return [e for e in effects if isinstance(e, Notify)]


class Sim:
    """Drives one ticket like the workflow: deadlines first (each at its own instant), then the event."""

    def __init__(self, ticket: Ticket | None = None, policy: Policy = POLICY) -> None:
        self.policy = policy
        self.ticket = ticket or make_ticket()
        out = tc.open_ticket(self.ticket, policy, self.ticket.opened_at)
        self.state = out.state
        self.now = self.ticket.opened_at.astimezone(UTC)  # like workflow.now(): UTC, so + is real time
        self.effects: list[Notify] = notices(out.effects)
        self.fired: list[DeadlineReached] = []

    def advance(self, to: datetime) -> list[Notify]:
        to = to.astimezone(UTC)
        assert to >= self.now
        fx: list[Notify] = []
        for _ in range(1000):
            ev = tc.next_due(self.state, to, self.policy)
            if ev is None:
                break
            assert self.now <= ev.due_at <= to
            self.fired.append(ev)
            fx += self._step(ev, ev.due_at)
        else:
            raise AssertionError("deadlines never settle")
        self.now = to
        return fx

    def do(self, event: Any, at: datetime | None = None) -> list[Notify]:
        """Deadlines up to `at`, the event at `at`, then whatever the event made due at once."""
        fx = self.advance(at or self.now)
        fx += self._step(event, self.now)
        return fx + self.advance(self.now)

    def _step(self, event: Any, now: datetime) -> list[Notify]:
        before = self.state.model_dump()
        out = tc.step(self.state, event, now, self.policy)
        assert self.state.model_dump() == before, "step() mutated its input"
        self.state, self.now = out.state, now
        self.effects += notices(out.effects)
        return list(out.effects)  # type: ignore[arg-type]

    @property
    def s(self) -> TicketState:
        return self.state

    def clock(self, name: ClockName) -> clocks.ClockState:
        return self.state.clocks[name]

    def entries(self, action: str) -> list[tc.TimelineEntry]:
        return [e for e in self.state.timeline if e.action == action]


def policy_variant(fn: Any) -> Policy:
    data = copy.deepcopy(yaml.safe_load(DEFAULT_POLICY.read_text(encoding="utf-8")))
    fn(data)
    return Policy.model_validate(data)


# ----- opening ----------------------------------------------------------------------


def test_open_ticket() -> None:
    sim = Sim()
    s = sim.s
    assert (s.status, s.tier, s.department, s.priority, s.routing_rule) == (Status.new, "tier1", "general", "P1", None)
    assert s.policy_version == POLICY.version()
    assert s.calendar == POLICY.calendar_for("P1")
    assert [e.action for e in s.timeline] == ["opened"]
    assert sim.clock(ACK).phase == "running" and sim.clock(ACK).due_at == T0 + 60 * M
    assert sim.clock(TIER).phase == "idle"  # tier1: the tier clock starts on the acknowledgement
    assert sim.clock(RES).due_at == T0 + 8 * H
    assert sim.clock(UPD).due_at == T0 + 30 * M
    kinds = [f.kind for f in sim.effects]
    assert kinds == ["opened", "stakeholders"]
    assert sim.effects[0].recipients == ["customer"]
    assert set(sim.effects[1].recipients) == set(POLICY.sla("P1").stakeholders)
    assert tc.search_attributes(s) == {
        "TicketStatus": "new", "TicketTier": "tier1", "TicketPriority": "P1", "TicketDepartment": "general",
        "TicketChannel": "api", "TicketCustomerId": "cust-1", "TicketAssignee": "", "TicketEscalationCount": 0,
        "TicketSlaBreached": False, "TicketPolicyVersion": POLICY.version(),
    }


def test_open_routes_by_rule_and_starts_the_tier_clock_on_entry() -> None:
    sim = Sim(make_ticket("Total outage", priority=None))
    s = sim.s
    assert (s.tier, s.department, s.priority, s.routing_rule) == ("tier2", "networking", "P1", "outage")
    assert "rule 'outage'" in s.timeline[0].summary and s.timeline[0].rule == "outage"
    assert sim.clock(TIER).phase == "running" and sim.clock(TIER).due_at == T0 + 4 * H  # tier2 starts on entry


def test_clocks_start_at_opened_at_even_if_the_workflow_starts_later() -> None:
    out = tc.open_ticket(make_ticket(), POLICY, T0 + 5 * M)
    assert out.state.clocks[ACK].due_at == T0 + 60 * M
    assert out.state.as_of == T0 + 5 * M


def test_no_stakeholders_below_p2() -> None:
    sim = Sim(make_ticket(priority="P4"))
    assert [f.kind for f in sim.effects] == ["opened"]
    assert sim.clock(UPD).target is None and sim.clock(UPD).due_at is None  # P4 has no update cadence


def test_business_hours_sla_from_friday_evening() -> None:
    one_hour = policy_variant(lambda d: d["priorities"]["P3"].update(acknowledge="1h"))
    friday = datetime(2026, 11, 27, 17, 30, tzinfo=BERLIN)
    sim = Sim(make_ticket(priority="P3", opened_at=friday), one_hour)
    assert sim.s.calendar.name == "office"
    assert sim.clock(ACK).due_at == datetime(2026, 11, 30, 9, 30, tzinfo=BERLIN)
    sim.advance(datetime(2026, 11, 30, 9, 29, tzinfo=BERLIN))
    assert sim.s.tier == "tier1" and not sim.s.breaches
    sim.advance(datetime(2026, 11, 30, 9, 30, tzinfo=BERLIN))
    assert sim.s.tier == "tier2"
    assert sim.s.breaches[0].clock == ACK and sim.s.breaches[0].due_at == datetime(2026, 11, 30, 9, 30, tzinfo=BERLIN)


def test_default_p3_uses_office_hours() -> None:
    friday = datetime(2026, 11, 27, 17, 30, tzinfo=BERLIN)
    sim = Sim(make_ticket(priority="P3", opened_at=friday))
    office = POLICY.calendars["office"]
    for name, target in ((ACK, POLICY.sla("P3").acknowledge), (RES, POLICY.sla("P3").resolution)):
        due = sim.clock(name).due_at
        assert due is not None and due == office.add(friday, target)
        assert office.elapsed(friday, due) == target


# ----- the seed example ------------------------------------------------------------------


def test_seed_unacknowledged_p1_escalates_at_exactly_60_minutes() -> None:
    sim = Sim()
    sim.advance(T0 + 60 * M - timedelta(microseconds=1))
    assert sim.s.tier == "tier1" and sim.s.escalation_count == 0
    # warnings came first: 50% and 75% of the acknowledge clock, once each
    ack_warnings = [e for e in sim.entries("sla_warning") if e.clock == ACK]
    assert [e.at for e in ack_warnings] == [T0 + 30 * M, T0 + 45 * M]

    fx = sim.advance(T0 + 60 * M)
    s = sim.s
    assert s.tier == "tier2" and s.escalation_count == 1 and s.status == Status.new
    [esc] = sim.entries("escalated")
    assert esc.at == T0 + 60 * M and esc.actor == tc.SYSTEM_SLA
    assert esc.clock == ACK and esc.due_at == T0 + 60 * M
    assert esc.rule == "clocks.acknowledge.on_breach"
    assert "tier1" in esc.summary and "tier2" in esc.summary and "acknowledge" in esc.reason
    assert [f.kind for f in fx] == ["breach", "escalation"]
    assert "tier2_lead" in fx[1].recipients and "escalation_manager" in fx[1].recipients
    assert fx[1].tier == "tier2"
    assert s.breaches[-1].clock == ACK and s.breaches[-1].tier == "tier1"
    assert tc.search_attributes(s)["TicketSlaBreached"] is True
    # tier2's tier clock: 4 hours from entry
    assert sim.clock(TIER).phase == "running" and sim.clock(TIER).tier == "tier2"
    assert sim.clock(TIER).due_at == T0 + 60 * M + 4 * H
    # the breached acknowledge clock sets no more deadlines
    assert all(d.clock != ACK for d in tc.deadlines(s, POLICY))


def test_seed_tier2_four_hours_then_tier3_then_notify_only() -> None:
    sim = Sim()
    sim.advance(T0 + 5 * H - M)
    assert sim.s.tier == "tier2"
    sim.advance(T0 + 5 * H)
    assert sim.s.tier == "tier3" and sim.s.escalation_count == 2
    esc = sim.entries("escalated")[-1]
    assert esc.clock == TIER and esc.due_at == T0 + 5 * H and "tier2" in esc.summary
    tier3 = POLICY.sla("P1").tier["tier3"]
    assert sim.clock(TIER).due_at == T0 + 5 * H + tier3
    # tier3 is the highest tier entered automatically: its breach notifies only
    sim.advance(T0 + 5 * H + tier3 - timedelta(microseconds=1))
    fx = sim.advance(T0 + 5 * H + tier3)
    assert sim.s.tier == "tier3" and sim.s.escalation_count == 2
    assert [f.kind for f in fx] == ["breach"] and fx[0].tier == "tier3"
    assert sim.s.breaches[-1].clock == TIER and sim.s.breaches[-1].tier == "tier3"
    # resolution (8h) breached too, notify only
    assert {b.clock for b in sim.s.breaches} == {ACK, UPD, TIER, RES}
    assert tc.deadlines(sim.s, POLICY) == []
    assert tc.next_due(sim.s, T0 + timedelta(days=30), POLICY) is None
    keys = [f.key for f in sim.effects]
    assert len(keys) == len(set(keys))


def test_seed_acknowledged_tier1_gets_20_minutes() -> None:
    sim = Sim()
    sim.do(Acknowledge(actor="alice"), T0 + 10 * M)
    s = sim.s
    assert s.status == Status.open and s.acknowledged_at == T0 + 10 * M
    assert sim.clock(ACK).phase == "stopped" and sim.clock(ACK).accrued == 10 * M
    assert "10m" in sim.entries("acknowledged")[0].summary
    assert sim.clock(TIER).phase == "running" and sim.clock(TIER).due_at == T0 + 30 * M
    assert sim.clock(UPD).due_at == T0 + 40 * M  # restarted by the acknowledgement
    sim.advance(T0 + 30 * M - timedelta(seconds=1))
    assert sim.s.tier == "tier1"
    fx = sim.advance(T0 + 30 * M)
    assert sim.s.tier == "tier2"
    esc = sim.entries("escalated")[-1]
    assert esc.clock == TIER and esc.due_at == T0 + 30 * M
    assert [f.kind for f in fx] == ["breach", "escalation"]
    # no acknowledge breach later: that clock stopped
    sim.advance(T0 + 2 * H)
    assert all(b.clock != ACK for b in sim.s.breaches)


def test_breach_of_a_clock_that_only_notifies() -> None:
    sim = Sim()
    sim.do(Acknowledge(), T0 + M)
    sim.do(Escalate(reason="expert needed"), T0 + 2 * M)  # tier2, 4h tier clock
    sim.do(AddNote(text="working on it", public=True), T0 + 10 * M)
    fx = sim.advance(T0 + 40 * M)  # customer_update (30m after the public note) breaches: notify only
    assert [f.kind for f in fx if f.kind == "breach"] == ["breach"]
    assert sim.s.tier == "tier2" and sim.s.escalation_count == 1


def test_warnings_fire_once_and_before_the_breach() -> None:
    sim = Sim()
    sim.advance(T0 + 30 * M)
    upd = [(e.action, e.clock) for e in sim.s.timeline if e.clock == UPD]
    assert upd == [("sla_warning", UPD), ("sla_warning", UPD), ("sla_breached", UPD)]
    assert sim.clock(UPD).warnings_sent == [50, 75]
    # replaying a stale warning event changes nothing
    stale = DeadlineReached(kind="warning", clock=UPD, percent=50, due_at=T0 + 15 * M)
    out = tc.step(sim.s, stale, T0 + 31 * M, POLICY)
    assert out.effects == [] and out.state.timeline == sim.s.timeline


def test_an_early_or_stale_deadline_is_ignored() -> None:
    sim = Sim()
    early = DeadlineReached(kind="breach", clock=ACK, due_at=T0 + 60 * M)
    out = tc.step(sim.s, early, T0 + 10 * M, POLICY)
    assert out.effects == [] and out.state.tier == "tier1" and not out.state.breaches
    assert out.state.timeline == sim.s.timeline
    # a breach event for a clock that is not running
    out = tc.step(sim.s, DeadlineReached(kind="breach", clock=TIER, due_at=T0), T0 + 10 * M, POLICY)
    assert out.effects == [] and out.state.timeline == sim.s.timeline


def test_catch_up_after_a_late_wake_up_gives_the_new_tier_its_time() -> None:
    """The default: the acknowledge deadline (T0+1h) and Tier 2's (1h+4h) both passed while the worker was down;
    one escalation, applied when the system acted, and Tier 2's clock starts then (a full 4 hours to act)."""
    sim = Sim()
    late = T0 + 6 * H
    out = tc.catch_up(sim.s, late, POLICY)
    assert out.state.tier == "tier2" and out.state.escalation_count == 1
    (esc,) = [e for e in out.state.timeline if e.action == "escalated"]
    assert (esc.due_at, esc.at, esc.acted_at) == (T0 + H, late, late)
    (breach,) = [e for e in out.state.timeline if e.action == "sla_breached" and e.clock == ACK]
    assert (breach.due_at, breach.acted_at) == (T0 + H, late)
    assert out.state.clocks[TIER].due_at == late + 4 * H, "tier2's 4 hours counted from when the system acted"
    assert tc.next_due(out.state, late, POLICY) is None
    assert [f.kind for f in out.effects].count("escalation") == 1
    # the old rule (a shell replaying a history from before its patch): no acted_at, each at its due time
    old = tc.catch_up(sim.s, late, POLICY, acted_at=lambda: False)
    assert old.state.tier == "tier3" and all(e.acted_at is None for e in old.state.timeline)


def test_a_deadline_applied_within_late_after_stands_at_its_due_time() -> None:
    """A timer's usual lag (here 9 s, under the default 10 s) is not an outage: the escalation stands at its due
    time and Tier 2's clock starts there; acted_at still says when the system acted. 11 s late counts as late."""
    for lag, expected_at in ((timedelta(seconds=9), T0 + H), (timedelta(seconds=11), T0 + H + timedelta(seconds=11))):
        sim = Sim()
        sim.advance(T0 + H - timedelta(microseconds=1))  # every earlier deadline on time
        out = tc.catch_up(sim.s, T0 + H + lag, POLICY)
        (esc,) = [e for e in out.state.timeline if e.action == "escalated"]
        assert (esc.at, esc.acted_at) == (expected_at, T0 + H + lag), lag
        assert out.state.clocks[TIER].due_at == expected_at + 4 * H


def test_catch_up_cascades_when_the_policy_asks() -> None:
    """`catch_up.new_tier_clock_starts: due_at`: each missed deadline at its own due time, as timers on time would."""
    policy = Policy.model_validate({**POLICY.model_dump(by_alias=True, exclude={"catch_up"}),
                                    "catch_up": {"new_tier_clock_starts": "due_at"}})
    assert policy.version() != POLICY.version()
    sim = Sim()
    late = T0 + 6 * H
    out = tc.catch_up(sim.s, late, policy)
    assert out.state.tier == "tier3" and out.state.escalation_count == 2
    first, second = [e for e in out.state.timeline if e.action == "escalated"]
    assert (first.due_at, first.at, first.acted_at) == (T0 + H, T0 + H, late)
    assert (second.due_at, second.at, second.acted_at) == (T0 + 5 * H, T0 + 5 * H, late)
    assert tc.next_due(out.state, late, policy) is None
    assert [f.kind for f in out.effects].count("escalation") == 2
    # the same as timers on time (the Sim)
    sim.advance(late)
    assert sim.s.tier == out.state.tier and sim.s.escalation_count == out.state.escalation_count


def test_the_catch_up_defaults_are_frozen() -> None:
    """A policy without `catch_up` (every policy of before the rule) is run by these defaults, which are not in its
    snapshot: changing one changes running tickets' tier clocks, so it needs a new patch, not an edit here."""
    from workflows.common.policy import CatchUp

    rule = CatchUp()
    assert (rule.new_tier_clock_starts, rule.late_after) == ("acted_at", timedelta(seconds=10))


def test_catch_up_option_is_checked() -> None:
    with pytest.raises(ValueError, match="new_tier_clock_starts"):
        Policy.model_validate({**POLICY.model_dump(by_alias=True, exclude={"catch_up"}),
                               "catch_up": {"new_tier_clock_starts": "later"}})


# ----- waiting on the customer ------------------------------------------------------------


def test_wait_on_customer_pauses_and_reply_resumes_without_instant_breach() -> None:
    sim = Sim()
    sim.do(Acknowledge(), T0 + 5 * M)
    sim.do(WaitOnCustomer(reason="need logs"), T0 + 10 * M)
    assert sim.s.status == Status.waiting_on_customer
    for name in (TIER, RES, UPD):
        assert sim.clock(name).phase == "paused" and sim.clock(name).due_at is None
    assert sim.clock(TIER).accrued == 5 * M and sim.clock(RES).accrued == 10 * M
    assert tc.deadlines(sim.s, POLICY) == []
    # a long wait: far past every original due time, nothing breaches
    reply_at = T0 + 30 * H
    fx = sim.do(CustomerReply(message="here are the logs", message_id="m-1"), reply_at)
    assert [f.kind for f in fx] == []
    assert not sim.s.breaches and sim.s.tier == "tier1"
    assert sim.s.status == Status.open
    assert "m-1" in sim.entries("customer_replied")[0].summary
    assert sim.clock(TIER).due_at == reply_at + 15 * M  # the 20 minutes minus the 5 already spent
    assert sim.clock(RES).due_at == reply_at + 8 * H - 10 * M
    assert sim.clock(UPD).due_at == reply_at + 30 * M  # restarted when we asked the customer
    assert tc.next_due(sim.s, reply_at, POLICY) is None
    sim.advance(reply_at + 15 * M)
    assert sim.s.tier == "tier2"  # the remaining tier time still counts after the reply


def test_wait_before_acknowledgement_pauses_the_ack_clock_and_goes_back_to_new() -> None:
    sim = Sim()
    sim.do(WaitOnCustomer(), T0 + 10 * M)
    assert sim.clock(ACK).phase == "paused", "no escalation while the customer owes us an answer (FIELD #1)"
    sim.advance(T0 + 5 * H)
    assert sim.s.tier == "tier1" and not sim.s.breaches
    sim.do(CustomerReply(message="ok"), T0 + 5 * H)
    assert sim.s.status == Status.new
    assert sim.clock(ACK).due_at == T0 + 5 * H + 50 * M, "the 50 unused minutes remain"


def test_ack_breach_after_reaching_tier2_does_not_climb_again() -> None:
    """Tier 2 has 4 hours from entry: a missed acknowledgement does not cut that short."""
    sim = Sim()
    sim.do(Escalate(reason="obvious app bug"), T0 + 5 * M)
    sim.advance(T0 + 2 * H)
    assert sim.s.tier == "tier2" and ACK in [b.clock for b in sim.s.breaches]
    sim.advance(T0 + 5 * M + 4 * H)
    assert sim.s.tier == "tier3", "the tier clock, not the ack clock, moves it on"


def test_wait_on_customer_in_office_hours() -> None:
    monday = datetime(2026, 11, 30, 9, 0, tzinfo=BERLIN)
    sim = Sim(make_ticket(priority="P3", opened_at=monday))
    sim.do(Acknowledge(), monday + H)
    sim.do(WaitOnCustomer(), monday + 2 * H)
    reply = datetime(2026, 12, 4, 17, 0, tzinfo=BERLIN)  # Friday, one office hour left
    sim.do(CustomerReply(message="back"), reply)
    office = POLICY.calendars["office"]
    remaining = POLICY.sla("P3").resolution - 2 * H
    assert sim.clock(RES).accrued == 2 * H
    assert sim.clock(RES).due_at == office.add(reply, remaining)


# ----- transfers ---------------------------------------------------------------------


def test_transfer_changes_department_not_tier_nor_tier_clock() -> None:
    sim = Sim()
    sim.do(Acknowledge(), T0 + 5 * M)
    tier_clock = sim.clock(TIER)
    fx = sim.do(Transfer(department="billing", reason="refund"), T0 + 10 * M)
    assert sim.s.department == "billing" and sim.s.tier == "tier1" and sim.s.escalation_count == 0
    assert sim.clock(TIER) == tier_clock  # not restarted
    assert [f.kind for f in fx] == ["transferred"] and fx[0].recipients == ["department:billing"]
    assert "tier stays tier1" in sim.entries("transferred")[0].summary
    assert tc.search_attributes(sim.s)["TicketDepartment"] == "billing"
    sim.advance(T0 + 25 * M)
    assert sim.s.tier == "tier2"  # 20 minutes after the acknowledgement, transfer or not


def test_transfer_can_restart_the_tier_clock_by_policy() -> None:
    p = policy_variant(lambda d: d["clocks"]["tier"]["restarts_on"].append("transferred"))
    sim = Sim(policy=p)
    sim.do(Acknowledge(), T0 + 5 * M)
    sim.do(Transfer(department="billing"), T0 + 10 * M)
    assert sim.clock(TIER).started_at == T0 + 10 * M and sim.clock(TIER).due_at == T0 + 30 * M


# ----- rejections ----------------------------------------------------------------------


def _state(kind: str) -> TicketState:
    sim = Sim()
    if kind in ("acknowledged", "resolved", "closed", "top"):
        sim.do(Acknowledge(), T0 + M)
    if kind == "top":
        sim.do(Escalate(reason="exec", to_tier="executive"), T0 + 2 * M)
    if kind in ("resolved", "closed"):
        sim.do(Resolve(summary="fixed"), T0 + 3 * M)
    if kind == "closed":
        sim.do(Close(), T0 + 4 * M)
    if kind == "waiting":
        sim.do(WaitOnCustomer(), T0 + M)
    return sim.s


ALL_EVENTS = [
    Acknowledge(), Escalate(reason="x"), Transfer(department="billing"), WaitOnCustomer(), CustomerReply(message="hi"),
    Resolve(summary="x"), Reopen(), Close(), Assign(assignee="bob"), AddNote(text="n"), ChangePriority(priority="P2"),
    DeadlineReached(kind="auto_close", due_at=T0),
]

REJECTIONS = [
    *[("closed", e, "ticket_closed") for e in ALL_EVENTS],
    ("top", Escalate(reason="more"), "top_tier"),
    ("new", Transfer(department="sales"), "unknown_department"),
    ("new", Transfer(department="general"), "same_department"),
    ("new", Escalate(reason="x", to_tier="tier1"), "not_above"),
    ("new", Escalate(reason="x", to_tier="tier0"), "not_above"),
    ("top", Escalate(reason="x", to_tier="executive"), "not_above"),
    ("new", Escalate(reason="x", to_tier="ceo"), "unknown_tier"),
    ("acknowledged", Acknowledge(), "already_acknowledged"),
    ("new", Reopen(), "not_resolved"),
    ("acknowledged", Close(), "not_resolved"),
    ("waiting", Close(), "not_resolved"),
    ("resolved", Escalate(reason="x"), "ticket_resolved"),
    ("resolved", Acknowledge(), "ticket_resolved"),
    ("resolved", Transfer(department="billing"), "ticket_resolved"),
    ("resolved", WaitOnCustomer(), "ticket_resolved"),
    ("resolved", Resolve(summary="again"), "ticket_resolved"),
    ("resolved", ChangePriority(priority="P2"), "ticket_resolved"),
    ("waiting", WaitOnCustomer(), "already_waiting"),
    ("new", ChangePriority(priority="P1"), "same_priority"),
]


@pytest.mark.parametrize(("kind", "event", "code"), REJECTIONS, ids=[f"{k}-{type(e).__name__}-{c}" for k, e, c in REJECTIONS])
def test_rejections(kind: str, event: Any, code: str) -> None:
    s = _state(kind)
    before = s.model_dump()
    with pytest.raises(Rejected) as err:
        tc.check(s, event, POLICY)
    assert err.value.code == code and err.value.message
    assert str(err.value).startswith(f"{code}: ")
    with pytest.raises(Rejected) as err2:
        tc.step(s, event, T0 + H, POLICY)
    assert err2.value.code == code
    assert s.model_dump() == before  # neither check() nor step() changed anything


def test_rejection_messages_name_the_allowed_values() -> None:
    s = _state("new")
    with pytest.raises(Rejected, match="allowed: general, billing, networking, streaming-apps, accounts"):
        tc.check(s, Transfer(department="sales"), POLICY)
    with pytest.raises(Rejected, match="allowed: tier0, tier1, tier2, tier3, executive"):
        tc.check(s, Escalate(reason="x", to_tier="ceo"), POLICY)
    with pytest.raises(Rejected, match="allowed: tier2, tier3, executive"):
        tc.check(s, Escalate(reason="x", to_tier="tier0"), POLICY)


def test_check_accepts_without_mutating() -> None:
    s = _state("acknowledged")
    before = s.model_dump()
    for event in (Escalate(reason="x"), Escalate(reason="x", to_tier="executive"), Transfer(department="billing"),
                  WaitOnCustomer(), Resolve(summary="x"), Assign(assignee="a"), AddNote(text="n", public=True),
                  ChangePriority(priority="P3"), CustomerReply(message="lawyer")):
        tc.check(s, event, POLICY)
    assert s.model_dump() == before


def test_escalations() -> None:
    sim = Sim()
    fx = sim.do(Escalate(reason="needs an engineer", to_tier="tier3", actor="alice"), T0 + M)
    assert sim.s.tier == "tier3" and sim.s.escalation_count == 1
    esc = sim.entries("escalated")[0]
    assert esc.actor == "alice" and esc.reason == "needs an engineer" and esc.clock is None and esc.rule is None
    assert fx[0].kind == "escalation" and "engineering_manager" in fx[0].recipients
    # a person may escalate to the executive tier even though breaches never do
    sim.do(Escalate(reason="customer threatens to leave"), T0 + 2 * M)
    assert sim.s.tier == "executive" and sim.s.escalation_count == 2
    assert sim.clock(TIER).target is None  # no tier goal for executives in P1


# ----- resolving, reopening, closing ------------------------------------------------------------


def test_resolve_stops_clocks_and_schedules_auto_close() -> None:
    sim = Sim()
    sim.do(Acknowledge(), T0 + 5 * M)
    resolved_at = T0 + 2 * H
    sim.advance(resolved_at)
    fx = sim.do(Resolve(summary="replaced the fuse", resolution=ResolutionKind.workaround), resolved_at)
    s = sim.s
    assert s.status == Status.resolved and s.resolved_at == resolved_at and s.resolution == ResolutionKind.workaround
    assert [f.kind for f in fx] == ["resolved", "start_postmortem"], "a P1 ends in a post-mortem (the policy's)"
    assert all(c.phase in ("stopped", "idle") for c in s.clocks.values())
    assert sim.clock(RES).accrued == 2 * H
    [deadline] = tc.deadlines(s, POLICY)
    assert deadline.kind == "auto_close" and deadline.at == resolved_at + POLICY.reopen_window
    sim.advance(resolved_at + POLICY.reopen_window - timedelta(seconds=1))
    assert sim.s.status == Status.resolved
    sim.advance(resolved_at + POLICY.reopen_window)
    assert sim.s.status == Status.closed and sim.s.closed_at == resolved_at + POLICY.reopen_window
    closed = sim.entries("closed")[0]
    assert closed.actor == "system:auto-close"
    assert tc.deadlines(sim.s, POLICY) == []
    with pytest.raises(Rejected, match="ticket_closed"):
        tc.check(sim.s, CustomerReply(message="one more thing"), POLICY)


def test_early_auto_close_event_does_not_close() -> None:
    sim = Sim()
    sim.do(Resolve(summary="done"), T0 + H)
    out = tc.step(sim.s, DeadlineReached(kind="auto_close", due_at=T0 + H + POLICY.reopen_window), T0 + 2 * H, POLICY)
    assert out.state.status == Status.resolved and out.effects == []


def test_customer_reply_within_the_window_reopens_and_resumes_resolution() -> None:
    sim = Sim()
    sim.do(Acknowledge(), T0 + 5 * M)
    sim.do(Resolve(summary="fixed"), T0 + 2 * H)
    reply_at = T0 + 2 * H + timedelta(days=1)
    sim.do(CustomerReply(message="still broken"), reply_at)
    s = sim.s
    assert s.status == Status.open and s.reopen_count == 1 and s.resolved_at is None
    assert [e.action for e in s.timeline[-2:]] == ["reopened", "customer_replied"]
    assert sim.clock(RES).phase == "running" and sim.clock(RES).accrued == 2 * H
    assert sim.clock(RES).due_at == reply_at + 6 * H
    assert sim.s.tier == "tier2"  # the 20 minutes at tier1 ran out before the resolution
    assert sim.clock(TIER).due_at == reply_at + POLICY.sla("P1").tier["tier2"]  # the tier clock starts over
    assert all(d.kind != "auto_close" for d in tc.deadlines(s, POLICY))
    assert tc.next_due(s, reply_at, POLICY) is None


def test_agent_reopen_and_close() -> None:
    sim = Sim()
    sim.do(Resolve(summary="fixed"), T0 + H)
    sim.do(Reopen(reason="not fixed"), T0 + 2 * H)
    assert sim.s.status == Status.new and sim.s.reopen_count == 1  # never acknowledged
    assert sim.clock(RES).accrued == H and sim.clock(RES).due_at == T0 + 2 * H + 7 * H
    sim.do(Resolve(summary="fixed again"), T0 + 3 * H)
    sim.do(Close(reason="customer confirmed"), T0 + 4 * H)
    assert sim.s.status == Status.closed and sim.s.closed_at == T0 + 4 * H


def test_public_note_on_a_resolved_ticket_starts_no_clock() -> None:
    sim = Sim()
    sim.do(Acknowledge(), T0 + M)
    sim.do(Resolve(summary="fixed"), T0 + 10 * M)
    assert not sim.s.breaches
    sim.do(AddNote(text="glad we could help", public=True), T0 + 2 * H)
    assert all(c.phase != "running" for c in sim.s.clocks.values())
    assert [d.kind for d in tc.deadlines(sim.s, POLICY)] == ["auto_close"]
    sim.advance(T0 + 2 * H + POLICY.reopen_window)
    assert not sim.s.breaches and sim.s.status == Status.closed


# ----- notes, assignment, priority -----------------------------------------------------------


def test_notes_and_assignment() -> None:
    sim = Sim()
    sim.do(Assign(assignee="alice"), T0 + M)
    assert sim.s.assignee == "alice" and tc.search_attributes(sim.s)["TicketAssignee"] == "alice"
    sim.do(AddNote(text="internal"), T0 + 10 * M)
    assert sim.clock(UPD).due_at == T0 + 30 * M  # a private note is not a customer update
    sim.do(AddNote(text="we are on it", public=True), T0 + 20 * M)
    assert sim.clock(UPD).due_at == T0 + 50 * M
    assert [e.action for e in sim.s.timeline if e.action in ("note", "public_reply")] == ["note", "public_reply"]
    sim.do(Assign(assignee=None), T0 + 21 * M)
    assert sim.s.assignee is None and sim.entries("assigned")[-1].summary == "unassigned"


def test_change_priority_keeps_accrued_time() -> None:
    sim = Sim(make_ticket(priority="P2"))
    sim.do(Acknowledge(), T0 + 10 * M)
    now = T0 + 30 * M
    sim.advance(now)
    s = tc.step(sim.s, ChangePriority(priority="P1", reason="outage confirmed"), now, POLICY).state
    assert s.priority == "P1" and tc.search_attributes(s)["TicketPriority"] == "P1"
    assert s.clocks[RES].accrued == 30 * M and s.clocks[RES].target == 8 * H
    assert s.clocks[RES].due_at == now + 8 * H - 30 * M
    assert s.clocks[TIER].accrued == 20 * M and s.clocks[TIER].target == 20 * M
    assert s.clocks[TIER].due_at == now  # already used up the P1 tier1 allowance
    assert s.clocks[ACK].accrued == 10 * M and s.clocks[ACK].phase == "stopped"
    assert "accrued SLA time kept" in next(e for e in s.timeline if e.action == "priority_changed").summary
    assert tc.next_due(s, now, POLICY) is not None
    sim.do(ChangePriority(priority="P1"), now)
    assert sim.s.tier == "tier2"  # the workflow feeds the now-due breach at once


def test_change_priority_moves_to_the_new_calendar() -> None:
    friday = datetime(2026, 11, 27, 16, 0, tzinfo=BERLIN)
    sim = Sim(make_ticket(priority="P1", opened_at=friday))
    now = friday + H
    sim.do(ChangePriority(priority="P3"), now)
    office = POLICY.calendars["office"]
    assert sim.s.calendar == office
    p3 = POLICY.sla("P3")
    assert sim.clock(ACK).accrued == H
    assert sim.clock(ACK).due_at == office.add(now, p3.acknowledge - H)
    assert sim.clock(RES).due_at == office.add(now, p3.resolution - H)


def test_the_same_inputs_give_the_same_state_and_effects() -> None:
    """Replay determinism: the workflow re-runs step() on replay and must get the same keys and state."""

    def run() -> Sim:
        sim = Sim(make_ticket("Outage", "lawyer"))
        sim.do(Acknowledge(), T0 + 10 * M)
        sim.do(WaitOnCustomer(), T0 + 20 * M)
        sim.do(CustomerReply(message="cancel"), T0 + 5 * H)
        sim.do(Resolve(summary="ok"), T0 + 9 * H)
        sim.advance(T0 + 5 * 24 * H)
        return sim

    a, b = run(), run()
    assert a.s.model_dump_json() == b.s.model_dump_json()
    assert [f.model_dump() for f in a.effects] == [f.model_dump() for f in b.effects]
    keys = [f.key for f in a.effects]
    assert len(keys) == len(set(keys)) and all(k.startswith("ticket-T-1:") for k in keys)


# ----- executive attention -------------------------------------------------------------------


def test_executive_keyword_in_description_notifies_once() -> None:
    sim = Sim(make_ticket("Broken again", "Third time. My lawyer will hear about this."))
    assert sim.s.executive_attention
    assert [f.kind for f in sim.effects].count("executive") == 1
    exec_fx = next(f for f in sim.effects if f.kind == "executive")
    assert set(exec_fx.recipients) == set(POLICY.executive.notify) and "lawyer" in exec_fx.body
    fx = sim.do(CustomerReply(message="We will cancel our contract"), T0 + 5 * M)
    assert [f.kind for f in fx].count("executive") == 0
    assert [f.kind for f in sim.effects].count("executive") == 1
    assert sim.entries("executive_attention")[-1].rule == "executive.keywords"


def test_executive_keyword_in_a_reply() -> None:
    sim = Sim()
    assert not sim.s.executive_attention
    assert [f.kind for f in sim.do(CustomerReply(message="cancellation is not what I want"), T0 + M)] == []
    assert not sim.s.executive_attention
    fx = sim.do(CustomerReply(message="I will CANCEL."), T0 + 2 * M)
    assert [f.kind for f in fx] == ["executive", "enrol_sponsorship"] and sim.s.executive_attention
    assert [f.kind for f in sim.do(CustomerReply(message="lawyer"), T0 + 3 * M)] == []


# ----- properties ---------------------------------------------------------------------------

TIER_IDS = POLICY.tier_ids()
DEPTS = POLICY.department_ids()

events = st.one_of(
    st.builds(Acknowledge, actor=st.just("agent")),
    st.builds(Escalate, reason=st.just("needs more"), to_tier=st.sampled_from([None, None, *TIER_IDS, "ceo"])),
    st.builds(Transfer, department=st.sampled_from([*DEPTS, "sales"])),
    st.just(WaitOnCustomer()),
    st.builds(CustomerReply, message=st.sampled_from(["", "thanks", "I will cancel", "my lawyer says", "logs attached"])),
    st.builds(Resolve, summary=st.just("done"), resolution=st.sampled_from(list(ResolutionKind))),
    st.just(Reopen()),
    st.just(Close()),
    st.builds(Assign, assignee=st.sampled_from([None, "alice"])),
    st.builds(AddNote, text=st.just("note"), public=st.booleans()),
    st.builds(ChangePriority, priority=st.sampled_from(PRIORITIES)),
)
gaps = st.one_of(st.integers(0, 90), st.integers(0, 4 * 24 * 60)).map(lambda m: m * M)
starts = st.sampled_from([
    T0,
    datetime(2026, 11, 27, 17, 30, tzinfo=BERLIN),  # Friday evening
    datetime(2026, 3, 28, 22, 0, tzinfo=BERLIN),  # before spring forward
    datetime(2026, 10, 24, 23, 30, tzinfo=BERLIN),  # before fall back
    datetime(2026, 12, 23, 16, 0, tzinfo=BERLIN),  # before the holidays
])


def _check_invariants(sim: Sim, prev_tier: int, exec_notices: int) -> None:
    s, p, now = sim.s, sim.policy, sim.now
    seqs = [e.seq for e in s.timeline]
    assert all(a < b for a, b in itertools.pairwise(seqs)), "timeline seq not strictly increasing"
    assert seqs[-1] <= s.seq
    ats = [e.at for e in s.timeline]
    assert all(a <= b for a, b in itertools.pairwise(ats)), "timeline goes back in time"
    assert s.escalation_count == sum(e.action == "escalated" for e in s.timeline)
    assert len(s.breaches) == sum(e.action == "sla_breached" for e in s.timeline)
    assert p.tier_index(s.tier) >= prev_tier, "tier went down"
    wall = now - sim.ticket.opened_at
    for name, c in s.clocks.items():
        accrued = clocks.accrued_at(c, now, s.calendar)
        assert timedelta(0) <= accrued <= wall, f"{name} accrued {accrued} > wall {wall}"
        if c.phase == "running" and c.target is not None and c.since is not None:
            assert c.due_at == s.calendar.add(c.since, c.target - c.accrued)
        if s.status in (Status.resolved, Status.closed):
            assert c.phase != "running", f"{name} runs on a {s.status} ticket"
        if s.status in p.clocks[name].paused_while:
            assert c.phase != "running", f"{name} runs while {s.status}"
    if s.status == Status.closed:
        assert tc.deadlines(s, p) == []
    assert tc.next_due(s, now, p) is None  # everything due by now has been applied
    assert exec_notices == (1 if s.executive_attention else 0)
    attrs = tc.search_attributes(s)
    assert (attrs["TicketTier"], attrs["TicketEscalationCount"], attrs["TicketSlaBreached"], attrs["TicketStatus"]) == (
        s.tier, s.escalation_count, bool(s.breaches), s.status.value)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(
    priority=st.sampled_from([None, *PRIORITIES]),
    subject=st.sampled_from(["Printer broken", "Total outage", "Refund please", "smart tv streaming app", "Hi"]),
    description=st.sampled_from(["", "my lawyer will hear of this", "details inside"]),
    channel=st.sampled_from(list(Channel)),
    opened_at=starts,
    script=st.lists(st.tuples(gaps, events), max_size=18),
)
def test_random_event_sequences_keep_the_invariants(
    priority: str | None, subject: str, description: str, channel: Channel, opened_at: datetime,
    script: list[tuple[timedelta, Any]],
) -> None:
    sim = Sim(make_ticket(subject, description, priority=priority, channel=channel, opened_at=opened_at))
    tier = POLICY.tier_index(sim.s.tier)
    _check_invariants(sim, tier, Counter(f.kind for f in sim.effects)["executive"])
    retargeted_while_waiting = False
    for gap, event in script:
        sim.advance(sim.now + gap)
        try:
            tc.check(sim.s, event, POLICY)
        except Rejected as rejected:
            before = sim.s.model_dump()
            with pytest.raises(Rejected) as again:
                tc.step(sim.s, event, sim.now, POLICY)
            assert again.value.code == rejected.code and sim.s.model_dump() == before
            continue
        was = sim.s
        if isinstance(event, WaitOnCustomer):
            retargeted_while_waiting = False
        elif isinstance(event, ChangePriority) and was.status == Status.waiting_on_customer:
            retargeted_while_waiting = True
        sim._step(event, sim.now)
        if was.status == Status.waiting_on_customer and sim.s.status != was.status and not retargeted_while_waiting:
            # resuming never breaches (or warns) at once for the time spent waiting
            resumed = {n for n, c in was.clocks.items() if c.phase == "paused"}
            assert not [d for d in tc.deadlines(sim.s, POLICY) if d.clock in resumed and d.at <= sim.now]
        sim.advance(sim.now)
        kinds = Counter(f.kind for f in sim.effects)
        _check_invariants(sim, tier, kinds["executive"])
        tier = POLICY.tier_index(sim.s.tier)
    keys = [f.key for f in sim.effects]
    assert len(keys) == len(set(keys)), "notification keys repeat"
    assert all(f.ticket_id == "T-1" for f in sim.effects)
    # the state is what the workflow stores and queries: it must survive JSON
    stored = sim.s.model_dump_json()
    assert TicketState.model_validate_json(stored).model_dump_json() == stored


def test_executive_keywords_can_move_the_ticket_to_the_executive_tier() -> None:
    data = POLICY.model_dump(mode="json", by_alias=True)
    data["executive"]["on_match"] = "escalate"
    policy = Policy.model_validate(data)
    opened = tc.open_ticket(make_ticket(description="Fix it or we call our lawyer"), policy, T0)
    s = opened.state
    assert s.tier == "executive" and s.escalation_count == 1 and s.executive_attention
    assert [f.kind for f in opened.effects].count("executive") == 1
    esc = next(e for e in s.timeline if e.action == "escalated")
    assert "lawyer" in esc.reason
    # the default policy only flags and notifies
    assert tc.open_ticket(make_ticket(description="we call our lawyer"), POLICY, T0).state.tier == "tier1"
