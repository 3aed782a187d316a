"""The escalation metrics over a seeded set of tickets with known outcomes, on a real dev server (SQLite visibility,
our search attributes) and a real worker: 40 tickets in the window (10 escalated: 7 by an agent, 3 by the
acknowledge clock's breach; 30 acknowledged; 20 resolved, 2 of them reopened and resolved again) and 4 in the window
before (all escalated, tagged billing). Times are exact to the minute: each ticket is opened a whole number of
minutes in the past and acted on at once (the test takes seconds)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image
from temporalio.testing import WorkflowEnvironment

from starter.client import EscalationClient
from starter.client.errors import InvalidInput
from starter.client.metrics import MetricsReport, Spread
from starter.client.plots import series
from starter.client.principal import Principal, Role
from tests.support.workflows import local_env, policy_with, running_worker, start_ticket, ticket
from workflows import ticket as core
from workflows.ticket.workflow import TicketWorkflow

AGENT = "agent:metrics"
LONG = "30d"
# Acknowledge within 10 hours; nothing else falls due while the test runs.
POLICY = policy_with(acknowledge="10h", resolution=LONG, customer_update=LONG, warn_at_percent=[],
                     tier={"tier0": LONG, "tier1": LONG, "tier2": LONG, "tier3": LONG}, stakeholders=[])
MANUAL = range(0, 7)  # escalated by an agent
ACKED = range(0, 30)
RESOLVED = range(10, 30)
REOPENED = (10, 11)
BREACHED = (37, 38, 39)  # opened 11, 12, 13 hours ago: the acknowledge clock breached (auto escalation to tier2)


def offset(i: int) -> timedelta:
    return timedelta(hours=11 + (i - 37)) if i in BREACHED else timedelta(minutes=10 * (i + 1))


@pytest.fixture(scope="module")
async def env() -> AsyncIterator[WorkflowEnvironment]:
    environment = await local_env()
    yield environment
    await environment.shutdown()


async def seed(env: WorkflowEnvironment, tq: str, base: datetime) -> None:
    async def one(i: int) -> None:
        tags = ["streaming"] if i in MANUAL else ["billing"] if i in BREACHED else ["general"]
        h = await start_ticket(env.client, tq, ticket(base - offset(i), id=f"M-{i:02d}", tags=tags), POLICY)
        if i in MANUAL:
            await h.execute_update(TicketWorkflow.escalate, core.Escalate(actor=AGENT, reason="needs tier 2"))
        if i in ACKED:
            await h.execute_update(TicketWorkflow.acknowledge, core.Acknowledge(actor=AGENT))
        if i in RESOLVED:
            await h.execute_update(TicketWorkflow.resolve, core.Resolve(actor=AGENT, summary="fixed"))
        if i in REOPENED:
            await h.execute_update(TicketWorkflow.reopen, core.Reopen(actor=AGENT, reason="back again"))
            await h.execute_update(TicketWorkflow.resolve, core.Resolve(actor=AGENT, summary="fixed again"))
        if i in BREACHED:
            await h.execute_update(TicketWorkflow.note, core.AddNote(actor=AGENT, text="seen"))  # breach applied

    async def before(i: int) -> None:  # the previous window: opened 30 h ago, breached, escalated
        h = await start_ticket(env.client, tq, ticket(base - timedelta(hours=30 + i), id=f"P-{i}", tags=["billing"]),
                               POLICY)
        await h.execute_update(TicketWorkflow.note, core.AddNote(actor=AGENT, text="seen"))

    for batch in range(0, 40, 10):
        await asyncio.gather(*(one(i) for i in range(batch, batch + 10)))
    await asyncio.gather(*(before(i) for i in range(4)))


def minutes(s: Spread) -> tuple[float | None, float | None]:
    return (None if s.median_s is None else s.median_s // 60, None if s.p90_s is None else s.p90_s // 60)


async def test_seeded_tickets_give_the_expected_figures(env: WorkflowEnvironment, tmp_path: Path) -> None:
    base = datetime.now(UTC).replace(microsecond=0)
    client = EscalationClient(env.client, POLICY, "unused")
    who = Principal.operator("cli:test")
    async with running_worker(env.client) as tq:
        await seed(env, tq, base)
        deadline = time.monotonic() + 20
        while True:  # visibility is eventually consistent: wait until every figure has arrived
            r: MetricsReport = await client.metrics(principal=who, start=base - timedelta(days=1),
                                                    end=base + timedelta(minutes=5), group_by="tier")
            if (r.tickets_opened == 40 and r.tickets_without_figures == 0 and r.time_to_resolution.wall.n == 20
                    and r.escalation.count == 10 and r.reopen.count == 2) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.3)

    assert r.tickets_opened == 40
    assert (r.escalation.count, r.escalation.of, r.escalation.rate) == (10, 40, 0.25)
    assert {t: x.count for t, x in r.escalation_by_tier.items()} == {"tier1": 10}
    assert (r.breach.count, r.breach.rate) == (3, 0.075)
    assert {c: x.count for c, x in r.breach_by_clock.items()} == {"acknowledge": 3}
    assert {c: {t: x.count for t, x in tiers.items()} for c, tiers in r.breach_by_clock_and_tier.items()} == {
        "acknowledge": {"tier1": 3}}
    # acknowledged: offsets 10..300 minutes; nearest rank of 30: 15th (150) and 27th (270)
    assert r.time_to_acknowledge.wall.n == 30 and minutes(r.time_to_acknowledge.wall) == (150, 270)
    assert minutes(r.time_to_acknowledge.business) == (150, 270)  # around the clock: business time is wall time
    # resolved: offsets 110..300 minutes; nearest rank of 20: 10th (200) and 18th (280)
    assert r.time_to_resolution.wall.n == 20 and minutes(r.time_to_resolution.wall) == (200, 280)
    assert minutes(r.time_to_resolution.business) == (200, 280)
    assert (r.first_contact_resolution.count, r.first_contact_resolution.of) == (18, 20)
    assert (r.reopen.count, r.reopen.of, r.reopen.rate) == (2, 20, 0.1)
    assert r.csat.responses == 0 and r.csat.mean_score is None
    assert [(s.tag, s.escalations, s.share, s.previous_share) for s in r.escalation_tags] == [
        ("streaming", 7, 0.7, 0.0), ("billing", 3, 0.3, 1.0)]
    assert [(s.tag, s.change) for s in r.tag_trends] == [("billing", -0.7), ("streaming", 0.7)]
    assert {g.group: (g.tickets, g.escalation.count) for g in r.groups} == {"tier1": (30, 0), "tier2": (10, 10)}

    # the CLI: the same figures as JSON, and the plot drawn from them (a valid PNG; the series are the report's)
    window = ["--from", (base - timedelta(days=1)).isoformat(), "--to", (base + timedelta(minutes=5)).isoformat()]
    png = tmp_path / "metrics.png"
    done = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "starter.cli", "metrics", *window,
                                                    "--group-by", "tier", "--json", "--plot", str(png)],
                                   env={**os.environ, "TEMPORAL_ADDRESS": env.client.service_client.config.target_host,
                                        "TEMPORAL_NAMESPACE": env.client.namespace},
                                   capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    printed = MetricsReport.model_validate_json(done.stdout)
    assert printed.model_dump(exclude={"start", "end", "previous_start"}) == r.model_dump(
        exclude={"start", "end", "previous_start"})
    image = Image.open(png)
    image.verify()
    assert image.format == "PNG"
    assert series(printed)["Escalation rate"]["by opening tier"] == {"tier1": 0.25}
    assert series(printed)["SLA breach rate by clock and tier"] == {"acknowledge": {"tier1": 0.075}}

    # a scoped agent sees only its tier's tickets
    agent = Principal(name="t2", role=Role.agent, tiers=frozenset({"tier2"}))
    scoped = await client.metrics(principal=agent, start=base - timedelta(days=1), end=base + timedelta(minutes=5))
    assert scoped.tickets_opened == 10

    with pytest.raises(InvalidInput, match="group_by 'colour' is not one of tier, department, priority, channel"):
        await client.metrics(principal=who, group_by="colour")
    with pytest.raises(InvalidInput, match="must be before"):
        await client.metrics(principal=who, start=base, end=base - timedelta(hours=1))


async def test_what_sqlite_visibility_can_count(env: WorkflowEnvironment) -> None:
    """The README's claim (starter/client/metrics_source.py): counts group by ExecutionStatus only; a custom
    attribute cannot be grouped by, so the report lists."""
    from temporalio.service import RPCError

    counted = await env.client.count_workflows("WorkflowType = 'Ticket' GROUP BY ExecutionStatus")
    assert counted.count >= 0 and all(len(g.group_values) == 1 for g in counted.groups)
    with pytest.raises(RPCError, match=r"(?i)group by"):
        await env.client.count_workflows("WorkflowType = 'Ticket' GROUP BY TicketTier")
