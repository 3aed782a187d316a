"""What a survey is: its answer and its state (no dependency on the ticket: the ticket's view shows it)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints

Score = Annotated[int, Field(ge=1, le=5, description="1 (very unhappy) to 5 (very happy)")]
Comment = Annotated[str, StringConstraints(max_length=2000)]


class SurveyAnswer(BaseModel):
    """The customer's answer (the signed link is the credential: no actor but the customer)."""

    score: Score
    comment: Comment = ""


class Answered(BaseModel):
    score: int
    comment: str
    at: datetime


class SurveyState(BaseModel):
    survey_id: str
    ticket_id: str
    status: Literal["sending", "sent", "not_sent", "answered", "expired"] = "sending"
    expires_at: datetime
    sent_at: datetime | None = None
    answer: Answered | None = None
    low_score_notified: bool = False
    note: str = Field("", description="why it was not sent, or what failed")


def survey_workflow_id(ticket_id: str) -> str:
    return f"survey-{ticket_id}"
