"""The CLI's action commands are built from the core's one table of actions (no server needed)."""

from __future__ import annotations

import pytest

from starter.cli import main as cli
from starter.cli import tickets
from starter.cli.common import CliError, ExitCode
from workflows import ticket as core
from workflows.common.vocabulary import ResolutionKind


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


def exit_code(argv: list[str]) -> int:
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
    import json

    assert exit_code(argv) == ExitCode.invalid_input
    out, err = capsys.readouterr()
    body = json.loads(out)
    assert body["error"]["code"] == "invalid_input" and body["error"]["message"]
    assert err.startswith("error: ")
