"""The survey's rules: who is asked, until when, and what an answer may be."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from workflows.common.delivery import PrepareInput
from workflows.common.policy import Policy
from workflows.survey.state import Answered, SurveyAnswer, SurveyState, survey_workflow_id
from workflows.ticket.events import Rejected
from workflows.ticket.state import TicketState, record


class SurveyInput(BaseModel):
    """What the survey needs of its ticket, taken when the ticket closed."""

    ticket_id: str
    subject: str
    customer_id: str
    customer_contact: str | None = Field(default=None, description="personal data: never logged")
    thread_ref: str | None = None
    priority: str
    tier: str
    department: str
    assignee: str | None = None
    escalation_manager: str | None = None
    closed_at: datetime
    expires_at: datetime
    low_score: int
    notify_low_score: list[str]


def survey_input(s: TicketState, p: Policy, now: datetime) -> SurveyInput | None:
    """The survey a ticket that just closed starts (None: the policy sends none, or there is nobody to ask)."""
    if not p.surveys.enabled or not s.ticket.customer_contact:
        return None
    return SurveyInput(ticket_id=s.ticket.id, subject=s.ticket.subject, customer_id=s.ticket.customer_id,
                       customer_contact=s.ticket.customer_contact, thread_ref=s.ticket.thread_ref,
                       priority=s.priority, tier=s.tier,
                       department=s.department, assignee=s.assignee, escalation_manager=s.escalation_manager,
                       closed_at=now, expires_at=now + p.surveys.expires_after, low_score=p.surveys.low_score,
                       notify_low_score=list(p.surveys.notify_low_score))


def new_survey(inp: SurveyInput) -> SurveyState:
    return SurveyState(survey_id=survey_workflow_id(inp.ticket_id), ticket_id=inp.ticket_id, expires_at=inp.expires_at)


def check_answer(s: SurveyState, now: datetime) -> None:
    """Single use, until it expires: checked before anything is written."""
    if s.answer is not None:
        raise Rejected("survey_answered", f"this survey was answered at {s.answer.at.isoformat()}; it takes one answer")
    if s.status == "expired" or now >= s.expires_at:
        raise Rejected("survey_expired", f"this survey closed at {s.expires_at.isoformat()}")


def answer(s: SurveyState, a: SurveyAnswer, now: datetime) -> SurveyState:
    check_answer(s, now)
    return s.model_copy(update={"status": "answered", "answer": Answered(score=a.score, comment=a.comment, at=now)})


def is_low(s: SurveyState, inp: SurveyInput) -> bool:
    return s.answer is not None and s.answer.score <= inp.low_score


def prepare_input(inp: SurveyInput, s: SurveyState, kind: Literal["survey", "survey_low_score"],
                  now: datetime) -> PrepareInput:
    """The survey mail to the customer, or the low-score notice to the team: the preparing activity's input."""
    if kind == "survey":
        roles, subject, body = ["customer"], f"How did we do? {inp.subject}", "Tell us how we did with your request."
    else:
        roles, subject = inp.notify_low_score, f"Low satisfaction score: {inp.subject}"
        score = s.answer.score if s.answer else "?"
        comment = s.answer.comment if s.answer and s.answer.comment else "(no comment)"
        body = f"Ticket {inp.ticket_id} was rated {score} of 5: {comment}"
    return PrepareInput(key=f"{survey_workflow_id(inp.ticket_id)}:{kind}", kind=kind, ticket_id=inp.ticket_id,
                        roles=roles, subject=subject, body=body, priority=inp.priority, tier=inp.tier,
                        department=inp.department, status="closed", ticket_subject=inp.subject,
                        customer_id=inp.customer_id, customer_contact=inp.customer_contact, assignee=inp.assignee,
                        escalation_manager=inp.escalation_manager, at=now, survey_expires_at=inp.expires_at,
                        thread_ref=inp.thread_ref)


def survey_started(state: TicketState, inp: SurveyInput, now: datetime) -> TicketState:
    """The ticket's timeline says a survey went out and until when it may be answered."""
    s = state.model_copy(deep=True)
    record(s, now, "system:survey", "survey_started",
           f"satisfaction survey {survey_workflow_id(inp.ticket_id)}, open until {inp.expires_at.isoformat()}")
    return s
