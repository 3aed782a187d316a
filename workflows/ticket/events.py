"""What can happen to a ticket: agent actions, customer messages and the SLA timers, as typed events.

`ACTIONS` is the one list the workflow's Updates, the API's action routes and the CLI's commands are built from.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints

from workflows.common.vocabulary import ClockName, Priority, ResolutionKind

Actor = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Reason = Annotated[str, StringConstraints(max_length=2000)]
SYSTEM_SLA = "system:sla"

class Rejected(Exception):
    """An action that the ticket's current state or the policy does not allow."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


# ----- events -------------------------------------------------------------------


class _Event(BaseModel):
    actor: Actor = "unknown"


class Acknowledge(_Event):
    type: Literal["acknowledge"] = "acknowledge"
    note: Reason = ""


class Escalate(_Event):
    type: Literal["escalate"] = "escalate"
    reason: Annotated[str, StringConstraints(min_length=1, max_length=2000)]
    to_tier: str | None = None  # default: the next tier up; may jump several


class EscalateToExecutive(_Event):
    """Executive escalation (a customer threatens to leave): the ticket goes to the executive tier and the executives
    are told. Supervisors and admins do it; an agent's is a request (`request_only`, set by the client), which tells
    the escalation manager. (Enrolment in the executive sponsorship program is not built yet.)"""

    type: Literal["escalate_to_executive"] = "escalate_to_executive"
    reason: Annotated[str, StringConstraints(min_length=1, max_length=2000)]
    request_only: bool = Field(False, description="only ask the escalation manager to escalate (an agent's request)")


class Transfer(_Event):
    type: Literal["transfer"] = "transfer"
    department: str
    reason: Reason = ""


class WaitOnCustomer(_Event):
    type: Literal["wait_on_customer"] = "wait_on_customer"
    reason: Reason = ""


class CustomerReply(_Event):
    type: Literal["customer_reply"] = "customer_reply"
    actor: Actor = "customer"
    message: Annotated[str, StringConstraints(max_length=20_000)] = ""
    message_id: str | None = None


class Resolve(_Event):
    type: Literal["resolve"] = "resolve"
    resolution: ResolutionKind = ResolutionKind.fix
    summary: Annotated[str, StringConstraints(min_length=1, max_length=5000)]


class Reopen(_Event):
    type: Literal["reopen"] = "reopen"
    reason: Reason = ""


class Close(_Event):
    type: Literal["close"] = "close"
    reason: Reason = ""


class Assign(_Event):
    type: Literal["assign"] = "assign"
    assignee: Annotated[str, StringConstraints(max_length=200)] | None


class AssignManager(_Event):
    """The ticket's escalation manager (told of every step): chosen by the rotation at opening, or by a supervisor."""

    type: Literal["assign_manager"] = "assign_manager"
    manager: Annotated[str, StringConstraints(min_length=1, max_length=200)]


class AddNote(_Event):
    type: Literal["note"] = "note"
    text: Annotated[str, StringConstraints(min_length=1, max_length=20_000)]
    public: bool = False  # a public note is a customer-facing message


class ChangePriority(_Event):
    type: Literal["change_priority"] = "change_priority"
    priority: Priority
    reason: Reason = ""


class DeadlineReached(_Event):
    """A durable timer fired: a clock's warning (percent) or breach, or the auto-close."""

    type: Literal["deadline"] = "deadline"
    actor: Actor = SYSTEM_SLA
    kind: Literal["warning", "breach", "auto_close"]
    clock: ClockName | None = None
    percent: int | None = None
    due_at: datetime


class IncidentNotice(_Event):
    """What an incident tells each ticket linked to it (a Signal from the incident's fan-out activity): linked (with
    the latest update), a status update for the customer, unlinked, resolved. Each ticket de-duplicates by incident
    and update number, so a fan-out that is retried after a crash tells nobody twice."""

    type: Literal["incident"] = "incident"
    kind: Literal["linked", "update", "unlinked", "resolved"]
    incident_id: str
    title: str = ""
    number: int = Field(0, ge=0, description="the update's number (linked: the latest update's, 0 if none yet)")
    text: str = Field("", max_length=20_000, description="the update's text, or the resolution's summary")
    resolve: bool = Field(False, description="resolved: resolve the ticket too (the policy's choice)")
    resolution: ResolutionKind = ResolutionKind.fix


Event = Annotated[
    Acknowledge | Escalate | EscalateToExecutive | Transfer | WaitOnCustomer | CustomerReply | Resolve | Reopen | Close
    | Assign | AssignManager | AddNote | ChangePriority | DeadlineReached | IncidentNotice,
    Field(discriminator="type"),
]

# What people may do to a ticket, by name: the one list the workflow's Updates, the API's action routes and
# the CLI's commands are built from (the API and CLI spell `wait_on_customer` as `wait-on-customer`).
ACTIONS: dict[str, type[_Event]] = {
    cls.model_fields["type"].default: cls
    for cls in (Acknowledge, Escalate, EscalateToExecutive, Transfer, WaitOnCustomer, Resolve, Reopen, Close, Assign,
                AssignManager, AddNote, ChangePriority, CustomerReply)
}
