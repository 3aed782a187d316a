"""Committed histories replay against the current code: a change that alters replay must be patched."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from worker import workflow_runner
from workflows.ticket import TicketWorkflow

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


def test_histories_are_committed() -> None:
    assert len(HISTORIES) >= 2, "tests/histories/*.json are missing; run python -m tests.make_histories"


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_replay(path: Path) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    history = WorkflowHistory.from_json(path.stem, data)
    kinds = {e.WhichOneof("attributes") for e in history.events}
    assert "workflow_execution_completed_event_attributes" in kinds, "a history of a whole ticket life"
    replayer = Replayer(workflows=[TicketWorkflow], data_converter=pydantic_data_converter, workflow_runner=workflow_runner())
    await replayer.replay_workflow(history)
