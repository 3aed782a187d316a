"""What a ticket is: the customer's request (the workflow's input) and the state the rules keep."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidatorFunctionWrapHandler, field_validator

from workflows.common import search_attributes as sa
from workflows.common.calendar import BusinessCalendar
from workflows.common.clocks import ClockState
from workflows.common.policy import Policy, shared_policy
from workflows.common.vocabulary import (
    Channel,
    ClockName,
    CustomerId,
    Priority,
    ResolutionKind,
    Short,
    Status,
    Tag,
    Text,
    TicketId,
)

ACTIVE = (Status.new, Status.open, Status.waiting_on_customer)
# The state's bound. The state travels whole in the `state` query, the workflow's result and continue-as-new, so
# it must stay well below Temporal's payload warning (512 KiB) however long the ticket lives: with every field at
# its maximum it stays below STATE_BOUND (tests/unit/test_state_bound.py). The event history keeps everything.
STATE_BOUND = 256 * 1024  # bytes of the continue-as-new input (ticket, policy, state) at the maximum sizes
TIMELINE_KEPT = 250  # entries carried in the state; older ones drop out (counted in `timeline_dropped`)
RECENT_KEPT_WHOLE = 20  # the latest entries keep their summary and reason up to TEXT_KEPT characters each
TEXT_KEPT = 2000  # characters of a summary or reason kept in a recent entry
TEXT_FOLDED = 160  # characters of a summary or reason kept in an older entry
BREACHES_KEPT = 50  # breaches carried in the state; older ones drop out (counted in `breaches_dropped`)
REPLY_IDS_KEPT = 200  # message ids of the latest customer replies, to recognise a retried one
REPLY_KEY_MAX = 64  # characters of a message id kept as given; a longer one is kept as its digest


class Ticket(BaseModel):
    """What the customer asked and where it came from: the workflow's input."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    id: TicketId
    subject: Short
    description: Text = ""
    channel: Channel = Channel.api
    customer_id: CustomerId
    customer_plan: Annotated[str, StringConstraints(max_length=64)] = "standard"
    priority: Priority | None = None
    tags: Annotated[list[Tag], Field(max_length=50)] = Field(default_factory=list)
    opened_at: datetime
    linked_ticket_id: TicketId | None = None
    sensitive: bool = False
    # How the customer hears back (an email address, or the channel's handle), taken at intake. Personal data: in
    # the (encrypted) input and the prepared messages only; never in a workflow id, search attribute, memo or log.
    customer_contact: Annotated[str, StringConstraints(max_length=320)] | None = None
    # The customer's own first Message-ID (an email ticket): our mails to the customer answer it (In-Reply-To,
    # References), so they thread under the customer's message, and a reply to any of them names this ticket.
    thread_ref: Annotated[str, StringConstraints(max_length=998, pattern=r"^<[^<>\s]+>$")] | None = None

    @field_validator("opened_at")
    @classmethod
    def _aware(cls, v: datetime) -> datetime:
        if v.tzinfo is None or v.utcoffset() is None:
            raise ValueError("opened_at must carry a time zone (e.g. 2026-11-25T09:00:00+01:00 or ...Z)")
        return v

    def text(self) -> str:
        return f"{self.subject}\n{self.description}"


class TimelineEntry(BaseModel):
    seq: int
    at: datetime
    actor: str
    action: str
    summary: str
    reason: str = ""
    rule: str | None = None  # the policy rule behind an automatic decision
    clock: ClockName | None = None
    due_at: datetime | None = None
    acted_at: datetime | None = None  # an automatic decision: when the system applied it (entries before: unknown)


class Breach(BaseModel):
    clock: ClockName
    tier: str
    due_at: datetime
    at: datetime


class TicketState(BaseModel):
    ticket: Ticket
    policy_version: str
    status: Status = Status.new
    tier: str
    department: str
    priority: str
    routing_rule: str | None = None
    assignee: str | None = None
    escalation_manager: str | None = None  # a directory person id: told of every step
    acknowledged_at: datetime | None = None
    resolved_at: datetime | None = None
    closed_at: datetime | None = None
    resolution: ResolutionKind | None = None
    resolution_summary: str | None = None
    escalation_count: int = 0
    reopen_count: int = 0
    executive_attention: bool = False
    breaches: list[Breach] = []
    breaches_dropped: int = 0  # oldest breaches no longer carried (still in the timeline's history)
    clocks: dict[ClockName, ClockState]
    calendar: BusinessCalendar  # of the current priority; clients compute remaining time with it
    timeline: list[TimelineEntry] = []
    timeline_dropped: int = 0  # oldest entries no longer carried (still in the event history)
    reply_ids: list[str] = []  # the latest customer replies' message ids (`reply_key`), oldest first
    # The customer hears of public replies and of the policy's status updates (patch `customer-notices`: tickets
    # opened before it keep today's notifications, so their histories replay).
    customer_notices: bool = False
    incident_id: str | None = None  # the incident this ticket is part of (its updates reach the customer)
    incident_update: int = 0  # the number of the latest incident update applied (a repeat is not applied again)
    incident_open: bool = False  # linked to an incident not yet resolved: the policy's incident clocks pause
    postmortem_id: str | None = None  # the post-mortem this ticket's resolution started (one at most)
    seq: int = 0
    as_of: datetime

    @property
    def sla_breached(self) -> bool:
        return bool(self.breaches) or self.breaches_dropped > 0

    @property
    def closed(self) -> bool:
        return self.status == Status.closed


class Handoff(BaseModel):
    """A Tier 0 channel (a bot) handing the customer to people: who, why, when; and since when it had them."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    actor: Annotated[str, StringConstraints(min_length=1, max_length=200)]  # e.g. "bot:helpbot"
    reason: Annotated[str, StringConstraints(max_length=2000)] = ""
    at: datetime
    since: datetime | None = None  # the conversation's start: the time at Tier 0 is at - since


class TicketInput(BaseModel):
    """The workflow's input: the ticket, the policy snapshot that governs it, and (after continue-as-new) its state.

    `opened_by` and `handoff` are new: None in histories from before (the opening is then `system:intake`'s)."""

    ticket: Ticket
    policy: Policy
    state: TicketState | None = None
    opened_by: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    handoff: Handoff | None = None

    @field_validator("policy", mode="wrap")
    @classmethod
    def _one_object_per_policy(cls, value: Any, validate: ValidatorFunctionWrapHandler) -> Policy:
        return shared_policy(value, validate)


def workflow_id(ticket_id: str) -> str:
    """Every ticket is the workflow of this id (opening the same ticket id twice finds the same workflow)."""
    return f"ticket-{ticket_id}"


def list_memo(ticket: Ticket) -> dict[str, Any]:
    """What a list shows beyond the search attributes, kept with the workflow (memos are listed, not indexed)."""
    return {"opened_at": ticket.opened_at.isoformat(), "subject": ticket.subject}


def search_attributes(s: TicketState) -> dict[str, object]:
    """What the ticket is listed and counted by (no personal data: stored unencrypted)."""
    return {
        sa.STATUS.name: s.status.value,
        sa.TIER.name: s.tier,
        sa.PRIORITY.name: s.priority,
        sa.DEPARTMENT.name: s.department,
        sa.CHANNEL.name: s.ticket.channel.value,
        sa.CUSTOMER_ID.name: s.ticket.customer_id,
        sa.ASSIGNEE.name: s.assignee or "",
        sa.ESCALATION_COUNT.name: s.escalation_count,
        sa.SLA_BREACHED.name: s.sla_breached,
        sa.POLICY_VERSION.name: s.policy_version,
        # only once linked: tickets of before never published it (their histories replay unchanged)
        **({sa.INCIDENT.name: s.incident_id} if s.incident_id else {}),
    }


def record(s: TicketState, at: datetime, actor: str, action: str, summary: str, reason: str = "", *,
         rule: str | None = None, clock: ClockName | None = None, due_at: datetime | None = None,
         acted_at: datetime | None = None) -> None:
    """Append to the timeline, within the state's bound: older entries keep a shorter text, the oldest drop out
    (counted). Deterministic: it depends only on the entries, so a replay folds and drops exactly the same."""
    s.seq += 1
    s.timeline.append(TimelineEntry(seq=s.seq, at=at, actor=actor, action=action, summary=_clip(summary, TEXT_KEPT),
                                    reason=_clip(reason, TEXT_KEPT), rule=rule, clock=clock, due_at=due_at,
                                    acted_at=acted_at))
    for e in s.timeline[:-RECENT_KEPT_WHOLE]:  # every older entry (also those carried in from before this bound)
        if len(e.summary) > TEXT_FOLDED or len(e.reason) > TEXT_FOLDED:
            e.summary, e.reason = _clip(e.summary, TEXT_FOLDED), _clip(e.reason, TEXT_FOLDED)
    if len(s.timeline) > TIMELINE_KEPT:
        s.timeline_dropped += len(s.timeline) - TIMELINE_KEPT
        del s.timeline[: len(s.timeline) - TIMELINE_KEPT]


def record_breach(s: TicketState, breach: Breach) -> None:
    """Keep the breach among the latest BREACHES_KEPT (the ticket stays `sla_breached` when older ones drop out)."""
    s.breaches.append(breach)
    if len(s.breaches) > BREACHES_KEPT:
        s.breaches_dropped += len(s.breaches) - BREACHES_KEPT
        del s.breaches[: len(s.breaches) - BREACHES_KEPT]


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def reply_key(message_id: str) -> str:
    """How a reply's message id is remembered: as given, or (long, e.g. an email's Message-ID) as its digest."""
    if len(message_id) <= REPLY_KEY_MAX:
        return message_id
    return "sha256:" + hashlib.sha256(message_id.encode()).hexdigest()[:40]


def remember_reply(s: TicketState, message_id: str | None) -> None:
    """Keep the reply's id among the latest REPLY_IDS_KEPT (carried through continue-as-new with the state)."""
    if message_id:
        s.reply_ids.append(reply_key(message_id))
        del s.reply_ids[: max(0, len(s.reply_ids) - REPLY_IDS_KEPT)]


def reply_seen(s: TicketState, message_id: str | None) -> bool:
    """Whether a reply with this message id was applied already (one without an id never counts as seen)."""
    return bool(message_id) and reply_key(message_id or "") in s.reply_ids
