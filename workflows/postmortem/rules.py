"""The post-mortem's rules: who owns it, what the draft says, when each step is due (business days), who hears
what, and when it may complete. Pure: time comes in as an argument."""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel

from workflows.common.calendar import BusinessCalendar
from workflows.common.delivery import PrepareInput
from workflows.postmortem.state import (
    ActionItem,
    ActionItemIn,
    AssignIn,
    CompleteIn,
    OwnerChange,
    PostmortemInput,
    PostmortemState,
    ReviewIn,
    RootCauseIn,
    Step,
    postmortem_workflow_id,
)
from workflows.ticket.events import Rejected


class Notice(BaseModel):
    kind: str
    roles: list[str]
    subject: str
    body: str


def business_days_after(cal: BusinessCalendar, start: datetime, days: int, whole_days_24x7: bool = True) -> datetime:
    """The close of business of the `days`-th business day after `start` (the calendar's hours and holidays); on a
    24x7 calendar, `days` whole days after `start`."""
    if cal.always_open and whole_days_24x7:
        return start + timedelta(days=days)
    seen: list[object] = []
    end = start
    for open_at, close_at in cal.open_intervals(start):
        day = open_at.astimezone(cal.zone).date()
        if day == start.astimezone(cal.zone).date():
            continue  # the day it started does not count
        if day not in seen:
            if len(seen) == days:
                return end
            seen.append(day)
        end = close_at
    return end


def begin(inp: PostmortemInput, now: datetime, whole_days_24x7: bool = True) -> PostmortemState:
    cal, whole = inp.calendar, whole_days_24x7
    steps = [Step(name="review", due_at=business_days_after(cal, now, inp.review_within_days, whole)),
             Step(name="root_cause", due_at=business_days_after(cal, now, inp.root_cause_within_days, whole)),
             Step(name="complete", due_at=business_days_after(cal, now, inp.complete_within_days, whole))]
    return PostmortemState(id=postmortem_workflow_id(inp.kind, inp.subject_id), kind=inp.kind,
                           whole_days_24x7=whole,
                           subject_id=inp.subject_id, title=inp.title, owner=inp.owner,
                           participants=inp.participants, draft=inp.draft, started_at=now, steps=steps,
                           next_reminder_at=now + inp.remind_every)


def check_open(s: PostmortemState) -> None:
    if s.status != "open":
        raise Rejected("postmortem_completed", f"post-mortem {s.id} is completed")


def _done(s: PostmortemState, name: str, by: str, now: datetime) -> None:
    s.steps = [st.model_copy(update={"done_at": now, "by": by}) if st.name == name and st.done_at is None else st
               for st in s.steps]


def check_assign(s: PostmortemState, a: AssignIn) -> None:
    check_open(s)
    if a.owner == s.owner:
        raise Rejected("same_owner", f"{a.owner} already owns post-mortem {s.id}")


def assign_owner(state: PostmortemState, a: AssignIn, now: datetime) -> PostmortemState:
    """An explicit assignment: the new owner is reminded from now on and joins the participants."""
    check_assign(state, a)
    s = state.model_copy(deep=True)
    s.owner_changes.append(OwnerChange(at=now, by=a.by, from_owner=s.owner, to_owner=a.owner))
    s.owner = a.owner
    if a.owner not in s.participants:
        s.participants.append(a.owner)
    return s


def hold_review(state: PostmortemState, r: ReviewIn, now: datetime) -> PostmortemState:
    check_open(state)
    s = state.model_copy(deep=True)
    s.review_notes = r.notes
    _done(s, "review", r.by, now)
    return s


def record_root_cause(state: PostmortemState, r: RootCauseIn, now: datetime) -> PostmortemState:
    check_open(state)
    s = state.model_copy(deep=True)
    s.root_cause, s.contributing_factors = r.root_cause, list(r.contributing_factors)
    _done(s, "root_cause", r.by, now)
    return s


def add_action_item(state: PostmortemState, a: ActionItemIn, now: datetime, inp: PostmortemInput,
                    reminders: bool = True) -> PostmortemState:
    """A new action item, due in business days; with `reminders`, its owner is reminded a `remind_every` before it
    is due (at once when that is past) and at that cadence until it is done."""
    check_open(state)
    s = state.model_copy(deep=True)
    due = business_days_after(inp.calendar, now, a.due_in_days or inp.action_item_days, s.whole_days_24x7)
    remind_at = max(now, due - inp.remind_every) if reminders else None
    s.action_items = [*s.action_items, ActionItem(number=len(s.action_items) + 1, text=a.text, owner=a.owner,
                                                  due_at=due, remind_at=remind_at)]
    return s


def check_action_item(s: PostmortemState, number: int) -> None:
    check_open(s)
    item = next((a for a in s.action_items if a.number == number), None)
    if item is None:
        raise Rejected("no_such_action_item", f"post-mortem {s.id} has action items 1-{len(s.action_items)}")
    if item.done_at is not None:
        raise Rejected("already_done", f"action item {number} was done at {item.done_at.isoformat()}")


def complete_action_item(state: PostmortemState, number: int, now: datetime) -> PostmortemState:
    check_action_item(state, number)
    s = state.model_copy(deep=True)
    s.action_items = [a.model_copy(update={"done_at": now}) if a.number == number else a for a in s.action_items]
    return s


def check_complete(s: PostmortemState) -> None:
    """Completion needs the review held, the root cause recorded and every action item done."""
    check_open(s)
    missing: list[str] = [st.name for st in s.steps if st.name != "complete" and st.done_at is None]
    missing += [f"action item {a.number}" for a in s.action_items if a.done_at is None]
    if missing:
        raise Rejected("postmortem_incomplete", f"post-mortem {s.id} cannot complete yet: {', '.join(missing)}")


def complete(state: PostmortemState, c: CompleteIn, now: datetime) -> PostmortemState:
    check_complete(state)
    s = state.model_copy(deep=True)
    s.status, s.summary = "completed", c.summary
    _done(s, "complete", c.by, now)
    return s


def article(s: PostmortemState) -> str:
    """The knowledge-base article: what happened, why, what changes."""
    lines = [f"# {s.title}", "", f"Post-mortem of {s.kind} {s.subject_id}, completed. Owner: {s.owner}.", "",
             "## Summary", "", s.summary or "", "", "## Root cause", "", s.root_cause or ""]
    if s.contributing_factors:
        lines += ["", "## Contributing factors", "", *[f"- {f}" for f in s.contributing_factors]]
    if s.action_items:
        lines += ["", "## Action items", "", *[f"- [{'x' if a.done_at else ' '}] {a.text} ({a.owner}, due "
                                               f"{a.due_at.date().isoformat()})" for a in s.action_items]]
    lines += ["", "## What happened", "", s.draft]
    return "\n".join(lines).rstrip() + "\n"


def next_deadline(s: PostmortemState) -> datetime | None:
    if s.status != "open":
        return None
    times = [s.next_reminder_at]
    times += [st.due_at for st in s.steps if st.done_at is None and not st.overdue_told]
    times += [a.due_at for a in s.action_items if a.done_at is None and not a.overdue_told]
    times += [a.remind_at for a in s.action_items if a.done_at is None and not a.overdue_told and a.remind_at is not None]
    return min(times)


def on_time(state: PostmortemState, now: datetime, inp: PostmortemInput) -> tuple[PostmortemState, list[Notice]]:
    """What falls due: the owner's reminder (until completion), overdue steps and action items (the escalation
    managers are told, once each)."""
    if state.status != "open":
        return state, []
    s = state.model_copy(deep=True)
    out: list[Notice] = []
    managers = ["escalation_manager"]
    # a ticket with neither an escalation manager nor an assignee: its post-mortem is the managers' (a role)
    owner = s.owner if s.owner in managers else f"person:{s.owner.split(':', 1)[-1]}"
    for i, st in enumerate(s.steps):
        if st.done_at is None and not st.overdue_told and now >= st.due_at:
            s.steps[i] = st.model_copy(update={"overdue_told": True})
            out.append(Notice(kind="postmortem_overdue", roles=list(dict.fromkeys([*managers, owner])),
                              subject=f"Post-mortem overdue: {s.title}",
                              body=f"Step {st.name} of post-mortem {s.id} was due {st.due_at.isoformat()}."))
    for i, a in enumerate(s.action_items):
        if a.done_at is None and not a.overdue_told and now >= a.due_at:
            s.action_items[i] = a.model_copy(update={"overdue_told": True})
            out.append(Notice(kind="postmortem_overdue", roles=[*managers, f"person:{a.owner.split(':', 1)[-1]}"],
                              subject=f"Action item overdue: {a.text[:80]}",
                              body=f"Action item {a.number} of post-mortem {s.id} was due {a.due_at.isoformat()}."))
    for i, a in enumerate(s.action_items):  # until it is overdue: then the managers know, and the owner's reminder
        if a.done_at is None and not a.overdue_told and a.remind_at is not None and now >= a.remind_at:
            s.action_items[i] = a.model_copy(update={"remind_at": now + inp.remind_every,
                                                     "reminders_sent": a.reminders_sent + 1})
            out.append(Notice(kind="postmortem_action_item", roles=[f"person:{a.owner.split(':', 1)[-1]}"],
                              subject=f"Action item due {a.due_at.date().isoformat()}: {a.text[:80]}",
                              body=f"Action item {a.number} of post-mortem {s.id} ({s.title}) is yours, due "
                                   f"{a.due_at.isoformat()}: {a.text}"))
    if now >= s.next_reminder_at:
        s.next_reminder_at = now + inp.remind_every
        s.reminders_sent += 1
        open_steps = [st.name for st in s.steps if st.done_at is None]
        open_items = [str(a.number) for a in s.action_items if a.done_at is None]
        out.append(Notice(kind="postmortem_reminder", roles=[owner], subject=f"Post-mortem to finish: {s.title}",
                          body=f"Open steps: {', '.join(open_steps)}"
                               + (f"; action items {', '.join(open_items)}" if open_items else "")))
    return s, out


def prepare_input(s: PostmortemState, n: Notice, now: datetime, inp: PostmortemInput) -> PrepareInput:
    s_key = s.notices
    return PrepareInput(key=f"{s.id}:{s_key}:{n.kind}", kind=n.kind, ticket_id=inp.subject_id, roles=n.roles,
                        subject=n.subject, body=n.body, priority=inp.priority, tier=inp.tier,
                        department=inp.department, status=s.status, ticket_subject=s.title,
                        customer_id=inp.customer_id, escalation_manager=inp.escalation_manager, at=now)

