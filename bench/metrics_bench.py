"""`metrics_report_s`: how long a 30-day escalation metrics report takes (EscalationClient.metrics, the function
behind GET /v1/metrics and `escalation metrics`) over the tickets in the server's visibility.

In `make bench` it runs once the bench has opened its tickets (bench/run.py). Alone, on its own dev server and
worker, with N tickets opened first (paced by the server, ~40/s here; 10,000 take minutes, 100,000 about an hour):

    .venv/bin/python -m bench.metrics_bench --tickets 200

The report lists the window's tickets and the window before (1,000 per page, memo decoded per ticket) and computes
in the client: its time grows linearly with the tickets listed (starter/client/metrics_source.py)."""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from starter.client import EscalationClient, Principal

WINDOW = timedelta(days=30)


async def run_metrics_bench(ec: EscalationClient, log: Callable[[str], None], repeats: int = 2) -> dict[str, Any]:
    """The fastest of `repeats` 30-day reports (the first also warms the connection and the codec)."""
    best, tickets = float("inf"), 0
    who = Principal.operator("bench:metrics")
    for _ in range(repeats):
        now = datetime.now(UTC)
        started = time.perf_counter()
        r = await ec.metrics(principal=who, start=now - WINDOW, end=now + timedelta(minutes=1))
        best, tickets = min(best, time.perf_counter() - started), r.tickets_opened
    log(f"30-day metrics report over {tickets} tickets: {best:.2f} s")
    return {"metrics_report_s": round(best, 3), "metrics_report_tickets": tickets}


async def _open(ec: EscalationClient, n: int, concurrency: int = 20) -> None:
    from workflows.ticket import Ticket

    sem = asyncio.Semaphore(concurrency)
    base = datetime.now(UTC)

    async def one(i: int) -> None:
        async with sem:
            await ec.open(Ticket(id=f"MB-{uuid.uuid4().hex[:8]}-{i}", subject="bench", customer_id=f"c-{i % 50}",
                                 priority=("P1", "P2", "P3", "P4")[i % 4], tags=[f"tag{i % 7}"],
                                 opened_at=base - timedelta(minutes=i % (60 * 24 * 20))), wait_for_worker=False)

    await asyncio.gather(*(one(i) for i in range(n)))


async def _alone(n: int) -> dict[str, Any]:
    from starter.devstack.stack import Stack
    from starter.runtime.policy_file import load_policy
    from starter.runtime.temporal import connect

    with tempfile.TemporaryDirectory() as home, Stack(Path(home), persistent=True).running() as stack:
        ec = EscalationClient(await connect(stack.address, stack.namespace), load_policy(), stack.task_queue)
        started = time.perf_counter()
        await _open(ec, n)
        print(f"opened {n} tickets in {time.perf_counter() - started:.1f} s")
        await asyncio.sleep(10)  # visibility trails the starts; the worker finishes their first tasks
        return await run_metrics_bench(ec, print)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tickets", type=int, default=200, help="tickets to open first (default 200)")
    from starter.runtime.codec import ephemeral_keys

    ephemeral_keys()  # payloads encrypted as in production (the codec's cost included), keys gone with the run
    print(asyncio.run(_alone(p.parse_args().tickets)))


if __name__ == "__main__":
    main()
