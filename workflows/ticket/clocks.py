"""The ticket's SLA clocks under the policy: which event starts, stops, restarts, pauses each clock, and the
deadlines (warnings, breaches, the auto-close) that follow from them. The arithmetic is `workflows.common.clocks`."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel

from workflows.common import clocks
from workflows.common.clocks import ClockState
from workflows.common.policy import Policy
from workflows.common.vocabulary import ClockName, Status, Trigger
from workflows.ticket.events import DeadlineReached
from workflows.ticket.state import ACTIVE, TicketState


class Deadline(BaseModel):
    at: datetime
    kind: Literal["warning", "breach", "auto_close"]
    clock: ClockName | None = None
    percent: int | None = None

    def event(self) -> DeadlineReached:
        return DeadlineReached(kind=self.kind, clock=self.clock, percent=self.percent, due_at=self.at)


def clock_target(s: TicketState, name: ClockName, p: Policy) -> timedelta | None:
    sla = p.sla(s.priority)
    if name == ClockName.acknowledge:
        return sla.acknowledge
    if name == ClockName.resolution:
        return sla.resolution
    if name == ClockName.customer_update:
        return sla.customer_update
    return sla.tier.get(s.tier)


def apply_triggers(s: TicketState, triggers: list[Trigger], now: datetime, p: Policy) -> None:
    for name, rules in p.clocks.items():
        for t in triggers:
            c = s.clocks[name]
            if s.status not in ACTIVE and t not in rules.stops_on:
                continue  # a resolved or closed ticket runs no SLA clock (e.g. a public note after resolving)
            if name == ClockName.tier and tier_trigger(s, t, now, p):
                continue
            if t in rules.stops_on:
                s.clocks[name] = clocks.stop(c, now, s.calendar)
            elif t in rules.restarts_on:
                s.clocks[name] = clocks.start(c, now, clock_target(s, name, p), s.calendar, s.tier)
            elif t in rules.resumes_on and c.phase == "stopped":
                s.clocks[name] = clocks.resume(c, now, s.calendar)
            elif t in rules.starts_on and c.phase == "idle":
                s.clocks[name] = clocks.start(c, now, clock_target(s, name, p), s.calendar, s.tier)


def tier_trigger(s: TicketState, t: Trigger, now: datetime, p: Policy) -> bool:
    """The tier clock starts on entering a tier, or on the acknowledgement where the tier says so.

    Returns True when it handled the trigger itself."""
    c = s.clocks[ClockName.tier]
    waits_for_ack = p.tier(s.tier).tier_clock_starts == "acknowledged" and s.acknowledged_at is None
    entering = t == Trigger.opened or (t in p.clocks[ClockName.tier].restarts_on and t != Trigger.acknowledged)
    if entering and waits_for_ack:
        s.clocks[ClockName.tier] = ClockState(name=ClockName.tier, tier=s.tier)  # idle until acknowledged
        return True
    if t == Trigger.opened:
        s.clocks[ClockName.tier] = clocks.start(c, now, clock_target(s, ClockName.tier, p), s.calendar, s.tier)
        return True
    if t == Trigger.acknowledged and c.phase == "idle":
        s.clocks[ClockName.tier] = clocks.start(c, now, clock_target(s, ClockName.tier, p), s.calendar, s.tier)
        return True
    return False


def settle_pauses(s: TicketState, now: datetime, p: Policy) -> None:
    """Pause the clocks whose pause condition holds (a status the policy names; an open incident for the policy's
    incident clocks), resume the ones whose condition ended."""
    for name, rules in p.clocks.items():
        c = s.clocks[name]
        held = s.status in rules.paused_while or (s.incident_open and name in p.incidents.pause_clocks)
        if c.phase == "running" and held:
            s.clocks[name] = clocks.pause(c, now, s.calendar)
        elif c.phase == "paused" and not held:
            s.clocks[name] = clocks.resume(c, now, s.calendar)


def deadlines(s: TicketState, p: Policy) -> list[Deadline]:
    """Every future instant at which the ticket must act by itself, earliest first."""
    out: list[Deadline] = []
    if s.status == Status.closed:
        return out
    if s.status == Status.resolved and s.resolved_at is not None:
        out.append(Deadline(at=s.resolved_at + p.reopen_window, kind="auto_close"))
    for name, c in s.clocks.items():
        if c.phase != "running" or c.breached or c.due_at is None:
            continue
        for pct in p.sla(s.priority).warn_at_percent:
            if pct not in c.warnings_sent:
                at = clocks.warning_at(c, pct, s.calendar)
                if at is not None:
                    out.append(Deadline(at=at, kind="warning", clock=name, percent=pct))
        out.append(Deadline(at=c.due_at, kind="breach", clock=name))
    # Warnings before the breach of the same instant; stable order otherwise.
    return sorted(out, key=lambda d: (d.at, d.kind != "warning", str(d.clock), d.percent or 0))


def next_due(s: TicketState, now: datetime, p: Policy) -> DeadlineReached | None:
    """The earliest deadline that has passed at `now`; feed it, then ask again (each may change the rest)."""
    pending = deadlines(s, p)
    return pending[0].event() if pending and pending[0].at <= now else None
