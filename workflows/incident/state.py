"""What an incident is: who leads it, which tickets it spans, what it told them."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints

from workflows.common.policy import Severity
from workflows.common.vocabulary import ResolutionKind, Slug, TicketId
from workflows.postmortem.state import PostmortemInput

Text = Annotated[str, StringConstraints(min_length=1, max_length=5000)]
Actor = Annotated[str, StringConstraints(min_length=1, max_length=200)]
UPDATES_KEPT = 20  # the latest updates carried in the state (the history has them all)
BREACHES_KEPT = 100  # the linked tickets' SLA breaches listed in the post-mortem's draft (all are counted)
TIMELINE_KEPT = 200
LINKS_PER_REQUEST = 500


def incident_workflow_id(service: str) -> str:
    return f"incident-{service}"


class IncidentUpdate(BaseModel):
    number: int
    text: str
    by: str
    at: datetime


class IncidentEntry(BaseModel):
    at: datetime
    actor: str
    action: str
    summary: str


class LinkRequest(BaseModel):
    tickets: Annotated[list[TicketId], Field(min_length=1, max_length=LINKS_PER_REQUEST)]
    by: Actor


class PostUpdate(BaseModel):
    text: Text
    by: Actor


class ResolveIncident(BaseModel):
    summary: Text
    resolution: ResolutionKind = ResolutionKind.fix
    by: Actor


class FanOut(BaseModel):
    """One batch of linked tickets to tell one thing (the fan-out activity's input)."""

    incident_id: str
    kind: Literal["linked", "update", "unlinked", "resolved"]
    title: str
    number: int = 0
    text: str = ""
    resolve: bool = False
    resolution: ResolutionKind = ResolutionKind.fix
    by: str
    tickets: list[str]


class FanOutResult(BaseModel):
    told: int = 0
    closed: list[str] = Field(default_factory=list, description="tickets already closed (completed): skipped")
    missing: list[str] = Field(default_factory=list, description="no such ticket")
    resolved: int = Field(0, description="tickets the incident's resolution resolved (open until then)")
    breaches: list[str] = Field(default_factory=list, description="the told tickets' SLA breaches, one line each "
                                                                  "(at resolution; the first BREACHES_KEPT)")
    breach_count: int = 0
    breaches_unread: int = Field(0, description="told tickets whose breaches could not be read")


class IncidentInput(BaseModel):
    service: Slug
    title: Text
    severity: Severity
    commander: Actor
    declared_by: Actor
    update_every: timedelta | None = None  # the policy's cadence for this severity (None: no reminders)
    resolve_linked: bool = True
    batch_size: int = Field(200, ge=1, le=1000, description="tickets per fan-out activity")
    events_per_run: int = Field(5000, ge=200, description="continue as new past this many events")
    postmortem: PostmortemInput | None = Field(None, description="the post-mortem's settings when its severity "
                                                               "calls for one (filled in at resolution)")
    state: IncidentState | None = None  # carried through continue-as-new


class IncidentState(BaseModel):
    id: str
    title: str
    severity: str
    commander: str
    declared_by: str
    declared_at: datetime
    status: Literal["open", "resolved"] = "open"
    tickets: list[str] = []
    updates: list[IncidentUpdate] = []
    update_count: int = 0
    last_update_at: datetime | None = None
    next_reminder_at: datetime | None = None
    reminders_sent: int = 0
    told: int = 0  # ticket notices delivered (all kinds)
    skipped_closed: int = 0
    resolved_tickets: int = 0  # linked tickets still open at its resolution, resolved by it
    ticket_breaches: list[str] = []  # the linked tickets' SLA breaches, gathered at resolution (the first kept)
    ticket_breach_count: int = 0
    ticket_breaches_unread: int = 0  # linked tickets whose breaches could not be read (the draft says so)
    resolved_at: datetime | None = None
    resolution_summary: str | None = None
    timeline: list[IncidentEntry] = []
    postmortem_id: str | None = None
    notices: int = 0  # notifications to people (the commander's reminders) so far: their keys count up


IncidentInput.model_rebuild()
