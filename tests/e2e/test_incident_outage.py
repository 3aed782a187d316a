"""An outage on the dev server with 200 tickets: they join the service's incident at intake (a routing rule), one
status update gives each exactly one timeline entry and one message (one key at the mail server, the same text if
sent again), though the worker is SIGKILLed in the middle of
the fan-out and restarted; resolving the incident resolves the tickets still open and leaves resolved ones alone."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import uuid
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from temporalio.client import WorkflowExecutionStatus

from starter.client import Busy, EscalationClient, Principal, TemporalUnavailable
from starter.devstack.mailserver import MailServer
from tests.conftest import TemporalStack
from tests.support.workflows import ticket
from workflows import ticket as core
from workflows.common.policy import Policy
from workflows.incident import LinkRequest, incident_workflow_id

TICKETS = 200
pytestmark = pytest.mark.timeout(300)
SUPERVISOR = Principal.operator("supervisor:sam")


def outage_policy(base: Policy, service: str) -> Policy:
    data = base.model_dump(mode="json", by_alias=True)
    data["routing"]["rules"].insert(0, {"name": "outage", "when": {"keywords": ["stalls"]},
                                        "then": {"incident": service}})
    return Policy.model_validate(data)


async def until(check, timeout_s: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s:g}s: {what}")
        await asyncio.sleep(0.5)


async def states(client: EscalationClient, ids: list[str]) -> list[core.TicketState]:
    sem = asyncio.Semaphore(20)

    async def one(i: str) -> core.TicketState:
        async with sem:
            for _attempt in range(20):  # a restarted worker replays each ticket into its cache on its first query
                try:
                    return await client.state(i, principal=SUPERVISOR)
                except (TemporalUnavailable, Busy):
                    await asyncio.sleep(0.5)
            return await client.state(i, principal=SUPERVISOR)
    return list(await asyncio.gather(*(one(i) for i in ids)))


async def test_an_outage_of_200_tickets_survives_a_killed_worker(temporal_stack: TemporalStack,
                                                                 tmp_path: Path) -> None:
    service = f"streaming-{uuid.uuid4().hex[:6]}"
    tq = f"outage-{uuid.uuid4().hex[:8]}"
    outbox = tmp_path / "outbox.jsonl"
    mail = MailServer(tmp_path / "mail").start()  # the customers' channel: their contact is an email address
    env = {"ESCALATION_OUTBOX": str(outbox), "ESCALATION_SMTP_URL": mail.url, "ESCALATION_INCIDENT_FANOUT_CONCURRENCY": "5",
           "ESCALATION_INCIDENT_FANOUT_RATE": "20"}  # paced, so the kill lands in the middle of the fan-out
    stack = temporal_stack.stack
    worker = stack.start_worker(task_queue=tq, name="outage worker", env=env)
    try:
        client = EscalationClient(temporal_stack.client, outage_policy(temporal_stack.policy, service), tq)
        await client.declare_incident(service, "Streaming down in the EU", "SEV2", "mia", principal=SUPERVISOR)
        sem = asyncio.Semaphore(20)

        async def open_one(i: int) -> str:
            t = ticket(datetime.now(UTC), priority="P3", subject=f"Video stalls ({i})",
                       customer_contact=f"viewer{i}@example.com")
            async with sem:
                opened = await client.open(t, wait_for_worker=False)
            assert opened.view.incident_id == service, "joined the incident at intake"
            return t.id
        ids = list(await asyncio.gather(*(open_one(i) for i in range(TICKETS))))
        page = await client.incident_tickets(service, principal=SUPERVISOR, page_size=1000)
        assert page.total == TICKETS and set(page.tickets) == set(ids)
        joins = await link_updates(temporal_stack, service)
        assert joins <= TICKETS // 4, f"tickets opened together join in few Updates, not one each ({joins})"
        resolved_first = ids[:5]
        for i in resolved_first:
            await client.perform(i, core.Resolve(actor="agent:alice", summary="fixed on its own"), principal=SUPERVISOR)

        await client.post_incident_update(service, "We are restoring the EU cluster.", principal=SUPERVISOR)
        await until(lambda: _told(outbox, 40), 90, "the fan-out got going")
        os.killpg(worker.pid, signal.SIGKILL)
        worker.proc.wait()
        stack.children.remove(worker)
        told_before_kill = len(_customers_told(outbox))
        assert told_before_kill < TICKETS, "killed in the middle of the fan-out"
        worker = stack.start_worker(task_queue=tq, name="outage worker again", env=env)

        async def all_told() -> bool:
            return all(s.incident_update == 1 for s in await states(client, ids))
        await until(all_told, 120, "every ticket has the update")
        entries = [sum(1 for e in s.timeline if e.action == "incident_update") for s in await states(client, ids)]
        assert entries == [1] * TICKETS, "one timeline entry per ticket"

        async def delivered() -> bool:
            lines = [json.loads(x) for x in outbox.read_text().splitlines()] if outbox.exists() else []
            return len({r["notification_key"] for r in lines if r["kind"] == "incident_update"}) >= TICKETS
        await until(delivered, 120, "every customer's message delivered")
        lines = [json.loads(x) for x in outbox.read_text().splitlines()]
        per_ticket = Counter(r["ticket_id"] for r in lines if r["kind"] == "incident_update")
        assert set(per_ticket) == set(ids) and set(per_ticket.values()) == {1}, "one message per ticket"
        at_receiver: dict[str, set[str]] = defaultdict(set)  # customer's address -> keys of update mails
        contents: dict[str, set[str]] = defaultdict(set)  # key -> the texts sent under it
        for m in mail.handler.mails():
            if ":incident_update" in str(m["X-Escalation-Key"]):
                at_receiver[str(m["To"])].add(str(m["X-Escalation-Key"]))
                contents[str(m["X-Escalation-Key"])].add(m.get_body(("plain",)).get_content())  # type: ignore[union-attr]
        assert len(at_receiver) == TICKETS and all(len(k) == 1 for k in at_receiver.values()), \
            "at the mail server: one message (one key) per customer"
        assert all(len(c) == 1 for c in contents.values()), "a key sent again carries the same text"
        print(f"\nfan-out at {told_before_kill}/{TICKETS} when the worker was killed; every ticket told once")

        await client.resolve_incident(service, "EU cluster restored", principal=SUPERVISOR)
        handle = temporal_stack.client.get_workflow_handle(incident_workflow_id(service))

        async def incident_done() -> bool:
            return (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED
        await until(incident_done, 120, "the incident told every ticket of its resolution")
        assert (await handle.describe()).raw_description.workflow_execution_info.history_length < 10_240, \
            "the incident's history stays under Temporal's 10,240-event warning"
        incident = await client.incident(service, principal=SUPERVISOR)
        assert incident.resolved_tickets == TICKETS - 5, "the count of tickets it resolved, exactly"
        final = await states(client, ids)
        assert all(s.status.value == "resolved" for s in final)
        assert Counter(s.resolution_summary for s in final) == {"EU cluster restored": TICKETS - 5,
                                                                 "fixed on its own": 5}
    finally:
        stack.stop_child(worker)
        mail.stop()


async def link_updates(temporal_stack: TemporalStack, service: str) -> int:
    handle = temporal_stack.client.get_workflow_handle(incident_workflow_id(service))
    names = [e.workflow_execution_update_accepted_event_attributes.accepted_request.input.name
             async for e in handle.fetch_history_events()
             if e.HasField("workflow_execution_update_accepted_event_attributes")]
    return names.count("link")


async def test_a_burst_of_links_beyond_the_servers_in_flight_limit_all_land(temporal_stack: TemporalStack) -> None:
    """The server admits 10 Updates in flight per workflow; with no worker they stay in flight, so most of 25 links
    sent at once are refused at first. They are sent again until the worker, started 12 s later, takes them."""
    service = f"billing-{uuid.uuid4().hex[:6]}"
    tq = f"crowd-{uuid.uuid4().hex[:8]}"
    # an Update waits for the worker (started 12 s later, then 25 Updates on a shared 2-core machine): a long timeout
    client = EscalationClient(temporal_stack.client, temporal_stack.policy, tq, rpc_timeout=timedelta(seconds=75))
    worker = temporal_stack.stack.start_worker(task_queue=tq, name="crowd worker")
    try:
        await client.declare_incident(service, "Invoices fail", "SEV3", "mia", principal=SUPERVISOR)
    finally:
        temporal_stack.stack.stop_child(worker)
    ids = [f"crowd-{uuid.uuid4().hex[:8]}" for _ in range(25)]
    # straight to the incident (the client would first refuse these ids: no such tickets; the limit is the point)
    links = asyncio.gather(*(client.incidents.link(service, LinkRequest(tickets=[i], by=SUPERVISOR.actor))
                             for i in ids))
    await asyncio.sleep(12)  # longer than the SDK's own retries of a refused Update
    worker = temporal_stack.stack.start_worker(task_queue=tq, name="crowd worker again")
    try:
        linked = await asyncio.wait_for(links, 100)
        assert sorted(t for new in linked for t in new) == sorted(ids)
        page = await client.incident_tickets(service, principal=SUPERVISOR, page_size=100)
        assert sorted(page.tickets) == sorted(ids)
    finally:
        temporal_stack.stack.stop_child(worker)


def _customers_told(outbox: Path) -> set[str]:
    lines = [json.loads(x) for x in outbox.read_text().splitlines() if x.strip()] if outbox.exists() else []
    return {str(r["ticket_id"]) for r in lines if r["kind"] == "incident_update"}


async def _told(outbox: Path, n: int) -> bool:
    return len(_customers_told(outbox)) >= n

