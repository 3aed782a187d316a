"""The Python SDK's own replay floor: what one process can replay when the workflow does nothing of ours.

A bare workflow shaped like a ticket's history (the same number of workflow tasks, made the same way: one to start,
then one per activity completed, per Update and per Signal, with a dozen search-attribute upserts) is run once on
the time-skipping test server; its history is then replayed N times by one `Replayer` (one replay worker for all of
them), built as `audit replay`'s is (starter.runtime.temporal.replayer: the project's sandbox with the module
passed through, its data converter and codec, its replay runtime), and once without the sandbox. Wall time and
this process's CPU time are both reported, per history. `python -m bench.replay_floor [N]` also replays the
ticket's committed history the same way (codec included, decision check off) and runs its decision check alone, so
the figures are ratios from one run on one host; it prints them and writes bench/results/replay_floor.json."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowHistory
from temporalio.testing import WorkflowEnvironment

from bench.bare_workflow import BareTicketShape, Shape, bare_step
from starter.runtime.temporal import workflow_runner

ROOT = Path(__file__).resolve().parents[1]
TICKET_HISTORY = ROOT / "tests/replay/histories/full_lifecycle.json"
OUT = ROOT / "bench/results/replay_floor.json"


def workflow_tasks(history: WorkflowHistory) -> int:
    return sum(1 for e in history.events if e.event_type == 7)  # EVENT_TYPE_WORKFLOW_TASK_COMPLETED


async def bare_history(tasks: int) -> WorkflowHistory:
    from starter.devstack.devserver import venv_bin
    from starter.runtime.temporal import build_worker, data_converter

    shape = Shape.of(tasks)
    env = await WorkflowEnvironment.start_time_skipping(test_server_existing_path=venv_bin("temporal-test-server"),
                                                        data_converter=data_converter())
    try:
        async with build_worker(env.client, "floor", workflows=[BareTicketShape], activities=[bare_step],
                                workflow_runner=workflow_runner(also=("bench.bare_workflow",))):
            handle = await env.client.start_workflow(BareTicketShape.run, shape, id=f"floor-{uuid.uuid4()}",
                                                     task_queue="floor")
            while not await handle.query(BareTicketShape.is_ready):  # each action its own workflow task, after them
                await asyncio.sleep(0.05)
            for i in range(shape.actions):
                await handle.execute_update(BareTicketShape.act, i)
            for _ in range(shape.signals):
                await handle.signal(BareTicketShape.message, "a customer's reply")
            await handle.result()
            return await handle.fetch_history()
    finally:
        await env.shutdown()


async def _copies(events: Any, n: int) -> AsyncIterator[WorkflowHistory]:
    for i in range(n):
        yield WorkflowHistory(f"floor-{i}", events)


async def bare_rate(history: WorkflowHistory, n: int, *, sandboxed: bool) -> tuple[float, float]:
    """(replays per second, CPU ms of this process per replay)."""
    from starter.runtime.temporal import replayer

    bare = replayer([BareTicketShape], also=("bench.bare_workflow",), sandboxed=sandboxed)
    await bare.replay_workflows(_copies(history.events, 3))  # warm
    started, cpu = time.perf_counter(), time.process_time()
    results = await bare.replay_workflows(_copies(history.events, n), raise_on_replay_failure=False)
    assert not results.replay_failures, results.replay_failures
    return round(n / (time.perf_counter() - started), 1), round((time.process_time() - cpu) * 1000 / n, 2)


async def ticket_rate(n: int) -> float:
    from bench.replay_modes import _rate

    history = WorkflowHistory.from_json("ticket-bench", json.loads(TICKET_HISTORY.read_text()))
    return await _rate(history.events, n, 1)


async def decisions_rate(history: WorkflowHistory, n: int) -> float:
    """The decision check alone (the pure core recomputing the ticket's decisions), n times."""
    from starter.runtime.replay import decisions_of

    assert (await decisions_of(history)).clean
    started = time.perf_counter()
    for _ in range(n):
        await decisions_of(history)
    return round(n / (time.perf_counter() - started), 1)


async def floor_figures(n: int, tasks: int) -> dict[str, Any]:
    """The bare workflow with `tasks` workflow tasks, replayed n times sandboxed (as ours are) and unsandboxed."""
    bare = await bare_history(tasks)
    sandboxed, sandboxed_cpu = await bare_rate(bare, n, sandboxed=True)
    unsandboxed, unsandboxed_cpu = await bare_rate(bare, n, sandboxed=False)
    return {"replay_floor_workflow_tasks": workflow_tasks(bare), "replay_floor_shape": Shape.of(tasks).as_dict(),
            "replay_floor_bare_per_s": sandboxed, "replay_floor_bare_unsandboxed_per_s": unsandboxed,
            "replay_floor_cpu_ms_per_history": sandboxed_cpu,
            "replay_floor_unsandboxed_cpu_ms_per_history": unsandboxed_cpu}


async def main(n: int) -> dict[str, Any]:
    ticket = WorkflowHistory.from_json("ticket-bench", json.loads(TICKET_HISTORY.read_text()))
    out: dict[str, Any] = {"histories": n, "target_per_s": 200, "ticket_events": len(ticket.events),
                           "ticket_workflow_tasks": workflow_tasks(ticket)}
    out["ticket_sandboxed_codec_per_s"] = await ticket_rate(n)
    out["ticket_decisions_per_s"] = await decisions_rate(ticket, n)
    out.update(await floor_figures(n, workflow_tasks(ticket)))
    return out


if __name__ == "__main__":
    from bench.replay_modes import cli

    cli(main, OUT)
