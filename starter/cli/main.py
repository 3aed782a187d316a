"""`escalation`: the command line for agents, auditors and operators; thin over EscalationClient.

One module per command group (tickets, policy, audit, services), each with `add_parser(sub)` registered in
`build_parser`, each command setting `run` (args -> exit code or None). Here: the parser, the exit codes
(common.ExitCode, from the client's errors) and error printing.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from pydantic import ValidationError

from starter.cli import audit, incident, metrics, policy, postmortem, services, sponsorship, tickets
from starter.cli.common import CliError, ExitCode, error_message, exit_code
from starter.client import EscalationError
from starter.runtime.policy_file import PolicyError
from starter.runtime.settings import SettingsError
from starter.runtime.validation import problem

GROUPS = (tickets, incident, postmortem, sponsorship, policy, audit, metrics, services)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="escalation", description="Durable escalation management on Temporal.",
                epilog="exit codes: " + ", ".join(f"{c.value} {c.name}" for c in ExitCode))
    sub = p.add_subparsers(dest="group", metavar="COMMAND", required=True)
    for group in GROUPS:
        group.add_parser(sub)
    return p


class _Parser(argparse.ArgumentParser):
    """Usage errors as JSON too when the command line asks for --json (scripts parse one format)."""

    wants_json = False

    def error(self, message: str) -> NoReturn:
        if _Parser.wants_json:
            _report_error("invalid_input", f"{self.prog}: {message}", as_json=True)
            raise SystemExit(ExitCode.invalid_input)
        super().error(message)


def _report_error(code: str, message: str, as_json: bool) -> None:
    """JSON on stdout for scripts (with --json), and always the one line on stderr for the person watching."""
    if as_json:
        print(json.dumps({"error": {"code": code, "message": message}}))
    print(f"error: {message}" if code == "invalid_input" else f"error: {code}: {message}", file=sys.stderr)


def _quiet_stdout() -> None:
    """The reader closed the pipe (`| head`): what is left to print goes nowhere, and no traceback."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    _Parser.wants_json = "--json" in args
    a = build_parser().parse_args(args)
    as_json = bool(getattr(a, "json", False))
    try:
        return int(a.run(a) or ExitCode.ok)
    except BrokenPipeError:
        _quiet_stdout()
        return ExitCode.ok
    except EscalationError as exc:
        _report_error(exc.code, error_message(exc), as_json)
        return exit_code(exc)
    except (PolicyError, CliError, SettingsError) as exc:
        _report_error("invalid_input", str(exc), as_json)
        return ExitCode.invalid_input
    except ValidationError as exc:
        problems = [f"invalid {'.'.join(str(x) for x in e['loc'])}: {problem(dict(e))}" for e in exc.errors()]
        _report_error("invalid_input", "; ".join(problems), as_json)
        return ExitCode.invalid_input
    except KeyboardInterrupt:
        return 130


def entry() -> None:
    """Console-script entry: exit without interpreter finalisation, which the SDK's Rust threads can abort."""
    code = main()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BrokenPipeError:  # the last buffered output, after the reader left
            _quiet_stdout()
    os._exit(code)


if __name__ == "__main__":
    entry()
