"""The `assign_escalation_manager` activity: whose turn it is among the escalation managers on duty.

Who is on duty comes from the directory (injected: the worker builds this once); whose turn it is comes from the
pool's RotationWorkflow, asked by update-with-start, so every worker shares one turn order. The Update's id is the
ticket's effect key: a retried activity gets the answer of its first attempt, not a second turn.

The server admits at most 10 Updates in flight per workflow (dynamic config
`limit.workflowExecution.maxInFlightUpdates`); beyond that it refuses them, and a wave of escalations then retried
for minutes on the activity's backoff. So each worker process sends at most `IN_FLIGHT_PER_WORKER` turns at a time
per pool (two workers stay under the limit) and the rest wait their turn here: 600 turns take a few seconds.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable

import structlog
from temporalio import activity
from temporalio.client import WithStartWorkflowOperation
from temporalio.common import WorkflowIDConflictPolicy

from workflows.rotation import RotationInput, rotation_workflow_id
from workflows.rotation.workflow import RotationWorkflow
from workflows.ticket import FindEscalationManager

log = structlog.get_logger("escalation.rotation")

# Who may take the turn for a ticket: person ids of the escalation managers on duty at `e.at`.
OnDuty = Callable[[FindEscalationManager], list[str]]


IN_FLIGHT_PER_WORKER = 5


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
        async with self.turns[rotation]:
            chosen: str = await activity.client().execute_update_with_start_workflow(
                RotationWorkflow.take, candidates, start_workflow_operation=start, id=e.key)
        log.info("escalation manager assigned", ticket_id=e.ticket_id, pool=e.pool, manager=chosen)
        return chosen
