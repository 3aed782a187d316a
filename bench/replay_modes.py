"""Why `replay_per_s` stays far below 200/s: the same committed full-lifecycle history replayed N times in one
process, under the worker's sandbox (what `audit replay` does), without it, and with several replayers at once.
No server; the codec's fixture keys. `python -m bench.replay_modes [N]` prints the figures and writes
bench/results/replay_modes.json. Measured in one run, as ratios: the host is shared."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
HISTORY = ROOT / "tests/replay/histories/full_lifecycle.json"
OUT = ROOT / "bench/results/replay_modes.json"


async def _copies(events: Any, n: int) -> AsyncIterator[Any]:
    from temporalio.client import WorkflowHistory

    for i in range(n):
        yield "bench", WorkflowHistory(f"ticket-bench-{i}", events)


async def _rate(events: Any, n: int, replayers: int) -> float:
    from starter.runtime.replay import replay_all

    await asyncio.gather(*(replay_all(_copies(events, 3), decisions=False) for _ in range(replayers)))  # warm
    started = time.perf_counter()
    done = await asyncio.gather(*(replay_all(_copies(events, n // replayers), decisions=False)
                                  for _ in range(replayers)))
    assert all(d.passed == d.histories for d in done), "every copy must replay"
    return round(n // replayers * replayers / (time.perf_counter() - started), 1)


async def main(n: int) -> dict[str, Any]:
    from functools import partial

    from temporalio.client import WorkflowHistory

    from starter.runtime import temporal

    history = WorkflowHistory.from_json("ticket-bench", json.loads(HISTORY.read_text()))
    out: dict[str, Any] = {"histories": n, "events_per_history": len(history.events)}
    out["sandboxed_per_s"] = await _rate(history.events, n, 1)
    out["sandboxed_4_replayers_per_s"] = await _rate(history.events, n, 4)
    sandboxed = temporal.workflow_runner
    temporal.workflow_runner = partial(sandboxed, sandboxed=False)  # the comparison only
    try:
        out["unsandboxed_per_s"] = await _rate(history.events, n, 1)
    finally:
        temporal.workflow_runner = sandboxed
    return out


def cli(main: Callable[[int], Coroutine[Any, Any, dict[str, Any]]], out: Path) -> None:
    """`python -m bench.replay_... [N]`: the figures printed and written to `out` (the committed fixture keys)."""
    os.environ.setdefault("ESCALATION_CODEC_KEY_FILE", str(ROOT / "tests/replay/codec_fixture_keys.json"))
    figures = asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 200))
    for k, v in figures.items():
        print(f"{k:40} {v}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    cli(main, OUT)
