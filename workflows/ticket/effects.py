"""What the rules ask the workflow to do: notifications, finding an escalation manager (timers derive from the clocks)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel

from workflows.ticket.state import TicketState


class Notify(BaseModel):
    """Tell people something; `key` is unique per notification for idempotent delivery."""

    kind: Literal["opened", "stakeholders", "escalation", "warning", "breach", "resolved", "executive", "transferred",
                  "public_reply", "reminder", "customer_update", "executive_request", "incident_update"]
    key: str
    ticket_id: str
    recipients: list[str]
    subject: str
    body: str
    priority: str
    tier: str
    department: str
    due_at: datetime | None = None  # the SLA due time behind a breach or an automatic escalation


class FindEscalationManager(BaseModel):
    """Ask the rotation whose turn it is among the escalation managers on duty (an activity: the directory and the
    shared turn are outside the workflow); its answer comes back as an AssignManager event."""

    kind: Literal["find_escalation_manager"] = "find_escalation_manager"
    key: str
    ticket_id: str
    pool: str
    priority: str
    tier: str
    department: str
    customer_id: str
    at: datetime


class EnrolSponsorship(BaseModel):
    """Enrol the ticket's account in the executive sponsorship program (an activity's signal-with-start: workflow
    code starts no other workflow by id it does not own); its key makes a retried enrolment harmless."""

    kind: Literal["enrol_sponsorship"] = "enrol_sponsorship"
    key: str
    ticket_id: str
    ticket_subject: str
    account_id: str
    criterion: Literal["executive_escalation", "plan", "tier"]
    reason: str
    by: str
    at: datetime
    priority: str
    tier: str
    department: str
    check_in_every: timedelta
    exit_after_quiet: timedelta


class StartPostmortem(BaseModel):
    """A severe ticket was resolved: its post-mortem starts (an abandoned child the shell starts from the state)."""

    kind: Literal["start_postmortem"] = "start_postmortem"
    ticket_id: str


Effect = Notify | FindEscalationManager | EnrolSponsorship | StartPostmortem


class NotifyResult(BaseModel):
    """The notify activity's answer: `duplicate` when the key was delivered before (a retry)."""

    key: str
    duplicate: bool
    recorded_at: datetime


class StepResult(BaseModel):
    """A step's outcome: the new state and the effects to carry out."""

    state: TicketState
    effects: list[Effect] = []


def notify(s: TicketState, kind: str, recipients: list[str], subject: str, body: str,
            due_at: datetime | None = None) -> Notify:
    """A notification with a key unique to this ticket (its next sequence number), for idempotent delivery."""
    s.seq += 1
    return Notify(kind=kind, key=f"ticket-{s.ticket.id}:{s.seq}:{kind}", ticket_id=s.ticket.id,  # type: ignore[arg-type]
                  recipients=list(dict.fromkeys(recipients)), subject=subject, body=body, priority=s.priority,
                  tier=s.tier, department=s.department, due_at=due_at)
