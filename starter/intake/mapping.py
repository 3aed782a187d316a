"""Channel payloads -> tickets: pure functions, no I/O.

Each channel posts its own natural payload (an email, a chat conversation, a
call, a social post, a portal submission, a bot hand-off). `map_payload`
turns it into one `Ticket` whose id derives from the channel's own message
identity (Message-ID, network and post id, conversation id, call id,
submission id), so a repeated delivery maps to the same ticket and opens
nothing new. An email that replies to an earlier one names, through
In-Reply-To and References, the tickets it may belong to (`reply_targets`).

Personal data (email addresses, phone numbers, social handles) never goes into
a ticket id or a customer id: when the payload carries no opaque customer id,
one is derived by hashing the contact.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import parseaddr
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from workflows.common.vocabulary import ID_PATTERN, Channel, CustomerId, Label, Tag, contains_keyword
from workflows.ticket import CustomerReply, Handoff, Ticket

SUBJECT_MAX = 500
DESCRIPTION_MAX = 20_000
TRUNCATED = "\n[truncated]"
_SAFE_ID = re.compile(ID_PATTERN)

# An identifier from another system: visible ASCII, no spaces.
ExternalId = Annotated[str, StringConstraints(pattern=r"^[\x21-\x7e]{1,200}$")]
Plan = Annotated[str, StringConstraints(max_length=64)]
Tags = Annotated[list[Tag], Field(max_length=20)]
LongText = Annotated[str, StringConstraints(max_length=100_000)]
Line = Annotated[str, StringConstraints(max_length=998)]
Person = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class _Payload(BaseModel):
    # Webhook senders add fields of their own: unknown fields are ignored, known ones validated.
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)
    customer_id: CustomerId | None = Field(None, description="an opaque customer id; derived from the contact if omitted")
    customer_plan: Plan | None = None
    tags: Tags = Field(default_factory=list)
    reply_to: Annotated[str, StringConstraints(pattern=r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$", max_length=320)] | None = Field(
        None, description="an email address the customer hears back at (default: the channel's own contact: the "
                          "sender of an email, the caller, the social handle)")


# ----- payloads -------------------------------------------------------------------------


def _split_ids(v: object) -> object:
    if isinstance(v, str):
        return re.findall(r"<[^<>\s]+>|[^<>\s]+", v)
    return v


class EmailIntake(_Payload):
    """An inbound email as a mail parser delivers it."""

    from_: Annotated[str, StringConstraints(min_length=3, max_length=400)] = Field(
        alias="from", description="the sender: `ana@example.com` or `Ana Lima <ana@example.com>`")
    to: Annotated[list[Annotated[str, StringConstraints(max_length=400)]], Field(max_length=50)] = Field(default_factory=list)
    subject: Line = ""
    body: LongText = Field("", description="plain-text body; longer than 20,000 characters is truncated in the ticket")
    message_id: Annotated[str, StringConstraints(min_length=3, max_length=998)] = Field(
        description="the Message-ID header: the ticket id derives from it, so a redelivery opens nothing new")
    in_reply_to: Line | None = Field(None, description="In-Reply-To header")
    references: Annotated[list[Line], Field(max_length=100), BeforeValidator(_split_ids)] = Field(
        default_factory=list, description="References header: a list, or the header's space-separated string")
    date: AwareDatetime | None = Field(None, description="the Date header; when the ticket opened")

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True, json_schema_extra={"examples": [{
        "from": "Ana Lima <ana@example.com>", "to": ["support@example.com"],
        "subject": "Streaming app fails on my smart TV",
        "body": "Since the update the streaming app crashes at start.",
        "message_id": "<CAF=9x1@mail.example.com>", "customer_id": "cust-1042",
    }]})


    @field_validator("from_")
    @classmethod
    def _address(cls, v: str) -> str:
        address = sender_address(v)
        if not re.fullmatch(r"[^@\s<>]{1,64}@[^@\s<>]{1,255}", address):
            raise ValueError("from must be an email address, optionally with a display name")
        return v


class ChatAuthor(StrEnum):
    customer = "customer"
    agent = "agent"
    bot = "bot"


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    author: ChatAuthor
    text: Annotated[str, StringConstraints(max_length=5000)]
    at: AwareDatetime | None = None



class ChatIntake(_Payload):
    """A live-chat conversation that needs a ticket (routed by its query/topic)."""

    conversation_id: ExternalId = Field(description="the chat tool's conversation id: the ticket id derives from it")
    customer_id: CustomerId = Field(description="the chat tool's opaque visitor/customer id")
    topic: Annotated[str, StringConstraints(max_length=SUBJECT_MAX)] | None = Field(
        None, description="the query the chat was routed by; default: the customer's first message")
    messages: Annotated[list[ChatMessage], Field(min_length=1, max_length=500)]
    started_at: AwareDatetime | None = None

    model_config = ConfigDict(extra="ignore", frozen=True, json_schema_extra={"examples": [{
        "conversation_id": "conv-88231", "customer_id": "cust-1042", "topic": "invoice shows a double charge",
        "messages": [{"author": "customer", "text": "I was charged twice this month."},
                     {"author": "agent", "text": "Let me open a ticket with billing."}],
    }]})



class CallTransfer(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    from_agent: Person
    to_agent: Person
    reason: Annotated[str, StringConstraints(max_length=500)] = ""
    at: AwareDatetime | None = None



class PhoneIntake(_Payload):
    """A call logged by the call center, with the agent-to-agent transfers it went through."""

    call_id: ExternalId = Field(description="the telephony system's call id: the ticket id derives from it")
    caller: Annotated[str, StringConstraints(pattern=r"^\+?[0-9 ()./-]{3,32}$")] | None = Field(
        None, description="the caller's number (never stored in an id; hashed into a customer id if none is given)")
    summary: Annotated[str, StringConstraints(min_length=1, max_length=SUBJECT_MAX)]
    notes: Annotated[str, StringConstraints(max_length=DESCRIPTION_MAX)] = ""
    transfers: Annotated[list[CallTransfer], Field(max_length=50)] = Field(default_factory=list)
    started_at: AwareDatetime | None = None

    model_config = ConfigDict(extra="ignore", frozen=True, json_schema_extra={"examples": [{
        "call_id": "5521-77", "caller": "+49 30 1234567", "summary": "Internet down for the whole office",
        "notes": "Router lights red since 08:00.",
        "transfers": [{"from_agent": "front-desk", "to_agent": "networking-l1", "reason": "network issue"}],
    }]})


    @model_validator(mode="after")
    def _someone(self) -> PhoneIntake:
        if self.caller is not None and not re.search(r"\d", self.caller):
            raise ValueError("caller must hold digits")
        if self.customer_id is None and self.caller is None:
            raise ValueError("give customer_id or caller")
        return self


class Network(StrEnum):
    facebook = "facebook"
    twitter = "twitter"
    x = "x"
    instagram = "instagram"
    linkedin = "linkedin"
    tiktok = "tiktok"
    youtube = "youtube"
    reddit = "reddit"
    mastodon = "mastodon"
    other = "other"


class SocialIntake(_Payload):
    """A social-media post or mention (a social tool's notification)."""

    network: Network
    post_id: ExternalId = Field(description="the network's post id: the ticket id derives from network and post id")
    handle: Annotated[str, StringConstraints(pattern=r"^@?[^\s@]{1,100}$")]
    text: Annotated[str, StringConstraints(min_length=1, max_length=10_000)]
    url: Annotated[str, StringConstraints(pattern=r"^https?://[^\s]{1,2000}$")] | None = None
    public: bool = Field(True, description="false for a direct/private message")
    created_at: AwareDatetime | None = None

    model_config = ConfigDict(extra="ignore", frozen=True, json_schema_extra={"examples": [{
        "network": "twitter", "post_id": "1861234567890", "handle": "@ana_streams",
        "text": "@ExampleTV your streaming app keeps crashing on my smart TV",
        "url": "https://twitter.com/ana_streams/status/1861234567890",
    }]})



class PortalIntake(_Payload):
    """A request submitted in the customer portal (the customer is signed in)."""

    submission_id: ExternalId = Field(description="the portal's submission id: the ticket id derives from it")
    customer_id: CustomerId
    subject: Annotated[str, StringConstraints(min_length=1, max_length=SUBJECT_MAX)]
    description: Annotated[str, StringConstraints(max_length=DESCRIPTION_MAX)] = ""
    category: Label | None = None
    wants_agent: bool = Field(False, description="the customer asked for a human agent")
    submitted_at: AwareDatetime | None = None

    model_config = ConfigDict(extra="ignore", frozen=True, json_schema_extra={"examples": [{
        "submission_id": "sub-20261125-0042", "customer_id": "cust-1042", "subject": "Cannot change my plan",
        "description": "The upgrade button does nothing.", "category": "accounts", "wants_agent": True,
    }]})



class BotTurn(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    role: Literal["customer", "bot"]
    text: Annotated[str, StringConstraints(max_length=5000)]
    at: AwareDatetime | None = None



class BotIntake(_Payload):
    """A chatbot (Tier 0) handing the conversation to a human, with its transcript."""

    conversation_id: ExternalId = Field(description="the bot's conversation id: the ticket id derives from it")
    customer_id: CustomerId
    bot: Annotated[str, StringConstraints(min_length=1, max_length=100)] = "bot"
    reason: Annotated[str, StringConstraints(max_length=SUBJECT_MAX)] = Field(
        "", description="why the bot hands off (e.g. 'customer asked for a human')")
    intent: Label | None = None
    transcript: Annotated[list[BotTurn], Field(min_length=1, max_length=500)]
    handed_off_at: AwareDatetime | None = None

    model_config = ConfigDict(extra="ignore", frozen=True, json_schema_extra={"examples": [{
        "conversation_id": "7f3a9c", "customer_id": "cust-1042", "bot": "helpbot",
        "reason": "customer asked for a human", "intent": "password-reset",
        "transcript": [{"role": "customer", "text": "The reset link never arrives."},
                       {"role": "bot", "text": "Have you checked your spam folder?"},
                       {"role": "customer", "text": "Yes. I want to talk to a person."}],
    }]})



Payload = EmailIntake | ChatIntake | PhoneIntake | SocialIntake | PortalIntake | BotIntake
PAYLOADS: dict[Channel, type[_Payload]] = {
    Channel.email: EmailIntake, Channel.chat: ChatIntake, Channel.phone: PhoneIntake,
    Channel.social: SocialIntake, Channel.portal: PortalIntake, Channel.bot: BotIntake,
}


# ----- identities ---------------------------------------------------------------------------


def _digest(value: str, n: int = 24) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:n]


def channel_ticket_id(prefix: str, external_id: str) -> str:
    """`<prefix>-<id>` when that is a valid ticket id, else `<prefix>-h.<hash>` (deterministic either way)."""
    readable = f"{prefix}-{external_id}"
    if _SAFE_ID.match(readable) and not external_id.startswith("h."):
        return readable
    return f"{prefix}-h.{_digest(external_id)}"


def normalize_message_id(message_id: str) -> str:
    return message_id.strip().strip("<>").strip()


def thread_ref(message_id: str) -> str | None:
    """The Message-ID our mails to the customer answer (None for one that cannot go into a header as it is)."""
    ref = f"<{normalize_message_id(message_id)}>"
    return ref if re.fullmatch(r"<[^<>\s]+>", ref) and len(ref) <= 998 else None


def email_ticket_id(message_id: str) -> str:
    """Message-IDs hold '@', '<', '+'...: always hashed."""
    return f"email-{_digest(normalize_message_id(message_id))}"


def sender_address(value: str) -> str:
    return parseaddr(value)[1].strip().lower()


def contact_customer_id(kind: str, contact: str) -> str:
    """An opaque, stable customer id for a contact (email address, phone number, handle): its hash."""
    return f"{kind}-{_digest(contact.strip().lower(), 20)}"


def reply_targets(p: EmailIntake) -> list[str]:
    """Ticket ids an email may reply to, most specific first: In-Reply-To, then References newest first."""
    own = email_ticket_id(p.message_id)
    ids = [p.in_reply_to] if p.in_reply_to else []
    ids += list(reversed(p.references))
    out: list[str] = []
    for mid in ids:
        if normalize_message_id(mid):
            tid = email_ticket_id(mid)
            if tid != own and tid not in out:
                out.append(tid)
    return out


# ----- sensitive data ----------------------------------------------------------------------

SENSITIVE_KEYWORDS: dict[str, tuple[str, ...]] = {
    "billing": ("invoice", "billing", "refund", "charged", "charge", "payment", "credit card", "bank account", "iban"),
    "account": ("password", "passcode", "pin", "login", "account number", "security question", "social security",
                "ssn", "date of birth", "passport"),
    "health": ("diagnosis", "prescription", "medical", "medication", "patient", "health insurance", "therapy",
               "hospital"),
}
_CARD = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b")
_EMAIL = re.compile(r"[^@\s<>]+@[^@\s<>]+\.[A-Za-z]{2,}")
_PHONE = re.compile(r"(?<![\w+])\+?\d[\d ()/.-]{7,}\d(?!\w)")


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def detect_sensitive(text: str) -> list[str]:
    """Categories of sensitive data in `text`: billing, account, health, payment_card, bank_account, contact."""
    found: set[str] = set()
    for category, words in SENSITIVE_KEYWORDS.items():
        if any(contains_keyword(text, w) for w in words):
            found.add(category)
    for m in _CARD.finditer(text):
        digits = re.sub(r"\D", "", m.group())
        if 13 <= len(digits) <= 19 and _luhn(digits):
            found.add("payment_card")
    if _IBAN.search(text):
        found.add("bank_account")
    phones = (re.sub(r"\D", "", m.group()) for m in _PHONE.finditer(text))
    if _EMAIL.search(text) or any(8 <= len(d) <= 15 for d in phones):  # E.164: at most 15 digits; cards have more
        found.add("contact")
    return sorted(found)


# ----- mapping ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mapped:
    """What a channel payload becomes."""

    ticket: Ticket
    exact_time: bool  # opened_at came from the payload (False: the receive time, which a redelivery does not repeat)
    sensitive: list[str] = field(default_factory=list)  # categories found on a public channel
    reply_targets: list[str] = field(default_factory=list)  # tickets an email may reply to
    handoff: Handoff | None = None  # a bot's hand-off: recorded in the timeline with the bot as actor


def _fit(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - len(TRUNCATED)] + TRUNCATED


def _first_line(text: str, limit: int = 120) -> str:
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _when(ts: datetime | None, now: datetime, max_backdate: timedelta, skew: timedelta) -> tuple[datetime, bool]:
    """The payload's own time if plausible, else the receive time (a bad sender clock must not lose a message)."""
    if ts is not None and now - max_backdate <= ts <= now + skew:
        return ts, True
    return now, False


def _tags(p: _Payload, *extra: str) -> list[str]:
    return list(dict.fromkeys([*p.tags, *extra]))[:50]


def _transcript(lines: list[tuple[str, str]]) -> str:
    return "\n".join(f"{who}: {text}" for who, text in lines)


def map_payload(channel: Channel, p: Payload, now: datetime, *, max_backdate: timedelta = timedelta(days=30),
                skew: timedelta = timedelta(minutes=5)) -> Mapped:
    """The ticket a channel payload opens (pure: `now` is the receive time)."""
    mapper = _MAPPERS[channel]
    return mapper(p, now, max_backdate, skew)  # type: ignore[operator]


def _common(p: _Payload, contact: str | None = None) -> dict[str, object]:
    """Fields every channel maps alike: the plan, and where the customer hears back (`reply_to` wins)."""
    out: dict[str, object] = {"customer_plan": p.customer_plan} if p.customer_plan else {}
    if p.reply_to or contact:
        out["customer_contact"] = p.reply_to or contact
    return out


def _email(p: EmailIntake, now: datetime, back: timedelta, skew: timedelta) -> Mapped:
    opened_at, exact = _when(p.date, now, back, skew)
    ticket = Ticket(
        id=email_ticket_id(p.message_id), subject=_fit(p.subject.strip() or "(no subject)", SUBJECT_MAX),
        description=_fit(p.body, DESCRIPTION_MAX), channel=Channel.email,
        customer_id=p.customer_id or contact_customer_id("email", sender_address(p.from_)),
        tags=_tags(p), opened_at=opened_at, thread_ref=thread_ref(p.message_id),
        **_common(p, sender_address(p.from_)),  # type: ignore[arg-type]
    )
    return Mapped(ticket=ticket, exact_time=exact, reply_targets=reply_targets(p))


def _chat(p: ChatIntake, now: datetime, back: timedelta, skew: timedelta) -> Mapped:
    first = next((m.text for m in p.messages if m.author == ChatAuthor.customer and m.text.strip()), "")
    opened_at, exact = _when(p.started_at or p.messages[0].at, now, back, skew)
    ticket = Ticket(
        id=channel_ticket_id("chat", p.conversation_id),
        subject=_fit((p.topic or "").strip() or _first_line(first) or "Chat conversation", SUBJECT_MAX),
        description=_fit(_transcript([(m.author.value, m.text) for m in p.messages]), DESCRIPTION_MAX),
        channel=Channel.chat, customer_id=p.customer_id, tags=_tags(p), opened_at=opened_at, **_common(p),  # type: ignore[arg-type]
    )
    return Mapped(ticket=ticket, exact_time=exact)


def _phone(p: PhoneIntake, now: datetime, back: timedelta, skew: timedelta) -> Mapped:
    opened_at, exact = _when(p.started_at, now, back, skew)
    text = p.notes
    if p.transfers:
        hops = "\n".join(f"- {t.from_agent} -> {t.to_agent}" + (f" ({t.reason})" if t.reason else "") for t in p.transfers)
        text = f"{text}\n\nCall transfers:\n{hops}".strip()
    number = re.sub(r"[^\d+]", "", p.caller or "")
    customer = p.customer_id or contact_customer_id("phone", number)
    ticket = Ticket(
        id=channel_ticket_id("call", p.call_id), subject=p.summary.strip() or p.summary,
        description=_fit(text, DESCRIPTION_MAX), channel=Channel.phone, customer_id=customer,
        tags=_tags(p, *(["transferred-call"] if p.transfers else [])), opened_at=opened_at,
        **_common(p, f"tel:{number}" if number else None),  # type: ignore[arg-type]
    )
    return Mapped(ticket=ticket, exact_time=exact)


def _social(p: SocialIntake, now: datetime, back: timedelta, skew: timedelta) -> Mapped:
    opened_at, exact = _when(p.created_at, now, back, skew)
    handle = p.handle.lstrip("@")
    sensitive = detect_sensitive(p.text) if p.public else []
    extra = ["public-social" if p.public else "private-social"]
    if sensitive:
        extra += ["reply-private", *(f"sensitive:{c}" for c in sensitive)]
    ticket = Ticket(
        id=channel_ticket_id(f"social-{p.network.value}", p.post_id),
        subject=_fit(f"{p.network.value} @{handle}: {_first_line(p.text)}", SUBJECT_MAX),
        description=_fit(p.text + (f"\n\n{p.url}" if p.url else ""), DESCRIPTION_MAX), channel=Channel.social,
        customer_id=p.customer_id or contact_customer_id(f"social-{p.network.value}", handle),
        tags=_tags(p, *extra), opened_at=opened_at, sensitive=bool(sensitive),
        **_common(p, f"{p.network.value}:@{handle}"),  # type: ignore[arg-type]
    )
    return Mapped(ticket=ticket, exact_time=exact, sensitive=sensitive)


def _portal(p: PortalIntake, now: datetime, back: timedelta, skew: timedelta) -> Mapped:
    opened_at, exact = _when(p.submitted_at, now, back, skew)
    extra = [*([f"category:{p.category}"] if p.category else []), *(["agent-requested"] if p.wants_agent else [])]
    ticket = Ticket(
        id=channel_ticket_id("portal", p.submission_id), subject=p.subject.strip() or p.subject,
        description=p.description, channel=Channel.portal, customer_id=p.customer_id, tags=_tags(p, *extra),
        opened_at=opened_at, **_common(p),  # type: ignore[arg-type]
    )
    return Mapped(ticket=ticket, exact_time=exact)


def _bot(p: BotIntake, now: datetime, back: timedelta, skew: timedelta) -> Mapped:
    opened_at, exact = _when(p.handed_off_at, now, back, skew)
    first = next((t.text for t in p.transcript if t.role == "customer" and t.text.strip()), "")
    subject = p.reason.strip() and f"{p.bot} hand-off: {p.reason.strip()}"
    ticket = Ticket(
        id=channel_ticket_id("bot", p.conversation_id),
        subject=_fit(subject or _first_line(first) or f"{p.bot} hand-off", SUBJECT_MAX),
        description=_fit(_transcript([(t.role if t.role == "customer" else p.bot, t.text) for t in p.transcript]),
                         DESCRIPTION_MAX),
        channel=Channel.bot, customer_id=p.customer_id,
        tags=_tags(p, "bot-handoff", *([f"intent:{p.intent}"] if p.intent else [])), opened_at=opened_at,
        **_common(p),  # type: ignore[arg-type]
    )
    since = min((t.at for t in p.transcript if t.at is not None), default=None)
    handoff = Handoff(actor=f"bot:{p.bot}", reason=p.reason.strip(), at=opened_at,
                      since=since if since is not None and since <= opened_at else None)
    return Mapped(ticket=ticket, exact_time=exact, handoff=handoff)


_MAPPERS = {
    Channel.email: _email, Channel.chat: _chat, Channel.phone: _phone,
    Channel.social: _social, Channel.portal: _portal, Channel.bot: _bot,
}


def email_reply(p: EmailIntake, actor: str) -> CustomerReply:
    """The customer reply an email to an existing ticket becomes (its Message-ID makes a redelivery recognisable)."""
    return CustomerReply(actor=actor, message=_fit(p.body, DESCRIPTION_MAX),
                         message_id=normalize_message_id(p.message_id)[:200])
