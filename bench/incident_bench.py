"""The incident phase of `make bench`: one status update to N linked tickets, against bare signal-and-activity round
trips on the same server in the same run.

- Baseline: N bare workflows (bench/baseline.py's SignalRoundTrip) each wait for one Signal, then run one no-op
  activity and complete; the bench Signals them all, `FANOUT_CONCURRENCY` at a time (the fan-out activity's
  default), and waits for every one to complete: `signal_round_trips_per_s`.
- Incident: a declared incident with N long-lived tickets linked (LINKS_PER_REQUEST a request), its "linked"
  notices told; then the commander posts one update. `incident_fanout_per_s`: N / (the last customer's message in
  the outbox - the update's time); `incident_update_p50_s/p99_s/max_s`: per ticket, its timeline entry for the
  update - the update's time (both workflow times); `incident_history_events`: the incident's history length.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from temporalio.client import Client

from bench.baseline import BASELINE_SIGNAL, SignalRoundTrip
from bench.policy import LONG_PRIORITY
from bench.stats import quantile
from starter.client import EscalationClient, Principal
from workflows.incident import incident_workflow_id
from workflows.incident.state import LINKS_PER_REQUEST
from workflows.ticket import Ticket

FANOUT_RATIO_TARGET = 0.5
FANOUT_CONCURRENCY = 20  # activities/incidents.py's default: Signals in flight at once
HISTORY_LIMIT = 10_240  # Temporal's history-length warning
BENCH = Principal.operator("agent:bench")


async def _bounded(n: int, concurrency: int, one: Callable[[int], Awaitable[None]]) -> None:
    sem = asyncio.Semaphore(concurrency)

    async def run(i: int) -> None:
        async with sem:
            await one(i)
    await asyncio.gather(*(run(i) for i in range(n)))


async def signal_round_trips(client: Client, task_queue: str, n: int) -> dict[str, Any]:
    run = uuid.uuid4().hex[:6]
    handles = []

    async def start(i: int) -> None:
        handles.append(await client.start_workflow(SignalRoundTrip.run, id=f"bench-signal-{run}-{i}",
                                                   task_queue=task_queue))
    await _bounded(n, 32, start)
    await asyncio.sleep(2)  # every one has run its first task and waits for its Signal
    t0 = time.perf_counter()
    await _bounded(n, FANOUT_CONCURRENCY, lambda i: handles[i].signal(BASELINE_SIGNAL, "told"))
    await _bounded(n, 200, lambda i: handles[i].result())
    seconds = time.perf_counter() - t0
    return {"signal_round_trips": n, "signal_round_trips_s": round(seconds, 3),
            "signal_round_trips_per_s": round(n / seconds, 1)}


async def incident_fanout(ec: EscalationClient, client: Client, told_at: Callable[[str], datetime | None], n: int,
                          log: Callable[[str], None]) -> dict[str, Any]:
    service = f"bench-outage-{uuid.uuid4().hex[:6]}"
    await ec.declare_incident(service, "Bench outage", "SEV2", "agent:bench", principal=BENCH)
    ids = [f"INC{service[-6:]}-{i}" for i in range(n)]

    async def open_one(i: int) -> None:
        await ec.open(Ticket(id=ids[i], subject="bench outage", customer_id="bench", priority=LONG_PRIORITY,
                             customer_contact=f"viewer{i}@example.com", opened_at=datetime.now(UTC)),
                      wait_for_worker=False)
    t0 = time.perf_counter()
    await _bounded(n, 32, open_one)
    for start in range(0, n, LINKS_PER_REQUEST):
        await ec.link_to_incident(service, ids[start:start + LINKS_PER_REQUEST], principal=BENCH)
    await _until(lambda: _told(ec, service, n), 300, "every ticket was told it is linked")
    log(f"incident: {n} tickets opened and linked in {time.perf_counter() - t0:.1f}s; posting one update")

    update = await ec.post_incident_update(service, "We are restoring the service.", principal=BENCH)
    await _until(lambda: _all_messaged(ids, told_at), 600, "every customer got the update")
    last = max(t for i in ids if (t := told_at(i)) is not None)
    fanout_s = (last - update.at).total_seconds()
    latencies = sorted(await _timeline_latencies(ec, ids, update.at))
    events = (await client.get_workflow_handle(incident_workflow_id(service)).describe()
              ).raw_description.workflow_execution_info.history_length
    return {"incident_tickets": n, "incident_fanout_s": round(fanout_s, 3),
            "incident_fanout_per_s": round(n / fanout_s, 1),
            "incident_update_p50_s": round(quantile(latencies, 0.5), 3),
            "incident_update_p99_s": round(quantile(latencies, 0.99), 3),
            "incident_update_max_s": round(latencies[-1], 3),
            "incident_history_events": events}


async def run_incident_bench(ec: EscalationClient, client: Client, baseline_queue: str,
                             told_at: Callable[[str], datetime | None], n: int,
                             log: Callable[[str], None]) -> dict[str, Any]:
    log(f"incident: {n} bare signal-and-activity round trips (the baseline)")
    result = await signal_round_trips(client, baseline_queue, n)
    log(f"incident: baseline {result['signal_round_trips_per_s']}/s")
    result.update(await incident_fanout(ec, client, told_at, n, log))
    result["incident_fanout_ratio"] = round(result["incident_fanout_per_s"] / result["signal_round_trips_per_s"], 3)
    log(f"incident: fan-out {result['incident_fanout_per_s']}/s = {result['incident_fanout_ratio']} x baseline; "
        f"update p99 {result['incident_update_p99_s']}s max {result['incident_update_max_s']}s; "
        f"{result['incident_history_events']} history events")
    return result


def incident_targets(r: dict[str, Any]) -> dict[str, Any]:
    ratio = r.get("incident_fanout_ratio", float("nan"))
    events = r.get("incident_history_events", HISTORY_LIMIT)
    return {"incident_fanout_ratio": {"target": f">= {FANOUT_RATIO_TARGET} x bare signal round trips",
                                      "met": bool(ratio >= FANOUT_RATIO_TARGET)},
            "incident_history_events": {"target": f"< {HISTORY_LIMIT}", "met": bool(events < HISTORY_LIMIT)}}


async def _told(ec: EscalationClient, service: str, n: int) -> bool:
    return (await ec.incident(service, principal=BENCH)).told >= n


def _all_messaged(ids: list[str], told_at: Callable[[str], datetime | None]) -> bool:
    return all(told_at(i) is not None for i in ids)


async def _timeline_latencies(ec: EscalationClient, ids: list[str], posted: datetime) -> list[float]:
    out: list[float] = []

    async def one(i: int) -> None:
        state = await ec.state(ids[i], principal=BENCH)
        out.extend((e.at - posted).total_seconds() for e in state.timeline if e.action == "incident_update")
    await _bounded(len(ids), 20, one)
    return out


async def _until(check: Callable[[], Any], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not await _maybe_await(check()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"not within {timeout_s:g}s: {what}")
        await asyncio.sleep(0.2)


async def _maybe_await(value: Any) -> Any:
    return await value if asyncio.iscoroutine(value) else value
