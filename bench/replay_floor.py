"""The Python SDK's own replay floor: what one process can replay when the workflow does nothing of ours.

A bare workflow with the committed full-lifecycle ticket's shape (the same number of workflow tasks, each started
by a timer, with an activity and a search-attribute upsert along the way) is run once on the time-skipping test
server; its history is then replayed N times by one `Replayer` (one replay worker for all of them), with the SDK's
default data converter (no codec) and with and without the sandbox. The same run replays the ticket's committed
history the same way (`audit replay`'s path, codec included, decision check off), so the figures are ratios from
one run on one host. If the bare workflow stays below `replay_per_s`'s target, no change to our code can reach it
with the SDK's replayer. `python -m bench.replay_floor [N]` prints the figures and writes
bench/results/replay_floor.json."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowHistory
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer, UnsandboxedWorkflowRunner, Worker

from bench.bare_workflow import BareTicketShape, bare_step

ROOT = Path(__file__).resolve().parents[1]
TICKET_HISTORY = ROOT / "tests/replay/histories/full_lifecycle.json"
OUT = ROOT / "bench/results/replay_floor.json"


def workflow_tasks(history: WorkflowHistory) -> int:
    return sum(1 for e in history.events if e.event_type == 7)  # EVENT_TYPE_WORKFLOW_TASK_COMPLETED


async def bare_history(tasks: int) -> WorkflowHistory:
    from starter.devstack.devserver import venv_bin

    env = await WorkflowEnvironment.start_time_skipping(test_server_existing_path=venv_bin("temporal-test-server"))
    try:
        async with Worker(env.client, task_queue="floor", workflows=[BareTicketShape], activities=[bare_step]):
            handle = await env.client.start_workflow(BareTicketShape.run, tasks, id=f"floor-{uuid.uuid4()}",
                                                     task_queue="floor")
            await handle.result()
            return await handle.fetch_history()
    finally:
        await env.shutdown()


async def _copies(events: Any, n: int) -> AsyncIterator[WorkflowHistory]:
    for i in range(n):
        yield WorkflowHistory(f"floor-{i}", events)


async def bare_rate(history: WorkflowHistory, n: int, *, sandboxed: bool) -> float:
    runner = {} if sandboxed else {"workflow_runner": UnsandboxedWorkflowRunner()}
    replayer = Replayer(workflows=[BareTicketShape], **runner)  # type: ignore[arg-type]
    await replayer.replay_workflows(_copies(history.events, 3))  # warm
    started = time.perf_counter()
    results = await replayer.replay_workflows(_copies(history.events, n), raise_on_replay_failure=False)
    assert not results.replay_failures, results.replay_failures
    return round(n / (time.perf_counter() - started), 1)


async def ticket_rate(n: int) -> float:
    from bench.replay_modes import _rate

    history = WorkflowHistory.from_json("ticket-bench", json.loads(TICKET_HISTORY.read_text()))
    return await _rate(history.events, n, 1)


async def floor_figures(n: int, tasks: int) -> dict[str, Any]:
    """The bare workflow with `tasks` workflow tasks, replayed n times sandboxed (as ours are) and unsandboxed."""
    bare = await bare_history(tasks)
    sandboxed = await bare_rate(bare, n, sandboxed=True)
    unsandboxed = await bare_rate(bare, n, sandboxed=False)
    return {"replay_floor_workflow_tasks": workflow_tasks(bare), "replay_floor_bare_per_s": sandboxed,
            "replay_floor_bare_unsandboxed_per_s": unsandboxed,
            "replay_floor_ms_per_workflow_task": round(1000 / unsandboxed / workflow_tasks(bare), 3)}


async def main(n: int) -> dict[str, Any]:
    ticket = WorkflowHistory.from_json("ticket-bench", json.loads(TICKET_HISTORY.read_text()))
    out: dict[str, Any] = {"histories": n, "target_per_s": 200, "ticket_events": len(ticket.events),
                           "ticket_workflow_tasks": workflow_tasks(ticket)}
    out["ticket_sandboxed_codec_per_s"] = await ticket_rate(n)
    out.update(await floor_figures(n, workflow_tasks(ticket)))
    return out


if __name__ == "__main__":
    from bench.replay_modes import cli

    cli(main, OUT)
