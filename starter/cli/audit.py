"""The auditor's commands: export a ticket's history (`ticket history`), replay it against this code (`ticket replay`;
`audit replay` for files, folders of exports, ticket ids and visibility queries, every run of each).

Exit codes: 0 every run replayed and its decisions are the rules'; tampered (8) before history_diverged (5) when any
diverged, before decisions_differ (9) when a run replayed but records decisions the rules do not make from its recorded
inputs; invalid_input (2) when some could not be read and nothing else failed. `--json` prints exactly one JSON
document (the audit) on stdout, whatever the outcome."""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import re
import sys
import zlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from starter.cli.common import CliError, ExitCode, SubParsers, emit, parse_time
from starter.client import EscalationClient
from starter.runtime import archive, manifest, report
from starter.runtime import replay as audit
from workflows.common.vocabulary import ID_PATTERN
from workflows.ticket import workflow_id

MAX_QUERY_WORKFLOWS = 100_000
SIGNING_KEY = os.environ.get("ESCALATION_AUDIT_SIGNING_KEY", "var/audit-signing.key")  # the operator's, private (Settings)
PUBLIC_KEY = os.environ.get("ESCALATION_AUDIT_PUBLIC_KEY")  # the auditor's copy of its public half


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
    rf.add_argument("--public-key", default=PUBLIC_KEY,
                    help="the signing key's public half (PEM) to check the folders' signed manifests with "
                         "(default $ESCALATION_AUDIT_PUBLIC_KEY)")
    rf.add_argument("--json", action="store_true", help="print the audit as one JSON document (for CI)")
    rf.set_defaults(run=cmd_replay)

    rp = au.add_parser("report", help="one ticket's audit report from its history alone (every run): each decision "
                                      "with who, when, why, rule and clock; each notification and its delivery; the "
                                      "policy version; the replay and decision verdicts")
    rp.add_argument("source", metavar="TICKET|FILE", help="a ticket id (its history fetched from the server, every run) "
                                                          "or an export file (`ticket history -o`, .json or .json.gz)")
    rp.add_argument("--workflow-id", help="a file's workflow id (default: the export's, else the file's name)")
    shape = rp.add_mutually_exclusive_group()
    shape.add_argument("--json", action="store_true", help="print the report as one JSON document")
    shape.add_argument("--html", metavar="FILE", help="write the report as one self-contained HTML file (no script, "
                                                      "nothing fetched) to attach to a finding")
    rp.set_defaults(run=cmd_report)

    ar = au.add_parser("archive", help="write closed workflows' histories (every type, every run) to a folder as "
                                       ".json.gz, before the server's retention deletes them; a rerun adds only what "
                                       "is missing")
    ar.add_argument("--since", required=True, type=parse_time, help="closed at or after (ISO 8601 with a zone)")
    ar.add_argument("--until", type=parse_time, help="closed before (default: now)")
    ar.add_argument("--to", dest="folder", required=True, help="the archive folder (its MANIFEST.json is signed)")
    ar.add_argument("--limit", type=int, default=MAX_QUERY_WORKFLOWS, help="at most this many workflows in one run")
    ar.add_argument("--signing-key", default=SIGNING_KEY, help="the operator's Ed25519 key (as `ticket history`)")
    ar.add_argument("--no-sign", action="store_true", help="write the files only, no manifest")
    ar.add_argument("--json", action="store_true", help="print the result as JSON")
    ar.set_defaults(run=cmd_archive)

    sc = au.add_parser("schedule", help="create or update the daily Temporal Schedule that archives closed workflows "
                                        "(`make run` and the compose file create it); --show only shows it")
    sc.add_argument("--at", type=time_of_day, help="the time of day it runs, HH:MM UTC (a new schedule: 02:00; an "
                                                   "existing one keeps its own unless this is given)")
    sc.add_argument("--lookback-days", type=int,
                    help="each run archives what closed in this many days before it (1 to 29; a new schedule: 7, "
                         "a missed run is covered by the next; an existing one keeps its own unless this is given)")
    sc.add_argument("--show", action="store_true", help="show the schedule, change nothing")
    sc.add_argument("--if-missing", action="store_true",
                    help="create it only if there is none (`make run` and compose: an operator's changes are kept)")
    sc.add_argument("--run-now", action="store_true", help="also start an archive run now")
    sc.add_argument("--json", action="store_true", help="print the schedule as JSON")
    sc.set_defaults(run=cmd_schedule)


def add_history_options(h: argparse.ArgumentParser) -> None:
    """`ticket history`'s options: where to write, and the signing of the folder's manifest."""
    h.add_argument("--output", "-o", help="file to write (default stdout); its folder's MANIFEST.json lists its "
                                          "SHA-256, signed")
    h.add_argument("--signing-key", default=SIGNING_KEY,
                   help="the operator's Ed25519 key (PEM; made on first use, its public half next to it as .pub; "
                        "default $ESCALATION_AUDIT_SIGNING_KEY or var/audit-signing.key)")
    h.add_argument("--no-sign", action="store_true", help="write the file only, no manifest")


def write_history(history: dict[str, Any], a: argparse.Namespace) -> None:
    """`ticket history ID [-o FILE]`: the export (every run), to stdout, or to a file listed in its folder's signed
    manifest."""
    text = json.dumps(history, indent=2)
    if a.output is None:
        print(text)
        return
    out = Path(a.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    runs = history.get("runs", [])
    print(f"wrote {len(runs)} run(s), {sum(len(r.get('events', [])) for r in runs)} events, to {out}")
    if not a.no_sign:
        key_path = Path(a.signing_key)
        try:
            key = manifest.signing_key(key_path)
        except (OSError, ValueError) as exc:
            raise CliError(f"--signing-key {key_path}: {exc}") from None
        try:
            signed = manifest.sign_into_manifest(out.parent, [out], key)
        except ValueError as exc:
            raise CliError(f"wrote {out}, but did not sign it: {exc}") from None
        print(f"listed in {signed}, signed by key {manifest.key_id(key.public_key())} (auditors check it with "
              f"{manifest.public_key_path(key_path)})")


# ----- sources -------------------------------------------------------------------------------------------------------


def export_files(path: Path) -> list[Path]:
    """A file, or the exports in a folder and its subfolders, in name order."""
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file() and p.name.endswith((".json", ".json.gz"))
                      and p.name != manifest.MANIFEST and not p.name.startswith("."))  # the archive's own index
    return [path]


def read_export(path: Path, workflow_id_given: str | None) -> list[audit.Sourced]:
    """The runs of one export file; one that cannot be read is one unreadable entry (the others go on)."""
    try:
        raw = gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()
        document = json.loads(raw)
        default_id = workflow_id_given or path.name.removesuffix(".gz").removesuffix(".json")
        return [(str(path), h) for h in audit.histories_in(document, default_id)]
    except (OSError, ValueError, EOFError, zlib.error) as exc:
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
        async for where, run in client.server_histories([workflow_id(source)]):
            if isinstance(run, ValueError):  # a mistyped path looks like a ticket id: say both
                run = ValueError(f"no file or folder {source!r} here, and no ticket {source!r} on the server")
            yield where, run
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
    if v.tampered:
        return f"TAMPERED  {v.workflow_id}{run}{where}: {v.integrity}"
    if v.passed:
        checked = v.decisions is not None and v.decisions.checked
        said = f", {v.decisions.decisions} decisions verified" if checked and v.decisions else (
            f"; {v.decisions.not_checked}" if v.decisions and v.decisions.not_checked else "")
        return f"PASS      {v.workflow_id}{run}: {v.events} events{said}{where}"
    if v.divergence:
        return f"DIVERGED  {v.workflow_id}{run}{where}: {v.divergence}"
    if v.decisions is not None and v.decisions.differences:
        return f"DECISIONS {v.workflow_id}{run}{where}: " + audit.differences_text(v.workflow_id, v.decisions)
    return f"UNREADABLE {v.workflow_id}{run}{where}: {v.unreadable}"


def summary_text(report: audit.ReplayAudit) -> str:
    lines = [f"manifest of {m['folder']} ({m['files']} file(s), key {m['key_id']}): signature {m['signature']}"
             for m in report.manifests]
    lines += [verdict_line(v) for v in report.verdicts]
    lines.append(f"replayed {report.histories} run(s), {report.events} events, in {report.seconds:.1f} s "
                 f"({report.per_second}/s) against this code: {report.passed} passed, {report.diverged} diverged, "
                 f"{report.decisions_differ} with decisions that differ ({report.decisions_checked} run(s)' decisions "
                 f"checked), {report.unreadable} unreadable"
                 + (f"; {report.tampered} of them TAMPERED (changed or unlisted since export)" if report.tampered else ""))
    return "\n".join(lines)


def outcome(report: audit.ReplayAudit) -> ExitCode:
    if report.tampered:
        return ExitCode.tampered
    if report.diverged:
        return ExitCode.history_diverged
    if report.decisions_differ:
        return ExitCode.decisions_differ
    return ExitCode.invalid_input if report.unreadable else ExitCode.ok


def folder_checks(a: argparse.Namespace) -> dict[Path, manifest.FolderCheck | None]:
    """Each export folder's signed manifest, checked once (None where a folder has none)."""
    public = None
    if a.public_key:
        try:
            public = manifest.load_public_key(Path(a.public_key))
        except ValueError as exc:
            raise CliError(f"--public-key: {exc}") from None
    checks: dict[Path, manifest.FolderCheck | None] = {}
    for source in a.sources:
        if is_ticket_id(source):
            continue
        for path in export_files(Path(source)):
            if path.parent not in checks:
                try:
                    checks[path.parent] = manifest.check_folder(path.parent, public)
                except ValueError as exc:
                    raise CliError(str(exc)) from None
    return checks


def with_integrity(report: audit.ReplayAudit, checks: dict[Path, manifest.FolderCheck | None],
                   public_given: bool) -> audit.ReplayAudit:
    """Each file's verdict says what its folder's manifest says of it; a file changed after export, unlisted, or
    under a manifest whose signature fails is `tampered`."""
    for v in report.verdicts:
        if v.source == "server" or Path(v.source).parent not in checks:  # from the server, not a file
            continue
        check = checks[Path(v.source).parent]
        if check is None:
            v.integrity = ("no signed manifest in its folder, though a public key was given" if public_given
                           else "no signed manifest in its folder: not checked")
            v.tampered = public_given
            continue
        v.integrity, v.tampered = check.verdict(Path(v.source))
    for v in report.verdicts:  # a file changed since export replays, but it is not the history that was recorded
        v.passed = v.passed and not v.tampered
    for check in (c for c in checks.values() if c is not None):  # listed, but deleted since
        report.verdicts += [audit.RunVerdict(workflow_id=rel, source=str(Path(check.folder) / rel), passed=False,
                                             unreadable="listed in the signed manifest, but not in the folder",
                                             integrity="deleted after export", tampered=True)
                            for rel in check.missing()]
    tampered = sum(v.tampered for v in report.verdicts)
    signed = [c for c in checks.values() if c is not None]
    return report.model_copy(update={"tampered": tampered, "histories": len(report.verdicts),
                                     "passed": sum(v.passed for v in report.verdicts),
                                     "unreadable": sum(v.unreadable is not None for v in report.verdicts),
                                     "manifests": [
        {"folder": c.folder, "signature": c.signature, "key_id": c.key_id, "files": len(c.files)} for c in signed]})


async def run_replay(a: argparse.Namespace) -> ExitCode:
    """Replay what the sources name and report every run: the one place `audit replay` and `ticket replay` share."""
    check_sources(a)
    checks = folder_checks(a)
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
    report = with_integrity(report, checks, public_given=bool(a.public_key))
    emit(report, a.json, lambda: summary_text(report))
    return outcome(report)


def cmd_replay(a: argparse.Namespace) -> int:
    return int(asyncio.run(run_replay(a)))


# ----- report --------------------------------------------------------------------------------------------------------


async def run_report(a: argparse.Namespace) -> ExitCode:
    """`audit report TICKET|FILE`: the runs read (a file, or the server's every run), replayed, their decisions
    recomputed, the report printed; the exit code is the replay's (0, 5 diverged, 9 decisions differ)."""
    if not Path(a.source).exists() and re.fullmatch(ID_PATTERN, a.source) is None:
        raise CliError(f"{a.source!r}: no such file, and not a ticket id")
    if Path(a.source).is_dir():
        raise CliError(f"{a.source}: a folder; audit report reads one ticket (`audit replay` reads folders)")
    sources = argparse.Namespace(sources=[a.source], query=None, workflow_id=a.workflow_id)
    client = await EscalationClient.connect() if is_ticket_id(a.source) else None
    runs: list[tuple[str, Any]] = []
    async for where, item in sourced(sources, client):
        if isinstance(item, ValueError):
            raise CliError(f"{where}: {item}")
        runs.append((where, item))
    try:
        built = await report.build_report(runs[0][1].workflow_id, runs)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    if a.html:
        page = report.render_html(built, generated_at=datetime.now(UTC), source=a.source, code_version=code_version())
        try:
            Path(a.html).write_text(page, encoding="utf-8")
        except OSError as exc:
            raise CliError(f"--html {a.html}: cannot write it: {exc.strerror}") from None
        print(f"wrote {a.html}: {report.verdict_text(built)}")
    else:
        emit(built, a.json, lambda: report.render_text(built))
    return {"passed": ExitCode.ok, "diverged": ExitCode.history_diverged,
            "decisions_differ": ExitCode.decisions_differ}.get(built.verdict, ExitCode.invalid_input)


def code_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"escalation-engine {version('escalation-engine')}"
    except PackageNotFoundError:
        return "escalation-engine (not installed)"


def cmd_report(a: argparse.Namespace) -> int:
    return int(asyncio.run(run_report(a)))


# ----- archive -------------------------------------------------------------------------------------------------------


async def run_archive(a: argparse.Namespace) -> dict[str, Any]:
    """Each closed workflow not yet in the folder, written and signed (starter.runtime.archive: the one writer, also
    the daily Schedule's)."""
    if not 1 <= a.limit <= MAX_QUERY_WORKFLOWS:
        raise CliError(f"--limit {a.limit} is out of range: 1 to {MAX_QUERY_WORKFLOWS}")
    if a.until is not None and a.until <= a.since:
        raise CliError(f"--until {a.until.isoformat()} is not after --since {a.since.isoformat()}")
    try:  # before anything is written: a file written and never signed would read as tampered for good
        key = None if a.no_sign else manifest.signing_key(Path(a.signing_key))
    except (OSError, ValueError) as exc:
        raise CliError(f"--signing-key {a.signing_key}: {exc}") from None
    client = await EscalationClient.connect()
    chains = await client.closed_chains(a.since, a.until, a.limit)
    try:
        result = await archive.write_archive(Path(a.folder), chains, client.workflow_export, key)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    return result.model_dump()


def time_of_day(text: str) -> timedelta:
    match = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not a time of day HH:MM (00:00 to 23:59, UTC)")
    return timedelta(hours=int(match[1]), minutes=int(match[2]))


async def run_schedule(a: argparse.Namespace) -> dict[str, Any]:
    if a.lookback_days is not None and not 1 <= a.lookback_days <= 29:
        raise CliError(f"--lookback-days {a.lookback_days} is out of range: 1 to 29 (shorter than the 30 days' "
                       "retention, longer than a day)")
    client = await EscalationClient.connect()
    if a.show:
        shown = await client.schedules.show_archive()
    else:
        shown = await client.schedules.ensure_archive(a.at, a.lookback_days, keep_existing=a.if_missing)
    out = shown.model_dump()
    if a.run_now:
        out["started"] = await client.schedules.run_archive_now()
    return out


def cmd_schedule(a: argparse.Namespace) -> None:
    result = asyncio.run(run_schedule(a))
    emit(result, a.json, lambda: (
        f"schedule {result['schedule_id']}: daily at {result['at_utc']} UTC on task queue {result['task_queue']}, "
        f"archiving what closed in the {result['lookback_days']} days before each run"
        + (" (PAUSED)" if result["paused"] else "")
        + "".join(f"\n  next   {t}" for t in result["next_runs"])
        + "".join(f"\n  ran    {r['started_at']}  {r['workflow_id']}" for r in result["recent_runs"])
        + (f"\nstarted {result['started']}" if result.get("started") else "")))


def cmd_archive(a: argparse.Namespace) -> None:
    result = asyncio.run(run_archive(a))
    emit(result, a.json, lambda: f"archived {result['written']} workflow(s) ({result['runs_written']} runs) to "
                                 f"{result['folder']}; {result['already_archived']} already there, "
                                 f"{result['matched']} closed in the period"
                                 + (f"; signed in {result['manifest']}" if result["manifest"] else ""))
