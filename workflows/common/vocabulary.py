"""The shared vocabulary, defined once: ids, priorities, durations, channels, statuses, clock names.

Every domain (ticket, and the workflows beside it), the policy, the clients and the API use these
types; nothing else defines an id pattern, a priority list or a duration format."""

from __future__ import annotations

import re
import typing
from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AfterValidator, BeforeValidator, Field, PlainSerializer, StringConstraints, WithJsonSchema

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"
# The pattern is checked by the validator (for a message a person can act on) and shown in the JSON schema.
_ID_SCHEMA = Field(json_schema_extra={"pattern": ID_PATTERN, "maxLength": 100})
TicketId = Annotated[str, AfterValidator(lambda v: _id(v)), _ID_SCHEMA]
Priority = Literal["P1", "P2", "P3", "P4"]
PRIORITIES: tuple[str, ...] = typing.get_args(Priority)
# Policy identifiers (tiers, departments, calendars, ...): lower case, short.
Slug = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$")]  # our own names: tiers, departments, rules
# A word another system chose (a portal's category, a bot's intent): not one of our slugs, so case and dots pass.
Label = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$")]


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


def contains_keyword(text: str, keyword: str) -> bool:
    """Case-insensitive whole-word (or whole-phrase) match."""
    return re.search(rf"(?<!\w){re.escape(keyword.lower())}(?!\w)", text.lower()) is not None


_DURATION = re.compile(r"^\s*(?:(\d+)\s*d)?\s*(?:(\d+)\s*h)?\s*(?:(\d+)\s*m)?\s*(?:(\d+)\s*s)?\s*$")


def parse_duration(value: object) -> timedelta:
    """'90m', '4h', '1h30m', '2d', '45s', a number of seconds, or an ISO 8601 / timedelta value."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return timedelta(seconds=value)
        except (OverflowError, ValueError) as exc:
            raise ValueError(f"duration {value!r} seconds is out of range") from exc
    if isinstance(value, str):
        m = _DURATION.match(value)
        if m and any(m.groups()):
            d, h, mi, s = (int(g or 0) for g in m.groups())
            try:
                return timedelta(days=d, hours=h, minutes=mi, seconds=s)
            except OverflowError as exc:  # pydantic turns only ValueError into a validation error
                raise ValueError(f"duration {value!r} is too large (at most {timedelta.max.days}d)") from exc
        if value.startswith(("P", "-P")):
            from pydantic import TypeAdapter

            return TypeAdapter(timedelta).validate_python(value)
    raise ValueError(f"duration {value!r} must look like '90s', '20m', '4h', '1h30m' or '2d'")


def format_duration(value: timedelta) -> str:
    total = int(value.total_seconds())
    sign, total = ("-", -total) if total < 0 else ("", total)
    h, rest = divmod(total, 3600)  # no days: a "day" of business time depends on the calendar
    m, s = divmod(rest, 60)
    parts = [f"{n}{u}" for n, u in ((h, "h"), (m, "m"), (s, "s")) if n]
    return sign + ("".join(parts) or "0s")


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
]


def iso_duration(value: timedelta) -> str:
    """ISO 8601, whole seconds, a leading '-' when overdue: 'PT1H30M', 'P2DT4H', '-PT5M' (the API's format)."""
    total = round(value.total_seconds())
    sign, total = ("-", -total) if total < 0 else ("", total)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    clock = "".join(f"{n}{u}" for n, u in ((hours, "H"), (minutes, "M"), (seconds, "S")) if n)
    return f"{sign}P{f'{days}D' if days else ''}{'T' + clock if clock else ('' if days else 'T0S')}"


# A duration shown to people and scripts (API, CLI --json): ISO 8601 in whole seconds; Python keeps the timedelta.
IsoDuration = Annotated[timedelta, PlainSerializer(iso_duration, return_type=str, when_used="json"), WithJsonSchema({
    "type": "string", "pattern": r"^-?P(\d+D)?(T(\d+H)?(\d+M)?(\d+S)?)?$", "examples": ["PT1H30M", "-PT5M"],
    "description": "ISO 8601 duration in whole seconds; negative when overdue"})]

