"""A worker down across two deadlines (the acknowledgement's, then Tier 2's), on the dev server in real time: when
it is back, the ticket escalates once, and Tier 2 gets its full time from when the system acted."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from starter.runtime.temporal import build_worker
from tests.support.workflows import local_env, policy_with, start_ticket, ticket
from workflows import ticket as core
from workflows.common.policy import Policy
from workflows.common.vocabulary import ClockName
from workflows.ticket.workflow import TicketWorkflow

pytestmark = pytest.mark.timeout(150)
S = timedelta(seconds=1)


async def until(handle, ok, within: float = 20.0) -> core.TicketState:  # type: ignore[no-untyped-def]
    s = None
    for _ in range(int(within * 10)):
        s = await handle.query(TicketWorkflow.current_state)
        if ok(s):
            return s
        await asyncio.sleep(0.1)
    assert s is not None
    return s


async def test_a_worker_down_across_two_deadlines_escalates_once_and_gives_tier2_its_time() -> None:
    env = await local_env()
    try:
        tq = f"tq-{uuid.uuid4().hex[:8]}"
        p1 = policy_with(acknowledge="3s", tier={"tier0": "5m", "tier1": "20m", "tier2": "6s", "tier3": "8h"})
        # seconds-long targets: a decision more than 2 s late counts as noticed late (the default is 10 s)
        policy = Policy.model_validate({**p1.model_dump(mode="json", by_alias=True), "catch_up": {"late_after": "2s"}})
        async with build_worker(env.client, tq, max_cached_workflows=0):
            handle = await start_ticket(env.client, tq, ticket(datetime.now(UTC)), policy)
            opened = (await until(handle, lambda s: True)).ticket.opened_at
        # The worker is down while the acknowledgement's deadline (3 s) and, under the old rule, Tier 2's (3 s + 6 s)
        # pass.
        await asyncio.sleep(12)
        async with build_worker(env.client, tq, max_cached_workflows=0):
            s = await until(handle, lambda s: s.escalation_count > 0)
            assert (s.tier, s.escalation_count) == ("tier2", 1), "one escalation, no cascade to Tier 3"
            (esc,) = [e for e in s.timeline if e.action == "escalated"]
            assert esc.clock == ClockName.acknowledge and esc.due_at == opened + 3 * S
            assert esc.acted_at is not None and esc.acted_at >= opened + 12 * S
            assert esc.at == esc.acted_at, "the timeline says the system acted when it did"
            assert s.clocks[ClockName.tier].due_at == esc.acted_at + 6 * S, "Tier 2's 6 s from acted_at"
            # Tier 2's own deadline: a full target after the system acted, then on time
            s = await until(handle, lambda s: s.escalation_count > 1)
            assert (s.tier, s.escalation_count) == ("tier3", 2)
            last = [e for e in s.timeline if e.action == "escalated"][-1]
            assert last.due_at == esc.acted_at + 6 * S and last.at - last.due_at < 3 * S
    finally:
        await asyncio.wait_for(env.shutdown(), 30)
