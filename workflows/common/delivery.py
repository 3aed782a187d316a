"""What is delivered to whom: the messages a notification becomes, decided once and recorded.

A notification (who: role names; what: a kind and the ticket's variables) is prepared in one recorded step
(an activity whose result is in the history): its roles resolved through the directory, its templates
rendered. The result is a list of `Message`s, one per recipient and channel, each with its own key
(notification key + recipient + channel). Each is then delivered by its channel's adapter; a retry sends
exactly the recorded text, so an edit of the directory or a template between two attempts never sends
different content under one key.

Addresses are personal data: they travel in the recorded messages (the history is encrypted by the codec
later), never in logs, workflow ids or search attributes. Logs name the `recipient_id` only.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class DeliveryChannel(StrEnum):
    """How a message reaches its recipient (not the ticket's intake channel: see vocabulary.Channel)."""

    email = "email"  # SMTP
    webhook = "webhook"  # Standard Webhooks, signed
    chat = "chat"  # a chat tool's incoming webhook: {"text": ...}
    outbox = "outbox"  # the JSONL outbox only (no person behind it: a role nobody fills, the audit sink)


def message_key(notification_key: str, recipient_id: str, channel: DeliveryChannel) -> str:
    """One key per notification, recipient and channel: what receivers de-duplicate by."""
    return f"{notification_key}:{recipient_id}:{channel.value}"


class Message(BaseModel):
    """One rendered message for one recipient on one channel, as recorded by the preparing step."""

    model_config = ConfigDict(frozen=True)
    key: str = Field(description="notification key + recipient + channel (message_key)")
    notification_key: str
    ticket_id: str
    kind: str = Field(description="the notification's kind (opened, escalation, breach, customer_update, ...)")
    channel: DeliveryChannel
    recipient_id: str = Field(description="who, as the directory names them (person id, 'customer'): for logs")
    address: str = Field(description="email address or URL: personal data, never logged")
    subject: str
    text: str
    html: str | None = None
    to: str | None = Field(default=None, description="a customer reached through their channel's integration (a signed "
                                                     "webhook): their handle there (tel:+49..., twitter:@ana). "
                                                     "Personal data: in the webhook body, never logged")
    thread_id: str | None = Field(default=None, description="email: the Message-ID of the ticket's thread, "
                                                            "for In-Reply-To/References")
    due_at: datetime | None = Field(default=None, description="the SLA due time behind a breach or an escalation")


class DeliveryResult(BaseModel):
    """A delivery's answer. A final refusal (a 4xx other than 408/429, an SMTP 5xx) is not a result: the
    activity fails with the non-retryable error type `delivery_rejected` and the ticket records
    `notification_failed`."""

    key: str
    outcome: Literal["delivered", "duplicate"] = Field(description="duplicate: the sink already held this key")
    at: datetime
    detail: str = ""


DELIVERY_REJECTED = "delivery_rejected"  # the ApplicationError type of a final refusal


class PrepareInput(BaseModel):
    """A notification as the ticket asks for it (role names, its own subject and body) with the ticket's variables
    the templates may use: the preparing activity's input (recorded in the history with its result)."""

    key: str
    kind: str
    ticket_id: str
    roles: list[str]
    subject: str
    body: str
    priority: str
    tier: str
    department: str
    status: str
    due_at: datetime | None = None
    ticket_subject: str
    customer_id: str
    customer_contact: str | None = Field(default=None, description="personal data: never logged")
    assignee: str | None = None
    escalation_manager: str | None = None
    at: datetime = Field(description="when the ticket asked (workflow time): on-duty schedules are read at it")
    survey_expires_at: datetime | None = Field(default=None, description="a survey: the signed link's expiry")
    thread_ref: str | None = Field(default=None, description="the customer's first Message-ID (email tickets): "
                                                             "the thread the customer's mails answer")


class Prepared(BaseModel):
    """What the preparing step decided: the messages, and the roles that reached nobody (recorded, not dropped)."""

    messages: list[Message]
    unreached: list[str] = Field(default_factory=list, description="role: why, for each role that reached nobody")
