"""Escalation managers on the real dev server: high-priority openings take turns through one shared rotation."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from temporalio.service import RPCError
from temporalio.testing import ActivityEnvironment

from activities.notify import Notifier, Outbox
from activities.rotation import EscalationManagers
from starter.runtime.temporal import build_worker
from tests.conftest import TemporalStack
from tests.support.workflows import start_ticket, ticket
from workflows import ticket as core
from workflows.rotation import rotation_workflow_id
from workflows.rotation.workflow import RotationWorkflow
from workflows.ticket import FindEscalationManager
from workflows.ticket.workflow import TicketWorkflow

MANAGERS = ["leo", "mia"]


def two_on_duty(e: FindEscalationManager) -> list[str]:
    return MANAGERS


async def manager_of(stack: TemporalStack, handle_id: str) -> str | None:
    for _ in range(100):
        state: core.TicketState = await stack.client.get_workflow_handle(handle_id).query(TicketWorkflow.current_state)
        if state.escalation_manager is not None or any(
                e.action == "escalation_manager_unassigned" for e in state.timeline):
            return state.escalation_manager
        await asyncio.sleep(0.1)
    raise AssertionError(f"{handle_id}: no escalation manager decision within 10 s")


async def open_tickets(stack: TemporalStack, tmp_path: Path, priority: str, n: int,
                       on_duty: object) -> tuple[list[str | None], int]:
    """The managers the tickets got, and the turns the shared rotation took meanwhile."""
    tq = f"managers-{uuid.uuid4().hex[:8]}"
    activities = [Notifier(Outbox(tmp_path / "outbox.jsonl")).notify, EscalationManagers(on_duty).assign]  # type: ignore[arg-type]
    async with build_worker(stack.client, tq, workflows=[TicketWorkflow, RotationWorkflow], activities=activities):
        before = await rotation_turns(stack, tq)
        handles = [await start_ticket(stack.client, tq, ticket(datetime.now(UTC), priority=priority)) for _ in range(n)]
        chosen = [await manager_of(stack, h.id) for h in handles]
        return chosen, await rotation_turns(stack, tq) - before


async def test_2n_p1_openings_with_two_managers_on_duty_split_n_n(temporal_stack: TemporalStack, tmp_path: Path) -> None:
    chosen, turns = await open_tickets(temporal_stack, tmp_path, "P1", 6, two_on_duty)
    assert Counter(chosen) == {"leo": 3, "mia": 3}
    assert turns == 6, "one turn per ticket, none taken twice"


async def test_a_p3_opening_gets_no_escalation_manager(temporal_stack: TemporalStack, tmp_path: Path) -> None:
    tq = f"managers-{uuid.uuid4().hex[:8]}"
    activities = [Notifier(Outbox(tmp_path / "outbox.jsonl")).notify, EscalationManagers(two_on_duty).assign]
    async with build_worker(temporal_stack.client, tq, workflows=[TicketWorkflow, RotationWorkflow],
                            activities=activities):
        h = await start_ticket(temporal_stack.client, tq, ticket(datetime.now(UTC), priority="P3"))
        await asyncio.sleep(1)
        state: core.TicketState = await h.query(TicketWorkflow.current_state)
    assert state.escalation_manager is None
    assert not [e for e in state.timeline if e.action.startswith("escalation_manager")]


async def test_nobody_on_duty_is_recorded_on_the_ticket(temporal_stack: TemporalStack, tmp_path: Path) -> None:
    assert await open_tickets(temporal_stack, tmp_path, "P2", 1, lambda e: []) == ([None], 0)


async def rotation_turns(stack: TemporalStack, tq: str) -> int:
    handle = stack.client.get_workflow_handle(rotation_workflow_id("escalation-managers", tq))
    try:
        return (await handle.query(RotationWorkflow.current_state)).turns
    except RPCError:  # not started yet: no turn taken
        return 0


def turn_request(i: int) -> FindEscalationManager:
    return FindEscalationManager(key=f"wave-{i}:find-manager", ticket_id=f"T-WAVE-{i}", pool="escalation-managers",
                                 priority="P1", tier="tier2", department="support", customer_id="acme",
                                 at=datetime.now(UTC))


async def wave_of_turns(stack: TemporalStack, n: int, in_flight: int) -> tuple[list[str | None], int]:
    """n escalations asking for a manager at once (a breach wave), through the activity itself on a real server."""
    tq = f"managers-{uuid.uuid4().hex[:8]}"
    env = ActivityEnvironment(client=stack.client)
    env.info = dataclasses.replace(env.info, task_queue=tq, started_time=datetime.now(UTC),
                                   start_to_close_timeout=timedelta(seconds=30))  # the ticket's own timeout
    managers = EscalationManagers(two_on_duty, in_flight=in_flight)
    async with build_worker(stack.client, tq, workflows=[RotationWorkflow], activities=[]):
        chosen = await asyncio.wait_for(asyncio.gather(*(env.run(managers.assign, turn_request(i))
                                                         for i in range(n))), 60)
        return chosen, await rotation_turns(stack, tq)


async def test_a_wave_of_escalations_takes_its_turns_without_hitting_the_servers_update_limit(
        temporal_stack: TemporalStack) -> None:
    # The server admits 10 Updates in flight per workflow; 300 at once through one worker's activities must all
    # get their turn, in order, within their attempt (a refusal failed the attempt: it retried for minutes before)
    chosen, turns = await wave_of_turns(temporal_stack, 300, in_flight=3)
    assert Counter(chosen) == {"leo": 150, "mia": 150}
    assert turns == 300


async def test_more_senders_than_the_server_admits_are_sent_again_not_failed(temporal_stack: TemporalStack) -> None:
    # as if four workers sent at once (4 x 3 > 10): the server refuses some; they are sent again and all get a turn
    chosen, turns = await wave_of_turns(temporal_stack, 120, in_flight=12)
    assert Counter(chosen) == {"leo": 60, "mia": 60} and turns == 120
