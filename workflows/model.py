"""The ticket's vocabulary: enums and the intake model shared by core, workflow and clients."""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, field_validator

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"
# The pattern is checked by the validator (for a message a person can act on) and shown in the JSON schema.
_ID_SCHEMA = Field(json_schema_extra={"pattern": ID_PATTERN, "maxLength": 100})
TicketId = Annotated[str, AfterValidator(lambda v: _id(v)), _ID_SCHEMA]
PRIORITIES = ("P1", "P2", "P3", "P4")


class Channel(StrEnum):
    email = "email"
    chat = "chat"
    phone = "phone"
    social = "social"
    portal = "portal"
    bot = "bot"
    api = "api"


class Status(StrEnum):
    new = "new"  # opened, not yet acknowledged
    open = "open"  # acknowledged, being worked
    waiting_on_customer = "waiting_on_customer"
    resolved = "resolved"
    closed = "closed"


class Trigger(StrEnum):
    """Events that start, stop, restart or resume an SLA clock (policy `clocks`)."""

    opened = "opened"
    acknowledged = "acknowledged"
    escalated = "escalated"
    transferred = "transferred"
    public_reply = "public_reply"  # any customer-facing message from us
    customer_replied = "customer_replied"
    resolved = "resolved"
    reopened = "reopened"
    closed = "closed"


class ClockName(StrEnum):
    acknowledge = "acknowledge"
    tier = "tier"
    resolution = "resolution"
    customer_update = "customer_update"


class ResolutionKind(StrEnum):
    fix = "fix"
    workaround = "workaround"


def _opaque_customer(value: str) -> str:
    if "@" in value:
        raise ValueError(
            "customer_id must be an opaque id (letters, digits, '.', '_', '-'), not an email address: "
            "ids are stored unencrypted in workflow ids and search attributes"
        )
    return _id(value)


def _id(value: str) -> str:
    if not re.match(ID_PATTERN, value):
        raise ValueError(f"{value!r} is not a valid id: 1 to 100 letters, digits, '.', '_' or '-', starting with a letter/digit")
    return value


CustomerId = Annotated[str, AfterValidator(_opaque_customer), _ID_SCHEMA]
Text = Annotated[str, StringConstraints(max_length=20_000)]
Short = Annotated[str, StringConstraints(min_length=1, max_length=500)]
Tag = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9:._/-]{0,63}$")]


class Ticket(BaseModel):
    """What the customer asked and where it came from: the workflow's input."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    id: TicketId
    subject: Short
    description: Text = ""
    channel: Channel = Channel.api
    customer_id: CustomerId
    customer_plan: Annotated[str, StringConstraints(max_length=64)] = "standard"
    priority: Literal["P1", "P2", "P3", "P4"] | None = None
    tags: Annotated[list[Tag], Field(max_length=50)] = Field(default_factory=list)
    opened_at: datetime
    linked_ticket_id: TicketId | None = None
    sensitive: bool = False

    @field_validator("opened_at")
    @classmethod
    def _aware(cls, v: datetime) -> datetime:
        if v.tzinfo is None or v.utcoffset() is None:
            raise ValueError("opened_at must carry a time zone (e.g. 2026-11-25T09:00:00+01:00 or ...Z)")
        return v

    def text(self) -> str:
        return f"{self.subject}\n{self.description}"


def contains_keyword(text: str, keyword: str) -> bool:
    """Case-insensitive whole-word (or whole-phrase) match."""
    return re.search(rf"(?<!\w){re.escape(keyword.lower())}(?!\w)", text.lower()) is not None
