"""The worker's Prometheus port (ESCALATION_WORKER_METRICS_PORT), scraped over HTTP from a real `python worker.py`:
the Temporal SDK's own metrics, and a breach counted once by clock and tier (the SDK records nothing in replay, and
the ticket is replayed on every task here: the worker keeps no workflow in its cache)."""

from __future__ import annotations

import asyncio
import re
import time
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta

from starter.client import EscalationClient
from starter.client.principal import Principal
from starter.devstack.devserver import free_port
from tests.conftest import TemporalStack
from workflows import ticket as core
from workflows.ticket import Ticket
from workflows.ticket.figures import COUNTERS, HISTOGRAMS

BREACHES = re.compile(r'^escalation_sla_breaches(?:_total)?\{([^}]*)\} (\S+)$', re.M)


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        return str(r.read().decode())


def breaches(text: str, clock: str, tier: str) -> float:
    return sum(float(v) for labels, v in BREACHES.findall(text)
               if f'clock="{clock}"' in labels and f'tier="{tier}"' in labels)


async def test_a_breach_increments_the_workers_counter(temporal_stack: TemporalStack) -> None:
    port, queue = free_port(), f"prom-{uuid.uuid4().hex[:8]}"
    worker = await asyncio.to_thread(temporal_stack.stack.start_worker, task_queue=queue, name="prometheus worker",
                                     env={"ESCALATION_WORKER_METRICS_PORT": str(port),
                                          "ESCALATION_WORKER_METRICS_HOST": "127.0.0.1",
                                          "ESCALATION_MAX_CACHED_WORKFLOWS": "0"})
    try:
        before = await asyncio.to_thread(scrape, port)
        assert "temporal_" in before, "the SDK's own metrics"
        assert breaches(before, "acknowledge", "tier1") == 0
        client = EscalationClient(temporal_stack.client, temporal_stack.policy, queue, rpc_timeout=timedelta(seconds=30))
        who = Principal.operator("agent:prom")
        # P1 must be acknowledged within 60 minutes: opened 2 hours ago, it breached an hour ago
        t = Ticket(id=f"PR-{uuid.uuid4().hex[:8]}", subject="Streaming down", customer_id="cust-7", priority="P1",
                   opened_at=datetime.now(UTC) - timedelta(hours=2))
        await client.open(t)
        await client.perform(t.id, core.AddNote(actor="agent:prom", text="looking"), principal=who)
        await client.perform(t.id, core.AddNote(actor="agent:prom", text="still looking"), principal=who)
        deadline, text = time.monotonic() + 20, before
        while time.monotonic() < deadline:  # the SDK's exporter publishes on its own period
            text = await asyncio.to_thread(scrape, port)
            if breaches(text, "acknowledge", "tier1") >= 1 and "escalation_notifications_delivered" in text:
                break
            await asyncio.sleep(0.5)
        assert breaches(text, "acknowledge", "tier1") == 1, text[-3000:]
        for name in (*COUNTERS, *HISTOGRAMS):
            if "warning" not in name:  # no warning falls due here (superseded by the breach)
                assert re.search(rf"^{name}", text, re.M), name
        assert re.search(r'^escalation_notifications_delivered\{[^}]*channel="outbox"', text, re.M)
        assert re.search(r'^escalation_escalations\S*\{[^}]*reason="auto"[^}]*tier="tier2"', text, re.M)
    finally:
        worker.stop()
