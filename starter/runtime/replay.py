"""The auditor's replay: run a recorded history against the current code.

A history that replays without divergence shows that the code in hand makes
exactly the decisions the recorded ticket made (the policy snapshot is in the
history's input, so the policy of that day is what the replay uses).
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

from google.protobuf.json_format import MessageToDict
from pydantic import BaseModel
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowHistory

from starter.client.errors import HistoryDiverged
from starter.runtime.sdk_private import workflow_type_name
from starter.runtime.temporal import WORKFLOWS, replayer

REPLAY_TIMEOUT_S = 120


class ReplayReport(BaseModel):
    """A replay without divergence (a divergence raises HistoryDiverged, which names the event)."""

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
    if result.replay_failure is not None:
        raise HistoryDiverged(diverged_at(history, str(result.replay_failure)))
    return ReplayReport(workflow_id=workflow_id, events=len(history.events), ok=True)


# The SDK names the event when it can ("... for event HistoryEvent(id: 137, WorkflowExecutionUpdateAccepted)");
# otherwise it names the values that differ ("scheduled event 'notify_v0' does not match ... 'notify'").
_NAMED_EVENT = re.compile(r"HistoryEvent\(id: (\d+), (\w+)\)")
_QUOTED = re.compile(r"'([^'\s]{1,200})'")
_SDK_MESSAGE = re.compile(r'message: "(.*?)", source')


def diverged_at(history: WorkflowHistory, failure: str) -> str:
    """What an auditor needs from a divergence: the workflow, the event (id and type) and the SDK's reason."""
    reason = m.group(1) if (m := _SDK_MESSAGE.search(failure)) else failure
    named = _NAMED_EVENT.search(reason)
    if named:
        where = f"event {named.group(1)} ({named.group(2)})"
    elif (event := _event_holding(history, _QUOTED.findall(reason))) is not None:
        where = f"event {event.event_id} ({event_type_name(event)})"
    else:
        where = "an event the SDK did not name"
    return f"the history of {history.workflow_id} diverges from this code at {where}: {reason}"


def _event_holding(history: WorkflowHistory, values: list[str]) -> HistoryEvent | None:
    """The first event that carries the most specific of `values` (the one fewest events carry)."""
    best: list[HistoryEvent] = []
    for value in values:
        needle = json.dumps(value)
        holding = [e for e in history.events if needle in json.dumps(MessageToDict(e))]
        if holding and (not best or len(holding) < len(best)):
            best = holding
    return best[0] if best else None


def event_type_name(event: HistoryEvent) -> str:
    """`ActivityTaskScheduled` for EVENT_TYPE_ACTIVITY_TASK_SCHEDULED (the SDK's spelling in its messages)."""
    words = EventType.Name(event.event_type).removeprefix("EVENT_TYPE_").split("_")
    return "".join(w.capitalize() for w in words)


def registered_types() -> set[str]:
    """The workflow type names the worker runs (and so the replayer accepts)."""
    return {workflow_type_name(wf) for wf in WORKFLOWS}
