"""When a post-mortem's steps fall due: business days on an office calendar, whole days on a 24x7 one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from starter.runtime.policy_file import load_policy
from workflows.postmortem.rules import business_days_after

POLICY = load_policy()
OFFICE = POLICY.calendars["office"]  # Europe/Berlin, Mon-Fri 09:00-18:00, holidays
AROUND_THE_CLOCK = POLICY.calendars["around-the-clock"]


def test_business_days_skip_the_weekend_and_end_at_close_of_business() -> None:
    friday = datetime(2026, 12, 4, 14, 0, tzinfo=UTC)  # 15:00 in Berlin
    due = business_days_after(OFFICE, friday, 2)
    assert due == datetime(2026, 12, 8, 17, 0, tzinfo=UTC), "Monday and Tuesday count, Tuesday 18:00 in Berlin"


def test_holidays_do_not_count() -> None:
    wednesday = datetime(2026, 12, 23, 10, 0, tzinfo=UTC)
    assert business_days_after(OFFICE, wednesday, 1) == datetime(2026, 12, 28, 17, 0, tzinfo=UTC)


def test_on_a_24x7_calendar_every_day_counts_whole() -> None:
    start = datetime(2026, 12, 4, 14, 0, tzinfo=UTC)
    assert business_days_after(AROUND_THE_CLOCK, start, 2) == start + timedelta(days=2)
    assert business_days_after(AROUND_THE_CLOCK, start, 2, whole_days_24x7=False) == start, \
        "histories from before the patch keep their due dates"


def test_a_postmortem_without_a_person_as_owner_reminds_the_escalation_managers() -> None:
    from workflows.postmortem.rules import begin, on_time
    from workflows.postmortem.state import PostmortemInput

    start = datetime(2026, 12, 4, 14, 0, tzinfo=UTC)
    inp = PostmortemInput(kind="ticket", subject_id="T-1", title="Post-mortem: login", owner="escalation_manager",
                          draft="", calendar=AROUND_THE_CLOCK)
    _state, notices = on_time(begin(inp, start), start + timedelta(days=3), inp)
    assert [(n.kind, n.roles) for n in notices] == [("postmortem_overdue", ["escalation_manager"]),
                                                    ("postmortem_reminder", ["escalation_manager"])]
