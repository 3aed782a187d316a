"""What a post-mortem is: its subject, owner, draft, steps, root cause, action items, article."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints

from workflows.common.calendar import BusinessCalendar

Text = Annotated[str, StringConstraints(min_length=1, max_length=20_000)]
Actor = Annotated[str, StringConstraints(min_length=1, max_length=200)]
STEPS = ("review", "root_cause", "complete")


def postmortem_workflow_id(kind: str, subject_id: str) -> str:
    return f"postmortem-{kind}-{subject_id}"


class Step(BaseModel):
    name: Literal["review", "root_cause", "complete"]
    due_at: datetime
    done_at: datetime | None = None
    by: str | None = None
    overdue_told: bool = False


class ActionItem(BaseModel):
    number: int
    text: str
    owner: str
    due_at: datetime
    done_at: datetime | None = None
    reminded: bool = False
    overdue_told: bool = False
    # The item's own reminder timer: its owner hears of it one `remind_every` before it is due and at that cadence
    # until done (None: a post-mortem whose first item came before the patch `action-item-reminders` reminds never).
    remind_at: datetime | None = None
    reminders_sent: int = 0


class PostmortemInput(BaseModel):
    kind: Literal["ticket", "incident"]
    subject_id: str
    title: str
    owner: str = Field(description="the escalation manager or incident commander (a person id, or an actor)")
    participants: list[str] = Field(default_factory=list, description="everyone who acted on the subject")
    draft: str = Field(description="markdown assembled from the subject's timeline")
    priority: str = "P1"
    tier: str = ""
    department: str = ""
    customer_id: str = "-"
    escalation_manager: str | None = None
    calendar: BusinessCalendar
    review_within_days: int = 2
    root_cause_within_days: int = 5
    complete_within_days: int = 10
    action_item_days: int = 10
    remind_every: timedelta = timedelta(days=1)


class ReviewIn(BaseModel):
    by: Actor
    notes: Text


class RootCauseIn(BaseModel):
    by: Actor
    root_cause: Text
    contributing_factors: list[Annotated[str, StringConstraints(min_length=1, max_length=2000)]] = []


class ActionItemIn(BaseModel):
    by: Actor
    text: Annotated[str, StringConstraints(min_length=1, max_length=2000)]
    owner: Actor
    due_in_days: int | None = Field(None, ge=1, le=365, description="business days (default: the policy's)")


class CompleteIn(BaseModel):
    by: Actor
    summary: Text


class AssignIn(BaseModel):
    """The post-mortem handed to another owner (who is then reminded)."""

    by: Actor
    owner: Actor


class OwnerChange(BaseModel):
    at: datetime
    by: str
    from_owner: str
    to_owner: str


class PostmortemState(BaseModel):
    id: str
    # Due dates on a 24x7 calendar (a P1's) count whole days; before the patch `whole-days-24x7` they fell on the
    # start itself (no business day ends on such a calendar), and histories from before keep that.
    whole_days_24x7: bool = False
    kind: str
    subject_id: str
    title: str
    owner: str
    participants: list[str]
    draft: str
    status: Literal["open", "completed"] = "open"
    started_at: datetime
    steps: list[Step]
    review_notes: str | None = None
    root_cause: str | None = None
    contributing_factors: list[str] = []
    action_items: list[ActionItem] = []
    next_reminder_at: datetime
    reminders_sent: int = 0
    summary: str | None = None
    kb_article: str | None = Field(None, description="where the knowledge-base article was published")
    kb_error: str | None = Field(None, description="why the article could not be published (after a day of retries)")
    notices: int = 0
    owner_changes: list[OwnerChange] = Field(default_factory=list, description="explicit assignments, in order")
