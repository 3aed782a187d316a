"""`make bench`: throughput, SLA-breach latency and memory, in one run on a fresh dev server.

Phases, all against one fresh stack (starter/devstack/stack.py, as `make run` starts it: the dev
server with a SQLite file in a temp dir, WAL) with two worker processes (`python worker.py` for
tickets, and `python -m bench.baseline` for the bare baseline workflow):

1. Lifecycle vs baseline: batches of lifecycles at a fixed client concurrency, baseline and
   lifecycle alternating A B A B so the server's drift cancels. A lifecycle is open,
   acknowledge, escalate, resolve and close (the bench policy's reopen window is 0 s, so
   the resolved ticket closes itself), through `EscalationClient`, awaiting completion.
   The baseline (bench/baseline.py) does the same Temporal operations without business logic.
2. Open N long-lived tickets (P4: day-long targets), paced by how many have not yet
   written their `opened` notification, and wait until all of them are idle (every
   `opened` line in the outbox and TicketStatus='new' visible for all N). Unless --no-cold, the last
   `churn` of them (more than the worker's cache holds) are opened after the cold cohort (bench/sizing.py).
3. Memory: VmRSS of the worker process and of the dev server (its process tree), and the SQLite bytes, before and
   after the N were opened: server KB and SQLite bytes per open ticket.
4. Breach stream: while those tickets are open, open tickets at a fixed rate whose
   acknowledge deadline is `--breach-after` (30 s); per ticket, latency = `recorded_at` of its
   escalation line in the outbox minus its `due_at`, read by tailing the outbox file. Their deadlines fall due
   alongside the cold cohort's, so lateness in the worker's cache and out of it is reported side by side.
5. The HTTP API bench (bench/api_bench.py) against the stack's API, unless --no-api.
6. The incident fan-out (bench/incident_bench.py): one update to `--incident-tickets` linked tickets against bare
   signal-and-activity round trips, unless --incident-tickets 0.

`--smtp` delivers mail through the embedded SMTP server (its own process; its CPU per mail is reported).

`--worker-cmd bench/gc_worker.py` runs the same worker with its GC pauses logged and summarised.

Prints a table and writes bench/results/latest.json (or --out).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import random
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import temporalio
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy

from bench import memory_per_ticket
from bench.baseline import run_baseline_lifecycle
from bench.incident_bench import incident_targets, run_incident_bench
from bench.metrics_bench import run_metrics_bench
from bench.policy import BREACH_PRIORITY, LIFECYCLE_PRIORITY, LONG_PRIORITY, bench_policy
from bench.procfs import tree_cpu_s, tree_rss_mb
from bench.recovery import recovery_targets, run_recovery
from bench.replay_bench import replay_targets, run_replay_bench
from bench.sizing import Touches, churn_count, classify, cold_target_s, per_ticket, sqlite_bytes
from bench.stats import quantile
from starter.client import EscalationClient, Principal, workflow_id
from starter.devstack.stack import Child, Stack
from starter.runtime.codec import ephemeral_keys
from starter.runtime.settings import Settings
from starter.runtime.temporal import connect
from workflows import ticket as core
from workflows.common.policy import Policy
from workflows.ticket import Ticket
from workflows.ticket.workflow import TicketInput, TicketWorkflow

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "bench" / "results" / "latest.json"
TICKET_QUEUE = "bench-tickets"
BASELINE_QUEUE = "bench-baseline"
BREACH_P99_TARGET_S = 1.0
BREACH_TARGET_N = 10_000
RATIO_TARGET = 0.8
WORKER_RSS_TARGET_MB = 500  # at the shipped cache, whatever N
SERVER_KB_PER_TICKET_TARGET = 20.0  # server memory per open ticket above its memory before the N were opened
_T0 = time.monotonic()


def log(msg: str) -> None:
    print(f"[{time.monotonic() - _T0:7.1f}s] {msg}", flush=True)


# ----- small helpers ----------------------------------------------------------------


def git_commit() -> dict[str, Any]:
    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    return {"commit": git("rev-parse", "HEAD") or None, "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}


def _ts(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


class OutboxTail:
    """Follows the JSONL outbox the worker appends to; never waits on workflows."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.rest = b""
        self.kinds: Counter[str] = Counter()
        self.opened: Counter[str] = Counter()  # by ticket id prefix (before the first '-')
        self.escalations: dict[str, dict[str, Any]] = {}  # ticket id -> {due_at, recorded_at, latency_s}
        self.breaches: dict[str, float] = {}
        self.incident_updates: dict[str, datetime] = {}  # ticket id -> when its customer got the incident's update
        self.seen: set[str] = set()
        self.touches = Touches()  # every line: which runs had work when (bench/sizing.py: in the cache or not)

    def poll(self) -> None:
        try:
            with self.path.open("rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return
        self.offset += len(data)
        *lines, self.rest = (self.rest + data).split(b"\n")
        for raw in lines:
            if raw.strip():
                self._line(json.loads(raw))

    def _line(self, rec: dict[str, Any]) -> None:
        """One line per notification counts: with real delivery a notification is one line per recipient and
        channel (`notification_key`), and the first says when it went out."""
        notification = rec.get("notification_key", rec["key"])
        if notification in self.seen:
            return
        self.seen.add(notification)
        kind, tid = rec["kind"], rec["ticket_id"]
        self.kinds[kind] += 1
        if kind == "opened":
            self.opened[tid.split("-", 1)[0]] += 1
        due, at = _ts(rec.get("due_at")), _ts(rec["recorded_at"])
        if at is not None:
            self.touches.add(at, tid)
        if kind == "incident_update" and at is not None:
            self.incident_updates.setdefault(tid, at)
        if due is None or at is None:
            return
        if kind == "escalation":
            self.escalations[tid] = {"due_at": due, "recorded_at": at, "latency_s": (at - due).total_seconds()}
        elif kind == "breach":
            self.breaches[tid] = (at - due).total_seconds()

    async def follow(self, stop: asyncio.Event, interval: float = 0.1) -> None:
        while not stop.is_set():
            self.poll()
            await asyncio.sleep(interval)
        self.poll()


# ----- phase 1: lifecycle vs baseline -------------------------------------------------


async def run_batch(kind: str, n: int, concurrency: int, one: Callable[[int], Awaitable[None]],
                    pids: dict[str, int] | None = None) -> dict[str, Any]:
    todo = iter(range(n))
    done = 0
    errors: Counter[str] = Counter()

    async def lane() -> None:
        nonlocal done
        for i in todo:
            try:
                await one(i)
                done += 1
            except Exception as exc:
                errors[f"{type(exc).__name__}: {str(exc)[:120]}"] += 1

    pids = pids or {}
    def cpu_s(kind: str, pid: int) -> float:
        return tree_cpu_s(pid, children=kind != "client")  # the servers and workers are this process's children

    cpu0 = {k: cpu_s(k, p) for k, p in pids.items()}
    t0 = time.perf_counter()
    await asyncio.gather(*(lane() for _ in range(concurrency)))
    seconds = time.perf_counter() - t0
    cpu = {k: round((cpu_s(k, p) - cpu0[k]) * 1000 / max(done, 1), 1) for k, p in pids.items()}
    return {"kind": kind, "count": done, "seconds": round(seconds, 3), "per_s": round(done / seconds, 3),
            "cpu_ms_per_item": cpu, "errors": dict(errors)}


BENCH = Principal.operator("agent:bench")  # every permission: the bench measures the engine, not the roles


async def lifecycle(ec: EscalationClient, ticket_id: str) -> None:
    ticket = Ticket(id=ticket_id, subject="bench lifecycle", customer_id="bench", priority=LIFECYCLE_PRIORITY,
                    opened_at=datetime.now(UTC))
    await ec.open(ticket)
    await ec.perform(ticket_id, core.Acknowledge(actor="agent:bench"), principal=BENCH)
    await ec.perform(ticket_id, core.Escalate(actor="agent:bench", reason="bench"), principal=BENCH)
    await ec.perform(ticket_id, core.Resolve(actor="agent:bench", summary="bench"), principal=BENCH)
    await ec.handle(ticket_id).result()  # closed by itself: reopen window 0 s


async def history_shape(client: Client, wf_id: str) -> dict[str, int]:
    history = await client.get_workflow_handle(wf_id).fetch_history()
    shape = Counter(EventType.Name(e.event_type).removeprefix("EVENT_TYPE_") for e in history.events)
    keep = ("ACTIVITY_TASK_SCHEDULED", "TIMER_STARTED", "TIMER_CANCELED", "WORKFLOW_EXECUTION_UPDATE_ACCEPTED",
            "UPSERT_WORKFLOW_SEARCH_ATTRIBUTES", "WORKFLOW_TASK_COMPLETED")
    out = {k: shape.get(k, 0) for k in keep}
    out["LOCAL_ACTIVITIES"] = sum(1 for e in history.events if e.HasField("marker_recorded_event_attributes")
                                  and e.marker_recorded_event_attributes.marker_name == "core_local_activity")
    out["events"] = len(history.events)
    out["history_bytes"] = history.to_json().__len__()
    return out


async def phase_ab(args: argparse.Namespace, client: Client, ec: EscalationClient,
                   pids: dict[str, dict[str, int]]) -> dict[str, Any]:
    def base_one(prefix: str) -> Callable[[int], Awaitable[None]]:
        return lambda i: run_baseline_lifecycle(client, BASELINE_QUEUE, f"{prefix}-{i}")

    def life_one(prefix: str) -> Callable[[int], Awaitable[None]]:
        return lambda i: lifecycle(ec, f"{prefix}-{i}")

    warm = max(args.concurrency, 10)
    log(f"A/B warm-up: {warm} baseline + {warm} lifecycles")
    await run_batch("baseline", warm, args.concurrency, base_one("Wb"))
    await run_batch("lifecycle", warm, args.concurrency, life_one("Wl"))
    batches: list[dict[str, Any]] = []
    for r in range(args.rounds):
        for kind, make in (("baseline", base_one), ("lifecycle", life_one)):
            b = await run_batch(kind, args.batch, args.concurrency, make(f"{kind[0].upper()}{r}"), pids[kind])
            b["round"] = r
            batches.append(b)
            log(f"A/B round {r + 1}/{args.rounds} {kind:9s}: {b['count']} in {b['seconds']:.1f}s = {b['per_s']:.2f}/s"
                f"  CPU ms per lifecycle {b['cpu_ms_per_item']}" + (f"  errors {b['errors']}" if b["errors"] else ""))

    def rate(kind: str) -> float:
        bs = [b for b in batches if b["kind"] == kind]
        return sum(b["count"] for b in bs) / sum(b["seconds"] for b in bs)

    baseline, life = rate("baseline"), rate("lifecycle")
    paired = [next(b for b in batches if b["round"] == r and b["kind"] == "lifecycle")["per_s"]
              / next(b for b in batches if b["round"] == r and b["kind"] == "baseline")["per_s"]
              for r in range(args.rounds)]
    def cpu(kind: str) -> dict[str, float]:
        bs = [b for b in batches if b["kind"] == kind]
        return {k: round(sum(b["cpu_ms_per_item"][k] * b["count"] for b in bs) / sum(b["count"] for b in bs), 1)
                for k in bs[0]["cpu_ms_per_item"]}

    shapes = {"baseline": await history_shape(client, "baseline-B0-0"),
              "lifecycle": await history_shape(client, workflow_id("L0-0"))}
    return {"baseline_per_s": round(baseline, 3), "lifecycle_per_s": round(life, 3),
            "lifecycle_ratio": round(life / baseline, 3), "paired_ratios": [round(p, 3) for p in paired],
            "cpu_ms_per_lifecycle": {"baseline": cpu("baseline"), "lifecycle": cpu("lifecycle")},
            "batches": batches, "history_shape": shapes}


# ----- phase 2: N long-lived open tickets ---------------------------------------------------


async def open_long_lived(args: argparse.Namespace, client: Client, policy: Policy, tail: OutboxTail,
                          first: int = 0, count: int | None = None) -> dict[str, Any]:
    """Opens P4-{first} .. P4-{first + count - 1} (default: all N)."""
    n = args.open_tickets if count is None else count
    base = tail.opened["P4"]  # the ones opened before this call (and visible: the previous call waited for them)
    sem = asyncio.Semaphore(args.open_concurrency)
    errors: Counter[str] = Counter()
    started = 0

    async def one(i: int) -> None:
        nonlocal started
        try:
            ticket = Ticket(id=f"P4-{first + i}", subject="bench long-lived", customer_id="bench", priority=LONG_PRIORITY,
                            opened_at=datetime.now(UTC))
            await client.start_workflow(  # what EscalationClient.open does, without reading the state back
                TicketWorkflow.run, TicketInput(ticket=ticket, policy=policy), id=workflow_id(ticket.id),
                task_queue=TICKET_QUEUE, id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            )
            started += 1
        except Exception as exc:
            errors[f"{type(exc).__name__}: {str(exc)[:120]}"] += 1
        finally:
            sem.release()

    t0 = time.perf_counter()
    last = t0
    tasks = []
    for i in range(n):
        # Pace by the server: at most `open_window` tickets started whose first task has not run yet.
        while i - (tail.opened["P4"] - base) > args.open_window:
            await asyncio.sleep(0.02)
        await sem.acquire()
        tasks.append(asyncio.create_task(one(i)))
        if time.perf_counter() - last > 5:
            last = time.perf_counter()
            done = tail.opened["P4"] - base
            log(f"opening: {i}/{n} started, {done} opened ({done / (last - t0):.1f}/s)")
    await asyncio.gather(*tasks)
    start_s = time.perf_counter() - t0
    # Idle: every ticket's first task ran (its `opened` line) and its status is visible.
    query = f"WorkflowType = 'Ticket' AND TicketPriority = '{LONG_PRIORITY}' AND TicketStatus = 'new'"
    deadline = time.perf_counter() + max(120.0, n / 10)
    visible = 0
    while True:
        if tail.opened["P4"] - base >= started:
            visible = (await client.count_workflows(query)).count - base
            if visible >= started:
                break
        if time.perf_counter() > deadline:
            log(f"warning: not settled: {tail.opened['P4'] - base} opened lines, {visible} visible of {started}")
            break
        if time.perf_counter() - last > 5:
            last = time.perf_counter()
            log(f"settling: {tail.opened['P4'] - base}/{started} opened, {visible} visible")
        await asyncio.sleep(0.5)
    settle_s = time.perf_counter() - t0
    await asyncio.sleep(args.quiet_seconds)  # let the last upserts and transfer tasks drain
    log(f"opened {started} long-lived tickets in {start_s:.1f}s; all idle after {settle_s:.1f}s "
        f"({started / settle_s:.1f}/s)" + (f"; errors {dict(errors)}" if errors else ""))
    return {"open_tickets": started, "open_seconds": round(settle_s, 1), "open_per_s": round(started / settle_s, 2),
            "open_errors": dict(errors), "open_visible": visible}


# ----- phase 4: breach stream ------------------------------------------------------------


async def breach_breakdown(client: Client, ticket_id: str, esc: dict[str, Any]) -> dict[str, Any] | None:
    """Where the latency went, from the history: timer late, task queueing, task run, activity."""
    history = await client.get_workflow_handle(workflow_id(ticket_id)).fetch_history()
    events = list(history.events)

    def at(e: Any) -> datetime:
        return e.event_time.ToDatetime(tzinfo=UTC)

    fired = [i for i, e in enumerate(events) if e.event_type == EventType.EVENT_TYPE_TIMER_FIRED
             and at(e) <= esc["recorded_at"]]
    if not fired:
        return None
    i = fired[-1]
    nxt = events[i + 1:]
    wft_started = next((e for e in nxt if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED), None)
    wft_done = next((e for e in nxt if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED), None)
    act_started = [e for e in nxt if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED]
    if wft_started is None or wft_done is None:
        return None
    out = {"ticket": ticket_id, "latency_s": round(esc["latency_s"], 3),
           "timer_late_s": round((at(events[i]) - esc["due_at"]).total_seconds(), 3),
           "wft_queue_s": round((at(wft_started) - at(events[i])).total_seconds(), 3),
           "wft_run_s": round((at(wft_done) - at(wft_started)).total_seconds(), 3),
           "activity_s": round((esc["recorded_at"] - at(wft_done)).total_seconds(), 3)}
    if act_started:
        out["activity_queue_s"] = round((max(at(e) for e in act_started[:2]) - at(wft_done)).total_seconds(), 3)
    return out


async def open_cold_cohort(args: argparse.Namespace, client: Client, open_per_s: float) -> dict[str, Any]:
    """The cold cohort (bench/sizing.py): C-0.. opened at the breach rate, acknowledge due after a target long
    enough for `churn` more tickets to be opened behind them, no warning (nothing wakes them before the deadline)."""
    total = max(1, round(args.breach_rate * args.breach_seconds))
    churn = churn_count(max_cached(args))
    target = cold_target_s(args.breach_seconds, churn, open_per_s, args.breach_after)
    ec = EscalationClient(client, bench_policy(breach_after=timedelta(seconds=target), warn_percent=()), TICKET_QUEUE)
    log(f"cold cohort: {total} tickets at {args.breach_rate}/s, acknowledge due after {target}s; then {churn} "
        f"long-lived tickets (the cache holds {max_cached(args)}) push them out of the worker's cache")
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    errors: Counter[str] = Counter()

    async def one(i: int) -> None:
        try:
            await ec.open(Ticket(id=f"C-{i}", subject="bench cold", customer_id="bench", priority=BREACH_PRIORITY,
                                 opened_at=datetime.now(UTC)))
        except Exception as exc:
            errors[f"{type(exc).__name__}: {str(exc)[:120]}"] += 1

    tasks = []
    for i in range(total):
        await asyncio.sleep(max(0.0, t0 + i / args.breach_rate - loop.time()))
        tasks.append(asyncio.create_task(one(i)))
    await asyncio.gather(*tasks)
    return {"t0": t0, "target_s": target, "churn": churn, "ids": [f"C-{i}" for i in range(total)],
            "opened": total - sum(errors.values()), "errors": dict(errors)}


async def phase_breach(args: argparse.Namespace, client: Client, ec: EscalationClient, tail: OutboxTail,
                       worker: Child, server_pid: int, cold: dict[str, Any] | None = None) -> dict[str, Any]:
    total = max(1, round(args.breach_rate * args.breach_seconds))
    open_lat: list[float] = []
    lag: list[float] = []
    errors: Counter[str] = Counter()
    rss_peak = {"worker": 0.0, "server": 0.0}

    async def one(i: int) -> None:
        t = time.perf_counter()
        try:
            await ec.open(Ticket(id=f"B-{i}", subject="bench breach", customer_id="bench", priority=BREACH_PRIORITY,
                                 opened_at=datetime.now(UTC)))
            open_lat.append(time.perf_counter() - t)
        except Exception as exc:
            errors[f"{type(exc).__name__}: {str(exc)[:120]}"] += 1

    stop_sampling = asyncio.Event()

    async def sample_rss() -> None:
        while not stop_sampling.is_set():
            rss_peak["worker"] = max(rss_peak["worker"], tree_rss_mb(worker.pid))
            rss_peak["server"] = max(rss_peak["server"], tree_rss_mb(server_pid))
            await asyncio.sleep(1)

    sampler = asyncio.create_task(sample_rss())
    log(f"breach stream: {total} tickets at {args.breach_rate}/s for {args.breach_seconds}s, "
        f"acknowledge due after {args.breach_after}s")
    loop = asyncio.get_running_loop()
    if cold:  # the hot deadlines fall due alongside the cold ones
        start = cold["t0"] + cold["target_s"] - args.breach_after
        if loop.time() > start:
            log(f"warning: the churn ran {loop.time() - start:.1f}s past the hot stream's start: the deadlines of the "
                "two cohorts overlap less")
        await asyncio.sleep(max(0.0, start - loop.time()))
    t0 = loop.time()
    tasks = []
    for i in range(total):
        when = t0 + i / args.breach_rate
        await asyncio.sleep(max(0.0, when - loop.time()))
        lag.append(loop.time() - when)
        tasks.append(asyncio.create_task(one(i)))
    await asyncio.gather(*tasks)
    ok = total - sum(errors.values())
    cold_ok = cold["opened"] if cold else 0
    log(f"breach stream opened {ok}/{total}; waiting for escalations ...")
    deadline = loop.time() + args.breach_after + args.breach_grace
    last = loop.time()
    while loop.time() < deadline:
        worker.check()
        got = sum(1 for k in tail.escalations if k.startswith(("B-", "C-")))
        if got >= ok + cold_ok:
            break
        if loop.time() - last > 5:
            last = loop.time()
            log(f"escalations seen: {got}/{ok + cold_ok}")
        await asyncio.sleep(0.25)
    await asyncio.sleep(0.3)
    tail.poll()
    stop_sampling.set()
    await sampler
    esc = {k: v for k, v in tail.escalations.items() if k.startswith("B-")}
    lat = [v["latency_s"] for v in esc.values()]
    dues = sorted(v["due_at"] for v in esc.values())
    span = (dues[-1] - dues[0]).total_seconds() if len(dues) > 1 else 0.0
    worst = sorted(esc.items(), key=lambda kv: kv[1]["latency_s"], reverse=True)[:5]
    sample = random.Random(0).sample(sorted(esc.items()), min(20, len(esc)))
    breakdown_worst = [b for k, v in worst if (b := await breach_breakdown(client, k, v))]
    breakdown_sample = [b for k, v in sample if (b := await breach_breakdown(client, k, v))]
    parts = ("timer_late_s", "wft_queue_s", "wft_run_s", "activity_s")
    median_parts = {p: round(quantile([b[p] for b in breakdown_sample], 0.5), 3) for p in parts} if breakdown_sample else {}
    cohorts: dict[str, Any] = {}
    if cold:  # side by side: hot tickets verified in the cache, cold ones verified out of it (bench/sizing.py)
        n = max_cached(args)
        cohorts = {"breach_cached": classify(tail.touches, tail.escalations, esc, n, "cached"),
                   "breach_uncached": classify(tail.touches, tail.escalations, cold["ids"], n, "uncached"),
                   "breach_cold_target_s": cold["target_s"], "breach_cold_open_errors": cold["errors"]}
        cold_worst = sorted(((k, tail.escalations[k]) for k in cold["ids"] if k in tail.escalations),
                            key=lambda kv: kv[1]["latency_s"], reverse=True)[:3]
        cohorts["breach_breakdown_uncached_worst"] = [b for k, v in cold_worst
                                                      if (b := await breach_breakdown(client, k, v))]
    return {**cohorts,
        "breach_rate_per_s": args.breach_rate,
        "breach_observed_rate_per_s": round((len(esc) - 1) / span, 3) if span else None,
        "breach_tickets": total, "breach_escalations": len(esc), "breach_missing": ok - len(esc),
        "breach_open_errors": dict(errors),
        "breach_p50_s": round(quantile(lat, 0.50), 3), "breach_p90_s": round(quantile(lat, 0.90), 3),
        "breach_p99_s": round(quantile(lat, 0.99), 3), "breach_max_s": round(max(lat), 3) if lat else math.nan,
        "breach_min_s": round(min(lat), 3) if lat else math.nan,
        "breach_line_p99_s": round(quantile(list(tail.breaches.values()), 0.99), 3),
        "stream_open_p50_s": round(quantile(open_lat, 0.5), 3), "stream_open_p99_s": round(quantile(open_lat, 0.99), 3),
        "stream_lag_max_s": round(max(lag), 3) if lag else 0.0,
        "worker_rss_peak_mb": rss_peak["worker"], "server_rss_peak_mb": rss_peak["server"],
        "breach_breakdown_median": median_parts, "breach_breakdown_worst": breakdown_worst,
    }


# ----- optional: the HTTP API bench --------------------------------------------------------


async def phase_api(args: argparse.Namespace, stack: Stack, pids: dict[str, int]) -> dict[str, Any] | None:
    if args.no_api:
        return None
    from bench.api_bench import run_api_bench

    try:  # the bench measures the system, not the per-token limit
        with stack.running_api(task_queue=TICKET_QUEUE, env={"ESCALATION_API_RATE_PER_S": "0"}) as api:
            assert api.token is not None  # the stack's dev tokens
            log(f"API bench (bench/api_bench.py) against {api.base_url}, with the open tickets still open")
            result: dict[str, Any] = await run_api_bench(
                api.base_url, api.token, rate_per_s=args.api_rate, seconds=args.api_seconds, search_max=args.api_search,
                pids={**pids, "api": api.process.pid}, log=log)
            return result
    except Exception as exc:  # the API bench is optional: report, do not fail the run
        return {"error": f"{type(exc).__name__}: {exc}"}


# ----- the run ------------------------------------------------------------------------------


def bench_stack(args: argparse.Namespace, home: Path) -> Stack:
    """A fresh dev server (SQLite in WAL mode and the dynamic config `make run` ships, plus any --server-config)
    whose children log at `--worker-log-level` with the worker's cache as shipped unless --max-cached; the policy
    file of this shell is not theirs (the bench brings its own policy)."""
    stack = Stack(home, persistent=True, env={
        "ESCALATION_MAX_CACHED_WORKFLOWS": str(max_cached(args)), "ESCALATION_LOG_LEVEL": args.worker_log_level,
        "ESCALATION_POLICY": None})
    for item in args.server_config:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"--server-config {item!r}: expected KEY=VALUE (a Temporal dynamic config key)")
        stack.server.dynamic_config[key] = value
    return stack


def bench_stack_config(args: argparse.Namespace) -> dict[str, str]:
    """The dev server's dynamic config in this run (what DevServer ships plus --server-config)."""
    from starter.devstack.devserver import DevServer

    config = dict(DevServer().dynamic_config)
    config.update(item.partition("=")[::2] for item in args.server_config)
    return config


def memory_snapshot(stack: Stack, worker: Child, server_pid: int) -> dict[str, Any]:
    return {"worker_mb": tree_rss_mb(worker.pid), "server_mb": tree_rss_mb(server_pid),
            "sqlite": sqlite_bytes(stack.server.db_file)}


def max_cached(args: argparse.Namespace) -> int:
    """The worker's cache: the one it ships with (ESCALATION_MAX_CACHED_WORKFLOWS' default) unless --max-cached.
    A cache sized to N holds every open ticket in memory, and the collector's full passes over that heap pause the
    worker for seconds (measured with --worker-cmd bench/gc_worker.py)."""
    return args.max_cached or int(Settings.model_fields["escalation_max_cached_workflows"].default)


async def bench(args: argparse.Namespace, stack: Stack, worker: Child, baseline_worker: Child) -> dict[str, Any]:
    policy = bench_policy(breach_after=timedelta(seconds=args.breach_after),
                          warn_percent=tuple(args.warn_percent) if args.warn_percent else ())
    tail = OutboxTail(stack.outbox)
    stop_tail = asyncio.Event()
    follower = asyncio.create_task(tail.follow(stop_tail))
    results: dict[str, Any] = {}
    srv = stack.server.pid() or 0
    try:
        client = await connect(stack.address, stack.namespace)
        ec = EscalationClient(client, policy, TICKET_QUEUE)
        log(f"server {stack.address} (pid {srv}), ticket worker pid {worker.pid}, "
            f"max_cached_workflows {max_cached(args)}, data in {stack.home}")
        results["rss_idle"] = {"worker_mb": tree_rss_mb(worker.pid), "server_mb": tree_rss_mb(srv)}

        me = os.getpid()
        pids = {"baseline": {"worker": baseline_worker.pid, "server": srv, "client": me},
                "lifecycle": {"worker": worker.pid, "server": srv, "client": me}}
        results.update(await phase_ab(args, client, ec, pids))
        if args.replay_histories:  # the A/B phase's closed lifecycles, replayed in this process and one per core
            ids = [workflow_id(f"L{r}-{i}") for r in range(args.rounds) for i in range(args.batch)]
            results.update(await run_replay_bench(client, ids[:args.replay_histories], log))
        before = memory_snapshot(stack, worker, srv)
        # the N long-lived tickets; unless --no-cold, the last `churn` of them opened behind the cold cohort
        churn = churn_count(max_cached(args)) if args.cold else 0
        opened = await open_long_lived(args, client, policy, tail, 0, max(0, args.open_tickets - churn))
        cold = None
        mid = memory_snapshot(stack, worker, srv)  # the server's caches are full by now (at N >= 2,000 or so)
        if args.cold:
            cold = await open_cold_cohort(args, client, opened["open_per_s"] or 10.0)
            rest = await open_long_lived(args, client, policy, tail, max(0, args.open_tickets - churn), churn)
            n = opened["open_tickets"] + rest["open_tickets"]
            secs = opened["open_seconds"] + rest["open_seconds"]
            opened = {"open_tickets": n, "open_seconds": round(secs, 1), "open_per_s": round(n / max(secs, 0.1), 2),
                      "open_errors": dict(Counter(opened["open_errors"]) + Counter(rest["open_errors"])),
                      "open_visible": opened["open_visible"] + rest["open_visible"]}
        results.update(opened)
        after = memory_snapshot(stack, worker, srv)
        results["worker_rss_mb"], results["server_rss_mb"] = after["worker_mb"], after["server_mb"]
        results["sqlite_after_open"] = after["sqlite"]
        results["per_open_ticket"] = per_ticket(before, after, results["open_tickets"] + (cold["opened"] if cold else 0))
        if cold:  # the last tickets alone: their own cost, the server caches (bounded) being full by then
            results["per_open_ticket_marginal"] = per_ticket(mid, after, cold["opened"] + churn)
        results["rss_before_open"] = {k: before[k] for k in ("worker_mb", "server_mb")}
        log(f"with {results['per_open_ticket']['tickets']} open tickets: worker RSS {results['worker_rss_mb']} MB, "
            f"server RSS {results['server_rss_mb']} MB; per open ticket {results['per_open_ticket']}")
        results.update(await phase_breach(args, client, ec, tail, worker, srv, cold))
        results.update(await run_metrics_bench(ec, log))  # over every ticket the phases opened so far
        api = await phase_api(args, stack, {"server": srv, "worker": worker.pid})
        if api is not None:
            results["api"] = api
        if args.incident_tickets:  # last: its tickets' work does not overlap the other phases
            results.update(await run_incident_bench(ec, client, BASELINE_QUEUE, tail.incident_updates.get,
                                                    args.incident_tickets, log))
        if not args.no_recovery:  # last: it kills a worker (its own, on its own task queue)
            results["recovery"] = await run_recovery(stack, log=log)
            results["recovery_s"] = results["recovery"]["recovery_s"]
        results["outbox_kinds"] = dict(tail.kinds)
        results["max_cached_workflows"] = max_cached(args)
        results["policy_version"] = policy.version()
    finally:
        stop_tail.set()
        await follower
    return results


def gc_pauses(log_file: Path) -> dict[str, Any] | None:
    """Summary of the GCPAUSE lines bench/gc_worker.py writes (None when the worker ran without it)."""
    pauses: list[tuple[str, float]] = []
    try:
        for line in log_file.read_text(errors="replace").splitlines():
            if line.startswith("GCPAUSE "):
                _, gen, ms, *_ = line.split()
                pauses.append((gen, float(ms.removesuffix("ms")) / 1000))
    except OSError:
        return None
    if not pauses:
        return None
    return {"count": len(pauses), "max_s": max(p for _, p in pauses),
            "over_100ms": sum(1 for _, p in pauses if p > 0.1), "by_generation": dict(Counter(g for g, _ in pauses)),
            "gen2_total_s": round(sum(p for g, p in pauses if g == "gen2"), 3)}


def targets(r: dict[str, Any]) -> dict[str, Any]:
    n = r.get("open_tickets", 0)
    p99 = r.get("breach_p99_s", math.nan)
    ratio = r.get("lifecycle_ratio", math.nan)
    return {
        "breach_p99": {"target": f"<= {BREACH_P99_TARGET_S}s with {BREACH_TARGET_N} open tickets",
                       "met": bool(p99 <= BREACH_P99_TARGET_S), "at_open_tickets": n,
                       "conclusive": n >= BREACH_TARGET_N},
        "lifecycle_ratio": {"target": f">= {RATIO_TARGET}", "met": bool(ratio >= RATIO_TARGET)},
        **sizing_targets(r),
        **(incident_targets(r) if "incident_fanout_ratio" in r else {}),
        **(replay_targets(r) if "replay_per_s" in r else {}),
        **(recovery_targets(r) if "recovery_s" in r else {}),
    }


def sizing_targets(r: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for cohort in ("cached", "uncached"):
        c = r.get(f"breach_{cohort}")
        if c:
            out[f"breach_p99_{cohort}"] = {"target": f"<= {BREACH_P99_TARGET_S}s", "met": bool(c["p99_s"] <= BREACH_P99_TARGET_S),
                                           "count": c["count"]}
    if "worker_rss_peak_mb" in r:
        peak = max(r.get("worker_rss_mb", 0.0), r["worker_rss_peak_mb"])
        out["worker_rss"] = {"target": f"<= {WORKER_RSS_TARGET_MB} MB (peak, N open)", "met": bool(peak <= WORKER_RSS_TARGET_MB)}
    kb = (r.get("per_open_ticket") or {}).get("server_kb_per_open_ticket")
    if kb is not None:
        out["server_kb_per_open_ticket"] = {"target": f"<= {SERVER_KB_PER_TICKET_TARGET} KB",
                                            "met": bool(kb <= SERVER_KB_PER_TICKET_TARGET)}
    return out


def print_table(res: dict[str, Any]) -> None:
    per = res.get("per_open_ticket") or {}
    marginal = res.get("per_open_ticket_marginal") or {}
    cohort = {c: res.get(f"breach_{c}") or {} for c in ("cached", "uncached")}
    rows = [
        ("open tickets (N)", res.get("open_tickets")),
        ("baseline lifecycles/s", res.get("baseline_per_s")),
        ("ticket lifecycles/s", res.get("lifecycle_per_s")),
        ("lifecycle / baseline", res.get("lifecycle_ratio")),
        ("  paired ratios by round", res.get("paired_ratios")),
        ("  CPU ms/lifecycle baseline", (res.get("cpu_ms_per_lifecycle") or {}).get("baseline")),
        ("  CPU ms/lifecycle ticket", (res.get("cpu_ms_per_lifecycle") or {}).get("lifecycle")),
        ("long-lived open rate /s", res.get("open_per_s")),
        ("breach stream rate /s", res.get("breach_rate_per_s")),
        ("  escalations / tickets", f"{res.get('breach_escalations')}/{res.get('breach_tickets')}"),
        ("breach latency p50 s", res.get("breach_p50_s")),
        ("breach latency p99 s", res.get("breach_p99_s")),
        ("breach latency max s", res.get("breach_max_s")),
        ("  median breakdown (sample)", res.get("breach_breakdown_median")),
        *((f"breach p50/p99/max s, {c} (count)", f"{v.get('p50_s')} / {v.get('p99_s')} / {v.get('max_s')} "
           f"({v.get('count')}; {v.get('unverified')} unverified)") for c, v in cohort.items() if v),
        ("server KB per open ticket (marginal: the last ones)",
         f"{per.get('server_kb_per_open_ticket')} ({marginal.get('server_kb_per_open_ticket')})"),
        ("SQLite bytes per open ticket (used / files)",
         f"{per.get('sqlite_used_bytes_per_open_ticket')} / {per.get('sqlite_file_bytes_per_open_ticket')}"),
        ("worker cache (max_cached_workflows)", res.get("max_cached_workflows")),
        ("worker RSS MB (N open)", res.get("worker_rss_mb")),
        ("worker KB per cached ticket (before; bare)", f"{res.get('worker_kb_per_cached_ticket')} "
         f"({res.get('worker_kb_per_cached_ticket_before')}; {res.get('worker_kb_per_cached_bare')})"),
        ("server RSS MB (N open)", res.get("server_rss_mb")),
        ("worker / server RSS peak MB", f"{res.get('worker_rss_peak_mb')} / {res.get('server_rss_peak_mb')}"),
        ("bare signal round trips /s", res.get("signal_round_trips_per_s")),
        ("incident fan-out /s (tickets)", f"{res.get('incident_fanout_per_s')} ({res.get('incident_tickets')})"),
        ("  fan-out / bare round trips", res.get("incident_fanout_ratio")),
        ("incident update p50/p99/max s", f"{res.get('incident_update_p50_s')} / {res.get('incident_update_p99_s')}"
                                           f" / {res.get('incident_update_max_s')}"),
        ("incident history events", res.get("incident_history_events")),
        ("30-day metrics report s (tickets)", f"{res.get('metrics_report_s')} ({res.get('metrics_report_tickets')})"),
        ("replay /s, one process (fetch excl.)", f"{res.get('replay_per_s')} ({res.get('replay_histories')} histories"
                                                 f" of {res.get('replay_events_per_history')} events)"),
        ("  with fetch / one process per core", f"{res.get('replay_per_s_with_fetch')} / "
                                                f"{res.get('replay_per_s_process_per_core')} "
                                                f"({res.get('replay_processes')} processes)"),
        ("  the SDK alone (bare, same shape) / not sandboxed", f"{res.get('replay_floor_bare_per_s')} / "
                                                              f"{res.get('replay_floor_bare_unsandboxed_per_s')}"),
        ("decision check alone /s, one process", res.get("decisions_per_s")),
    ]
    if res.get("smtp"):
        rows.append(("delivery", f"SMTP: {res['smtp']['mails']} mails, receiver CPU "
                                 f"{res['smtp']['receiver_cpu_ms_per_mail']} ms/mail"))
    if res.get("worker_gc_pauses"):
        rows.append(("worker GC pauses > 20 ms", res["worker_gc_pauses"]))
    width = max(len(k) for k, _ in rows)
    print("\n" + "-" * (width + 40))
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    print("-" * (width + 40))
    t = res["targets"]
    b = t["breach_p99"]
    verdict = "MET" if b["met"] else "NOT MET"
    note = "" if b["conclusive"] else f" (measured at N={b['at_open_tickets']}; the target is defined at {BREACH_TARGET_N})"
    print(f"target breach_p99_s {b['target']}: {verdict}{note}")
    for name in ("lifecycle_ratio", "breach_p99_cached", "breach_p99_uncached", "worker_rss",
                 "server_kb_per_open_ticket", "incident_fanout_ratio", "incident_history_events", "replay_per_s",
                 "recovery_s"):
        if name in t:
            why = f" ({t[name]['why']})" if t[name].get("why") else ""
            print(f"target {name} {t[name]['target']}: {'MET' if t[name]['met'] else 'NOT MET'}{why}")
    api = res.get("api")
    if api:
        figures = {k: v for k, v in api.items() if not isinstance(v, dict | list)}
        print(f"API bench: {json.dumps(figures, default=str)}")
        if isinstance(api.get("api_limit"), dict):
            print(f"  API limit: {api['api_limit'].get('component')}: {api['api_limit'].get('reason')}")


class BenchMailServer:
    """The embedded SMTP server (starter/devstack/mailserver.py) in a process of its own; its CPU per mail is
    reported (on this machine it shares the cores with the worker and the server)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.proc = subprocess.Popen([sys.executable, "-m", "starter.devstack.mailserver", str(folder)], cwd=ROOT,
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().strip()
        if not self.url.startswith("smtp://"):
            raise RuntimeError(f"the mail server did not start (it printed {self.url!r})")

    def stop(self) -> dict[str, Any]:
        cpu_s = tree_cpu_s(self.proc.pid, children=False)
        self.proc.terminate()
        self.proc.wait(10)
        mails = sum(1 for _ in self.folder.glob("*.eml"))
        return {"url": self.url, "mails": mails, "receiver_cpu_s": round(cpu_s, 2),
                "receiver_cpu_ms_per_mail": round(cpu_s * 1000 / max(mails, 1), 2)}


def start_mail_server(folder: Path) -> BenchMailServer:
    log(f"delivering mail through the embedded SMTP server (its own process), kept in {folder}")
    return BenchMailServer(folder)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--open-tickets", type=int, default=2000, help="long-lived open tickets (N)")
    p.add_argument("--concurrency", type=int, default=50, help="client concurrency of the A/B batches")
    p.add_argument("--batch", type=int, default=150, help="lifecycles per A/B batch")
    p.add_argument("--rounds", type=int, default=4, help="A/B rounds (each: a baseline then a lifecycle batch)")
    p.add_argument("--breach-rate", type=float, default=5.0, help="breach stream: tickets opened per second")
    p.add_argument("--breach-seconds", type=float, default=60.0, help="breach stream: how long")
    p.add_argument("--breach-after", type=int, default=30, help="breach stream: acknowledge target, seconds")
    p.add_argument("--breach-grace", type=float, default=60.0, help="how long to wait for late escalations")
    p.add_argument("--warn-percent", type=int, nargs="*", default=[50], help="breach priority warnings (none: no value)")
    p.add_argument("--open-concurrency", type=int, default=32, help="concurrent starts while opening the N tickets")
    p.add_argument("--open-window", type=int, default=200, help="max started-but-not-yet-opened tickets")
    p.add_argument("--quiet-seconds", type=float, default=3.0, help="pause after the N tickets are idle")
    p.add_argument("--max-cached", type=int, default=0, help="worker max_cached_workflows (0: the shipped default, 1000)")
    p.add_argument("--no-cold", dest="cold", action="store_false",
                   help="no cold cohort (tickets pushed out of the worker's cache before their deadline)")
    p.add_argument("--server-config", action="append", default=[], metavar="KEY=VALUE",
                   help="a dynamic config value for the dev server, on top of those `make run` ships (repeatable)")
    p.add_argument("--worker-log-level", default="INFO")
    p.add_argument("--worker-cmd", default="worker.py",
                   help="the ticket worker, run with this Python from the repo root (bench/gc_worker.py logs GC pauses)")
    p.add_argument("--incident-tickets", type=int, default=1000,
                   help="tickets linked to the incident whose one update is fanned out (0: no incident phase)")
    p.add_argument("--replay-histories", type=int, default=300,
                   help="full-lifecycle histories of the A/B phase replayed (0: no replay phase; at most rounds x batch)")
    p.add_argument("--smtp", action="store_true",
                   help="deliver mail through the embedded SMTP server (its own process) instead of the outbox only")
    p.add_argument("--no-api", action="store_true", help="skip the HTTP API bench even if bench/api_bench.py exists")
    p.add_argument("--api-rate", type=float, default=20.0)
    p.add_argument("--api-seconds", type=float, default=30.0)
    p.add_argument("--api-search", action="store_true", help="also search the API's max sustained rate (a few minutes)")
    p.add_argument("--memory-tickets", type=int, default=1000,
                   help="tickets per phase of bench/memory_per_ticket.py (worker_kb_per_cached_ticket; 0: skip)")
    p.add_argument("--no-recovery", action="store_true", help="skip the worker kill-and-restart phase (bench/recovery.py)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument("--keep", action="store_true", help="keep the temp dir (server DB, logs, outbox)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    ephemeral_keys()  # payloads encrypted as in production (the codec's cost included), keys gone with the run
    git = git_commit()  # the code the workers load now, not whatever is committed by the end of the run
    tmp = Path(tempfile.mkdtemp(prefix="escalation-bench-"))
    started = datetime.now(UTC)
    log(f"starting the dev server (SQLite WAL in {tmp}) and the workers ...")
    try:
        with bench_stack(args, tmp).running(worker=False) as stack:
            mail = start_mail_server(tmp / "mail") if args.smtp else None
            try:
                worker = stack.start_worker(args=shlex.split(args.worker_cmd), task_queue=TICKET_QUEUE,
                                            name="ticket worker", log_name="worker.log",
                                            env={"ESCALATION_SMTP_URL": mail.url} if mail else None)
                baseline = stack.start_worker(args=["-m", "bench.baseline"], task_queue=BASELINE_QUEUE,
                                              name="baseline worker")
                results = asyncio.run(bench(args, stack, worker, baseline))
            finally:
                mail_figures = mail.stop() if mail else None
            if mail_figures:
                results["smtp"] = mail_figures
        pauses = gc_pauses(worker.log_file)  # written by the worker until it stopped
        if pauses:
            results["worker_gc_pauses"] = pauses
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    if args.memory_tickets:  # its own dev server and worker, after the others stopped
        results.update(memory_per_ticket.bench_figures(args.memory_tickets, log))
    results["targets"] = targets(results)
    results["meta"] = {
        "open_tickets": args.open_tickets, "concurrency": args.concurrency, "batch": args.batch, "rounds": args.rounds,
        "breach_rate_per_s": args.breach_rate, "breach_seconds": args.breach_seconds, "breach_after_s": args.breach_after,
        "warn_percent": args.warn_percent, "incident_tickets": args.incident_tickets,
        "open_concurrency": args.open_concurrency, "open_window": args.open_window,
        "server_dynamic_config": bench_stack_config(args),
        "cpu_count": os.cpu_count(), "python": platform.python_version(), "temporalio": temporalio.__version__,
        "started_at": started.isoformat(), "finished_at": datetime.now(UTC).isoformat(),
        "duration_s": round(time.monotonic() - _T0, 1), "git": git, "server": "temporal server start-dev, SQLite WAL",
        "kept_dir": str(tmp) if args.keep else None, "delivery": "smtp" if args.smtp else "outbox",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
    print_table(results)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
