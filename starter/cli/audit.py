"""The auditor's commands: export a ticket's history (`ticket history`), replay it against this code (`ticket replay`;
`audit replay` for files, folders of exports, ticket ids and visibility queries, every run of each).

Exit codes: 0 every run replayed; history_diverged (5) when any diverged; invalid_input (2) when some could not be
read and none diverged. `--json` prints exactly one JSON document (the audit) on stdout, whatever the outcome."""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from starter.cli.common import CliError, ExitCode, SubParsers, emit
from starter.client import EscalationClient
from starter.runtime import replay as audit
from workflows.common.vocabulary import ID_PATTERN
from workflows.ticket import workflow_id

MAX_QUERY_WORKFLOWS = 100_000


def add_parser(sub: SubParsers) -> None:
    au = sub.add_parser("audit", help="auditor tools").add_subparsers(dest="command", metavar="ACTION", required=True)
    rf = au.add_parser("replay", help="replay recorded histories against this code: files, folders of exports, "
                                      "ticket ids, or a visibility query (every run of each)")
    rf.add_argument("sources", nargs="*", metavar="SOURCE",
                    help="an export file (`ticket history -o`, or Temporal's own JSON; .json or .json.gz), a folder "
                         "of them (searched recursively), or a ticket id (fetched from the server)")
    rf.add_argument("--query", help="a visibility query: every workflow it matches (any type), e.g. "
                                    "\"TicketStatus = 'closed' AND CloseTime > '2026-11-01T00:00:00Z'\"")
    rf.add_argument("--limit", type=int, default=10_000, help="at most this many workflows from --query "
                                                                "(default 10,000)")
    rf.add_argument("--workflow-id", help="a single file's workflow id (default: the export's, else the file's name)")
    rf.add_argument("--json", action="store_true", help="print the audit as one JSON document (for CI)")
    rf.set_defaults(run=cmd_replay)


def write_history(history: dict[str, Any], output: str | None) -> None:
    """`ticket history ID [-o FILE]`: the export (every run), to a file or stdout."""
    text = json.dumps(history, indent=2)
    if output is None:
        print(text)
        return
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    Path(output).write_text(text, encoding="utf-8")
    runs = history.get("runs", [])
    print(f"wrote {len(runs)} run(s), {sum(len(r.get('events', [])) for r in runs)} events, to {output}")


# ----- sources -------------------------------------------------------------------------------------------------------


def export_files(path: Path) -> list[Path]:
    """A file, or the exports in a folder and its subfolders, in name order."""
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file() and p.name.endswith((".json", ".json.gz")))
    return [path]


def read_export(path: Path, workflow_id_given: str | None) -> list[audit.Sourced]:
    """The runs of one export file; one that cannot be read is one unreadable entry (the others go on)."""
    try:
        raw = gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()
        document = json.loads(raw)
        default_id = workflow_id_given or path.name.removesuffix(".gz").removesuffix(".json")
        return [(str(path), h) for h in audit.histories_in(document, default_id)]
    except (OSError, ValueError, EOFError) as exc:
        return [(str(path), ValueError(f"cannot read a JSON history: {exc}"))]


def is_ticket_id(source: str) -> bool:
    return not Path(source).exists() and re.fullmatch(ID_PATTERN, source) is not None


async def sourced(a: argparse.Namespace, client: EscalationClient | None) -> AsyncIterator[audit.Sourced]:
    """Every run of every source, in the order given; the server's are fetched as the replay goes."""
    for source in a.sources:
        if not is_ticket_id(source):
            for path in export_files(Path(source)):
                for item in read_export(path, a.workflow_id):
                    yield item
            continue
        assert client is not None
        async for item in client.server_histories([workflow_id(source)]):
            yield item
    if a.query:
        assert client is not None
        async for item in client.server_histories(await client.workflow_ids(a.query, a.limit)):
            yield item


def check_sources(a: argparse.Namespace) -> None:
    if not a.sources and not a.query:
        raise CliError("audit replay needs a SOURCE (file, folder or ticket id) or --query")
    if not 1 <= a.limit <= MAX_QUERY_WORKFLOWS:
        raise CliError(f"--limit {a.limit} is out of range: 1 to {MAX_QUERY_WORKFLOWS}")
    for source in a.sources:
        if not Path(source).exists() and re.fullmatch(ID_PATTERN, source) is None:
            raise CliError(f"{source!r}: no such file or folder, and not a ticket id")
        if Path(source).is_dir() and not export_files(Path(source)):
            raise CliError(f"{source}: the folder holds no .json or .json.gz export")
    if a.workflow_id and (a.query or len(a.sources) != 1 or Path(a.sources[0]).is_dir()):
        raise CliError("--workflow-id names the workflow of a single file only")


# ----- reporting -----------------------------------------------------------------------------------------------------


class Progress:
    """A one-line progress report on a terminal (stderr, so stdout stays the report); silent otherwise."""

    def __init__(self) -> None:
        self.shown = sys.stderr.isatty()
        self.done = self.failed = 0

    def __call__(self, verdict: audit.RunVerdict) -> None:
        self.done += 1
        self.failed += not verdict.passed
        if self.shown:
            print(f"\rreplayed {self.done} run(s): {self.done - self.failed} passed, {self.failed} failed",
                  end="", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.shown and self.done:
            print(file=sys.stderr)


def verdict_line(v: audit.RunVerdict) -> str:
    run = f" run {v.run_id}" if v.run_id else ""
    where = "" if v.source == "server" else f" ({v.source})"
    if v.passed:
        return f"PASS      {v.workflow_id}{run}: {v.events} events{where}"
    if v.divergence:
        return f"DIVERGED  {v.workflow_id}{run}{where}: {v.divergence}"
    return f"UNREADABLE {v.workflow_id}{run}{where}: {v.unreadable}"


def summary_text(report: audit.ReplayAudit) -> str:
    lines = [verdict_line(v) for v in report.verdicts]
    lines.append(f"replayed {report.histories} run(s), {report.events} events, in {report.seconds:.1f} s "
                 f"({report.per_second}/s) against this code: {report.passed} passed, {report.diverged} diverged, "
                 f"{report.unreadable} unreadable")
    return "\n".join(lines)


def outcome(report: audit.ReplayAudit) -> ExitCode:
    if report.diverged:
        return ExitCode.history_diverged
    return ExitCode.invalid_input if report.unreadable else ExitCode.ok


async def run_replay(a: argparse.Namespace) -> ExitCode:
    """Replay what the sources name and report every run: the one place `audit replay` and `ticket replay` share."""
    check_sources(a)
    needs_server = bool(a.query) or any(is_ticket_id(s) for s in a.sources)
    client = await EscalationClient.connect() if needs_server else None
    progress = Progress()
    try:
        report = await audit.replay_all(sourced(a, client), progress)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    finally:
        progress.close()
    if not report.histories:
        raise CliError("nothing to replay: the query matched no workflow")
    emit(report, a.json, lambda: summary_text(report))
    return outcome(report)


def cmd_replay(a: argparse.Namespace) -> int:
    return int(asyncio.run(run_replay(a)))
