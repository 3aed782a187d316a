"""The `workflow.patched` route, demonstrated: a change to workflow code that would alter recorded histories is
guarded, so a history recorded before the change replays (old path) while a new run takes the new path; the same
change unguarded breaks the old history's replay. README: "Changing workflow code"."""

from __future__ import annotations

import uuid

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory
from temporalio.testing import WorkflowEnvironment

from starter.runtime.temporal import build_worker, replayer
from tests.replay.patch_demo import PATCH, Before, Patched, Unguarded
from tests.support.workflows import time_skipping_env


async def run_with(env: WorkflowEnvironment, version: type) -> tuple[str, WorkflowHistory]:
    queue = f"patch-demo-{uuid.uuid4().hex[:8]}"
    async with build_worker(env.client, queue, workflows=[version], activities=[], max_cached_workflows=0):
        handle = await env.client.start_workflow(version.run, id=f"demo-{uuid.uuid4().hex[:8]}",  # type: ignore[attr-defined]
                                                 task_queue=queue)
        result = await handle.result()
        return result, await handle.fetch_history()


def timers(history: WorkflowHistory) -> int:
    return sum(e.event_type == EventType.EVENT_TYPE_TIMER_STARTED for e in history.events)


def patch_markers(history: WorkflowHistory) -> list[str]:
    return [e.marker_recorded_event_attributes.marker_name for e in history.events
            if e.HasField("marker_recorded_event_attributes")]


async def test_a_patched_change_replays_old_histories_and_new_runs_take_the_new_path() -> None:
    env = await time_skipping_env()
    try:
        before, old = await run_with(env, Before)
        assert before == "reminded once" and timers(old) == 1 and patch_markers(old) == []

        assert (await replayer([Patched]).replay_workflow(old, raise_on_replay_failure=False)
                ).replay_failure is None, "the guarded change replays the history recorded before it"
        broken = await replayer([Unguarded]).replay_workflow(old, raise_on_replay_failure=False)
        assert broken.replay_failure is not None, "unguarded, the same change breaks the recorded history"

        after, new = await run_with(env, Patched)
        assert after == "reminded twice" and timers(new) == 2, "a new run takes the new path"
        assert patch_markers(new) == ["core_patch"] and PATCH.encode() in new.events[
            next(i for i, e in enumerate(new.events) if e.HasField("marker_recorded_event_attributes"))
        ].SerializeToString(), "and records the patch, so its own replay takes the new path too"
        assert (await replayer([Patched]).replay_workflow(new, raise_on_replay_failure=False)
                ).replay_failure is None
    finally:
        await env.shutdown()
