"""What every command group shares: exit codes, the CLI's own error, output and argument helpers."""

from __future__ import annotations

import argparse
import getpass
import json
import os
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from enum import IntEnum
from typing import Any, Protocol

from pydantic import BaseModel

from starter.client import (
    Busy,
    DecisionsDiffer,
    EscalationError,
    HistoryDiverged,
    InvalidInput,
    TemporalUnavailable,
    TicketNotFound,
    WorkflowTaskFailed,
)
from workflows.common.vocabulary import format_duration


class ExitCode(IntEnum):
    """The README's exit-code table is checked against this (tests/unit/test_cli_parsing.py)."""

    ok = 0
    error = 1  # an action rejected (ticket_closed, top_tier, ...), an id conflict, any other error
    invalid_input = 2
    not_found = 3
    temporal_unavailable = 4
    history_diverged = 5
    busy = 6
    workflow_task_failed = 7
    tampered = 8  # `audit replay`: an export differs from its folder's signed manifest, or the signature fails
    decisions_differ = 9  # `audit replay`: a history replays, but records decisions the rules do not make


# The client's errors by class (subclasses inherit their parent's code); anything else is ExitCode.error.
EXIT_CODES: dict[type[EscalationError], ExitCode] = {
    InvalidInput: ExitCode.invalid_input,
    TicketNotFound: ExitCode.not_found,
    TemporalUnavailable: ExitCode.temporal_unavailable,
    HistoryDiverged: ExitCode.history_diverged,
    DecisionsDiffer: ExitCode.decisions_differ,
    Busy: ExitCode.busy,
    WorkflowTaskFailed: ExitCode.workflow_task_failed,
}


def exit_code(exc: EscalationError) -> ExitCode:
    return next((EXIT_CODES[cls] for cls in type(exc).__mro__ if cls in EXIT_CODES), ExitCode.error)


def error_message(exc: EscalationError) -> str:
    """The line a person reads; a busy ticket says when to try again (the client's message says why)."""
    if isinstance(exc, Busy):
        return f"the ticket is busy (its workflow task is in flight); try again in {exc.retry_after}s"
    return exc.message


class CliError(Exception):
    """Bad input the CLI itself finds (an option's value, an unreadable file): exit code invalid_input."""


# ----- output -------------------------------------------------------------------------


def emit(data: BaseModel | dict[str, Any] | list[Any], as_json: bool, human: Callable[[], str]) -> None:
    if as_json:
        payload = data.model_dump(mode="json") if isinstance(data, BaseModel) else data
        print(json.dumps(payload, indent=2, default=str))
    else:
        print(human())


def table(rows: Sequence[Sequence[object]], headers: Sequence[str]) -> str:
    cells = [[("" if v is None else str(v)) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    line = lambda vals: "  ".join(v.ljust(w) for v, w in zip(vals, widths, strict=True)).rstrip()  # noqa: E731
    return "\n".join([line(list(headers)), line(["-" * w for w in widths]), *(line(r) for r in cells)])


def duration_text(value: timedelta | None) -> str:
    """A duration in a table, as the policy file writes it ('1h30m'); JSON output uses ISO 8601 like the API."""
    return "-" if value is None else format_duration(value)


def time_text(value: datetime | None) -> str:
    return "-" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


# ----- arguments -------------------------------------------------------------------------


class SubParsers(Protocol):
    """argparse's `add_subparsers()` result (its class is private): what a command group adds itself to."""

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser: ...


def actor(args: argparse.Namespace) -> str:
    """Who acts: --actor, else $ESCALATION_ACTOR, else cli:$USER."""
    return getattr(args, "actor", None) or os.environ.get("ESCALATION_ACTOR") or f"cli:{getpass.getuser()}"


def parse_time(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an ISO-8601 time (e.g. 2026-11-27T17:30:00+01:00)") from None
    if parsed.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{value!r} has no time zone; add an offset such as +01:00 or Z")
    return parsed
