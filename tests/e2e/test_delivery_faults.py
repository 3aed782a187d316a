"""A worker SIGKILLed in the middle of deliveries and restarted: at the receivers every message key arrives, none
with two different contents. SMTP and webhooks cannot promise exactly once: the keys that arrived more than once are
counted and reported (receivers that de-duplicate by key see each message once)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

from starter.client import EscalationClient
from starter.devstack.mailserver import MailServer
from tests.conftest import TemporalStack
from tests.support.receivers import http_receiver
from tests.support.workflows import policy_with, ticket

SECRET = "whsec_" + base64.b64encode(b"fault-delivery-secret-of-32-byte").decode()
TICKETS = 12


async def settled(client: EscalationClient, ids: list[str], outbox: Path, timeout_s: float = 120.0) -> list[dict[str, object]]:
    """The outbox once no ticket has an activity pending (a delivery lost with the killed worker is retried after
    its start_to_close timeout, 30 s)."""
    deadline = time.monotonic() + timeout_s
    while True:
        pending = [a for i in ids for a in (await client.handle(i).describe()).raw_description.pending_activities]
        if not pending:
            return [json.loads(x) for x in outbox.read_text().splitlines()]
        if time.monotonic() > deadline:
            raise AssertionError("deliveries did not settle: " + "; ".join(
                f"{a.activity_type.name} attempt {a.attempt}: {a.last_failure.message[:200]}" for a in pending[:5]))
        await asyncio.sleep(1)


async def test_a_worker_killed_mid_delivery_loses_no_key_and_sends_no_key_twice_differently(
        temporal_stack: TemporalStack, tmp_path: Path) -> None:
    mail = MailServer(tmp_path / "mail").start()
    with http_receiver() as receiver:
        receiver.delay_s = 0.3  # deliveries stay in flight
        (tmp_path / "directory.yaml").write_text(
            "people:\n"
            "  - {id: mia, name: Mia, email: mia@example.com}\n"
            f"  - {{id: sam, name: Sam, webhook: \"{receiver.url}/sam\"}}\n"
            "teams:\n  escalation_managers: {members: [mia]}\n  tier2_lead: {members: [sam]}\n"
            "  executive_team: {members: [mia]}\n")
        outbox = tmp_path / "outbox.jsonl"
        env = {"ESCALATION_DIRECTORY": str(tmp_path / "directory.yaml"), "ESCALATION_SMTP_URL": mail.url,
               "ESCALATION_WEBHOOK_SECRET": SECRET, "ESCALATION_OUTBOX": str(outbox)}
        tq = f"faults-{uuid.uuid4().hex[:8]}"
        stack = temporal_stack.stack
        worker = stack.start_worker(task_queue=tq, name="fault worker", env=env)
        try:
            client = EscalationClient(temporal_stack.client, policy_with(acknowledge="3s"), tq)
            ids = []
            for i in range(TICKETS):
                t = ticket(datetime.now(UTC), customer_contact=f"buyer-{i}@example.com")
                await client.open(t, wait_for_worker=False)
                ids.append(t.id)
            deadline = time.monotonic() + 30
            while len(receiver.at("/sam")) < 3 and time.monotonic() < deadline:  # breaches are being delivered
                await asyncio.sleep(0.1)
            os.killpg(worker.pid, signal.SIGKILL)
            worker.proc.wait()
            stack.children.remove(worker)
            await asyncio.sleep(1)
            worker = stack.start_worker(task_queue=tq, name="fault worker again", env=env)
            receiver.delay_s = 0.0
            records = await settled(client, ids, outbox)
            states = [await client.state(i, principal=client_operator()) for i in ids]
        finally:
            stack.stop_child(worker)
            mail.stop()

    sent_keys = {str(r["key"]) for r in records if r["channel"] in ("email", "webhook")}
    by_key: dict[str, list[str]] = defaultdict(list)
    for m in mail.handler.mails():
        by_key[str(m["X-Escalation-Key"])].append(m.get_body(("plain",)).get_content())  # type: ignore[union-attr]
    for hook in receiver.at("/sam"):
        body = json.loads(hook.body)
        by_key[hook.headers["webhook-id"]].append(json.dumps({k: body[k] for k in ("subject", "text")}))
    missing = sent_keys - set(by_key)
    assert not missing, f"keys the outbox says were delivered but no receiver saw: {sorted(missing)[:5]}"
    assert set(by_key) == sent_keys, "every key at the receivers is one the worker recorded"
    differing = [k for k, contents in by_key.items() if len(set(contents)) > 1]
    assert not differing, f"one key, two different contents: {differing[:5]}"
    twice = sum(1 for contents in by_key.values() if len(contents) > 1)
    print(f"\n{len(by_key)} keys delivered; {twice} arrived more than once (identical content) after the SIGKILL")
    escalated = [sum(1 for e in s.timeline if e.action == "escalated") for s in states]
    assert escalated == [1] * TICKETS, "each ticket escalated exactly once"
    assert len(by_key) >= TICKETS * 2, "the customers' confirmations and the escalations were all sent"


def client_operator():  # type: ignore[no-untyped-def]
    from starter.client import Principal

    return Principal.operator("agent:faults")
