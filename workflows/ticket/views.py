"""Read models: what a person sees of a ticket at a given instant.

Workflow time does not advance inside a query, so clients compute the clocks'
remaining business time here, with the ticket's calendar, against their own clock.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from workflows.common import clocks
from workflows.common.clocks import Phase
from workflows.common.vocabulary import ClockName, IsoDuration, Status
from workflows.survey.state import SurveyState
from workflows.ticket import Breach, TicketState, TimelineEntry


class ClockView(BaseModel):
    name: ClockName
    phase: Phase
    # in JSON as the API shows them (ISO 8601, whole seconds), whoever serializes the view
    target: IsoDuration | None
    accrued: IsoDuration
    remaining: IsoDuration | None
    due_at: datetime | None
    breached: bool
    warnings_sent: list[int]
    tier: str | None


class TicketView(BaseModel):
    id: str
    subject: str
    status: Status
    tier: str
    department: str
    priority: str
    channel: str
    customer_id: str
    assignee: str | None
    escalation_manager: str | None = None
    incident_id: str | None = Field(None, description="the incident this ticket is part of (its updates reach the "
                                                      "customer; the timeline has the latest)")
    incident_latest_update: str | None = Field(None, description="the latest update of that incident the customer "
                                                                 "was told (None: none yet)")
    routing_rule: str | None
    escalation_count: int
    reopen_count: int
    executive_attention: bool
    sla_breached: bool
    breaches: list[Breach]
    policy_version: str
    calendar: str
    opened_at: datetime
    acknowledged_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    linked_ticket_id: str | None
    as_of: datetime
    clocks: list[ClockView]
    timeline: list[TimelineEntry]
    # False in the answer to an action: it carries only the entries that action added (read the ticket for all).
    timeline_complete: bool
    postmortem_id: str | None = Field(None, description="the post-mortem its resolution started "
                                                        "(GET /v1/postmortems/{id})")
    survey: SurveyState | None = Field(None, description="a closed ticket's satisfaction survey (the client joins it "
                                                         "by its id, derived from the ticket's)")


def clock_view(c: clocks.ClockState, now: datetime, state: TicketState) -> ClockView:
    return ClockView(
        name=c.name, phase=c.phase, target=c.target, accrued=clocks.accrued_at(c, now, state.calendar),
        remaining=clocks.remaining_at(c, now, state.calendar), due_at=c.due_at, breached=c.breached,
        warnings_sent=c.warnings_sent, tier=c.tier,
    )


def ticket_view(state: TicketState, now: datetime) -> TicketView:
    """The ticket as of `now` (never earlier than the state's own as_of)."""
    now = max(now, state.as_of)
    t = state.ticket
    return TicketView(
        id=t.id, subject=t.subject, status=state.status, tier=state.tier, department=state.department,
        priority=state.priority, channel=t.channel.value, customer_id=t.customer_id, assignee=state.assignee,
        escalation_manager=state.escalation_manager, incident_id=state.incident_id,
        incident_latest_update=_latest_incident_update(state),
        postmortem_id=state.postmortem_id,
        routing_rule=state.routing_rule, escalation_count=state.escalation_count, reopen_count=state.reopen_count,
        executive_attention=state.executive_attention, sla_breached=state.sla_breached, breaches=state.breaches,
        policy_version=state.policy_version, calendar=state.calendar.name, opened_at=t.opened_at,
        acknowledged_at=state.acknowledged_at, resolved_at=state.resolved_at, closed_at=state.closed_at,
        linked_ticket_id=t.linked_ticket_id, as_of=now,
        clocks=[clock_view(c, now, state) for c in state.clocks.values()], timeline=state.timeline,
        timeline_complete=bool(state.timeline) and state.timeline[0].seq == 1 and not state.timeline_dropped,
    )


# ----- the answer to an action ---------------------------------------------------------

DUPLICATE = "duplicate"  # the outcome of an action the ticket had applied before (a retried customer reply)


class ActionResult(BaseModel):
    """What an Update answers: the action's outcome and the ticket as the action left it (a view: no description,
    no calendar, and of the timeline only the entries the action added), never the whole state (whose description
    alone may be 20 KB, and whose timeline would go into the history again with every answer). The caller needs
    no second read to show the ticket after an action."""

    outcome: str = Field(description=f"the action applied (its name), or {DUPLICATE!r}: applied before, not again")
    ticket: TicketView = Field(description="the ticket after the action, as of the action's time; its timeline: "
                                           "only the entries this action added")


def action_view(state: TicketState, added: list[TimelineEntry], now: datetime) -> TicketView:
    """The ticket after an action, as an action's answer shows it: only the timeline entries that action added."""
    return ticket_view(state.model_copy(update={"timeline": added}), now)


def action_result(state: TicketState, outcome: str, added: list[TimelineEntry], now: datetime) -> ActionResult:
    return ActionResult(outcome=outcome, ticket=action_view(state, added, now))


def answer_lacks_ticket(answer: Any) -> bool:
    """An answer from a worker whose ActionResult carried no ticket (outcome, status, due times, entries added):
    the caller reads the ticket to show it (see `as_action_result`)."""
    return isinstance(answer, dict) and "outcome" in answer and "ticket" not in answer


def as_action_result(answer: Any, action: str, now: datetime, state: TicketState | None = None) -> ActionResult:
    """An Update's answer of any shape it has had, as an ActionResult. During a rolling deploy a worker running
    older code answers with the state itself (before the `small-action-answer` patch), or with an ActionResult
    without the ticket (`answer_lacks_ticket`): for that one `state`, read by the caller, shows the ticket."""
    if isinstance(answer, ActionResult):
        return answer
    if answer_lacks_ticket(answer):
        if state is None:
            raise ValueError("an answer without the ticket needs the ticket's state read by the caller")
        added = [TimelineEntry.model_validate(e) for e in answer.get("timeline", [])]
        return action_result(state, answer["outcome"], added, now)
    if isinstance(answer, dict) and "outcome" in answer:
        return ActionResult.model_validate(answer)
    old = answer if isinstance(answer, TicketState) else TicketState.model_validate(answer)
    return action_result(old, action, old.timeline, now)


def _latest_incident_update(state: TicketState) -> str | None:
    """What the customer was last told of the incident the ticket is part of (the timeline entry's text)."""
    if state.incident_id is None or state.incident_update == 0:
        return None
    return next((e.reason for e in reversed(state.timeline) if e.action == "incident_update"), None)
