"""`make recovery` (`python -m bench.recovery`): how fast breach lateness recovers after the worker is SIGKILLed.

Tickets are opened at a steady `--rate` (≥ 5/s) whose acknowledge deadline falls due `--breach-after` seconds later,
so deadlines stream at that rate from before the kill until well after the restart. The ticket worker is SIGKILLed
`--kill-after` seconds into the deadline stream, left dead for `--dead` seconds and started again; the stream goes on
for `--after` seconds of deadlines after the restart. Per ticket, lateness = `recorded_at` of its escalation line in
the outbox minus its `due_at` (as bench/run.py's breach stream).

`recovery_s`: from the new worker process's start until every later deadline is under 1 s late, i.e. the due time of
the last deadline due after the restart that was ≥ 1 s late, minus the restart (0: none was). `make bench` reports
it too (bench/run.py, last phase, on its own task queue and worker).

Run alone, it starts its own stack (dev server on SQLite, WAL, as `make run`) and writes bench/results/recovery.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from bench.policy import BREACH_PRIORITY, bench_policy
from bench.procfs import tree_cpu_s
from bench.stats import quantile
from starter.client import EscalationClient, workflow_id
from starter.devstack.stack import Child, Stack
from starter.runtime.codec import ephemeral_keys
from starter.runtime.temporal import connect
from workflows.ticket import Ticket

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "bench" / "results" / "recovery.json"
LATE_S = 1.0  # "on time" for recovery_s
TARGET_S = 10.0  # issue 10: lateness back under 1 s within 10 s of a worker restart
# The worker options build_worker (starter/runtime/temporal.py) sets against the SDK's defaults: `--compare` runs
# these as "before".
SDK_DEFAULTS = {"sticky_queue_schedule_to_start_timeout_s": 10}


@dataclass(frozen=True)
class Plan:
    rate: float = 5.0  # deadlines per second (the issue asks for ≥ 5/s throughout; 8/s saturated a shared machine)
    breach_after_s: int = 15  # each ticket's acknowledge deadline, after it is opened
    kill_after_s: float = 15.0  # into the deadline stream
    dead_s: float = 20.0
    after_s: float = 45.0  # deadlines after the restart
    grace_s: float = 90.0  # how long to wait for the last escalations


def _log(msg: str) -> None:
    print(f"[recovery {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def _escalations(outbox: Path, prefix: str) -> dict[str, tuple[datetime, datetime]]:
    """ticket id -> (due_at, recorded_at) of its first escalation line in the outbox."""
    out: dict[str, tuple[datetime, datetime]] = {}
    try:
        lines = outbox.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return out
    for raw in lines:
        if not raw.endswith("}"):
            continue  # a line being written
        rec = json.loads(raw)
        tid = str(rec.get("ticket_id", ""))
        if rec.get("kind") != "escalation" or not tid.startswith(prefix) or not rec.get("due_at"):
            continue
        due, at = datetime.fromisoformat(rec["due_at"]), datetime.fromisoformat(rec["recorded_at"])
        if tid not in out or at < out[tid][1]:
            out[tid] = (due, at)
    return out


PARTS = ("timer_late_s", "sticky_queue_s", "dead_worker_task_s", "queue_s", "task_run_s", "activity_s")


async def _history_causes(client: Client, ticket_id: str, due: datetime, late_s: float) -> dict[str, Any]:
    """Where one late deadline's time went, from its history: the timer firing, then each workflow task attempt
    after it until one completed (scheduled on which queue, started when, timed out how), then the notification's
    activity. `parts`: the seconds after the due time spent in each (PARTS): waiting on a sticky queue until its
    schedule-to-start timeout (a dead worker's), held by a dead worker until the task's start-to-close timeout,
    queued on the shared queue (the backlog), running, and from the task's completion to the outbox line."""
    events = list((await client.get_workflow_handle(workflow_id(ticket_id)).fetch_history()).events)

    def at(e: Any) -> float:
        return round((e.event_time.ToDatetime(tzinfo=UTC) - due).total_seconds(), 2)

    parts = dict.fromkeys(PARTS, 0.0)

    def span(part: str, lo: float, hi: float) -> None:  # only what lies after the due time counts
        parts[part] += max(0.0, hi) - max(0.0, lo)

    fired = next((i for i, e in enumerate(events) if e.event_type == EventType.EVENT_TYPE_TIMER_FIRED
                  and e.event_time.ToDatetime(tzinfo=UTC) >= due - timedelta(seconds=1)), None)
    first = next((i for i, e in enumerate(events) if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED), None)
    start = fired if fired is not None else 0
    steps: list[str] = [] if fired is None else [f"timer fired {at(events[fired]):+}"]
    if fired is not None:
        span("timer_late_s", 0.0, at(events[fired]))
    if fired is None or (first is not None and first > fired):
        steps.insert(0, "first task after the deadline")  # the ticket was opened while no worker ran
    scheduled, sticky, started, done = 0.0, False, 0.0, 0.0
    for e in events[start + 1:]:
        t = e.event_type
        if t == EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED:
            scheduled, sticky = at(e), e.workflow_task_scheduled_event_attributes.task_queue.kind == 2
            steps.append(f"task scheduled {scheduled:+} on {'sticky' if sticky else 'normal'}")
        elif t == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED:
            started = at(e)
            span("sticky_queue_s" if sticky else "queue_s", scheduled, started)
            steps.append(f"started {started:+}")
        elif t == EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT:
            kind = e.workflow_task_timed_out_event_attributes.timeout_type
            if kind == 2:  # schedule-to-start: only sticky tasks have one
                span("sticky_queue_s", scheduled, at(e))
            else:
                span("dead_worker_task_s", started, at(e))
            steps.append(f"timed out {at(e):+} ({'schedule-to-start' if kind == 2 else 'start-to-close'})")
        elif t == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            done = at(e)
            span("task_run_s", started, done)
            steps.append(f"completed {done:+}")
            break
    span("activity_s", done, late_s)
    steps.append(f"escalation recorded {late_s:+.2f}")
    return {"ticket": ticket_id, "steps": steps, "parts": {k: round(v, 2) for k, v in parts.items()}}


def _attribution(causes: list[dict[str, Any]]) -> dict[str, Any]:
    """Over the late deadlines: each part's median, and its share of all their lateness."""
    total = sum(sum(c["parts"].values()) for c in causes) or 1.0
    return {p: {"p50_s": round(quantile([c["parts"][p] for c in causes], 0.5), 2),
                "share": round(sum(c["parts"][p] for c in causes) / total, 3)} for p in PARTS}


def _started_at(log_file: Path) -> datetime | None:
    """When the worker logged `worker_started` (connected, its worker built, about to poll)."""
    for line in log_file.read_text(errors="replace").splitlines():
        if '"worker_started"' in line:
            return datetime.fromisoformat(json.loads(line)["timestamp"])
    return None


def _summary(values: list[float]) -> dict[str, float | int]:
    return {"n": len(values), "p50_s": round(quantile(values, 0.5), 2), "p99_s": round(quantile(values, 0.99), 2),
            "max_s": round(max(values), 2) if values else 0.0}


async def run_recovery(stack: Stack, plan: Plan = Plan(), *, log: Callable[[str], None] = _log,
                       worker_args: list[str] | None = None, worker_env: dict[str, str | None] | None = None,
                       label: str = "") -> dict[str, Any]:
    """One kill-and-restart of a worker of its own (its own task queue) on `stack`, under a deadline stream."""
    queue = f"recovery-{uuid.uuid4().hex[:6]}"
    prefix = f"R{uuid.uuid4().hex[:4]}"
    outbox = stack.home / f"outbox-{queue}.jsonl"
    env: dict[str, str | None] = {"ESCALATION_OUTBOX": str(outbox), "ESCALATION_POLICY": None, **(worker_env or {})}

    def start(name: str) -> Child:
        return stack.start_worker(args=worker_args, task_queue=queue, name=name, log_name=f"{queue}-{name}.log", env=env)

    worker = await asyncio.to_thread(start, "worker")
    client = await connect(stack.address, stack.namespace)
    ec = EscalationClient(client, bench_policy(breach_after=timedelta(seconds=plan.breach_after_s), warn_percent=()),
                          queue)
    t0 = datetime.now(UTC)
    first_due = t0 + timedelta(seconds=plan.breach_after_s)
    kill_at = first_due + timedelta(seconds=plan.kill_after_s)
    open_until = kill_at + timedelta(seconds=plan.dead_s + plan.after_s - plan.breach_after_s)
    total = int((open_until - t0).total_seconds() * plan.rate)
    due: dict[str, datetime] = {}
    errors: Counter[str] = Counter()

    async def one(i: int) -> None:
        now = datetime.now(UTC)
        t = Ticket(id=f"{prefix}-{i}", subject="recovery bench", customer_id="bench", priority=BREACH_PRIORITY,
                   opened_at=now)
        try:
            await ec.open(t, now=now, wait_for_worker=False)  # needs the server only: it goes on while the worker is dead
            due[t.id] = now + timedelta(seconds=plan.breach_after_s)
        except Exception as exc:
            errors[f"{type(exc).__name__}: {str(exc)[:100]}"] += 1

    async def stream() -> None:
        loop = asyncio.get_running_loop()
        start_t, tasks = loop.time(), []
        for i in range(total):
            await asyncio.sleep(max(0.0, start_t + i / plan.rate - loop.time()))
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)

    log(f"{label}deadline stream: {total} tickets at {plan.rate}/s, due {plan.breach_after_s} s after opening; worker "
        f"SIGKILLed {plan.kill_after_s} s into the deadlines, dead {plan.dead_s} s, then {plan.after_s} s of deadlines")
    opener = asyncio.create_task(stream())
    await asyncio.sleep((kill_at - datetime.now(UTC)).total_seconds())
    killed = datetime.now(UTC)
    os.killpg(worker.pid, signal.SIGKILL)
    worker.proc.wait()
    stack.children.remove(worker)
    await asyncio.sleep(plan.dead_s)
    restarted = datetime.now(UTC)  # the new worker process's start
    worker = await asyncio.to_thread(start, "worker-again")
    for _ in range(600):  # a worker other than worker.py is waited for by its polls, which the dead one's may fake
        if (polling := _started_at(worker.log_file)) is not None:
            break
        worker.check()
        await asyncio.sleep(0.1)
    polling = polling or datetime.now(UTC)
    server_pid = stack.server.pid() or 0
    cpu0 = (time.monotonic(), tree_cpu_s(worker.pid), tree_cpu_s(server_pid))
    log(f"{label}worker killed {killed:%H:%M:%S}, restarted {restarted:%H:%M:%S}, started after "
        f"{(polling - restarted).total_seconds():.1f} s")
    try:
        await opener
        expected = set(due)
        deadline = time.monotonic() + plan.breach_after_s + plan.grace_s
        while len(found := _escalations(outbox, prefix)) < len(expected) and time.monotonic() < deadline:
            await asyncio.sleep(1)
        wall = time.monotonic() - cpu0[0]
        cpu = {"worker": round((tree_cpu_s(worker.pid) - cpu0[1]) / wall, 2),
               "server": round((tree_cpu_s(server_pid) - cpu0[2]) / wall, 2)}
    finally:
        stack.stop_child(worker)

    late = {tid: (at - due[tid]).total_seconds() for tid, (_, at) in found.items() if tid in due}
    after = sorted((due[t] - restarted).total_seconds() for t in due if due[t] >= restarted)
    missing = [t for t in due if t not in late]
    late_after = [(due[t], v) for t, v in late.items() if due[t] >= restarted and v >= LATE_S]
    last_late = max((d for d, _ in late_after), default=None)
    recovery_s = 0.0 if last_late is None else (last_late - restarted).total_seconds()
    if any(due[t] >= restarted for t in missing):
        recovery_s = float("inf")  # a deadline after the restart never escalated: not recovered

    def lat(lo: datetime, hi: datetime) -> list[float]:
        return [v for t, v in late.items() if lo <= due[t] < hi]
    end = max(due.values()) + timedelta(seconds=1)
    buckets = []  # worst lateness of the deadlines due in each 2 s after the kill
    b = killed
    while b < end:
        if (vals := lat(b, b + timedelta(seconds=2))):
            buckets.append([round((b - restarted).total_seconds(), 1), round(max(vals), 2)])
        b += timedelta(seconds=2)
    worst = sorted(late_after, key=lambda dv: dv[1], reverse=True)
    by_due = {(due[t], v): t for t, v in late.items()}
    # every late deadline due from the kill on (its history read from the server: the worker is not asked)
    late_since_kill = sorted((due[t], v) for t, v in late.items() if due[t] >= killed and v >= LATE_S)
    explained = {dv: await _history_causes(client, by_due[dv], dv[0], dv[1]) for dv in late_since_kill}
    causes = [explained[dv] for dv in worst[:3]] + [explained[dv] for dv in sorted(late_after)[-2:]]
    deadline_rate = (len(after) - 1) / (after[-1] - after[0]) if len(after) > 1 else 0.0
    return {
        "recovery_s": round(recovery_s, 2), "recovery_target_s": TARGET_S, "recovery_met": recovery_s <= TARGET_S,
        "worker_started_after_s": round((polling - restarted).total_seconds(), 2),  # imports, connect, build
        "dead_s": round((restarted - killed).total_seconds(), 2), "deadline_rate_per_s": round(deadline_rate, 2),
        "tickets": len(due), "escalated": len(late), "missing": len(missing), "open_errors": dict(errors),
        "late_due_before_kill": _summary(lat(t0, killed)),
        "late_due_while_dead": _summary(lat(killed, restarted)),
        "late_due_0_10s_after_restart": _summary(lat(restarted, restarted + timedelta(seconds=10))),
        "late_due_10s_plus_after_restart": _summary(lat(restarted + timedelta(seconds=10), end)),
        "late_after_restart_ge_1s": len(late_after),
        "cores_busy_after_restart": cpu,  # CPU seconds per second, from the restart to the last escalation
        "worst_by_due_2s": buckets,  # [seconds after the restart, worst lateness of the deadlines due then]
        "lateness_by_cause_due_while_dead": _attribution([c for dv, c in explained.items() if dv[0] < restarted]),
        "lateness_by_cause_due_after_restart": _attribution([c for dv, c in explained.items() if dv[0] >= restarted]),
        "late_causes": causes,
    }


def recovery_targets(r: dict[str, Any]) -> dict[str, Any]:
    return {"recovery_s": {"target": f"<= {TARGET_S}s (every deadline under {LATE_S}s late after the restart)",
                           "met": bool(r["recovery_s"] <= TARGET_S)}}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.recovery", description=__doc__.split("\n\n")[0] if __doc__ else None)
    d = Plan()
    p.add_argument("--rate", type=float, default=d.rate, help="deadlines per second")
    p.add_argument("--breach-after", type=int, default=d.breach_after_s)
    p.add_argument("--kill-after", type=float, default=d.kill_after_s)
    p.add_argument("--dead", type=float, default=d.dead_s)
    p.add_argument("--after", type=float, default=d.after_s)
    p.add_argument("--worker-env", action="append", default=[], metavar="KEY=VALUE",
                   help="a setting of the restarted worker (repeatable); with --compare, of run B only")
    p.add_argument("--worker-options", default="",
                   help="JSON worker options (bench/options_worker.py) of the killed and restarted worker")
    p.add_argument("--server-config", action="append", default=[], metavar="KEY=VALUE",
                   help="a dev server dynamic config value (repeatable)")
    p.add_argument("--compare", action="store_true",
                   help="two rounds on one stack: A with --baseline-options (the SDK's defaults), B as shipped")
    p.add_argument("--baseline-options", default=json.dumps(SDK_DEFAULTS), help="JSON worker options of run A")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (server DB, worker logs, outboxes)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    ephemeral_keys()
    plan = Plan(rate=args.rate, breach_after_s=args.breach_after, kill_after_s=args.kill_after, dead_s=args.dead,
                after_s=args.after)
    env: dict[str, str | None] = dict(kv.split("=", 1) for kv in args.worker_env)
    tmp = Path(tempfile.mkdtemp(prefix="escalation-recovery-"))
    results: dict[str, Any] = {"plan": plan.__dict__}
    try:
        stack = Stack(tmp, persistent=True)
        stack.server.dynamic_config.update(kv.split("=", 1) for kv in args.server_config)
        options_worker = ["bench/options_worker.py"]
        with stack.running(worker=False):
            if args.compare:
                results["A_options"] = json.loads(args.baseline_options)
                results["A"] = asyncio.run(run_recovery(
                    stack, plan, worker_args=options_worker, label="A: ",
                    worker_env={**env, "RECOVERY_WORKER_OPTIONS": args.baseline_options}))
                results["B"] = asyncio.run(run_recovery(stack, plan, worker_env=env, label="B: "))
            else:
                results.update(asyncio.run(run_recovery(
                    stack, plan, worker_args=options_worker if args.worker_options else None,
                    worker_env={**env, "RECOVERY_WORKER_OPTIONS": args.worker_options})))
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
    print(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
