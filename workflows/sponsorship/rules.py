"""The program's rules: entering, checking in, reminding, leaving. Pure: time comes in as an argument."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel

from workflows.common.delivery import PrepareInput
from workflows.sponsorship.state import (
    KEPT,
    CheckIn,
    CheckInRecord,
    Enrolment,
    Exited,
    ExitRequest,
    SponsorshipInput,
    SponsorshipState,
    sponsorship_workflow_id,
)
from workflows.ticket.events import Rejected

NoticeKind = Literal["sponsorship_enrolled", "sponsorship_check_in", "sponsorship_ended"]


class Notice(BaseModel):
    """Tell the sponsor something (prepared and delivered like a ticket's notifications)."""

    kind: NoticeKind
    key: str
    subject: str
    body: str


def begin(inp: SponsorshipInput, now: datetime) -> SponsorshipState:
    return inp.state or SponsorshipState(account_id=inp.account_id, enrolled_at=now, last_escalation_at=now,
                                         next_check_in_due=now + inp.check_in_every)


def _notice(s: SponsorshipState, kind: NoticeKind, subject: str, body: str) -> Notice:
    s.notices += 1
    return Notice(kind=kind, key=f"{sponsorship_workflow_id(s.account_id)}:{s.notices}:{kind}", subject=subject,
                  body=body)


def enrol(state: SponsorshipState, e: Enrolment, now: datetime) -> tuple[SponsorshipState, list[Notice]]:
    """An (executive) escalation brings the account in, or keeps it in: the quiet period starts again."""
    if state.status == "ended" or any(x.key == e.key for x in state.enrolments):
        return state, []  # a repeated signal (an activity's retry), or one that raced the exit
    s = state.model_copy(deep=True)
    first = s.enrolment_count == 0
    s.enrolments = [*s.enrolments, e][-KEPT:]
    s.enrolment_count += 1
    s.sponsor = e.sponsor or s.sponsor
    if e.criterion in ("executive_escalation", "manual"):  # the quiet period counts from the latest escalation
        s.last_escalation_at = max(s.last_escalation_at, now)
    if not first:
        return s, []
    about = f" (ticket {e.ticket_id}: {e.ticket_subject})" if e.ticket_id else ""
    return s, [_notice(s, "sponsorship_enrolled", f"Executive sponsorship: account {s.account_id}",
                       f"Account {s.account_id} entered the executive sponsorship program{about}. "
                       f"Reason: {e.reason}")]


def check_may_act(s: SponsorshipState) -> None:
    if s.status == "ended":
        raise Rejected("sponsorship_ended", f"the sponsorship of account {s.account_id} has ended; enrol it again "
                                            "to start a new one")


def check_in(state: SponsorshipState, c: CheckIn, now: datetime, inp: SponsorshipInput) -> SponsorshipState:
    check_may_act(state)
    s = state.model_copy(deep=True)
    s.check_ins = [*s.check_ins, CheckInRecord(by=c.by, notes=c.notes, at=now)][-KEPT:]
    s.check_in_count += 1
    s.next_check_in_due = now + inp.check_in_every
    return s


def leave(state: SponsorshipState, x: ExitRequest, now: datetime) -> tuple[SponsorshipState, list[Notice]]:
    check_may_act(state)
    s = state.model_copy(deep=True)
    s.status, s.exited = "ended", Exited(by=x.by, reason=x.reason, at=now)
    return s, [_notice(s, "sponsorship_ended", f"Executive sponsorship ended: account {s.account_id}",
                       f"By {x.by}. Reason: {x.reason}")]


def quiet_until(s: SponsorshipState, inp: SponsorshipInput) -> datetime:
    return s.last_escalation_at + inp.exit_after_quiet


def next_deadline(s: SponsorshipState, inp: SponsorshipInput) -> datetime | None:
    return None if s.status == "ended" else min(s.next_check_in_due, quiet_until(s, inp))


def on_time(state: SponsorshipState, now: datetime, inp: SponsorshipInput) -> tuple[SponsorshipState, list[Notice]]:
    """What falls due by `now`: the quiet period's end (the sponsorship ends), else a check-in (the sponsor is
    reminded once per cadence; the next one is due a cadence later)."""
    if state.status == "ended":
        return state, []
    if now >= quiet_until(state, inp):
        days = inp.exit_after_quiet.days
        return leave(state, ExitRequest(by="system:sponsorship", reason=f"no executive escalation for {days} days"),
                     now)
    if now < state.next_check_in_due:
        return state, []
    s = state.model_copy(deep=True)
    late = s.next_check_in_due
    s.next_check_in_due = now + inp.check_in_every
    s.reminders_sent += 1
    last = s.check_ins[-1].at.date().isoformat() if s.check_ins else "never"
    return s, [_notice(s, "sponsorship_check_in", f"Check-in due: account {s.account_id}",
                       f"A sponsor check-in with account {s.account_id} was due {late.isoformat()} "
                       f"(last check-in: {last}). Record it with `escalation sponsorship check-in {s.account_id}`.")]


def prepare_input(s: SponsorshipState, n: Notice, now: datetime) -> PrepareInput:
    """A notice to the account's executive sponsor, with the latest enrolment's ticket as the templates' ticket."""
    last = s.enrolments[-1] if s.enrolments else None
    return PrepareInput(key=n.key, kind=n.kind, ticket_id=(last.ticket_id if last and last.ticket_id else "-"),
                        roles=[f"person:{s.sponsor}" if s.sponsor else "executive_sponsor"], subject=n.subject, body=n.body,
                        priority=last.priority if last else "P1", tier=last.tier if last else "",
                        department=last.department if last else "", status=s.status,
                        ticket_subject=last.ticket_subject if last else "", customer_id=s.account_id, at=now)
