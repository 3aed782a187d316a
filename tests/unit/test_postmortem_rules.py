"""When a post-mortem's steps fall due: business days on an office calendar, whole days on a 24x7 one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

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


def test_an_explicit_assignment_moves_the_owners_reminders() -> None:
    from workflows.postmortem.rules import assign_owner, begin, check_assign, on_time
    from workflows.postmortem.state import AssignIn, PostmortemInput
    from workflows.ticket.events import Rejected

    start = datetime(2026, 12, 4, 14, 0, tzinfo=UTC)
    inp = PostmortemInput(kind="ticket", subject_id="T-1", title="Post-mortem: login", owner="mia", draft="",
                          calendar=AROUND_THE_CLOCK, remind_every=timedelta(days=1))
    s = assign_owner(begin(inp, start), AssignIn(by="supervisor:sam", owner="agent:leo"), start + timedelta(hours=1))
    assert s.owner == "agent:leo" and "agent:leo" in s.participants
    assert [(c.from_owner, c.to_owner) for c in s.owner_changes] == [("mia", "agent:leo")]
    _, notices = on_time(s, start + timedelta(days=1), inp)
    assert [n.roles for n in notices if n.kind == "postmortem_reminder"] == [["person:leo"]], "the new owner's"
    with pytest.raises(Rejected) as same:
        check_assign(s, AssignIn(by="supervisor:sam", owner="agent:leo"))
    assert same.value.code == "same_owner"


def test_an_action_item_reminds_its_owner_until_it_is_due_then_the_managers_hear() -> None:
    from workflows.postmortem.rules import add_action_item, begin, complete_action_item, next_deadline, on_time
    from workflows.postmortem.state import ActionItemIn, PostmortemInput

    start = datetime(2026, 12, 4, 14, 0, tzinfo=UTC)
    inp = PostmortemInput(kind="ticket", subject_id="T-1", title="Post-mortem: login", owner="mia", draft="",
                          calendar=AROUND_THE_CLOCK, remind_every=timedelta(days=1))
    s = begin(inp, start)
    s = add_action_item(s, ActionItemIn(by="sam", text="drill failover", owner="leo", due_in_days=4), start, inp)
    item = s.action_items[0]
    assert item.due_at == start + timedelta(days=4) and item.remind_at == start + timedelta(days=3)

    def to_leo(state, at):  # type: ignore[no-untyped-def]
        state, notices = on_time(state, at, inp)
        return state, [n for n in notices if "person:leo" in n.roles]

    s, told = to_leo(s, start + timedelta(days=2, hours=23))
    assert told == [], "not yet: a day before it is due"
    s, told = to_leo(s, start + timedelta(days=3))
    assert [n.kind for n in told] == ["postmortem_action_item"] and "drill failover" in told[0].body
    assert s.action_items[0].remind_at == start + timedelta(days=4), "again a cadence later"
    deadline = next_deadline(s)
    assert deadline is not None and deadline <= start + timedelta(days=4), "a timer for it"
    s, told = to_leo(s, start + timedelta(days=4))
    assert [n.kind for n in told] == ["postmortem_overdue"], "overdue: the managers and the owner told, once"
    s, told = to_leo(s, start + timedelta(days=5))
    assert told == [] and next_deadline(s) == s.next_reminder_at, \
        "no more item reminders once overdue (the owner's own reminder lists open items): a bounded history"
    s = complete_action_item(s, 1, start + timedelta(days=5, hours=1))
    s, told = to_leo(s, start + timedelta(days=9))
    assert told == [], "done: no more reminders"

    old = add_action_item(begin(inp, start), ActionItemIn(by="sam", text="x", owner="leo"), start, inp,
                          reminders=False)
    assert old.action_items[0].remind_at is None, "histories from before the patch have no item reminders"


def test_an_incident_postmortem_lists_its_tickets_breaches_and_names_its_second() -> None:
    from workflows.incident.rules import declare, fanned_out
    from workflows.incident.state import FanOut, FanOutResult, IncidentInput
    from workflows.postmortem.subjects import for_incident, incident_template

    at = datetime(2026, 12, 4, 14, 0, 37, tzinfo=UTC)
    s = declare(IncidentInput(service="video-eu", title="Video down", severity="SEV1", commander="mia",
                              declared_by="supervisor:sam"), at)
    batch = FanOut(incident_id="video-eu", kind="resolved", title="Video down", by="sam", tickets=["A", "B"])
    s = fanned_out(s, batch, FanOutResult(told=2, resolved=2, breach_count=3, breaches_unread=1,
                                          breaches=["- A: tier at tier1: due ..., 12 min late"]), at)
    template = incident_template(POLICY, "SEV1")
    assert template is not None
    pm = for_incident(s, template)
    assert pm.subject_id == "video-eu-20261204140037"
    assert for_incident(s, template, seconds=False).subject_id == "video-eu-202612041400"
    assert "### SLA breaches of the linked tickets (3)" in pm.draft
    assert "- A: tier at tier1" in pm.draft and "- and 2 more" in pm.draft
    assert "not read: the breaches of 1 ticket(s)" in pm.draft, "what could not be gathered is said, not hidden"
