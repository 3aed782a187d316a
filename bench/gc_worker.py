"""`python bench/gc_worker.py`: run worker.py and log every garbage collection pause over 20 ms.

A diagnostic wrapper for `python -m bench.run --worker-cmd bench/gc_worker.py`: each long
collection is written to the worker's log as `GCPAUSE gen<N> <ms>ms collected=<n>`, and the
bench summarises them (gc_pauses in the results). The worker itself is unchanged.
"""

from __future__ import annotations

import gc
import runpy
import sys
import time
from pathlib import Path

THRESHOLD_S = 0.02
_started: list[float] = [0.0]


def _on_gc(phase: str, info: dict[str, int]) -> None:
    if phase == "start":
        _started[0] = time.perf_counter()
        return
    took = time.perf_counter() - _started[0]
    if took > THRESHOLD_S:
        print(f"GCPAUSE gen{info['generation']} {took * 1000:.0f}ms collected={info['collected']}", file=sys.stderr,
              flush=True)


if __name__ == "__main__":
    gc.callbacks.append(_on_gc)
    root = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(root))
    sys.argv = [str(root / "worker.py")]
    runpy.run_path(str(root / "worker.py"), run_name="__main__")
