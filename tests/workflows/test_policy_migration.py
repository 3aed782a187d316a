"""A ticket moved to a new policy version on the time-skipping server: it breaches at the new due time with its
accrued time kept, the timeline says who moved it from which version to which; a refused move writes nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from starter.runtime.policy_file import load_policy
from tests.support.workflows import minutes, on_time_skipping_server, policy_with, start_ticket, ticket
from tests.unit.test_policy_migration import renamed
from workflows import ticket as core
from workflows.common.vocabulary import ClockName
from workflows.ticket.workflow import TicketWorkflow

pytestmark = pytest.mark.timeout(150)
ADMIN = "admin:root"
TIER1_40M = {"tier0": "5m", "tier1": "40m", "tier2": "4h", "tier3": "8h"}


async def state(handle) -> core.TicketState:  # type: ignore[no-untyped-def]
    return await handle.query(TicketWorkflow.current_state)


@on_time_skipping_server()
async def test_migrated_ticket_breaches_at_the_new_due_time(env: WorkflowEnvironment, tq: str) -> None:
    old, new = load_policy(), policy_with(tier=TIER1_40M)
    handle = await start_ticket(env.client, tq, ticket(await env.get_current_time()), old)
    await env.sleep(minutes(10))
    await handle.execute_update(TicketWorkflow.acknowledge, core.Acknowledge(actor="agent:alice"))
    acked = (await state(handle)).acknowledged_at
    assert acked is not None
    await env.sleep(minutes(5))  # 5 of Tier 1's 20 minutes used
    plan = await handle.execute_update(TicketWorkflow.migrate_policy,
                                       core.MigratePolicy(actor=ADMIN, policy=new, reason="tier 1 gets 40 minutes"))
    tier = next(c for c in plan.changes if c.clock == ClockName.tier)
    assert tier.due_before is not None and abs(tier.due_before - (acked + minutes(20))) < timedelta(seconds=2)
    assert tier.due_after is not None and abs(tier.due_after - (acked + minutes(40))) < timedelta(seconds=2)
    s = await state(handle)
    assert abs(s.clocks[ClockName.tier].accrued - minutes(5)) < timedelta(seconds=2), "accrued time kept"
    assert s.policy_version == new.version()
    assert (await handle.query(TicketWorkflow.policy_snapshot)).version() == new.version()
    entry = next(e for e in s.timeline if e.action == core.MIGRATED)
    assert entry.actor == ADMIN and old.version() in entry.summary and new.version() in entry.summary

    await env.sleep(minutes(20))  # past the old due time (ack + 20 min)
    assert (await state(handle)).tier == "tier1", "the old policy's due time no longer applies"
    await env.sleep(minutes(17))
    s = await state(handle)
    assert s.tier == "tier2", "the new due time (ack + 40 min) passed"
    esc = next(e for e in s.timeline if e.action == "escalated")
    assert esc.clock == ClockName.tier and esc.due_at == tier.due_after


@on_time_skipping_server()
async def test_a_refused_migration_writes_nothing(env: WorkflowEnvironment, tq: str) -> None:
    handle = await start_ticket(env.client, tq, ticket(await env.get_current_time()))
    await handle.execute_update(TicketWorkflow.acknowledge, core.Acknowledge(actor="agent:alice"))
    lacking = renamed("tier1", "frontline")
    with pytest.raises(WorkflowUpdateFailedError) as info:
        await handle.execute_update(TicketWorkflow.migrate_policy, core.MigratePolicy(actor=ADMIN, policy=lacking))
    assert isinstance(info.value.cause, ApplicationError) and info.value.cause.type == "unknown_tier"
    assert "tier1" in info.value.cause.message and "frontline" in info.value.cause.message
    assert await migrations_recorded(handle) == 0, "a refused Update is not recorded"
    s = await state(handle)
    assert s.policy_version == load_policy().version() and not any(e.action == core.MIGRATED for e in s.timeline)
    # the same check sees an accepted one
    await handle.execute_update(TicketWorkflow.migrate_policy,
                                core.MigratePolicy(actor=ADMIN, policy=policy_with(tier=TIER1_40M)))
    assert await migrations_recorded(handle) == 1


async def migrations_recorded(handle) -> int:  # type: ignore[no-untyped-def]
    """The migrate_policy Updates the history holds (accepted ones; a refused one leaves no event at all)."""
    names = [e.workflow_execution_update_accepted_event_attributes.accepted_request.input.name
             for e in (await handle.fetch_history()).events
             if e.HasField("workflow_execution_update_accepted_event_attributes")]
    return names.count("migrate_policy")
