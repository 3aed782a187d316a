"""The `assign_escalation_manager` activity: whose turn it is among the escalation managers on duty.

Who is on duty comes from the directory (injected: the worker builds this once); whose turn it is comes from the
pool's RotationWorkflow, asked by update-with-start, so every worker shares one turn order. The Update's id is the
ticket's effect key: a retried activity gets the answer of its first attempt, not a second turn (the rotation keeps
its recent answers across its continue-as-new too).

The server admits at most 10 Updates in flight per workflow (dynamic config `history.maxInFlightUpdates`) and refuses
the rest; a wave of escalations then failed its attempts and retried for minutes on the activity's backoff. So each
worker process sends at most `IN_FLIGHT_PER_WORKER` turns at a time per pool (three workers stay under the limit)
and the others wait here; a refusal all the same (more workers) is sent again after a short jittered pause. An
attempt gives up a few seconds before its own timeout (a retry waits at the back), so no stale attempt holds a
place.
"""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import structlog
from temporalio import activity
from temporalio.client import WithStartWorkflowOperation
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError

from workflows.common.crowding import crowded
from workflows.rotation import RotationInput, rotation_workflow_id
from workflows.rotation.workflow import RotationWorkflow
from workflows.ticket import FindEscalationManager

log = structlog.get_logger("escalation.rotation")

# Who may take the turn for a ticket: person ids of the escalation managers on duty at `e.at`.
OnDuty = Callable[[FindEscalationManager], list[str]]


IN_FLIGHT_PER_WORKER = 3
GIVE_UP_BEFORE_TIMEOUT = timedelta(seconds=3)


class EscalationManagers:
    def __init__(self, on_duty: OnDuty, in_flight: int = IN_FLIGHT_PER_WORKER) -> None:
        self.on_duty = on_duty
        self.turns: defaultdict[str, asyncio.Semaphore] = defaultdict(lambda: asyncio.Semaphore(in_flight))

    @activity.defn(name="assign_escalation_manager")
    async def assign(self, e: FindEscalationManager) -> str | None:
        candidates = self.on_duty(e)
        if not candidates:
            log.info("no escalation manager on duty", ticket_id=e.ticket_id, pool=e.pool)
            return None
        queue = activity.info().task_queue  # the rotation runs where the ticket's worker runs
        rotation = rotation_workflow_id(e.pool, queue)
        start = WithStartWorkflowOperation(
            RotationWorkflow.run, RotationInput(pool=e.pool), id=rotation,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING, task_queue=queue)
        try:
            async with asyncio.timeout(attempt_left().total_seconds()), self.turns[rotation]:
                chosen = await take(start, candidates, e.key)
        except TimeoutError:
            raise ApplicationError(f"the {e.pool} rotation is busy: no turn within this attempt; retried",
                                   type="rotation_busy") from None
        log.info("escalation manager assigned", ticket_id=e.ticket_id, pool=e.pool, manager=chosen)
        return chosen


def attempt_left() -> timedelta:
    """What this attempt may still spend, keeping GIVE_UP_BEFORE_TIMEOUT in hand (at least one second)."""
    info = activity.info()
    if info.start_to_close_timeout is None:
        return timedelta(minutes=1)
    ends = info.started_time + info.start_to_close_timeout - GIVE_UP_BEFORE_TIMEOUT
    return max(ends - datetime.now(UTC), timedelta(seconds=1))


async def take(start: WithStartWorkflowOperation[RotationWorkflow, None], candidates: list[str], key: str) -> str:
    """The rotation's answer, sent again after a short jittered pause while the server refuses it for now."""
    delay = 0.05
    while True:
        try:
            chosen: str = await activity.client().execute_update_with_start_workflow(
                RotationWorkflow.take, candidates, start_workflow_operation=start, id=key)
            return chosen
        except RPCError as exc:
            if not crowded(exc):
                raise
        activity.heartbeat()
        await asyncio.sleep(random.uniform(delay / 2, delay))
        delay = min(delay * 2, 1.0)
