"""The auditor's commands: export a ticket's history (`ticket history`), replay it against this code
(`ticket replay`, or `audit replay FILE` with no server). A divergence is its own exit code (history_diverged)."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

from starter.cli.common import CliError, SubParsers, emit
from starter.client import HistoryDiverged
from starter.runtime import replay as audit


def add_parser(sub: SubParsers) -> None:
    au = sub.add_parser("audit", help="auditor tools").add_subparsers(dest="command", metavar="ACTION", required=True)
    rf = au.add_parser("replay", help="replay an exported history file (no server needed)")
    rf.add_argument("file")
    rf.add_argument("--workflow-id", help="default: the file's name without its extension")
    rf.add_argument("--json", action="store_true", help="print JSON for scripts")
    rf.set_defaults(run=cmd_replay_file)


def write_history(history: dict[str, Any], output: str | None) -> None:
    """`ticket history ID [-o FILE]`: the export, to a file or stdout."""
    text = json.dumps(history, indent=2)
    if output is None:
        print(text)
        return
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    Path(output).write_text(text, encoding="utf-8")
    print(f"wrote {len(history.get('events', []))} events to {output}")


async def replay_history(history: dict[str, Any], workflow_id: str, as_json: bool) -> None:
    """Replay and report; a divergence raises HistoryDiverged (exit code history_diverged), not bad input."""
    try:
        report = await audit.replay(history, workflow_id)
    except ValueError as exc:  # not a history this code can replay: bad input
        raise CliError(str(exc)) from None
    if not report.ok:
        raise HistoryDiverged(f"{report.workflow_id}: replaying {report.events} events against this code "
                              f"diverged: {report.error}")
    emit(report, as_json, lambda: f"{report.workflow_id}: replayed {report.events} events against this code: "
                                  "no divergence")


def cmd_replay_file(a: argparse.Namespace) -> None:
    path = Path(a.file)
    try:
        history = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CliError(f"{path}: cannot read a JSON history: {exc}") from None
    try:
        asyncio.run(replay_history(history, a.workflow_id or path.stem, a.json))
    except CliError as exc:
        raise CliError(f"{path}: {exc}") from None
