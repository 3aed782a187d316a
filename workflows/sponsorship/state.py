"""What a sponsorship is: its enrolments, check-ins and exit (bounded lists: a sponsorship may last years)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints

from workflows.common.vocabulary import CustomerId

ENROL_SIGNAL = "enrol"
KEPT = 50  # latest enrolments and check-ins carried in the state (the history has them all)
Text = Annotated[str, StringConstraints(min_length=1, max_length=5000)]
Criterion = Literal["executive_escalation", "plan", "tier", "manual"]


def sponsorship_workflow_id(account_id: str) -> str:
    return f"sponsorship-{account_id}"


class Enrolment(BaseModel):
    """Why an account entered (or re-entered) the program: its key makes a repeated signal harmless."""

    key: str = Field(description="the ticket's effect key, or the client's: a repeat is recorded once")
    account_id: CustomerId
    criterion: Criterion
    reason: Text
    by: str = Field(description="who or what enrolled it (an actor, or system:<rule>)")
    at: datetime
    ticket_id: str | None = None
    ticket_subject: str = ""
    priority: str = "P1"
    tier: str = ""
    department: str = ""
    sponsor: str | None = Field(None, description="the account's executive sponsor in the directory (a person id)")


class CheckIn(BaseModel):
    by: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    notes: Text


class CheckInRecord(CheckIn):
    at: datetime


class ExitRequest(BaseModel):
    by: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    reason: Text


class Exited(ExitRequest):
    at: datetime


class SponsorshipInput(BaseModel):
    account_id: CustomerId
    check_in_every: timedelta = timedelta(days=14)
    exit_after_quiet: timedelta = timedelta(days=90)
    state: SponsorshipState | None = None  # carried through continue-as-new
    events_per_run: int = Field(2000, ge=100, description="continue as new past this many events: a sponsorship "
                                                          "may run for years, its history stays short")
    enrolments: list[Enrolment] = Field(default_factory=list, description="enrolments that came as the last run "
                                                                          "was ending: this run starts with them")


class SponsorshipState(BaseModel):
    account_id: str
    status: Literal["active", "ended"] = "active"
    sponsor: str | None = None
    enrolled_at: datetime
    enrolments: list[Enrolment] = []
    enrolment_count: int = 0
    last_escalation_at: datetime
    check_ins: list[CheckInRecord] = []
    check_in_count: int = 0
    next_check_in_due: datetime
    reminders_sent: int = 0
    exited: Exited | None = None
    notices: int = Field(0, description="notifications asked for so far: their keys count up")


SponsorshipInput.model_rebuild()
