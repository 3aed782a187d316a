"""The auditor's replay, measured: full-lifecycle ticket histories (opened, acknowledged, escalated, resolved, closed,
from the A/B phase) replayed against the code by `starter.runtime.replay.replay_all`, the function behind
`escalation audit replay`.

Three figures, in one run: replays per second in one process with the histories already fetched (the data converter,
i.e. the codec, included: it decodes every payload the workflow reads); the same with each history fetched from the
server as the replay goes; and with one process per core, each replaying its share (fetch excluded). Beside them,
the SDK's own floor (bench.replay_floor): a bare workflow of the same shape, replayed as many times."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from temporalio.api.history.v1 import History
from temporalio.client import Client, WorkflowHistory

from bench.replay_floor import floor_figures, workflow_tasks

REPLAY_TARGET_PER_S = 200.0


async def _sourced(histories: list[WorkflowHistory]) -> AsyncIterator[Any]:
    for h in histories:
        yield "bench", h


async def _fetched(client: Client, ids: list[str]) -> AsyncIterator[Any]:
    for wid in ids:
        yield "server", await client.get_workflow_handle(wid).fetch_history()


def _replay_share(share: list[tuple[str, bytes]]) -> tuple[int, int, float]:
    """In a worker process: (passed, total, seconds) for its share of the histories (serialized protobuf)."""
    from starter.runtime.replay import replay_all

    histories = [WorkflowHistory(wid, list(History.FromString(raw).events)) for wid, raw in share]
    started = time.perf_counter()
    report = asyncio.run(replay_all(_sourced(histories), decisions=False))
    return report.passed, report.histories, time.perf_counter() - started


def _warm() -> int:
    """Imports the SDK, the workflows and the replayer in a pool process before the clock starts."""
    from starter.runtime.replay import registered_types
    from starter.runtime.temporal import replayer

    replayer()
    return len(registered_types())


async def run_replay_bench(client: Client, ids: list[str], log: Callable[[str], None]) -> dict[str, Any]:
    from starter.runtime.replay import decisions_of, replay_all

    started = time.perf_counter()
    histories = [await client.get_workflow_handle(wid).fetch_history() for wid in ids]
    fetch_s = time.perf_counter() - started
    events = sum(len(h.events) for h in histories)
    log(f"replay: {len(histories)} full-lifecycle histories fetched ({events} events) in {fetch_s:.1f}s")

    await replay_all(_sourced(histories[:5]), decisions=False)  # warm: the sandbox's first import of the workflow modules
    # replay alone (the decision check, `audit replay`'s default, is measured by neither target)
    cpu = time.process_time()
    one = await replay_all(_sourced(histories), decisions=False)
    cpu_ms = round((time.process_time() - cpu) * 1000 / max(1, one.histories), 2)
    log(f"replay, one process, fetched before: {one.histories} in {one.seconds:.1f}s = {one.per_second}/s "
        f"({one.passed} passed)")
    # the decision check alone (the pure core recomputing every decision from the recorded inputs), for comparison
    started = time.perf_counter()
    checks = [await decisions_of(h) for h in histories]
    decisions_per_s = round(len(histories) / (time.perf_counter() - started), 1)
    clean = sum(1 for c in checks if c.clean)
    log(f"decision check alone, one process: {decisions_per_s}/s ({clean} clean)")
    with_fetch = await replay_all(_fetched(client, ids), decisions=False)
    log(f"replay, one process, fetch included: {with_fetch.per_second}/s ({with_fetch.passed} passed)")

    cores = os.cpu_count() or 1
    shares: list[list[tuple[str, bytes]]] = [[] for _ in range(cores)]
    for i, h in enumerate(histories):
        shares[i % cores].append((h.workflow_id, History(events=h.events).SerializeToString()))
    loop = asyncio.get_running_loop()
    # spawned, not forked: the SDK's runtime refuses to be used across a fork
    with ProcessPoolExecutor(cores, mp_context=multiprocessing.get_context("spawn")) as pool:
        await asyncio.gather(*(loop.run_in_executor(pool, _warm) for _ in range(cores)))
        started = time.perf_counter()
        parts = await asyncio.gather(*(loop.run_in_executor(pool, _replay_share, s) for s in shares))
        per_core_s = time.perf_counter() - started
    passed = sum(p for p, _, _ in parts)
    per_core_rate = round(len(histories) / per_core_s, 1)
    log(f"replay, {cores} processes: {per_core_rate}/s ({passed} passed)")
    floor = await floor_figures(len(histories), round(sum(workflow_tasks(h) for h in histories) / len(histories)))
    log(f"replay floor, the SDK alone (a bare workflow of {floor['replay_floor_workflow_tasks']} workflow tasks): "
        f"{floor['replay_floor_bare_per_s']}/s sandboxed, {floor['replay_floor_bare_unsandboxed_per_s']}/s not")
    return {"replay_histories": len(histories), "replay_events_per_history": round(events / len(histories), 1),
            "replay_per_s": one.per_second, "replay_per_s_with_fetch": with_fetch.per_second,
            "replay_per_s_process_per_core": per_core_rate, "replay_processes": cores,
            "replay_passed": {"one_process": one.passed, "with_fetch": with_fetch.passed, "per_core": passed},
            "replay_fetch_s": round(fetch_s, 2), "replay_cpu_ms_per_history": cpu_ms,
            "decisions_per_s": decisions_per_s, "decisions_clean": clean, **floor}


def replay_targets(r: dict[str, Any]) -> dict[str, Any]:
    replayed = r["replay_passed"]["one_process"] == r["replay_histories"]
    target: dict[str, Any] = {
        "target": f">= {REPLAY_TARGET_PER_S:.0f} full-lifecycle histories/s, one process",
        "met": bool(r["replay_per_s"] >= REPLAY_TARGET_PER_S and replayed)}
    if not replayed:
        target["why"] = f"{r['replay_histories'] - r['replay_passed']['one_process']} histories did not replay"
    elif not target["met"] and "replay_floor_bare_unsandboxed_per_s" in r \
            and r["replay_floor_bare_unsandboxed_per_s"] < REPLAY_TARGET_PER_S:
        target["why"] = (f"the SDK's replayer alone does {r['replay_floor_bare_unsandboxed_per_s']}/s unsandboxed "
                         f"({r['replay_floor_bare_per_s']}/s sandboxed) on a bare workflow of the same shape, "
                         "below the target")
    return {"replay_per_s": target}
