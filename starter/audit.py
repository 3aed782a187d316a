"""The auditor's replay: run a recorded history against the current code.

A history that replays without divergence shows that the code in hand makes
exactly the decisions the recorded ticket made (the policy snapshot is in the
history's input, so the policy of that day is what the replay uses).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from worker import workflow_runner
from workflows.ticket import TicketWorkflow


class ReplayReport(BaseModel):
    workflow_id: str
    events: int
    ok: bool
    error: str | None = None


async def replay(history_json: dict[str, Any], workflow_id: str) -> ReplayReport:
    try:
        history = WorkflowHistory.from_json(workflow_id, history_json)
    except (ValueError, TypeError, KeyError) as exc:
        raise ValueError(f"not a Temporal history export (`escalation ticket history ID`): {exc}") from None
    if not history.events:
        raise ValueError("the history has no events")
    replayer = Replayer(workflows=[TicketWorkflow], data_converter=pydantic_data_converter, workflow_runner=workflow_runner())
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    error = None if result.replay_failure is None else str(result.replay_failure)
    return ReplayReport(workflow_id=workflow_id, events=len(history.events), ok=error is None, error=error)
