"""The queue's pure parts: when business time stops running (the countdown's bound), the next deadline, the order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from starter.client.queues import ALWAYS, Deadline, QueueItem, next_deadline, open_until, remaining_text, urgency
from starter.runtime.policy_file import load_policy
from workflows.ticket.views import ClockView

POLICY = load_policy()
OFFICE = POLICY.calendars["office"]  # Europe/Berlin, 09:00-18:00 on weekdays
ALWAYS_OPEN = POLICY.calendars["around-the-clock"]


def test_business_time_runs_until_the_end_of_todays_hours_and_not_on_a_weekend() -> None:
    monday_10_berlin = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)  # 10:00 in Berlin (CET)
    assert open_until(OFFICE, monday_10_berlin) == datetime(2026, 11, 30, 17, 0, tzinfo=UTC)  # 18:00 Berlin
    assert open_until(OFFICE, datetime(2026, 12, 5, 11, 0, tzinfo=UTC)) is None, "Saturday: closed"
    assert open_until(OFFICE, datetime(2026, 12, 24, 11, 0, tzinfo=UTC)) is None, "a holiday: closed"
    now = datetime(2026, 12, 5, 11, 0, tzinfo=UTC)
    assert open_until(ALWAYS_OPEN, now) == now + ALWAYS


def clock(name: str, due: datetime | None, remaining_s: int | None, phase: str = "running") -> ClockView:
    return ClockView(name=name, phase=phase, target=timedelta(hours=1), accrued=timedelta(0),  # type: ignore[arg-type]
                     remaining=None if remaining_s is None else timedelta(seconds=remaining_s), due_at=due,
                     breached=False, warnings_sent=[], tier=None)


def test_the_next_deadline_is_the_running_clock_due_first_overdue_included() -> None:
    now = datetime(2026, 12, 5, 11, 0, tzinfo=UTC)
    clocks = [clock("resolution", now + timedelta(hours=5), 5 * 3600),
              clock("acknowledge", now - timedelta(minutes=10), -600),
              clock("customer_update", now - timedelta(hours=1), -3600, phase="paused")]
    d = next_deadline(clocks, ALWAYS_OPEN, now)
    assert d is not None and d.clock == "acknowledge" and d.remaining_s == -600
    assert next_deadline([clock("tier", None, None, phase="stopped")], ALWAYS_OPEN, now) is None


def item(ticket_id: str, breached: bool, due: datetime | None, remaining_s: int = 0) -> QueueItem:
    deadline = Deadline(clock="tier", due_at=due, remaining_s=remaining_s, ticks_until=None) if due else None
    return QueueItem(id=ticket_id, subject="s", status="new", tier="tier2", department="general", priority="P2",
                     assignee=None, customer_id="c", tags=[], sla_breached=breached, deadline=deadline)


def test_breached_first_then_by_the_next_due_time_then_no_deadline() -> None:
    t = datetime(2026, 12, 5, 11, 0, tzinfo=UTC)
    items = [item("late-due", False, t + timedelta(hours=3)), item("none", False, None),
             item("breached-later", True, t + timedelta(hours=9)), item("soon", False, t + timedelta(minutes=5)),
             item("breached-sooner", True, t + timedelta(hours=1))]
    assert [i.id for i in sorted(items, key=urgency)] == ["breached-sooner", "breached-later", "soon", "late-due",
                                                           "none"]


def test_remaining_time_as_people_read_it() -> None:
    assert remaining_text(3 * 3600 + 5 * 60) == "3h 05m"
    assert remaining_text(-(12 * 60 + 3)) == "overdue 12m 03s"
    assert remaining_text(2 * 86400 + 3600) == "2d 1h 00m"


def test_overdue_now_comes_before_a_ticket_that_breached_long_ago() -> None:
    """`sla_breached` stays set for good: a ticket that breached last week and is on time now ranks after one whose
    deadline has passed now, even one that had never breached before."""
    t = datetime(2026, 12, 5, 11, 0, tzinfo=UTC)
    items = [item("breached-last-week", True, t + timedelta(days=2), remaining_s=3600),
             item("overdue-now", False, t - timedelta(minutes=5), remaining_s=-300)]
    assert [i.id for i in sorted(items, key=urgency)] == ["overdue-now", "breached-last-week"]
