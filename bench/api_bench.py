"""HTTP API figures: open-ticket latency at a fixed rate, and the highest rate the stack sustains.

`run_api_bench(api_base_url, token)` opens tickets with `POST /v1/tickets` on loopback at a
fixed rate (open loop: each request is sent at its scheduled time, and its latency counts
from that time, so a slow server cannot hide its queue), then searches for the highest rate
at which p99 stays within 50 ms *and* every opened ticket's workflow keeps up: each one has
run its first steps (routing, clocks, the `opened` notification) and published its search
attributes, seen through `GET /v1/tickets?status=new`, within a grace period after the
last request of the step.

Where the limit is comes from the first failing step: workflows falling behind point at the
worker or the Temporal server; a high p99 is split with the API's `Server-Timing` header into
time in Temporal (the server accepting the start), time in the API's own code, and time
before the handler ran (uvicorn's queue: the API process saturated). With process ids (the
standalone run) CPU use of server, worker and API is measured too.

Standalone, against a stack it starts itself (starter/devstack/stack.py, as `make run`: dev server
with SQLite in WAL mode, `python worker.py`, the API):

    python -m bench.api_bench [--rate 20] [--seconds 30] [--out bench/results/api.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.procfs import tree_cpu_s
from starter.devstack.stack import Child, Stack
from starter.runtime.codec import ephemeral_keys

ROOT = Path(__file__).resolve().parents[1]
P99_LIMIT_MS = 50.0
KEEP_UP_GRACE_S = 5.0


def quantile(values: list[float], q: float) -> float:
    """Nearest-rank quantile (p99 of 100 values is the 99th)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def _server_timing(header: str | None) -> dict[str, float]:
    return {m.group(1): float(m.group(2)) for m in re.finditer(r"(\w+);dur=([\d.]+)", header or "")}


# ----- CPU of the processes behind the API (standalone runs) ----------------------------------


class CpuMeter:
    """CPU use (in cores) of named processes over an interval; nothing when no pids are given."""

    def __init__(self, pids: dict[str, int] | None) -> None:
        self.pids = {k: v for k, v in (pids or {}).items() if v}
        self.start = self._sample()
        self.t0 = time.monotonic()

    def _sample(self) -> dict[str, float]:
        sample = {name: tree_cpu_s(pid) for name, pid in self.pids.items()}
        sample["bench client"] = time.process_time()
        return sample

    def cores(self) -> dict[str, float]:
        end, elapsed = self._sample(), max(time.monotonic() - self.t0, 1e-6)
        return {name: round((end[name] - self.start[name]) / elapsed, 2) for name in end}


# ----- one step: a fixed rate for a while -------------------------------------------------------


@dataclass
class Step:
    rate_per_s: float
    seconds: float
    sent: int = 0
    ok: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    p50_ms: float = math.nan
    p99_ms: float = math.nan
    max_ms: float = math.nan
    achieved_rate_per_s: float = 0.0
    temporal_p99_ms: float = math.nan  # Server-Timing: time in Temporal calls (the server accepting the start)
    app_p99_ms: float = math.nan  # Server-Timing: the whole handler, Temporal included
    own_p99_ms: float = math.nan  # the API's own code: app - temporal
    queued_p99_ms: float = math.nan  # before the handler ran: client, loopback, uvicorn's queue
    kept_up: bool = False
    caught_up_after_s: float | None = None  # after the last response, until every ticket was processed
    not_processed: int = 0
    cpu_cores: dict[str, float] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.ok == self.sent and self.kept_up and self.p99_ms <= P99_LIMIT_MS


async def _processed(http: httpx.AsyncClient, headers: dict[str, str], customer: str) -> int:
    """How many tickets of this customer have run their first steps (TicketStatus published)."""
    n, cursor = 0, None
    while True:
        params: dict[str, Any] = {"customer": customer, "status": "new", "limit": 100}
        if cursor:
            params["cursor"] = cursor
        r = await http.get("/v1/tickets", params=params, headers=headers)
        r.raise_for_status()
        page = r.json()
        n += len(page["tickets"])
        cursor = page["next_cursor"]
        if not cursor:
            return n


async def run_step(api_base_url: str, token: str, rate_per_s: float, seconds: float, *,
                   grace_s: float = KEEP_UP_GRACE_S, pids: dict[str, int] | None = None) -> Step:
    step = Step(rate_per_s=rate_per_s, seconds=seconds)
    n = max(1, round(rate_per_s * seconds))
    run = uuid.uuid4().hex[:8]
    customer = f"bench-api-{run}"
    headers = {"Authorization": f"Bearer {token}"}
    latencies: list[float] = []
    temporal: list[float] = []
    app: list[float] = []
    own: list[float] = []
    queued: list[float] = []
    limits = httpx.Limits(max_connections=max(64, int(rate_per_s)), max_keepalive_connections=max(64, int(rate_per_s)))
    async with httpx.AsyncClient(base_url=api_base_url, timeout=30, limits=limits) as http:
        await http.get("/healthz")  # warm a connection
        loop = asyncio.get_running_loop()
        meter = CpuMeter(pids)
        t0 = loop.time() + 0.2

        async def one(i: int) -> None:
            scheduled = t0 + i / rate_per_s
            await asyncio.sleep(max(0.0, scheduled - loop.time()))
            body = {"id": f"bench-{run}-{i}", "subject": "Bench: router reboots every hour", "customer_id": customer,
                    "priority": "P4", "description": "opened by bench.api_bench"}
            try:
                r = await http.post("/v1/tickets", json=body, headers=headers)
            except httpx.HTTPError as exc:
                key = type(exc).__name__
                step.errors[key] = step.errors.get(key, 0) + 1
                return
            done = loop.time()
            if r.status_code != 201:
                key = str(r.status_code)
                step.errors[key] = step.errors.get(key, 0) + 1
                return
            step.ok += 1
            total_ms = (done - scheduled) * 1000
            timing = _server_timing(r.headers.get("server-timing"))
            latencies.append(total_ms)
            if "app" in timing:
                app.append(timing["app"])
                temporal.append(timing.get("temporal", 0.0))
                own.append(timing["app"] - timing.get("temporal", 0.0))
                queued.append(max(0.0, total_ms - timing["app"]))

        await asyncio.gather(*(one(i) for i in range(n)))
        finished = loop.time()
        step.cpu_cores = meter.cores()
        step.sent = n
        step.achieved_rate_per_s = round(step.ok / max(finished - t0, 1e-6), 2) if step.ok else 0.0
        # Did every opened ticket's workflow keep up?
        deadline = finished + grace_s
        while True:
            processed = await _processed(http, headers, customer)
            if processed >= step.ok:
                step.kept_up, step.caught_up_after_s = True, round(loop.time() - finished, 2)
                break
            if loop.time() > deadline:
                step.not_processed = step.ok - processed
                break
            await asyncio.sleep(0.25)
        if not step.kept_up:  # how far behind: wait (bounded) for the backlog to drain before the next step
            drain_deadline = loop.time() + 120
            while loop.time() < drain_deadline and await _processed(http, headers, customer) < step.ok:
                await asyncio.sleep(1)
    step.p50_ms = round(quantile(latencies, 0.50), 1)
    step.p99_ms = round(quantile(latencies, 0.99), 1)
    step.max_ms = round(max(latencies), 1) if latencies else math.nan
    step.temporal_p99_ms = round(quantile(temporal, 0.99), 1)
    step.app_p99_ms = round(quantile(app, 0.99), 1)
    step.own_p99_ms = round(quantile(own, 0.99), 1)
    step.queued_p99_ms = round(quantile(queued, 0.99), 1)
    return step


# ----- where the limit is ----------------------------------------------------------------------


def where_is_the_limit(step: Step) -> dict[str, Any]:
    """Name the component that stopped `step` from passing, with the evidence."""
    cpu = {k: v for k, v in step.cpu_cores.items() if k != "bench client"}
    busiest = max(cpu, key=lambda k: cpu[k]) if cpu else None
    evidence: dict[str, Any] = {"rate_per_s": step.rate_per_s, "p99_ms": step.p99_ms, "cpu_cores": step.cpu_cores,
                                "temporal_p99_ms": step.temporal_p99_ms, "api_own_p99_ms": step.own_p99_ms,
                                "queued_p99_ms": step.queued_p99_ms}
    if step.ok < step.sent:
        return {"component": "api", "reason": f"{step.sent - step.ok} of {step.sent} opens failed: {step.errors}",
                **evidence}
    if not step.kept_up:
        named = next((c for c in ("worker", "server") if busiest and c in busiest), None)
        component = named or "server or worker"
        return {"component": component, "reason": f"{step.not_processed} of {step.ok} tickets not processed "
                f"{KEEP_UP_GRACE_S:g} s after the last open: the workflows fell behind", **evidence}
    parts = {"server": step.temporal_p99_ms, "api": step.own_p99_ms, "queue": step.queued_p99_ms}
    top = max(parts, key=lambda k: parts[k] if not math.isnan(parts[k]) else -1)
    if top == "queue":  # requests waited before the handler ran: the API process (or the machine) is saturated
        total = sum(cpu.values()) + step.cpu_cores.get("bench client", 0.0)
        machine = os.cpu_count() or 1
        saturated = bool(cpu) and total >= 0.9 * machine
        component = f"machine ({total:.1f} of {machine} cores busy; most: {busiest})" if saturated else "api"
        return {"component": component, "reason": f"p99 {step.p99_ms} ms > {P99_LIMIT_MS:g} ms, mostly waiting before "
                f"the API handler ran ({step.queued_p99_ms} ms p99)", **evidence}
    return {"component": top, "reason": f"p99 {step.p99_ms} ms > {P99_LIMIT_MS:g} ms, mostly in "
            f"{'Temporal (the server accepting starts)' if top == 'server' else 'the API code'}", **evidence}


# ----- public entry points ----------------------------------------------------------------------


async def find_max_rate(api_base_url: str, token: str, *, start_rate: float = 20, step_seconds: float = 10,
                        max_rate: float = 500, budget_s: float = 150, grace_s: float = KEEP_UP_GRACE_S,
                        pids: dict[str, int] | None = None, log: Any = None) -> dict[str, Any]:
    """The highest sustained rate with p99 <= 50 ms and every workflow keeping up; and what stops the next one.

    Climbs by x1.5 from `start_rate` until a step fails (or `max_rate`), then bisects twice
    between the last pass and the first failure, within `budget_s` seconds of stepping."""
    t_end = time.monotonic() + budget_s
    steps: list[Step] = []

    async def attempt(rate: float) -> Step:
        rate = round(rate, 1)
        s = await run_step(api_base_url, token, rate, step_seconds, grace_s=grace_s, pids=pids)
        steps.append(s)
        if log:
            log(f"  {rate:6.1f}/s: p99 {s.p99_ms} ms, kept up {s.kept_up}, ok {s.ok}/{s.sent} -> "
                f"{'pass' if s.passed else 'FAIL'}")
        await asyncio.sleep(1.0)
        return s

    best: Step | None = None
    failed: Step | None = None
    rate = start_rate
    while time.monotonic() < t_end and rate <= max_rate:
        s = await attempt(rate)
        if s.passed:
            best, rate = s, rate * 1.5
        else:
            failed = s
            break
    if best is None and failed is not None:  # even the start failed: come down
        rate = start_rate / 2
        while rate >= 1 and time.monotonic() < t_end:
            s = await attempt(rate)
            if s.passed:
                best = s
                break
            failed, rate = s, rate / 2
    for _ in range(2):  # refine between the last pass and the first failure
        if best is None or failed is None or time.monotonic() >= t_end or failed.rate_per_s - best.rate_per_s < 3:
            break
        s = await attempt((best.rate_per_s + failed.rate_per_s) / 2)
        if s.passed:
            best = s
        else:
            failed = s
    return {
        "api_max_rate_per_s": best.rate_per_s if best else 0.0,
        "api_max_rate_p99_ms": best.p99_ms if best else None,
        "api_limit": where_is_the_limit(failed) if failed else {
            "component": None, "reason": f"no failure up to {rate / 1.5:g}/s (max_rate or time budget reached)"},
        "api_rate_steps": [asdict(s) | {"passed": s.passed} for s in steps],
    }


async def run_api_bench(api_base_url: str, token: str, rate_per_s: float = 20, seconds: float = 30, *,
                        search_max: bool = True, step_seconds: float = 10, budget_s: float = 150,
                        pids: dict[str, int] | None = None, log: Any = None) -> dict[str, Any]:
    """Open-ticket latency at `rate_per_s` for `seconds`, then (unless `search_max=False`) the max sustained rate.

    Returns api_open_p50_ms, api_open_p99_ms, api_rate_per_s (the fixed rate), api_max_rate_per_s and
    api_limit (which component stopped the next rate, and why), with the details of every step."""
    if log:
        log(f"API: {rate_per_s:g}/s for {seconds:g} s")
    fixed = await run_step(api_base_url, token, rate_per_s, seconds, pids=pids)
    if log:
        log(f"  p50 {fixed.p50_ms} ms, p99 {fixed.p99_ms} ms, kept up {fixed.kept_up}, ok {fixed.ok}/{fixed.sent}")
    result: dict[str, Any] = {
        "api_open_p50_ms": fixed.p50_ms, "api_open_p99_ms": fixed.p99_ms, "api_rate_per_s": rate_per_s,
        "api_seconds": seconds, "api_open_ok": fixed.ok, "api_open_sent": fixed.sent,
        "api_achieved_rate_per_s": fixed.achieved_rate_per_s, "api_kept_up": fixed.kept_up,
        "api_target_met": fixed.passed, "api_fixed_step": asdict(fixed),
    }
    if search_max:
        if log:
            log("API: searching the max sustained rate (p99 <= 50 ms, workflows keeping up)")
        result.update(await find_max_rate(api_base_url, token, start_rate=rate_per_s, step_seconds=step_seconds,
                                          budget_s=budget_s, pids=pids, log=log))
    return result


# ----- standalone: a stack of our own ----------------------------------------------------------


def _log(msg: str, _t0: float = time.monotonic()) -> None:
    print(f"[{time.monotonic() - _t0:7.1f}s] {msg}", flush=True)


async def _wait_ready(base: str, api: Child, timeout: float = 60) -> None:
    """Until /readyz says Temporal is reachable and a worker polls (the stack only waited for the port)."""
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(base_url=base, timeout=5) as http:
        while True:
            api.check()
            try:
                if (await http.get("/readyz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("the API was not ready (Temporal reachable, a worker polling) in time")
            await asyncio.sleep(0.25)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.api_bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--rate", type=float, default=20, help="fixed request rate, per second (default 20)")
    p.add_argument("--seconds", type=float, default=30, help="how long at the fixed rate (default 30)")
    p.add_argument("--step-seconds", type=float, default=10, help="length of each step of the max-rate search")
    p.add_argument("--budget", type=float, default=150, help="time budget of the max-rate search, seconds")
    p.add_argument("--no-search", action="store_true", help="only the fixed rate")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "api.json")
    args = p.parse_args(argv)
    ephemeral_keys()  # payloads encrypted as in production, keys gone with the run

    with tempfile.TemporaryDirectory(prefix="api-bench-") as tmp_dir:
        _log(f"starting the stack (dev server with SQLite WAL in {tmp_dir}, worker, API) ...")
        # the bench measures the system (not the per-token limit), with the default policy
        stack = Stack(Path(tmp_dir), persistent=True, task_queue="api-bench",
                      env={"ESCALATION_POLICY": None, "ESCALATION_API_RATE_PER_S": "0"})
        with stack.running(api=True):
            api = stack.api
            assert api is not None and api.token is not None  # the stack's dev tokens
            asyncio.run(_wait_ready(api.base_url, api.process))
            worker = stack.children[0]
            _log(f"stack ready: server {stack.address}, worker pid {worker.pid}, API {api.base_url} (pid {api.process.pid})")
            pids = {"server": stack.server.pid() or 0, "worker": worker.pid, "api": api.process.pid}
            result = asyncio.run(run_api_bench(api.base_url, api.token, args.rate, args.seconds,
                                               search_max=not args.no_search, step_seconds=args.step_seconds,
                                               budget_s=args.budget, pids=pids, log=_log))
    result["machine"] = {"cpus": os.cpu_count(), "python": sys.version.split()[0], "platform": sys.platform}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    summary = {k: result.get(k) for k in ("api_open_p50_ms", "api_open_p99_ms", "api_rate_per_s", "api_kept_up",
                                          "api_max_rate_per_s", "api_limit")}
    print(json.dumps(summary, indent=2, default=str))
    _log(f"written {args.out}")


if __name__ == "__main__":
    main()
