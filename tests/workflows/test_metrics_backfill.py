"""The metrics' backfill for a ticket running from before patch `metrics-figures`: opened by the shell of before
(tests/support/legacy_ticket_shell.py), then worked by today's worker, it publishes no figures (patched answers
false) and no window counts it; `EscalationClient.backfill_figures` (the publish_figures Update,
`escalation metrics --backfill`) makes it publish them, then and as they change. Its history replays against the
code and its decisions check out."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from temporalio.testing import WorkflowEnvironment

from starter.client import EscalationClient
from starter.client.errors import Forbidden
from starter.client.principal import Principal, Role
from starter.runtime.decisions import check_decisions
from starter.runtime.policy_file import load_policy
from starter.runtime.temporal import build_worker, replayer
from tests.support.legacy_ticket_shell import TicketWorkflow as LegacyTicketWorkflow
from tests.support.workflows import local_env, start_ticket, ticket
from workflows import ticket as core
from workflows.ticket.workflow import TicketWorkflow

AGENT = "agent:backfill"


@pytest.fixture(scope="module")
async def env() -> AsyncIterator[WorkflowEnvironment]:
    environment = await local_env()
    yield environment
    await environment.shutdown()


async def until(check: object, timeout: float = 15.0) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = await check()  # type: ignore[operator]
        if value or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.3)


async def test_a_ticket_from_before_is_backfilled(env: WorkflowEnvironment) -> None:
    tq = "backfill"
    now = datetime.now(UTC).replace(microsecond=0)
    client = EscalationClient(env.client, load_policy(), tq)
    who = Principal.operator("cli:admin")
    t = ticket(now - timedelta(minutes=30), id="BF-1", tags=["billing"])
    async with build_worker(env.client, tq, workflows=[LegacyTicketWorkflow], max_cached_workflows=0):
        handle = await start_ticket(env.client, tq, t)
        await handle.execute_update(LegacyTicketWorkflow.acknowledge, core.Acknowledge(actor=AGENT))
    start, end = now - timedelta(hours=1), now + timedelta(minutes=5)
    async with build_worker(env.client, tq, max_cached_workflows=0):
        await handle.execute_update(TicketWorkflow.note, core.AddNote(actor=AGENT, text="today's code"))
        assert (await client.metrics(principal=who, start=start, end=end)).tickets_opened == 0, "no figures before the backfill"

        agent = Principal(name="a", role=Role.agent)
        with pytest.raises(Forbidden, match="admins only"):
            await client.backfill_figures(principal=agent)
        done = await client.backfill_figures(principal=who)
        assert (done.asked, done.published) == (1, 1)

        async def counted() -> object:
            r = await client.metrics(principal=who, start=start, end=end)
            return r if r.tickets_opened == 1 and r.time_to_acknowledge.wall.n == 1 else None

        assert await until(counted), "the backfilled ticket is in its window, acknowledged"
        await handle.execute_update(TicketWorkflow.resolve, core.Resolve(actor=AGENT, summary="fixed"))

        async def resolved() -> object:
            r = await client.metrics(principal=who, start=start, end=end)
            return r if r.time_to_resolution.wall.n == 1 else None

        r = await until(resolved)
        assert r, "figures keep being published after the backfill"
        assert r.escalation_tags == [] and r.tickets_without_figures == 0  # type: ignore[attr-defined]
        again = await client.backfill_figures(principal=who)
        assert (again.asked, again.published) == (0, 0)
        assert await handle.execute_update("publish_figures", "cli:admin", result_type=bool) is False

    history = await handle.fetch_history()
    await replayer().replay_workflow(history)
    check = await check_decisions(history)
    assert check.checked and not check.check_failed and not check.differences, check.differences
    assert "metrics-figures" not in check.patches and check.decisions > 5
