"""SLA clocks: business time accrued, paused, resumed; due and warning instants.

A clock accrues business time only while running. `accrued` holds the time
counted up to `since` (the instant of its last phase change); the time since
then is added on demand, so the state never needs a tick.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel

from workflows.common.calendar import BusinessCalendar
from workflows.common.vocabulary import ClockName

Phase = Literal["idle", "running", "paused", "stopped"]


class ClockState(BaseModel):
    name: ClockName
    phase: Phase = "idle"
    target: timedelta | None = None  # business time allowed; None: no goal at this tier/priority
    accrued: timedelta = timedelta(0)
    since: datetime | None = None
    started_at: datetime | None = None
    due_at: datetime | None = None  # only while running towards a target
    breached: bool = False
    breached_at: datetime | None = None
    warnings_sent: list[int] = []
    tier: str | None = None  # the tier clock's tier


def accrued_at(c: ClockState, now: datetime, cal: BusinessCalendar) -> timedelta:
    if c.phase == "running" and c.since is not None:
        return c.accrued + cal.elapsed(c.since, now)
    return c.accrued


def remaining_at(c: ClockState, now: datetime, cal: BusinessCalendar) -> timedelta | None:
    return None if c.target is None else c.target - accrued_at(c, now, cal)


def _due(c: ClockState, cal: BusinessCalendar) -> datetime | None:
    if c.phase != "running" or c.target is None or c.since is None:
        return None
    return cal.add(c.since, c.target - c.accrued)


def warning_at(c: ClockState, percent: int, cal: BusinessCalendar) -> datetime | None:
    if c.phase != "running" or c.target is None or c.since is None:
        return None
    return cal.add(c.since, c.target * percent / 100 - c.accrued)


def start(c: ClockState, now: datetime, target: timedelta | None, cal: BusinessCalendar, tier: str | None = None) -> ClockState:
    """(Re)start from zero: a new goal, no breach, no warnings sent."""
    fresh = ClockState(name=c.name, phase="running", target=target, since=now, started_at=now, tier=tier)
    return fresh.model_copy(update={"due_at": _due(fresh, cal)})


def pause(c: ClockState, now: datetime, cal: BusinessCalendar) -> ClockState:
    if c.phase != "running":
        return c
    return c.model_copy(update={"phase": "paused", "accrued": accrued_at(c, now, cal), "since": now, "due_at": None})


def resume(c: ClockState, now: datetime, cal: BusinessCalendar) -> ClockState:
    """Continue counting from what was accrued: paused time never counts."""
    if c.phase not in ("paused", "stopped"):
        return c
    resumed = c.model_copy(update={"phase": "running", "since": now})
    return resumed.model_copy(update={"due_at": _due(resumed, cal)})


def stop(c: ClockState, now: datetime, cal: BusinessCalendar) -> ClockState:
    if c.phase in ("idle", "stopped"):
        return c.model_copy(update={"phase": "stopped"}) if c.phase == "idle" else c
    return c.model_copy(update={"phase": "stopped", "accrued": accrued_at(c, now, cal), "since": now, "due_at": None})


def retarget(c: ClockState, now: datetime, target: timedelta | None, cal: BusinessCalendar) -> ClockState:
    """A new goal (priority change) keeps the time already accrued, paused time included as not counted."""
    settled = c.model_copy(update={"accrued": accrued_at(c, now, cal), "since": now if c.phase == "running" else c.since})
    updated = settled.model_copy(update={"target": target})
    return updated.model_copy(update={"due_at": _due(updated, cal)})


def mark_breached(c: ClockState, now: datetime) -> ClockState:
    """Breached clocks keep counting (time-to-acknowledge stays true) but set no more deadlines."""
    return c.model_copy(update={"breached": True, "breached_at": now})


def mark_warned(c: ClockState, percent: int) -> ClockState:
    return c.model_copy(update={"warnings_sent": sorted({*c.warnings_sent, percent})})


def recalendar(c: ClockState, cal: BusinessCalendar) -> ClockState:
    return c.model_copy(update={"due_at": _due(c, cal)})
