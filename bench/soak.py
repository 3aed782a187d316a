"""`make soak`: mixed API traffic for a while, on a stack of its own; and the probe that chose the API's in-flight bound.

Soak (the default): opens at `--rate` per second (open loop: each request is sent at its scheduled time), and with
them agents' actions (acknowledging an earlier ticket, `--actions-per-open` 0.5), reads (a ticket,
`--reads-per-open` 1) and list pages (`--lists-per-open` 0.1), for `--minutes` (default 10). A share of the opens
(`--breach-share`, P3 under the bench policy) are never acknowledged: their acknowledge deadline (`--breach-after`,
30 s) falls due during the run, and the escalation's lateness (recorded_at - due_at in the outbox) is the breach
lateness. Reported:

- every answer by route kind and status; `unexpected` counts any status other than 2xx, 429 and 503 (and transport
  errors): the soak passes when it is 0;
- memory (RSS, process tree) of the API, the worker and the server, mean of the first minute vs the last minute
  (of the first and last quarter when the run is shorter than 4 minutes);
- breach lateness p50/p99/max and how many breaches were seen of the tickets due (target p99 <= 1 s);
- how late the load generator itself sent its requests (`client_lag_s`: on a busy machine it falls behind, and
  latencies, counted from each request's scheduled time, include that lag).

`passed`: no unexpected status, and every breach due was seen (`breach_target_met` says whether p99 <= 1 s).

Probe (`--probe`): opens only, at rising rates for `--step-seconds` each, once with the bound off
(ESCALATION_API_MAX_IN_FLIGHT=0) and once at the default: per step the answers by status, the latency of the opens
that succeeded (and of the shed ones), the opens per second accepted. Where latency leaves the flat is where the
server saturates; the README's "Back-pressure" gives the figures and the bound they chose.

    python -m bench.soak [--minutes 10] [--rate 20] [--out bench/results/soak.json]
    python -m bench.soak --probe [--rates 10,20,40,60,80,120] [--step-seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import yaml

from bench.api_bench import _server_timing, _wait_ready, quantile
from bench.policy import BREACH_PRIORITY, LONG_PRIORITY, bench_policy
from bench.procfs import tree_rss_mb
from bench.run import OutboxTail
from starter.devstack.stack import Stack
from starter.runtime.codec import ephemeral_keys

ROOT = Path(__file__).resolve().parents[1]
ALLOWED = {429, 503}
BREACH_P99_TARGET_S = 1.0


def _log(msg: str, _t0: float = time.monotonic()) -> None:
    print(f"[{time.monotonic() - _t0:7.1f}s] {msg}", flush=True)


@dataclass
class Tally:
    """Answers by kind and status, latencies of the successes and of the sheds."""

    statuses: Counter[str] = field(default_factory=Counter)
    ok_ms: dict[str, list[float]] = field(default_factory=dict)
    shed_ms: list[float] = field(default_factory=list)
    shed_app_ms: list[float] = field(default_factory=list)  # the API's own time on a shed request (Server-Timing)
    codes_503: Counter[str] = field(default_factory=Counter)

    def add(self, kind: str, status: int | str, ms: float, code: str | None = None, app_ms: float | None = None) -> None:
        self.statuses[f"{kind} {status}"] += 1
        if isinstance(status, int) and 200 <= status < 300:
            self.ok_ms.setdefault(kind, []).append(ms)
        elif status == 503:
            self.codes_503[code or "?"] += 1
            if code == "overloaded":
                self.shed_ms.append(ms)
                if app_ms is not None:
                    self.shed_app_ms.append(app_ms)

    @property
    def unexpected(self) -> int:
        return sum(n for key, n in self.statuses.items()
                   if not ((s := key.rsplit(" ", 1)[1]).isdigit() and (s.startswith("2") or int(s) in ALLOWED)))

    def summary(self) -> dict[str, Any]:
        return {
            "by_status": dict(sorted(self.statuses.items())), "unexpected": self.unexpected,
            "codes_503": dict(self.codes_503),
            "ok_latency_ms": {k: {"n": len(v), "p50": round(quantile(v, 0.5), 1), "p99": round(quantile(v, 0.99), 1),
                                  "max": round(max(v), 1)} for k, v in sorted(self.ok_ms.items()) if v},
            "shed_latency_ms": {"n": len(self.shed_ms), "p50": round(quantile(self.shed_ms, 0.5), 1),
                                "p99": round(quantile(self.shed_ms, 0.99), 1),
                                "in_api_p50": round(quantile(self.shed_app_ms, 0.5), 1),
                                "in_api_p99": round(quantile(self.shed_app_ms, 0.99), 1)} if self.shed_ms else None,
        }


async def _send(http: httpx.AsyncClient, tally: Tally, kind: str, method: str, url: str,
                scheduled: float, **kw: Any) -> httpx.Response | None:
    """One request; latency counted from its scheduled time (a late client cannot hide the server's queue)."""
    await asyncio.sleep(max(0.0, scheduled - time.monotonic()))
    try:
        r = await http.request(method, url, **kw)
    except httpx.HTTPError as exc:
        tally.add(kind, type(exc).__name__, 0.0)
        return None
    code = None
    if r.status_code == 503:
        try:
            code = r.json()["error"]["code"]
        except (ValueError, KeyError, TypeError):
            code = "?"
    app_ms = _server_timing(r.headers.get("server-timing")).get("app")
    tally.add(kind, r.status_code, (time.monotonic() - scheduled) * 1000, code, app_ms)
    return r


def _open_body(tid: str, customer: str, priority: str) -> dict[str, Any]:
    return {"id": tid, "subject": "Soak: router reboots every hour", "customer_id": customer, "priority": priority,
            "description": "opened by bench.soak"}


# ----- the probe: where the server saturates ----------------------------------------------------------------------


async def probe_step(base: str, token: str, rate: float, seconds: float) -> dict[str, Any]:
    tally, run = Tally(), uuid.uuid4().hex[:8]
    headers = {"Authorization": f"Bearer {token}"}
    n = max(1, round(rate * seconds))
    limits = httpx.Limits(max_connections=1000, max_keepalive_connections=200)
    async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as http:
        await http.get("/healthz")
        t0 = time.monotonic() + 0.2
        await asyncio.gather(*(_send(http, tally, "open", "POST", "/v1/tickets", t0 + i / rate, headers=headers,
                                     json=_open_body(f"P-{run}-{i}", f"probe-{run}", LONG_PRIORITY))
                               for i in range(n)))
        elapsed = time.monotonic() - t0
    ok = len(tally.ok_ms.get("open", []))
    return {"rate_per_s": rate, "sent": n, "accepted_per_s": round(ok / elapsed, 1), **tally.summary()}


async def probe(stack: Stack, rates: list[float], seconds: float, bounds: list[int]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for bound in bounds:
        if stack.api is not None:
            stack.stop_child(stack.api.process)
        api = stack.start_api(env={"ESCALATION_API_MAX_IN_FLIGHT": str(bound)})
        assert api.token is not None
        await _wait_ready(api.base_url, api.process)
        steps = []
        for rate in rates:
            step = await probe_step(api.base_url, api.token, rate, seconds)
            lat = step["ok_latency_ms"].get("open", {})
            _log(f"bound {bound}: {rate:g}/s -> accepted {step['accepted_per_s']}/s, ok p50 {lat.get('p50')} ms "
                 f"p99 {lat.get('p99')} ms, {step['by_status']}")
            steps.append(step)
            await asyncio.sleep(3)  # let the workflows' first tasks drain between steps
        out[f"bound_{bound}"] = steps
    return out


def _due(i: int, per_tick: float) -> int:
    """How many of a request kind tick i sends so that ticks 0..i have sent round(per_tick * (i + 1)) in all."""
    return round(per_tick * (i + 1)) - round(per_tick * i)


# ----- the soak ----------------------------------------------------------------------------------------------------


class Memory:
    """RSS of the API, worker and server every few seconds."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.samples: list[tuple[float, dict[str, float]]] = []

    async def run(self, stop: asyncio.Event, every_s: float = 5.0) -> None:
        t0 = time.monotonic()
        while not stop.is_set():
            self.samples.append((time.monotonic() - t0, {k: tree_rss_mb(p) for k, p in self.pids.items()}))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every_s)

    def first_vs_last(self, duration_s: float) -> dict[str, Any]:
        window = 60.0 if duration_s >= 240 else duration_s / 4
        first = [s for t, s in self.samples if t <= window]
        last = [s for t, s in self.samples if t >= duration_s - window]

        def mean(rows: list[dict[str, float]], k: str) -> float | None:
            return round(sum(r[k] for r in rows) / len(rows), 1) if rows else None

        return {"window_s": round(window, 1), **{k: {"first_mb": mean(first, k), "last_mb": mean(last, k),
                                                      "peak_mb": max((s[k] for _, s in self.samples), default=None)}
                                                  for k in self.pids}}


async def soak(base: str, token: str, *, rate: float, seconds: float, breach_share: float, breach_after: float,
               tail: OutboxTail, pids: dict[str, int], reads_per_open: float = 1.0, actions_per_open: float = 0.5,
               lists_per_open: float = 0.1, log_every_s: float = 30.0) -> dict[str, Any]:
    tally, run, rng = Tally(), uuid.uuid4().hex[:8], random.Random(0)
    headers = {"Authorization": f"Bearer {token}"}
    opened: list[str] = []  # long-lived tickets opened (acknowledge and read targets)
    breach_ok: list[str] = []
    to_ack: list[str] = []
    memory = Memory(pids)
    stop = asyncio.Event()
    stop_tail = asyncio.Event()
    sampler = asyncio.create_task(memory.run(stop))
    follower = asyncio.create_task(tail.follow(stop_tail, interval=0.5))
    limits = httpx.Limits(max_connections=1000, max_keepalive_connections=200)
    tasks: set[asyncio.Task[None]] = set()
    async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as http:

        async def open_one(i: int, at: float) -> None:
            breach = rng.random() < breach_share
            tid = f"S{'B' if breach else 'L'}-{run}-{i}"
            r = await _send(http, tally, "open", "POST", "/v1/tickets", at, headers=headers,
                            json=_open_body(tid, f"soak-{run}", BREACH_PRIORITY if breach else LONG_PRIORITY))
            if r is not None and r.status_code == 201:
                (breach_ok if breach else opened).append(tid)
                if not breach:
                    to_ack.append(tid)

        async def act(at: float) -> None:
            if to_ack:
                tid = to_ack.pop(rng.randrange(len(to_ack)))
                await _send(http, tally, "acknowledge", "POST", f"/v1/tickets/{tid}/acknowledge", at, headers=headers,
                            json={})

        async def read(at: float) -> None:
            if opened:
                await _send(http, tally, "read", "GET", f"/v1/tickets/{rng.choice(opened)}", at, headers=headers)

        async def page(at: float) -> None:
            await _send(http, tally, "list", "GET", "/v1/tickets", at, headers=headers,
                        params={"customer": f"soak-{run}", "limit": 20})

        t0 = time.monotonic() + 0.2
        n = max(1, round(rate * seconds))
        next_log = t0 + log_every_s
        lag: list[float] = []  # how late the load generator sent each tick (it shares the machine's cores)
        for i in range(n):
            at = t0 + i / rate
            await asyncio.sleep(max(0.0, at - time.monotonic()))
            lag.append(time.monotonic() - at)
            work = [open_one(i, at), *(read(at) for _ in range(_due(i, reads_per_open))),
                    *(act(at) for _ in range(_due(i, actions_per_open))),
                    *(page(at) for _ in range(_due(i, lists_per_open)))]
            for coro in work:
                task = asyncio.create_task(coro)
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            if time.monotonic() >= next_log:
                next_log += log_every_s
                rss = memory.samples[-1][1] if memory.samples else {}
                _log(f"  {i}/{n} ticks; {dict(tally.statuses)}; rss MB {rss}; escalations {len(tail.escalations)}")
        await asyncio.gather(*list(tasks))
        duration = time.monotonic() - t0
        stop.set()
        await sampler
    # the last breach tickets fall due `breach_after` after their open: wait for them (bounded)
    deadline = time.monotonic() + breach_after + 30
    due = set(breach_ok)
    while time.monotonic() < deadline and len(due & set(tail.escalations)) < len(due):
        await asyncio.sleep(0.5)
    stop_tail.set()
    await follower
    late = [tail.escalations[t]["latency_s"] for t in due if t in tail.escalations]
    return {
        "rate_per_s": rate, "seconds": round(duration, 1),
        "mix_per_open": {"reads": reads_per_open, "actions": actions_per_open, "lists": lists_per_open},
        "client_lag_s": {"p50": round(quantile(lag, 0.5), 3), "p99": round(quantile(lag, 0.99), 3),
                         "max": round(max(lag), 3)},
        **tally.summary(),
        "opened_long": len(opened), "opened_breach": len(breach_ok), "acknowledged_targets_left": len(to_ack),
        "memory": memory.first_vs_last(duration),
        "breach": {"due": len(due), "seen": len(late), "p50_s": round(quantile(late, 0.5), 3),
                   "p99_s": round(quantile(late, 0.99), 3), "max_s": round(max(late), 3) if late else None},
        "breach_target_met": bool(late) and quantile(late, 0.99) <= BREACH_P99_TARGET_S,
        "passed": tally.unexpected == 0 and len(late) == len(due),
    }


# ----- standalone ----------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=10.0, help="soak length (default 10)")
    p.add_argument("--rate", type=float, default=20.0, help="opens per second (default 20, the sustainable rate "
                                                            "measured on 2 cores; see the README)")
    p.add_argument("--breach-share", type=float, default=0.2, help="share of opens left to breach (default 0.2)")
    p.add_argument("--breach-after", type=float, default=30.0, help="their acknowledge deadline, seconds")
    p.add_argument("--reads-per-open", type=float, default=1.0, help="ticket reads per open (default 1)")
    p.add_argument("--actions-per-open", type=float, default=0.5, help="acknowledges per open (default 0.5)")
    p.add_argument("--lists-per-open", type=float, default=0.1, help="list pages per open (default 0.1)")
    p.add_argument("--max-in-flight", type=int, default=None, help="the API's bound (default: the API's default)")
    p.add_argument("--probe", action="store_true", help="the saturation probe instead of the soak")
    p.add_argument("--rates", default="10,20,40,60,80,120", help="--probe: open rates per second")
    p.add_argument("--step-seconds", type=float, default=10.0, help="--probe: seconds per rate")
    p.add_argument("--bounds", default="0,16", help="--probe: ESCALATION_API_MAX_IN_FLIGHT values to compare")
    p.add_argument("--out", type=Path, default=None, help="JSON results (default bench/results/soak.json, "
                                                          "or probe.json with --probe)")
    args = p.parse_args(argv)
    out = args.out or ROOT / "bench" / "results" / ("probe.json" if args.probe else "soak.json")
    ephemeral_keys()  # payloads encrypted as in production, keys gone with the run

    with tempfile.TemporaryDirectory(prefix="soak-") as tmp_dir:
        tmp = Path(tmp_dir)
        policy_file = tmp / "policy.yaml"
        policy = bench_policy(breach_after=timedelta(seconds=args.breach_after))
        policy_file.write_text(yaml.safe_dump(policy.model_dump(mode="json", by_alias=True), sort_keys=False))
        env: dict[str, str | None] = {"ESCALATION_POLICY": str(policy_file), "ESCALATION_API_RATE_PER_S": "0"}
        if args.max_in_flight is not None:
            env["ESCALATION_API_MAX_IN_FLIGHT"] = str(args.max_in_flight)
        _log(f"starting the stack (dev server with SQLite WAL in {tmp_dir}, worker, API) ...")
        stack = Stack(tmp, persistent=True, task_queue="soak", env=env)
        with stack.running(api=True):
            api = stack.api
            assert api is not None and api.token is not None
            asyncio.run(_wait_ready(api.base_url, api.process))
            if args.probe:
                rates = [float(r) for r in args.rates.split(",")]
                bounds = [int(b) for b in args.bounds.split(",")]
                result: dict[str, Any] = {"probe": asyncio.run(probe(stack, rates, args.step_seconds, bounds))}
            else:
                pids = {"api": api.process.pid, "worker": stack.children[0].pid, "server": stack.server.pid() or 0}
                _log(f"soak: {args.rate:g} opens/s with actions and reads for {args.minutes:g} min")
                result = {"soak": asyncio.run(soak(api.base_url, api.token, rate=args.rate,
                                                   seconds=args.minutes * 60, breach_share=args.breach_share,
                                                   breach_after=args.breach_after, tail=OutboxTail(stack.outbox),
                                                   pids=pids, reads_per_open=args.reads_per_open,
                                                   actions_per_open=args.actions_per_open,
                                                   lists_per_open=args.lists_per_open))}
    result["machine"] = {"cpus": os.cpu_count(), "python": sys.version.split()[0]}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    if not args.probe:
        s = result["soak"]
        print(json.dumps({k: s[k] for k in ("by_status", "unexpected", "codes_503", "client_lag_s", "memory",
                                            "breach", "breach_target_met", "passed")},
                         indent=2))
    _log(f"written {out}")
    if not args.probe and not result["soak"]["passed"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
