"""The auditor's replay: run a recorded history against the current code.

A history that replays without divergence shows that the code in hand makes
exactly the decisions the recorded ticket made (the policy snapshot is in the
history's input, so the policy of that day is what the replay uses).
"""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import BaseModel
from temporalio.client import WorkflowHistory

from starter.runtime.sdk_private import workflow_type_name
from starter.runtime.temporal import WORKFLOWS, replayer

REPLAY_TIMEOUT_S = 120


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
    first = history.events[0] if history.events else None
    if first is None or not first.HasField("workflow_execution_started_event_attributes"):
        raise ValueError("the history does not begin with the workflow's start event")
    kind = first.workflow_execution_started_event_attributes.workflow_type.name
    known = registered_types()
    if kind not in known:
        raise ValueError(f"the history is of a {kind!r} workflow; this code runs: {', '.join(sorted(known))}")
    try:
        result = await asyncio.wait_for(replayer().replay_workflow(history, raise_on_replay_failure=False), REPLAY_TIMEOUT_S)
    except TimeoutError:
        raise ValueError(f"the replay did not finish within {REPLAY_TIMEOUT_S}s (a malformed history?)") from None
    error = None if result.replay_failure is None else str(result.replay_failure)
    return ReplayReport(workflow_id=workflow_id, events=len(history.events), ok=error is None, error=error)


def registered_types() -> set[str]:
    """The workflow type names the worker runs (and so the replayer accepts)."""
    return {workflow_type_name(wf) for wf in WORKFLOWS}
