"""End to end, as an operator and an agent would: a real dev server, the worker and the CLI as subprocesses."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from starter.devstack.stack import Stack

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "starter.cli"]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    var = tmp_path_factory.mktemp("e2e")
    with Stack(var, persistent=True, task_queue="e2e", env={"ESCALATION_ACTOR": "agent:e2e"}).running() as running:
        worker = running.children[0]
        yield {**running.env(), "VAR": str(var)}
    assert worker.returncode == 0, "the worker shuts down gracefully on SIGTERM"


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


def cli_json(env: dict[str, str], *args: str) -> dict:  # type: ignore[type-arg]
    done = cli(env, *args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_ticket_life_through_the_cli(stack: dict[str, str]) -> None:
    opened = cli_json(stack, "ticket", "open", "--id", "E2E-1", "--subject", "Smart TV streaming app fails",
                      "--customer", "cust-9", "--priority", "P1", "--channel", "chat")
    assert opened["created"] is True
    assert opened["view"]["department"] == "streaming-apps", "ordered routing: the smart-tv rule matched"
    again = cli_json(stack, "ticket", "open", "--id", "E2E-1", "--subject", "Smart TV streaming app fails",
                     "--customer", "cust-9", "--priority", "P1", "--channel", "chat")
    assert again["created"] is False and again["view"]["id"] == "E2E-1"

    view = cli_json(stack, "ticket", "acknowledge", "E2E-1")
    assert view["status"] == "open"
    view = cli_json(stack, "ticket", "escalate", "E2E-1", "--reason", "app bug suspected")
    assert view["tier"] == "tier2" and view["escalation_count"] == 1
    assert view["timeline"][-1]["actor"] == "agent:e2e"

    shown = cli(stack, "ticket", "show", "E2E-1")
    assert shown.returncode == 0 and "tier2" in shown.stdout and "acknowledge" in shown.stdout

    rejected = cli(stack, "ticket", "transfer", "E2E-1", "--department", "astrology")
    assert rejected.returncode == 1
    assert "unknown_department" in rejected.stderr and "billing" in rejected.stderr, "names the allowed values"

    missing = cli(stack, "ticket", "show", "NOPE-404")
    assert missing.returncode == 3 and "not_found" in missing.stderr

    sent = cli_json(stack, "ticket", "customer-reply", "E2E-1", "--message", "still broken", "--no-wait")
    assert sent == {"ticket_id": "E2E-1", "follow_up_ticket_id": None}  # a Signal: nothing waited for the worker
    deadline = time.monotonic() + 20
    while not any("customer replied" in e["summary"] for e in cli_json(stack, "ticket", "show", "E2E-1")["timeline"]):
        assert time.monotonic() < deadline, "the signalled reply reached the ticket"
        time.sleep(0.2)

    view = cli_json(stack, "ticket", "resolve", "E2E-1", "--summary", "reinstalled the app")
    assert view["status"] == "resolved"
    view = cli_json(stack, "ticket", "close", "E2E-1")
    assert view["status"] == "closed"
    closed = cli(stack, "ticket", "reopen", "E2E-1")
    assert closed.returncode == 1 and "ticket_closed" in closed.stderr

    deadline = time.monotonic() + 20
    while True:
        rows = cli_json(stack, "ticket", "list", "--status", "closed")["tickets"]
        if [r["id"] for r in rows] == ["E2E-1"] or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert [r["id"] for r in rows] == ["E2E-1"]

    exported = Path(stack["VAR"], "exports", "E2E-1.history.json")
    key = Path(stack["VAR"], "audit-signing.key")
    written = cli(stack, "ticket", "history", "E2E-1", "-o", str(exported), "--signing-key", str(key))
    assert written.returncode == 0 and "signed by key" in written.stdout, written.stderr
    replayed = cli(stack, "audit", "replay", str(exported), "--json", "--public-key", f"{key}.pub")
    assert replayed.returncode == 0, replayed.stderr
    report = json.loads(replayed.stdout)
    assert report["ok"] is True and report["events"] > 10 and report["manifests"][0]["signature"] == "valid"
    assert report["verdicts"][0]["integrity"].startswith("SHA-256 as listed"), report["verdicts"][0]
    assert cli_json(stack, "ticket", "replay", "E2E-1")["ok"] is True
    audit = cli_json(stack, "audit", "replay", "E2E-1", "--query", "TicketStatus = 'closed'")
    assert (audit["histories"], audit["passed"]) == (2, 2), "the ticket by id, and again as the query's one match"
    assert {v["workflow_id"] for v in audit["verdicts"]} == {"ticket-E2E-1"}
    bad_query = cli(stack, "audit", "replay", "--query", "TicketStatus = ")
    assert bad_query.returncode == 2 and "not a visibility query" in bad_query.stderr, bad_query.stderr
    assert "position" not in bad_query.stderr, "the server's position counts in its own query, not the one typed"
    # the archive: closed workflows (every type, every run) as .json.gz, signed; a rerun adds nothing; it replays
    archive, since = Path(stack["VAR"], "archive"), (datetime.now(UTC) - timedelta(minutes=10)).isoformat()
    first = cli_json(stack, "audit", "archive", "--since", since, "--to", str(archive), "--signing-key", str(key))
    assert "ticket-E2E-1.json.gz" in first["files"] and first["written"] == first["matched"] >= 1, first
    again = cli_json(stack, "audit", "archive", "--since", since, "--to", str(archive), "--signing-key", str(key))
    assert again["written"] == 0 and again["already_archived"] >= first["matched"], again
    archived = cli_json(stack, "audit", "replay", str(archive), "--public-key", f"{key}.pub")
    assert archived["ok"] and archived["manifests"][0]["signature"] == "valid", archived
    assert "ticket-E2E-1" in {v["workflow_id"] for v in archived["verdicts"]}
    typo = cli(stack, "audit", "replay", "nosuchdir")
    assert typo.returncode == 2 and "no file or folder 'nosuchdir' here, and no ticket 'nosuchdir'" in typo.stdout

    outbox = [json.loads(line) for line in Path(stack["VAR"], "outbox.jsonl").read_text().splitlines()]
    # one line per message (recipient and channel) of each notification
    kinds = list({n["notification_key"]: n["kind"] for n in outbox if n["ticket_id"] == "E2E-1"}.values())
    assert kinds.count("escalation") == 1 and "stakeholders" in kinds and "resolved" in kinds
    assert len({n["key"] for n in outbox}) == len(outbox), "every message once"


def test_the_daily_schedule_archives_what_closed(stack: dict[str, str]) -> None:
    """The Schedule `make run` creates: idempotent (a second call brings it to the new settings), and a run of it (as
    if it fell due) archives a ticket closed just before into the worker's archive folder, signed."""
    made = cli_json(stack, "audit", "schedule", "--at", "03:30", "--lookback-days", "2")
    assert (made["at_utc"], made["lookback_days"], made["task_queue"]) == ("03:30", 2, "e2e"), made
    assert made["next_runs"] and "T03:30:00" in made["next_runs"][0], made["next_runs"]
    kept = cli_json(stack, "audit", "schedule", "--if-missing")  # as `make run` does at every start
    assert kept["at_utc"] == "03:30", "an operator's change survives a restart"
    moved = cli_json(stack, "audit", "schedule", "--lookback-days", "3")
    assert (moved["at_utc"], moved["lookback_days"]) == ("03:30", 3), "a setting not given keeps its value"
    cli_json(stack, "ticket", "open", "--id", "E2E-ARCH", "--subject", "Invoice missing", "--customer", "cust-9")
    cli_json(stack, "ticket", "acknowledge", "E2E-ARCH")
    cli_json(stack, "ticket", "resolve", "E2E-ARCH", "--summary", "sent again")
    cli_json(stack, "ticket", "close", "E2E-ARCH")
    archive = Path(stack["ESCALATION_ARCHIVE_DIR"])
    written = archive / "ticket-E2E-ARCH.json.gz"
    deadline = time.monotonic() + 60
    while True:  # the ticket's workflow completes a moment after its close
        ran = cli_json(stack, "audit", "schedule", "--run-now")
        assert (ran["at_utc"], ran["lookback_days"]) == ("03:30", 3), "--run-now alone changes no setting"
        assert ran["started"].startswith("audit-archive"), ran
        for _ in range(100):
            if written.exists():
                break
            time.sleep(0.2)
        if written.exists() or time.monotonic() > deadline:
            break
    assert written.exists(), sorted(p.name for p in archive.glob("*"))
    key = stack["ESCALATION_AUDIT_SIGNING_KEY"]
    audited = cli_json(stack, "audit", "replay", str(archive), "--public-key", f"{key}.pub")
    assert audited["ok"] and audited["manifests"][0]["signature"] == "valid", audited
    assert "ticket-E2E-ARCH" in {v["workflow_id"] for v in audited["verdicts"]}
    shown = cli(stack, "audit", "schedule", "--show")
    assert shown.returncode == 0 and "daily at 03:30 UTC" in shown.stdout and "audit-archive" in shown.stdout


def test_bad_input_is_named(stack: dict[str, str]) -> None:
    bad = cli(stack, "ticket", "open", "--id", "E2E-2", "--subject", "x", "--customer", "jane@example.com")
    assert bad.returncode == 2 and "customer_id" in bad.stderr
    future = cli(stack, "ticket", "open", "--id", "E2E-3", "--subject", "x", "--customer", "c1",
                 "--opened-at", "2099-01-01T00:00:00Z")
    assert future.returncode == 2 and "future" in future.stderr
    naive = cli(stack, "ticket", "open", "--id", "E2E-3", "--subject", "x", "--customer", "c1",
                "--opened-at", "2026-01-01T00:00:00")
    assert naive.returncode == 2 and "time zone" in naive.stderr


def readme_blocks(prefix: str) -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return [b for b in re.findall(r"```sh\n(.*?)```", text, flags=re.S) if b.lstrip().startswith(prefix)]


def test_readme_cli_examples_run_verbatim(stack: dict[str, str], tmp_path: Path) -> None:
    """A new user pastes the README's command lines (with `make run`'s server; here the test's, via the env)."""
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")
    (tmp_path / "config").symlink_to(ROOT / "config")  # as in the clone: the policy file the examples copy
    (tmp_path / "var").mkdir()
    # as in a user's terminal: the signing key is var/audit-signing.key where they stand (the stack's worker has it
    # set to its own home, which under `make run` is that same var/)
    stack = {k: v for k, v in stack.items() if k != "ESCALATION_AUDIT_SIGNING_KEY"}
    blocks = readme_blocks(".venv/bin/escalation")
    assert len(blocks) >= 2, "the README shows the CLI"
    for block in blocks:
        for line in (ln for ln in block.splitlines() if ln.strip()):
            done = subprocess.run(["bash", "-c", line], cwd=tmp_path, env=stack, capture_output=True, text=True,
                                  timeout=60)
            assert done.returncode == 0, f"{line}\n{done.stdout}\n{done.stderr}"
    replayed = subprocess.run(["bash", "-c", ".venv/bin/escalation audit replay var/audit/DEMO-1.json --json"], cwd=tmp_path,
                              env=stack, capture_output=True, text=True, timeout=60)
    assert json.loads(replayed.stdout)["ok"] is True
    deadlines = subprocess.run(["bash", "-c", ".venv/bin/escalation policy deadlines --priority P3 "
                                "--opened-at 2026-11-27T17:30:00+01:00 --json"], cwd=tmp_path, env=stack,
                               capture_output=True, text=True, timeout=60)
    ack = next(d for d in json.loads(deadlines.stdout)["deadlines"] if d["clock"] == "acknowledge")
    assert ack["due_local"] == "2026-11-30T12:30:00+01:00", "the README's worked example: Monday 12:30"


def test_ticket_open_records_who_opened_it(stack: dict[str, str]) -> None:
    cli_json(stack, "ticket", "open", "--id", "E2E-WHO", "--subject", "Login loop", "--customer", "cust-7",
             "--actor", "agent:olga")
    opened = cli_json(stack, "ticket", "show", "E2E-WHO")["timeline"][0]
    assert (opened["action"], opened["actor"]) == ("opened", "agent:olga")


def test_durations_are_shown_as_the_api_shows_them(stack: dict[str, str]) -> None:
    view = cli_json(stack, "ticket", "open", "--id", "E2E-DUR", "--subject", "Slow app", "--customer", "cust-8",
                    "--priority", "P2")["view"]
    iso_whole_seconds = re.compile(r"^-?P(\d+D)?(T(\d+H)?(\d+M)?(\d+S)?)?$")
    shown = [c[k] for c in view["clocks"] for k in ("target", "accrued", "remaining") if c[k] is not None]
    assert shown and all(iso_whole_seconds.match(d) for d in shown), shown


def test_list_into_a_closed_pipe_exits_quietly(stack: dict[str, str]) -> None:
    """`escalation ticket list --json | head -1`: the reader leaves early (here before the CLI writes at all)."""
    reader, writer = os.pipe()
    os.close(reader)
    try:
        done = subprocess.run([*CLI, "ticket", "list", "--json"], cwd=ROOT, env=stack, stdout=writer,
                              stderr=subprocess.PIPE, text=True, timeout=60)
    finally:
        os.close(writer)
    assert (done.returncode, done.stderr) == (0, "")


def test_list_piped_into_head_exits_quietly(stack: dict[str, str]) -> None:
    done = subprocess.run(["bash", "-o", "pipefail", "-c", f"{sys.executable} -m starter.cli ticket list --json | head -1"],
                          cwd=ROOT, env=stack, capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout, done.stderr) == (0, "{\n", "")


def test_a_diverging_history_has_its_own_exit_code(tmp_path: Path) -> None:
    """No server needed: a folder with a committed history whose first notification was scheduled under another
    activity type, an intact one and a file that is no history. Every one is reported, in one JSON document."""
    intact = (ROOT / "tests/replay/histories/full_lifecycle.json").read_text(encoding="utf-8")
    history = json.loads(intact)
    scheduled = next(e for e in history["events"] if e["eventType"] == "EVENT_TYPE_ACTIVITY_TASK_SCHEDULED")
    scheduled["activityTaskScheduledEventAttributes"]["activityType"]["name"] = "page_someone"
    (tmp_path / "a-tampered.json").write_text(json.dumps(history), encoding="utf-8")
    (tmp_path / "b-intact.json").write_text(intact, encoding="utf-8")
    (tmp_path / "c-notes.json").write_text('{"note": "not a history"}', encoding="utf-8")
    done = cli(dict(os.environ), "audit", "replay", str(tmp_path), "--json")
    assert done.returncode == 5, done.stderr
    report = json.loads(done.stdout)  # exactly one document: json.loads refuses anything after it
    assert (report["histories"], report["passed"], report["diverged"], report["unreadable"]) == (3, 1, 1, 1)
    tampered, ok, notes = report["verdicts"]
    assert f"event {scheduled['eventId']} (ActivityTaskScheduled)" in tampered["divergence"], tampered
    assert "page_someone" in tampered["divergence"], "names what differs"
    assert ok["passed"] and ok["events"] == len(history["events"])
    assert "not a Temporal history export" in notes["unreadable"] and not report["ok"]

    unreadable_only = cli(dict(os.environ), "audit", "replay", str(tmp_path / "c-notes.json"), "--json")
    assert unreadable_only.returncode == 2, "bad input, not a divergence"
    assert json.loads(unreadable_only.stdout)["unreadable"] == 1
    missing = cli(dict(os.environ), "audit", "replay", str(tmp_path / "no such.json"))
    assert missing.returncode == 2 and "no such file or folder, and not a ticket id" in missing.stderr


def test_signed_exports_show_any_change_after_export(tmp_path: Path) -> None:
    """No server needed: two committed histories signed into a folder's manifest (as `ticket history -o` signs),
    then changed, added to and forged; the auditor holds only the public key."""
    from starter.runtime.manifest import MANIFEST, sign_into_manifest, signing_key

    folder = tmp_path / "exports"
    folder.mkdir()
    files = [folder / name for name in ("full_lifecycle.json", "seed_escalation.json")]
    for f in files:
        f.write_text((ROOT / "tests/replay/histories" / f.name).read_text(encoding="utf-8"), encoding="utf-8")
    key_file = tmp_path / "operator.key"
    sign_into_manifest(folder, files, signing_key(key_file))
    public = str(key_file) + ".pub"

    def audit(*extra: str) -> tuple[int, dict[str, Any]]:
        done = cli(dict(os.environ), "audit", "replay", str(folder), "--json", *extra)
        return done.returncode, json.loads(done.stdout)

    code, report = audit("--public-key", public)
    assert code == 0 and report["manifests"][0]["signature"] == "valid" and report["tampered"] == 0, report
    code, report = audit()
    assert code == 0 and report["manifests"][0]["signature"] == "not checked: no public key given"
    signing_key(tmp_path / "other.key")
    code, report = audit("--public-key", str(tmp_path / "other.key.pub"))
    assert code == 8 and report["manifests"][0]["signature"] == "by another key" and report["tampered"] == 2

    files[1].write_text(files[1].read_text(encoding="utf-8") + "\n", encoding="utf-8")  # still replays
    code, report = audit("--public-key", public)
    assert code == 8 and report["tampered"] == 1 and report["passed"] == 1, "replays, but is not what was exported: not passed"
    assert "differs from the signed manifest" in report["verdicts"][1]["integrity"] and not report["ok"]

    (folder / "extra.json").write_text(files[0].read_text(encoding="utf-8"), encoding="utf-8")
    code, report = audit("--public-key", public)
    assert code == 8 and "not listed" in next(v for v in report["verdicts"] if "extra" in v["source"])["integrity"]
    (folder / "extra.json").unlink()

    forged = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))  # the digest set to the changed file's
    forged["files"]["seed_escalation.json"] = hashlib.sha256(files[1].read_bytes()).hexdigest()
    (folder / MANIFEST).write_text(json.dumps(forged), encoding="utf-8")
    code, report = audit("--public-key", public)
    assert code == 8 and report["manifests"][0]["signature"] == "invalid" and report["tampered"] == 2
    with pytest.raises(ValueError, match="does not verify with this key"):
        sign_into_manifest(folder, files[:1], signing_key(key_file))  # signing again must not launder the forgery

    (folder / MANIFEST).unlink()
    code, report = audit("--public-key", public)
    assert code == 8 and "though a public key was given" in report["verdicts"][0]["integrity"], "a deleted manifest"
    sign_into_manifest(folder, files, signing_key(key_file))  # a fresh one
    files[0].unlink()
    code, report = audit("--public-key", public)
    deleted = [v for v in report["verdicts"] if v["integrity"] == "deleted after export"]
    assert code == 8 and [v["workflow_id"] for v in deleted] == ["full_lifecycle.json"], report["verdicts"]
    (folder / "broken.json.gz").write_bytes(b"\x1f\x8b\x08\x00not gzip at all")
    code, report = audit()
    broken = next(v for v in report["verdicts"] if "broken" in v["source"])
    assert code == 8 and "cannot read a JSON history" in broken["unreadable"] and broken["tampered"], broken


def test_dev_server_alone_has_the_search_attributes_tickets_need(tmp_path: Path) -> None:
    from starter.devstack.devserver import free_port, port_open

    port = free_port()
    env = {**os.environ, "TEMPORAL_ADDRESS": f"localhost:{port}"}
    server = subprocess.Popen([*CLI, "dev-server", "--db", str(tmp_path / "temporal.db"), "--headless"], cwd=ROOT,
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert server.stdout is not None
        lines = [server.stdout.readline() for _ in range(2)]
        assert "ready" in lines[1], lines
        listed = cli(env, "ticket", "list", "--status", "open", "--breached", "--json")
        assert listed.returncode == 0, listed.stderr  # a filter on unknown search attributes would be refused
        assert json.loads(listed.stdout)["tickets"] == []
    finally:
        server.send_signal(signal.SIGINT)  # Ctrl-C
        server.wait(timeout=30)
    assert server.returncode == 0
    assert not port_open(port), "it stopped the server it started"
