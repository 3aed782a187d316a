"""Committed histories replay against the current code: a change that alters replay must be patched."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory

from starter.runtime.temporal import replayer as make_replayer

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


def test_histories_are_committed() -> None:
    assert len(HISTORIES) >= 2, "tests/replay/histories/*.json are missing; run python -m tests.replay.make_histories"


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_replay(path: Path) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    history = WorkflowHistory.from_json(path.stem, data)
    kinds = {e.WhichOneof("attributes") for e in history.events}
    ends = {"workflow_execution_completed_event_attributes", "workflow_execution_continued_as_new_event_attributes"}
    assert kinds & ends, "a whole run: completed, or continued as new"
    replayer = make_replayer()
    await replayer.replay_workflow(history)


# The time-zone rules running tickets were computed with. A newer tzdata can move a zone's offsets, and with
# them due times inside running tickets' histories (a replay would then diverge). Bumping the package is
# therefore a deliberate change: check which calendars' zones changed (compare offsets of the old and new
# package over the open tickets' horizon), guard the switch with workflow.patched if any policy in use has
# one, and only then update this constant.
REVIEWED_TZDATA = "2026f"


def test_the_time_zone_rules_are_the_reviewed_ones() -> None:
    from workflows.common.calendar import TZDATA_VERSION

    assert TZDATA_VERSION == REVIEWED_TZDATA, (
        f"tzdata changed from {REVIEWED_TZDATA} to {TZDATA_VERSION}: review it as described above this test")
