"""A history that no longer matches the code is reported as a divergence that names the event, never as bad input."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from starter.client.errors import HistoryDiverged
from starter.runtime.replay import replay

SEED = Path(__file__).parent / "histories" / "seed_escalation.json"


def seed() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SEED.read_text(encoding="utf-8"))
    return data


def first(data: dict[str, Any], event_type: str) -> dict[str, Any]:
    return next(e for e in data["events"] if e["eventType"] == event_type)


async def test_an_unchanged_history_replays() -> None:
    report = await replay(seed(), "seed")
    assert report.ok and report.events == len(seed()["events"])


async def test_a_renamed_activity_is_a_divergence_at_its_scheduling_event() -> None:
    data = seed()
    scheduled = first(data, "EVENT_TYPE_ACTIVITY_TASK_SCHEDULED")
    scheduled["activityTaskScheduledEventAttributes"]["activityType"]["name"] = "notify_v0"
    with pytest.raises(HistoryDiverged) as info:
        await replay(data, "seed")
    assert f"event {scheduled['eventId']} (ActivityTaskScheduled)" in info.value.message
    assert info.value.code == "history_diverged"


async def test_an_update_the_code_does_not_have_is_a_divergence_at_its_acceptance() -> None:
    data = copy.deepcopy(seed())
    accepted = first(data, "EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED")
    accepted["workflowExecutionUpdateAcceptedEventAttributes"]["acceptedRequest"]["input"]["name"] = "acknowledge_v0"
    with pytest.raises(HistoryDiverged, match=rf"event {accepted['eventId']} \(WorkflowExecutionUpdateAccepted\)"):
        await replay(data, "seed")


async def test_a_malformed_export_is_bad_input_not_a_divergence() -> None:
    with pytest.raises(ValueError, match="not a Temporal history export"):
        await replay({"events": "nope"}, "seed")
