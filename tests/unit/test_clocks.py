"""SLA clocks: pure start/pause/resume/stop/retarget, checked against the calendar."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from workflows.common import clocks
from workflows.common.calendar import BusinessCalendar
from workflows.common.clocks import ClockState
from workflows.common.vocabulary import ClockName

BERLIN = ZoneInfo("Europe/Berlin")
H = timedelta(hours=1)
M = timedelta(minutes=1)
ALWAYS = BusinessCalendar(name="always", always_open=True)
OFFICE = BusinessCalendar(
    name="office",
    timezone="Europe/Berlin",
    hours={d: ["09:00-18:00"] for d in ("mon", "tue", "wed", "thu", "fri")},
    holidays=["2026-12-24", "2026-12-25", "2026-12-26"],
)
T0 = datetime(2026, 11, 30, 9, 0, tzinfo=BERLIN)  # a Monday, office opens


def fresh(target: timedelta | None = 4 * H, cal: BusinessCalendar = OFFICE, at: datetime = T0) -> ClockState:
    return clocks.start(ClockState(name=ClockName.resolution), at, target, cal)


def test_start_sets_due_from_the_calendar() -> None:
    c = fresh(H, OFFICE, datetime(2026, 11, 27, 17, 30, tzinfo=BERLIN))
    assert c.phase == "running"
    assert c.accrued == timedelta(0)
    assert c.due_at == datetime(2026, 11, 30, 9, 30, tzinfo=BERLIN)
    assert c.started_at == c.since == datetime(2026, 11, 27, 17, 30, tzinfo=BERLIN)
    assert not c.breached and c.warnings_sent == []


def test_start_without_target_has_no_due() -> None:
    c = fresh(None)
    assert c.phase == "running" and c.due_at is None
    assert clocks.remaining_at(c, T0 + H, OFFICE) is None
    assert clocks.warning_at(c, 50, OFFICE) is None
    assert clocks.accrued_at(c, T0 + H, OFFICE) == H


def test_start_resets_everything() -> None:
    c = clocks.mark_warned(clocks.mark_breached(fresh(H), T0 + 2 * H), 75)
    c = clocks.pause(c, T0 + 3 * H, OFFICE)
    again = clocks.start(c, T0 + 4 * H, 2 * H, OFFICE, tier="tier2")
    assert again.accrued == timedelta(0) and not again.breached and again.breached_at is None
    assert again.warnings_sent == [] and again.tier == "tier2"
    assert again.due_at == T0 + 6 * H


def test_accrued_and_remaining_count_business_time_only() -> None:
    c = fresh(10 * H, OFFICE, datetime(2026, 11, 27, 17, 0, tzinfo=BERLIN))  # Friday 17:00
    monday_10 = datetime(2026, 11, 30, 10, 0, tzinfo=BERLIN)
    assert clocks.accrued_at(c, monday_10, OFFICE) == 2 * H
    assert clocks.remaining_at(c, monday_10, OFFICE) == 8 * H
    assert c.due_at == datetime(2026, 11, 30, 18, 0, tzinfo=BERLIN)  # 1h Friday + 9h Monday


def test_paused_time_never_counts() -> None:
    c = fresh(4 * H)
    paused = clocks.pause(c, T0 + H, OFFICE)
    assert paused.phase == "paused" and paused.due_at is None
    assert paused.accrued == H
    # a whole week paused accrues nothing
    assert clocks.accrued_at(paused, T0 + timedelta(days=7), OFFICE) == H
    resumed = clocks.resume(paused, T0 + timedelta(days=7), OFFICE)
    assert resumed.phase == "running"
    assert clocks.accrued_at(resumed, T0 + timedelta(days=7) + 30 * M, OFFICE) == H + 30 * M


def test_resume_is_not_an_instant_breach() -> None:
    c = fresh(4 * H)
    paused = clocks.pause(c, T0 + 3 * H, OFFICE)  # 1h left
    resume_at = T0 + timedelta(days=2, hours=5)  # far past the original due (T0+4h)
    assert c.due_at is not None and resume_at > c.due_at
    resumed = clocks.resume(paused, resume_at, OFFICE)
    assert resumed.due_at == OFFICE.add(resume_at, H)
    assert resumed.due_at == resume_at + H
    assert clocks.remaining_at(resumed, resume_at, OFFICE) == H
    # resuming out of hours: due is one business hour after the next opening
    sat = datetime(2026, 12, 5, 12, 0, tzinfo=BERLIN)
    late = clocks.resume(paused, sat, OFFICE)
    assert late.due_at == datetime(2026, 12, 7, 10, 0, tzinfo=BERLIN)


def test_stop_keeps_accrued_and_resume_continues() -> None:
    c = fresh(4 * H)
    stopped = clocks.stop(c, T0 + 2 * H, OFFICE)
    assert stopped.phase == "stopped" and stopped.accrued == 2 * H and stopped.due_at is None
    assert clocks.accrued_at(stopped, T0 + 30 * H, OFFICE) == 2 * H
    assert clocks.stop(stopped, T0 + 5 * H, OFFICE) == stopped  # idempotent
    resumed = clocks.resume(stopped, T0 + timedelta(days=1), OFFICE)
    assert resumed.due_at == T0 + timedelta(days=1) + 2 * H


def test_stop_of_a_paused_clock_keeps_the_paused_accrual() -> None:
    paused = clocks.pause(fresh(4 * H), T0 + H, OFFICE)
    stopped = clocks.stop(paused, T0 + 5 * H, OFFICE)
    assert stopped.phase == "stopped" and stopped.accrued == H


def test_idle_clock_transitions() -> None:
    idle = ClockState(name=ClockName.tier)
    assert clocks.pause(idle, T0, OFFICE) == idle
    assert clocks.resume(idle, T0, OFFICE) == idle
    assert clocks.accrued_at(idle, T0 + H, OFFICE) == timedelta(0)
    assert clocks.stop(idle, T0, OFFICE).phase == "stopped"
    assert clocks.warning_at(idle, 50, OFFICE) is None


def test_pause_and_resume_are_noops_in_the_wrong_phase() -> None:
    c = fresh()
    assert clocks.resume(c, T0 + H, OFFICE) == c  # already running
    paused = clocks.pause(c, T0 + H, OFFICE)
    assert clocks.pause(paused, T0 + 2 * H, OFFICE) == paused


def test_retarget_keeps_accrued() -> None:
    c = fresh(4 * H)
    now = T0 + 3 * H
    r = clocks.retarget(c, now, 8 * H, OFFICE)
    assert r.accrued == 3 * H and r.since == now and r.target == 8 * H
    assert r.due_at == OFFICE.add(now, 5 * H)
    assert clocks.accrued_at(r, now + H, OFFICE) == 4 * H
    # shrinking the goal below the accrued time makes it due at once
    shrunk = clocks.retarget(c, now, 2 * H, OFFICE)
    assert shrunk.due_at == now
    assert clocks.remaining_at(shrunk, now, OFFICE) == -H


def test_retarget_of_a_paused_clock_stays_paused() -> None:
    paused = clocks.pause(fresh(4 * H), T0 + H, OFFICE)
    r = clocks.retarget(paused, T0 + 5 * H, H / 2, OFFICE)
    assert r.phase == "paused" and r.accrued == H and r.due_at is None and r.target == H / 2


def test_retarget_to_no_target() -> None:
    r = clocks.retarget(fresh(4 * H), T0 + H, None, OFFICE)
    assert r.due_at is None and r.accrued == H and r.phase == "running"


def test_warning_after_resume_counts_the_time_already_accrued() -> None:
    c = clocks.pause(fresh(4 * H), T0 + H, OFFICE)  # 1h of 4h accrued
    resume_at = T0 + timedelta(days=1)
    resumed = clocks.resume(c, resume_at, OFFICE)
    assert clocks.warning_at(resumed, 50, OFFICE) == resume_at + H  # 2h mark: 1h more
    assert clocks.warning_at(resumed, 75, OFFICE) == resume_at + 2 * H
    assert clocks.warning_at(resumed, 10, OFFICE) == resume_at  # already past: due at once


def test_mark_breached_keeps_counting() -> None:
    c = fresh(H)
    b = clocks.mark_breached(c, T0 + H)
    assert b.breached and b.breached_at == T0 + H and b.phase == "running"
    assert clocks.accrued_at(b, T0 + 3 * H, OFFICE) == 3 * H


def test_mark_warned_is_a_sorted_set() -> None:
    c = clocks.mark_warned(clocks.mark_warned(clocks.mark_warned(fresh(), 75), 50), 75)
    assert c.warnings_sent == [50, 75]


def test_recalendar_moves_due_to_the_new_calendar() -> None:
    sat = datetime(2026, 11, 28, 12, 0, tzinfo=BERLIN)
    c = fresh(H, ALWAYS, sat)
    assert c.due_at == sat + H
    assert clocks.recalendar(c, OFFICE).due_at == datetime(2026, 11, 30, 10, 0, tzinfo=BERLIN)


def test_functions_do_not_mutate_their_input() -> None:
    c = fresh(4 * H)
    snapshot = c.model_dump()
    clocks.pause(c, T0 + H, OFFICE)
    clocks.stop(c, T0 + H, OFFICE)
    clocks.retarget(c, T0 + H, H, OFFICE)
    clocks.mark_breached(c, T0 + H)
    clocks.mark_warned(c, 50)
    assert c.model_dump() == snapshot


# ----- properties ----------------------------------------------------------------------

PROPS = settings(max_examples=150, deadline=None)
CALS = st.sampled_from([ALWAYS, OFFICE])


@PROPS
@given(
    cal=CALS,
    start_min=st.integers(0, 60 * 24 * 14),
    target_min=st.integers(1, 60 * 40),
    percent=st.integers(1, 99),
)
def test_warning_at_of_a_fresh_clock(cal: BusinessCalendar, start_min: int, target_min: int, percent: int) -> None:
    at = T0 + start_min * M
    target = target_min * M
    c = fresh(target, cal, at)
    assert clocks.warning_at(c, percent, cal) == cal.add(at, target * percent / 100)
    assert c.due_at == cal.add(at, target)
    warning = clocks.warning_at(c, percent, cal)
    assert warning is not None and c.due_at is not None and warning <= c.due_at


@PROPS
@given(
    cal=CALS,
    target_min=st.integers(1, 60 * 30),
    ops=st.lists(
        st.tuples(st.sampled_from(["pause", "resume", "stop", "retarget"]), st.integers(0, 60 * 48), st.integers(1, 60 * 30)),
        max_size=12,
    ),
)
def test_accrued_is_the_business_time_spent_running(
    cal: BusinessCalendar, target_min: int, ops: list[tuple[str, int, int]]
) -> None:
    """An independent ledger of running intervals agrees with the clock after any operation sequence."""
    now = T0
    c = fresh(target_min * M, cal, now)
    running_since: datetime | None = now
    ledger = timedelta(0)
    for op, gap, new_target in ops:
        now += gap * M
        before = c
        if op == "pause":
            c = clocks.pause(c, now, cal)
        elif op == "stop":
            c = clocks.stop(c, now, cal)
        elif op == "resume":
            c = clocks.resume(c, now, cal)
        else:
            c = clocks.retarget(c, now, new_target * M, cal)
        # ledger
        if op in ("pause", "stop") and running_since is not None:
            ledger += cal.elapsed(running_since, now)
            running_since = None
        elif op == "resume" and running_since is None:
            running_since = now
        expected = ledger + (cal.elapsed(running_since, now) if running_since else timedelta(0))
        assert clocks.accrued_at(c, now, cal) == expected
        assert clocks.accrued_at(c, now, cal) <= now - T0
        assert (c.phase == "running") == (running_since is not None)
        if c.phase == "running" and c.target is not None:
            # due = (resume or retarget instant) + remaining business time: paused time never counts
            if op == "retarget" or before.phase != "running":
                assert c.since == now
            assert c.since is not None and c.due_at == cal.add(c.since, c.target - c.accrued)
            assert clocks.remaining_at(c, now, cal) == c.target - expected
            warn = clocks.warning_at(c, 60, cal)
            assert warn is not None and warn <= c.due_at
            assert clocks.accrued_at(c, warn, cal) == max(c.target * 60 / 100, c.accrued)
        else:
            assert c.due_at is None
