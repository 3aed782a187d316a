"""Worker memory per cached ticket: where it goes, measured (`python -m bench.memory_per_ticket --tickets 1000`).

One run, one process: a fresh dev server (the stack's), the real worker (`build_worker`: every workflow type and
activity, the sandbox as shipped) in this process with a cache larger than everything the run opens, then

1. warm-up: a few tickets and bare workflows, so that every one-off cost (imports, pydantic schemas, the shared
   policy, the SDK's first-use state) is paid before measuring;
2. `bare`: N bare workflows (bench/baseline.py's BaselineWorkflow: the ticket's Temporal operations, no business
   logic), measured by RSS only;
3. `ticket`: N long-lived tickets (the bench's P4 tickets, bench policy), measured by RSS only;
4. `traced`: N more tickets with tracemalloc on, its snapshots diffed: the bytes per cached ticket grouped by file,
   by line and by traceback (where in our code or the SDK's each allocation was made).

Each phase opens its workflows, waits until each has run its first task and its notifications are out (every run is
in the worker's cache, idle on its timer), collects garbage and reads the process's RSS; the per-workflow figure is
the difference divided by N. RSS is the figure `make bench` reports (`worker_kb_per_cached_ticket`); tracemalloc
counts only Python allocations (not the allocator's slack or the SDK core's Rust side) and says where they were made.
A breakdown and JSON (`--json`, default bench/results/memory.json) come out.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import gc
import json
import os
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy

from bench.baseline import BaselineWorkflow, noop
from bench.policy import LONG_PRIORITY, bench_policy
from starter.devstack.stack import Stack
from starter.runtime.codec import dev_key_file
from starter.runtime.logs import configure_logging
from starter.runtime.sdk_private import cached_workflow_runs
from starter.runtime.temporal import WORKFLOWS, build_worker, connect, workflow_runner
from workflows.common.policy import Policy
from workflows.ticket import Ticket, TicketInput, workflow_id
from workflows.ticket.workflow import TicketWorkflow

QUEUE = "memory-bench"
QUEUE_BEFORE = "memory-bench-before"
RESULTS = Path(__file__).resolve().parent / "results" / "memory.json"
WARMUP = 30
TOP = 25


def log(msg: str) -> None:
    print(f"[memory {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def rss_kb() -> int:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def settled_rss_kb() -> int:
    gc.collect()
    return rss_kb()


def reading() -> dict[str, int]:
    """The process's memory after a full collection, in KB: RSS, glibc's heap, Python's allocated blocks (count)."""
    rss = settled_rss_kb()
    return {"rss": rss, **{f"malloc_{k}": v for k, v in malloc_kb().items()}, "py_blocks": sys.getallocatedblocks()}


def per_run(before: dict[str, int], after: dict[str, int], n: int) -> dict[str, float]:
    return {k: round((after[k] - before[k]) / n, 1) for k in after if k in before}


class _Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]


def malloc_kb() -> dict[str, int]:
    """glibc's heap: bytes in use through malloc (the SDK core's Rust side, protobuf, Python's objects over 512
    bytes) and bytes free in its arenas (fragmentation), in KB; empty where glibc is not the allocator."""
    try:
        fn = ctypes.CDLL(None).mallinfo2
    except (OSError, AttributeError):
        return {}
    fn.restype = _Mallinfo2
    m = fn()
    return {"in_use": (m.uordblks + m.hblkhd) // 1024, "free": m.fordblks // 1024}


# ----- opening workflows and waiting until each is cached and idle ---------------------------------------------


async def open_all(n: int, start: Callable[[int], Awaitable[object]], concurrency: int) -> None:
    sem = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with sem:
            await start(i)

    await asyncio.gather(*(one(i) for i in range(n)))


def outbox_lines(path: Path) -> int:
    try:
        with path.open("rb") as f:
            return sum(1 for _ in f)
    except FileNotFoundError:
        return 0


async def settle(cached: Callable[[], int], expected_runs: int, outbox: Path, quiet_s: float, timeout_s: float) -> None:
    """Until the workers cache `expected_runs` runs and the outbox stops growing for `quiet_s` (notifications out)."""
    deadline = time.monotonic() + timeout_s
    last, still_since = -1, time.monotonic()
    while time.monotonic() < deadline:
        lines, runs = outbox_lines(outbox), cached()
        if lines != last:
            last, still_since = lines, time.monotonic()
        if runs >= expected_runs and time.monotonic() - still_since >= quiet_s:
            return
        await asyncio.sleep(0.25)
    log(f"warning: not settled after {timeout_s:.0f}s: {cached()} of {expected_runs} cached")


def ticket_starter(client: Client, policy: Policy, prefix: str, queue: str = QUEUE) -> Callable[[int], Awaitable[object]]:
    async def start(i: int) -> object:
        ticket = Ticket(id=f"{prefix}-{i}", subject="memory bench long-lived", customer_id="bench",
                        priority=LONG_PRIORITY, opened_at=datetime.now(UTC))
        return await client.start_workflow(  # as bench/run.py opens its long-lived tickets
            TicketWorkflow.run, TicketInput(ticket=ticket, policy=policy), id=workflow_id(ticket.id),
            task_queue=queue, id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE)
    return start


def bare_starter(client: Client, prefix: str, pad: int = 0) -> Callable[[int], Awaitable[object]]:
    """`pad`: characters added to the workflow's input (and so to each of its activities' inputs, which name it)."""
    async def start(i: int) -> object:
        return await client.start_workflow(BaselineWorkflow.run, f"{prefix}-{i}" + "x" * pad, id=f"{prefix}-{i}",
                                           task_queue=QUEUE)
    return start


# ----- the tracemalloc breakdown -------------------------------------------------------------------------------

BUCKETS = (  # first match wins: where an allocation was made, by its innermost frame's file
    ("workflow_sandbox", "temporalio/worker/workflow_sandbox/"),
    ("sdk_workflow_instance", "temporalio/worker/_workflow_instance.py"),
    ("sdk_worker", "temporalio/worker/"),
    ("sdk_protobuf_bridge", "temporalio/bridge/"),
    ("sdk_converter", "temporalio/converter.py"),
    ("sdk_other", "temporalio/"),
    ("protobuf", "google/protobuf/"),
    ("pydantic", "pydantic"),
    ("ticket_shell", "workflows/ticket/workflow.py"),
    ("pure_core", "/workflows/"),
    ("import_machinery", "<frozen importlib"),
    ("asyncio", "/asyncio/"),
    ("stdlib", "/lib/python3"),
)


def bucket(filename: str) -> str:
    return next((name for name, part in BUCKETS if part in filename), "other")


def short(filename: str) -> str:
    for marker in ("site-packages/", "/lib/python3.11/", "wt-memory/", "/work/main/"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename


def breakdown(before: tracemalloc.Snapshot, after: tracemalloc.Snapshot, n: int) -> dict[str, Any]:
    keep = [tracemalloc.Filter(False, tracemalloc.__file__)]
    before, after = before.filter_traces(keep), after.filter_traces(keep)
    by_line = after.compare_to(before, "lineno")
    by_bucket: Counter[str] = Counter()
    by_file: Counter[str] = Counter()
    for s in by_line:
        frame = s.traceback[0]
        by_bucket[bucket(frame.filename)] += s.size_diff
        by_file[short(frame.filename)] += s.size_diff
    total = sum(s.size_diff for s in by_line)
    blocks = sum(s.count_diff for s in by_line)
    # Python hands blocks over 512 bytes to malloc (glibc's heap), smaller ones to its own arenas
    large = sum(t.size for t in after.traces if t.size > 512) - sum(t.size for t in before.traces if t.size > 512)

    def kb(b: float) -> float:
        return round(b / n / 1024, 2)

    tb = after.compare_to(before, "traceback")[:TOP] if after.traceback_limit > 1 else []
    return {
        "python_kb_per_ticket": kb(total), "python_blocks_per_ticket": round(blocks / n, 1),
        "python_large_kb_per_ticket": kb(large),
        "by_bucket_kb": {k: kb(v) for k, v in by_bucket.most_common()},
        "by_file_kb": {k: kb(v) for k, v in by_file.most_common(TOP)},
        "by_line_kb": [{"at": f"{short(s.traceback[0].filename)}:{s.traceback[0].lineno}", "kb": kb(s.size_diff),
                        "blocks": round(s.count_diff / n, 1)} for s in by_line[:TOP]],
        "by_traceback_kb": [{"kb": kb(s.size_diff), "blocks": round(s.count_diff / n, 1),
                             "frames": [f"{short(f.filename)}:{f.lineno}" for f in s.traceback
                                        if "importlib._bootstrap" not in f.filename][-8:]} for s in tb],
    }


def objects_by_type() -> Counter[str]:
    gc.collect()
    return Counter(type(o).__qualname__ for o in gc.get_objects())


# ----- the run -------------------------------------------------------------------------------------------------


async def measure(args: argparse.Namespace, stack: Stack) -> dict[str, Any]:
    n = args.tickets
    os.environ.update({k: v for k, v in stack.env().items() if k.startswith(("ESCALATION_", "TEMPORAL_"))})
    os.environ.pop("ESCALATION_POLICY", None)  # the bench brings its own policy
    configure_logging("WARNING")  # the in-process worker's activities log every notification at INFO
    client = await connect(stack.address, stack.namespace)
    policy = bench_policy()
    capacity = WARMUP * 3 + n * 4 + 100  # never evicts: every run the phases open stays cached
    worker = build_worker(client, QUEUE, workflows=[*WORKFLOWS, BaselineWorkflow], replace_activities=[noop],
                          max_cached_workflows=capacity, max_concurrent_workflow_tasks=args.concurrency,
                          workflow_runner=workflow_runner(also=[BaselineWorkflow.__module__]))  # as bench/baseline.py
    results: dict[str, Any] = {"tickets": n, "max_cached_workflows": capacity, "policy": policy.name,
                               "bare_pad": args.bare_pad}
    # --ab: the same tickets on a second worker whose sandbox re-imports the workflow shell for each run (as it did
    # before the shells were passed through): the before figure, measured in the same run
    before_worker = build_worker(client, QUEUE_BEFORE, workflows=[TicketWorkflow], max_cached_workflows=capacity,
                                 max_concurrent_workflow_tasks=args.concurrency,
                                 workflow_runner=workflow_runner(reimport_shells=True))
    async with worker, before_worker:
        runs = 0

        async def phase(name: str, start: Callable[[int], Awaitable[object]]) -> None:
            nonlocal runs
            t0 = time.monotonic()
            await open_all(n, start, args.concurrency)
            runs += n
            await settle(lambda: cached_workflow_runs(worker) + cached_workflow_runs(before_worker), runs,
                         stack.outbox, args.quiet, timeout_s=max(120.0, n / 5))
            log(f"{name}: {n} opened and cached in {time.monotonic() - t0:.1f}s")

        log("warm-up")
        await open_all(WARMUP, ticket_starter(client, policy, "MW"), args.concurrency)
        await open_all(WARMUP, bare_starter(client, "mem-bare-warm"), args.concurrency)
        runs = 2 * WARMUP
        if args.ab:
            await open_all(WARMUP, ticket_starter(client, policy, "MWB", QUEUE_BEFORE), args.concurrency)
            runs += WARMUP
        await settle(lambda: cached_workflow_runs(worker) + cached_workflow_runs(before_worker), runs,
                     stack.outbox, args.quiet, timeout_s=120)

        idle = reading()
        await phase("bare", bare_starter(client, "mem-bare", args.bare_pad))
        after_bare = reading()
        await phase("ticket", ticket_starter(client, policy, "MT"))
        after_tickets = reading()
        results["readings_kb"] = {"idle": idle, "after_bare": after_bare, "after_tickets": after_tickets}
        results["bare_kb_per_run"] = per_run(idle, after_bare, n)
        results["ticket_kb_per_run"] = per_run(after_bare, after_tickets, n)
        results["worker_kb_per_cached_bare"] = results["bare_kb_per_run"]["rss"]
        results["worker_kb_per_cached_ticket"] = results["ticket_kb_per_run"]["rss"]
        results["ticket_over_bare"] = round(results["worker_kb_per_cached_ticket"]
                                            / max(results["worker_kb_per_cached_bare"], 0.1), 2)
        log(f"per cached workflow: bare {results['bare_kb_per_run']}, ticket {results['ticket_kb_per_run']} (KB)")
        if args.ab:
            await phase("ticket, shell re-imported per run (before)", ticket_starter(client, policy, "MB", QUEUE_BEFORE))
            after_before = reading()
            results["ticket_reimported_kb_per_run"] = per_run(after_tickets, after_before, n)
            results["worker_kb_per_cached_ticket_before"] = results["ticket_reimported_kb_per_run"]["rss"]
            results["after_over_before"] = round(results["worker_kb_per_cached_ticket"]
                                                 / max(results["worker_kb_per_cached_ticket_before"], 0.1), 2)
            log(f"before (shell re-imported): {results['ticket_reimported_kb_per_run']} (KB)")

        if args.traced:
            types0 = objects_by_type()
            tracemalloc.start(args.frames)
            snap0 = tracemalloc.take_snapshot()
            before, own0 = reading(), tracemalloc.get_tracemalloc_memory()
            await phase("traced tickets", ticket_starter(client, policy, "MX"))
            gc.collect()
            snap1 = tracemalloc.take_snapshot()
            own1 = tracemalloc.get_tracemalloc_memory()
            tracemalloc.stop()
            types1 = objects_by_type()
            results["traced"] = breakdown(snap0, snap1, n)
            t = results["traced"]
            t["kb_per_run_with_tracemalloc"] = traced = per_run(before, reading(), n)
            t["tracemalloc_own_kb_per_ticket"] = round((own1 - own0) / n / 1024, 1)
            # what glibc's heap holds that is not Python's: the SDK core (Rust: the run's state machines) and
            # protobuf messages
            native = traced.get("malloc_in_use", 0) - t["tracemalloc_own_kb_per_ticket"] - t["python_large_kb_per_ticket"]
            results["where_kb_per_ticket"] = {
                "rss": results["worker_kb_per_cached_ticket"], "python_objects": t["python_kb_per_ticket"],
                "native_heap": round(native, 1),
                "allocator_slack": round(results["worker_kb_per_cached_ticket"] - t["python_kb_per_ticket"] - native, 1)}
            results["traced"]["objects_per_ticket"] = {
                t: round(c / n, 2) for t, c in (types1 - types0).most_common(TOP)}
        results["cached_runs"] = cached_workflow_runs(worker)
    return results


def print_report(r: dict[str, Any]) -> None:
    print(f"worker KB per cached workflow (RSS, N={r['tickets']}): ticket "
          f"{r['worker_kb_per_cached_ticket']}, bare {r['worker_kb_per_cached_bare']} (ticket / bare "
          f"{r['ticket_over_bare']})")
    print(f"  per ticket: {r['ticket_kb_per_run']}; per bare: {r['bare_kb_per_run']} (KB; py_blocks: a count)")
    if "worker_kb_per_cached_ticket_before" in r:
        print(f"  before (shell re-imported per run): {r['ticket_reimported_kb_per_run']}; after / before "
              f"{r['after_over_before']}")
    t = r.get("traced")
    if not t:
        return
    print(f"  where (KB per ticket): {r['where_kb_per_ticket']}")
    print(f"\ntracemalloc: {t['python_kb_per_ticket']} KB of Python allocations per cached ticket "
          f"({t['python_blocks_per_ticket']} blocks)")
    print("\nby where (innermost frame), KB per ticket:")
    for k, v in t["by_bucket_kb"].items():
        print(f"  {v:8.2f}  {k}")
    print("\nby file:")
    for k, v in t["by_file_kb"].items():
        print(f"  {v:8.2f}  {k}")
    print("\nby line:")
    for e in t["by_line_kb"]:
        print(f"  {e['kb']:8.2f}  {e['blocks']:7.1f} blocks  {e['at']}")
    if t["by_traceback_kb"]:
        print("\nby traceback (outermost ... innermost):")
        for e in t["by_traceback_kb"]:
            print(f"  {e['kb']:8.2f}  {e['blocks']:7.1f} blocks  " + "  <  ".join(reversed(e["frames"])))
    print("\nobjects per ticket by type:")
    for k, v in t["objects_per_ticket"].items():
        print(f"  {v:8.2f}  {k}")


def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="memory-bench-") as home:
        if not os.environ.get("ESCALATION_CODEC_KEYS"):  # payloads are encrypted: a key ring of the run's own
            os.environ["ESCALATION_CODEC_KEY_FILE"] = str(dev_key_file(Path(home) / "codec-keys.json"))
        stack = Stack(Path(home))
        stack.start_server()
        try:
            return asyncio.run(measure(args, stack))
        finally:
            stack.stop()


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.memory_per_ticket", description=__doc__.split("\n")[0])
    p.add_argument("--tickets", type=int, default=1000, help="N per phase (at most 2000)")
    p.add_argument("--no-traced", dest="traced", action="store_false", help="RSS only, no tracemalloc phase")
    p.add_argument("--frames", type=int, default=8, help="tracemalloc frames kept per allocation")
    p.add_argument("--concurrency", type=int, default=10, help="starts in flight (and the worker's concurrent tasks)")
    p.add_argument("--bare-pad", type=int, default=0,
                   help="characters added to each bare workflow's input and activity inputs (what payloads cost)")
    p.add_argument("--ab", action="store_true",
                   help="also N tickets on a worker whose sandbox re-imports the shell per run (the before figure)")
    p.add_argument("--quiet", type=float, default=2.0, help="seconds without a new outbox line that mean settled")
    p.add_argument("--json", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    if not 1 <= args.tickets <= 2000:
        p.error(f"--tickets: {args.tickets} is out of range; allowed: 1..2000")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    results = run(args)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    print_report(results)
    print(f"\nwritten: {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


def bench_figures(tickets: int, log: Callable[[str], None]) -> dict[str, Any]:
    """`make bench`'s memory phase (bench/run.py): this measurement in a process of its own (its RSS is the
    worker's), RSS only, with the before figure; the figures the bench JSON keeps."""
    import subprocess

    log(f"memory per cached ticket (bench/memory_per_ticket.py, {tickets} tickets per phase) ...")
    with tempfile.TemporaryDirectory(prefix="memory-bench-out-") as out:
        path = Path(out) / "memory.json"
        done = subprocess.run([sys.executable, "-m", "bench.memory_per_ticket", "--tickets", str(tickets),
                               "--no-traced", "--ab", "--json", str(path)], capture_output=True, text=True,
                              cwd=Path(__file__).resolve().parents[1], check=False)
        if done.returncode != 0 or not path.exists():
            return {"memory_error": (done.stderr or "no output")[-500:]}
        r = json.loads(path.read_text())
    keys = ("worker_kb_per_cached_ticket", "worker_kb_per_cached_bare", "worker_kb_per_cached_ticket_before",
            "after_over_before")
    return {k: r[k] for k in keys if k in r} | {"memory_tickets": tickets}
