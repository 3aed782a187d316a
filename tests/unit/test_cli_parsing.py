"""The CLI's action commands are built from the core's one table of actions (no server needed)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from starter.cli import main as cli
from starter.cli import services, tickets
from starter.cli.common import CliError, ExitCode, error_message, exit_code
from starter.client import (
    ActionRejected,
    Busy,
    EscalationError,
    HistoryDiverged,
    IdConflict,
    InvalidInput,
    TemporalUnavailable,
    TicketNotFound,
    WorkflowTaskFailed,
)
from workflows import ticket as core
from workflows.common.vocabulary import ResolutionKind

ROOT = Path(__file__).resolve().parents[2]


def event(*argv: str) -> core.Event:
    return tickets.action_event(cli.build_parser().parse_args(["ticket", *argv, "--actor", "agent:ann"]))


@pytest.mark.parametrize(("argv", "expected"), [
    (["acknowledge", "T-1"], core.Acknowledge(actor="agent:ann")),
    (["acknowledge", "T-1", "--note", "on it"], core.Acknowledge(actor="agent:ann", note="on it")),
    (["escalate", "T-1", "--reason", "needs logs", "--to-tier", "tier3"],
     core.Escalate(actor="agent:ann", reason="needs logs", to_tier="tier3")),
    (["transfer", "T-1", "--department", "billing"], core.Transfer(actor="agent:ann", department="billing")),
    (["wait", "T-1", "--reason", "asked"], core.WaitOnCustomer(actor="agent:ann", reason="asked")),
    (["wait-on-customer", "T-1"], core.WaitOnCustomer(actor="agent:ann")),
    (["resolve", "T-1", "--summary", "fixed"], core.Resolve(actor="agent:ann", summary="fixed")),
    (["resolve", "T-1", "--summary", "try this", "--workaround"],
     core.Resolve(actor="agent:ann", summary="try this", resolution=ResolutionKind.workaround)),
    (["reopen", "T-1"], core.Reopen(actor="agent:ann")),
    (["close", "T-1", "--reason", "done"], core.Close(actor="agent:ann", reason="done")),
    (["assign", "T-1", "--to", "agent:bob"], core.Assign(actor="agent:ann", assignee="agent:bob")),
    (["note", "T-1", "--text", "hi", "--public"], core.AddNote(actor="agent:ann", text="hi", public=True)),
    (["priority", "T-1", "--to", "P2"], core.ChangePriority(actor="agent:ann", priority="P2")),
    (["change-priority", "T-1", "--to", "P1", "--reason", "outage"],
     core.ChangePriority(actor="agent:ann", priority="P1", reason="outage")),
    (["customer-reply", "T-1", "--message", "v4.2", "--message-id", "m-1"],
     core.CustomerReply(actor="agent:ann", message="v4.2", message_id="m-1")),  # relayed by an agent
])
def test_each_action_command_builds_its_event(argv: list[str], expected: core.Event) -> None:
    assert event(*argv) == expected


def test_every_core_action_has_a_command() -> None:
    import argparse

    def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
        return next(a.choices for a in parser._actions if isinstance(a, argparse._SubParsersAction))

    ticket = subcommands(subcommands(cli.build_parser())["ticket"])
    for name in core.ACTIONS:
        assert ticket[name.replace("_", "-")].get_default("action") == name
    assert ticket["show"].get_default("action") is None


def test_a_customer_message_is_by_the_customer_unless_told() -> None:
    parsed = cli.build_parser().parse_args(["ticket", "customer-reply", "T-1", "--message", "hello"])
    assert tickets.action_event(parsed) == core.CustomerReply(actor="customer", message="hello")


@pytest.mark.parametrize(("argv", "problem"), [
    (["escalate", "T-1", "--reason", ""], "escalate: --reason: String should have at least 1 character"),
    (["assign", "T-1", "--to", "x" * 201], "assign: --to: String should have at most 200 characters"),
    (["transfer", "T-1", "--department", "billing", "--reason", "r" * 2001], "transfer: --reason: String should have"),
])
def test_an_invalid_value_names_the_option_the_user_typed(argv: list[str], problem: str) -> None:
    with pytest.raises(CliError) as caught:
        event(*argv)
    assert str(caught.value).startswith(problem), caught.value


def test_bad_input_is_reported_before_connecting_to_temporal(monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    async def unreachable(*_: object, **__: object) -> None:
        raise AssertionError("connected although the input was bad")

    monkeypatch.setattr(tickets.EscalationClient, "connect", unreachable)
    assert cli.main(["ticket", "escalate", "T-1", "--reason", ""]) == ExitCode.invalid_input
    assert "--reason" in capsys.readouterr().err


def exit_code_of(argv: list[str]) -> int:
    try:
        return cli.main(argv)
    except SystemExit as exc:  # argparse's own usage errors
        return int(exc.code or 0)


@pytest.mark.parametrize("argv", [
    ["ticket", "open", "--id", "B-1", "--subject", "s", "--customer", "c", "--priority", "P9", "--json"],
    ["ticket", "escalate", "T-1", "--reason", "", "--json"],
    ["policy", "deadlines", "--priority", "P1", "--opened-at", "yesterday", "--json"],
])
def test_with_json_every_input_error_is_json_on_stdout(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert exit_code_of(argv) == ExitCode.invalid_input
    out, err = capsys.readouterr()
    body = json.loads(out)
    assert body["error"]["code"] == "invalid_input" and body["error"]["message"]
    assert err.startswith("error: ")


# ----- exit codes ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("error", "code"), [
    (ActionRejected("top_tier", "already at the top tier"), 1),
    (IdConflict("exists with a different request"), 1),
    (InvalidInput("bad"), 2),
    (TicketNotFound("no ticket"), 3),
    (TemporalUnavailable("cannot reach Temporal"), 4),
    (HistoryDiverged("event 7: activity type differs"), 5),
    (Busy("query refused", retry_after=3), 6),
    (WorkflowTaskFailed("ZeroDivisionError in the workflow"), 7),
])
def test_each_client_error_has_its_exit_code(error: EscalationError, code: int) -> None:
    assert exit_code(error) == code


def test_a_busy_ticket_says_when_to_try_again() -> None:
    assert error_message(Busy("query refused: workflow task in flight", retry_after=3)) == (
        "the ticket is busy (its workflow task is in flight); try again in 3s")


def test_the_readme_exit_code_table_is_the_clis() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| (\d) \| `(\w+)` \|", readme, flags=re.M)
    assert [(int(n), name) for n, name in rows] == [(c.value, c.name) for c in ExitCode]


# ----- durations -----------------------------------------------------------------------------------------------------


def test_durations_in_json_are_iso_in_whole_seconds_as_in_the_api(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["policy", "deadlines", "--priority", "P3", "--opened-at", "2026-11-27T17:30:00+01:00",
                     "--json"]) == ExitCode.ok
    targets = {d["clock"]: d["target"] for d in json.loads(capsys.readouterr().out)["deadlines"]}
    assert targets["acknowledge"] == "PT4H" and targets["resolution"] == "P1DT3H"


def test_a_ticket_views_clocks_are_shown_in_whole_seconds() -> None:
    from datetime import UTC, datetime, timedelta

    from starter.runtime.policy_file import load_policy
    from workflows.ticket import Ticket
    from workflows.ticket.views import ticket_view

    opened = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    ticket = Ticket(id="D-1", subject="s", customer_id="c", priority="P1", opened_at=opened)
    state = core.open_ticket(ticket, load_policy(None), opened).state
    view = ticket_view(state, opened + timedelta(minutes=7, seconds=30, microseconds=250_000))
    accrued = {c["name"]: c["accrued"] for c in view.model_dump(mode="json")["clocks"]}
    assert accrued["acknowledge"] == "PT7M30S", "whole seconds, as the API shows it (never PT7M30.25S)"
    assert view.clocks[0].accrued.microseconds == 250_000, "in Python the exact duration stays"


# ----- services ------------------------------------------------------------------------------------------------------


def test_every_setting_is_listed_by_a_process_that_reads_it() -> None:
    from starter.runtime.settings import Settings

    assert set(services.WORKER_SETTINGS) | set(services.API_SETTINGS) == set(Settings.model_fields)


@pytest.mark.parametrize(("command", "listed"), [
    ("worker", ["TEMPORAL_ADDRESS [localhost:7233]", "ESCALATION_TASK_QUEUE [escalation]",
                "ESCALATION_MAX_CACHED_WORKFLOWS [1000]", "ESCALATION_OUTBOX [var/outbox.jsonl]"]),
    ("api", ["TEMPORAL_ADDRESS [localhost:7233]", "ESCALATION_API_PORT [8000]", "ESCALATION_TOKENS_FILE [none]",
             "ESCALATION_API_TIMEOUT_S [10.0]", "ESCALATION_API_TRUSTED_PROXIES [none]"]),
])
def test_worker_and_api_help_list_their_settings(command: str, listed: list[str],
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert exit_code_of([command, "--help"]) == 0
    out = capsys.readouterr().out
    for line in listed:
        assert line in out
    assert "a Temporal call slower than this is a 503" in out or command == "worker", "with what each means"


def test_the_archive_schedules_time_of_day_is_checked() -> None:
    import argparse
    from datetime import timedelta

    from starter.cli.audit import time_of_day

    assert time_of_day("02:00") == timedelta(hours=2) and time_of_day("23:59") == timedelta(hours=23, minutes=59)
    for bad in ("24:00", "2", "12:60", "noon"):
        with pytest.raises(argparse.ArgumentTypeError, match="not a time of day HH:MM"):
            time_of_day(bad)


def test_an_archive_run_covers_its_look_back_days() -> None:
    from datetime import UTC, datetime, timedelta

    from workflows.archive import ArchiveRequest, period

    now = datetime(2026, 12, 4, 2, 0, tzinfo=UTC)
    covered = period(ArchiveRequest(lookback_days=7), now)
    assert (covered.since, covered.until) == (now - timedelta(days=7), now)
