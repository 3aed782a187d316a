"""How a validation problem is told to a person, the same way in the API, the CLI and policy files."""

from __future__ import annotations

import re
from typing import Any


def allowed_values(err: dict[str, Any]) -> list[str] | None:
    """The allowed values of an enum or literal field, from pydantic's error."""
    expected = (err.get("ctx") or {}).get("expected")
    if err.get("type") in ("enum", "literal_error") and isinstance(expected, str):
        return re.findall(r"'([^']*)'", expected) or None
    return None


def problem(err: dict[str, Any]) -> str:
    """Pydantic's message, made to say which value was wrong and, where it helps, how to fix it."""
    kind = str(err.get("type", ""))
    message = str(err.get("msg", "invalid")).removeprefix("Value error, ")
    if kind == "timezone_aware":
        message = "has no time zone; add an offset such as +01:00 or Z"
    value = err.get("input")
    if (kind != "missing" and isinstance(value, str | int | float | bool) and "got " not in message
            and repr(value) not in message):  # said once is enough
        shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
        message = f"{message} (got {shown})"
    return message
