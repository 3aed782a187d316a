"""The API's request and response models: derived from the core's events and views, with the API's limits."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from fastapi import Path
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    create_model,
    field_validator,
)
from pydantic.fields import FieldInfo

from starter.client import Permission
from workflows import ticket as core
from workflows.common.vocabulary import ID_PATTERN, Status
from workflows.ticket import Ticket
from workflows.ticket.views import ClockView, TicketView

DEFAULT_MAX_STR = 200


def body_model(event: type[BaseModel]) -> type[BaseModel]:
    """The request body of an action: the event's own fields minus `actor` (from the token) and `type` (from the path).

    Strings the core leaves unbounded get a length limit here."""
    fields: dict[str, Any] = {}
    for name, f in event.model_fields.items():
        if name in ("actor", "type"):
            continue
        info = f
        has_max = any(getattr(m, "max_length", None) is not None for m in f.metadata)
        if not has_max and _is_str(f.annotation):
            info = FieldInfo.merge_field_infos(f, Field(max_length=DEFAULT_MAX_STR))
        fields[name] = (f.annotation, info)
    doc = (event.__doc__ or "").strip()
    return create_model(f"{event.__name__}Body", __config__=ConfigDict(extra="forbid"), __doc__=doc or None, **fields)


def _is_str(annotation: Any) -> bool:
    return annotation is str or (getattr(annotation, "__args__", None) is not None and str in annotation.__args__)


ACTION_EVENTS: dict[str, type[BaseModel]] = {name.replace("_", "-"): cls for name, cls in core.ACTIONS.items()}
ACTION_BODIES: dict[str, type[BaseModel]] = {action: body_model(cls) for action, cls in ACTION_EVENTS.items()}
ACTION_PERMISSIONS = {"assign": Permission.assign, "assign-manager": Permission.assign,
                      "customer-reply": Permission.customer_reply}
ACTION_DOCS = {
    "acknowledge": "Acknowledge the ticket (stops the acknowledge clock).",
    "escalate": "Hierarchical escalation: to the next tier up, or to `to_tier` (may jump several). Escalating into "
                "a tier only a person may enter (executive) needs a supervisor or admin.",
    "escalate-to-executive": "Executive escalation (a customer threatens to leave; `reason` required): the ticket "
                             "moves to the executive tier and the executives are told. Supervisors and admins only; "
                             "an agent's is a request "
                             "that tells the escalation manager (the ticket stays where it is).",
    "transfer": "Functional escalation: move the ticket sideways to another department; the tier stays.",
    "wait-on-customer": "Wait on the customer: clocks that pause while waiting pause.",
    "resolve": "Resolve with a fix or a workaround; the ticket closes after the reopen window.",
    "reopen": "Reopen a resolved ticket.",
    "close": "Close a resolved ticket now.",
    "assign": "Assign (or with `null`, unassign). Supervisors and admins only.",
    "assign-manager": "Make a directory person the ticket's escalation manager (told of every step; high-priority "
                      "openings get one from the rotation). Supervisors and admins only.",
    "note": "Add a note; `public: true` makes it a customer-facing reply.",
    "change-priority": "Change the priority; accrued SLA time is kept.",
    "customer-reply": "Relay a customer's message. On a closed ticket it opens a new ticket linked to it (201). "
                      "With `wait=false` it is handed over as a Signal (fire and forget, 202): nothing waits for "
                      "a worker, and the answer carries no view.",
}


class TicketIn(Ticket):
    """A ticket to open. `id` is the caller's: a retry with the same body returns the existing ticket."""

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra={"examples": [{
        "id": "HD-10442", "subject": "Streaming app fails on smart TV", "customer_id": "cust-1042",
        "description": "The app crashes at start since the last update.", "priority": "P2", "tags": ["smart-tv"],
    }]})
    opened_at: AwareDatetime | None = Field(  # type: ignore[assignment]
        None, description="when the customer reported it; default: when the API received it")

    @field_validator("opened_at")
    @classmethod
    def _aware(cls, v: datetime | None) -> datetime | None:  # type: ignore[override]
        return v  # AwareDatetime checks the zone; None means "now"

    def ticket(self, now: datetime) -> Ticket:
        return Ticket(**{**self.model_dump(exclude={"opened_at"}), "opened_at": self.opened_at or now})


class ClockOut(ClockView):
    """A clock as shown: business time accrued and remaining (negative when overdue), and the due time."""


class TicketOut(TicketView):
    """The ticket as a person sees it at `as_of`: state, SLA clocks, timeline."""

    clocks: list[ClockOut]  # type: ignore[assignment]


def out(view: TicketView) -> TicketOut:
    return TicketOut.model_validate(view, from_attributes=True)


class IntakeOutcome(StrEnum):
    """What an intake delivery did (not an action's outcome: that is ActionResult.outcome in the core)."""

    opened = "opened"
    existing = "existing"
    customer_reply = "customer_reply"
    follow_up = "follow_up"
    duplicate = "duplicate"


class IntakeResult(BaseModel):
    outcome: IntakeOutcome = Field(description="opened: a new ticket (201); existing: a repeated delivery (200); "
                                         "customer_reply: an email reply added to its ticket (200); follow_up: a reply "
                                         "to a closed ticket opened a linked ticket (201); duplicate: that reply was "
                                         "already recorded (200)")
    ticket: TicketOut
    replied_to: str | None = Field(None, description="the ticket an email replied to")
    sensitive: list[str] = Field(default_factory=list, description="sensitive data found on a public channel: "
                                 "the ticket is flagged and the reply must move to a private channel")


class TimelineOut(BaseModel):
    id: str
    status: Status
    timeline: list[core.TimelineEntry]


class Health(BaseModel):
    status: Literal["ok", "ready"]
    checks: dict[str, str] = Field(default_factory=dict)


TicketIdPath = Annotated[str, Path(pattern=ID_PATTERN, max_length=100, description="the ticket id",
                                   examples=["HD-10442"])]
