"""`python bench/options_worker.py`: worker.py with worker options from RECOVERY_WORKER_OPTIONS (JSON).

A diagnostic wrapper for bench/recovery.py (`--worker-options`): e.g. '{"max_concurrent_workflow_task_polls": 5,
"nonsticky_to_sticky_poll_ratio": 0.2}' runs the worker with the SDK's poller defaults; keys ending in `_s` are
seconds (timedeltas). The worker is otherwise unchanged.
"""

from __future__ import annotations

import json
import os
import runpy
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

if __name__ == "__main__":
    root = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(root))
    import starter.runtime.temporal as temporal

    options: dict[str, Any] = {}
    for key, value in json.loads(os.environ.get("RECOVERY_WORKER_OPTIONS") or "{}").items():
        if key.endswith("_poller_behavior"):  # {"autoscaling": {...}} or {"simple": n}
            from temporalio.worker import PollerBehaviorAutoscaling, PollerBehaviorSimpleMaximum

            kind, arg = next(iter(value.items()))
            options[key] = PollerBehaviorAutoscaling(**arg) if kind == "autoscaling" else PollerBehaviorSimpleMaximum(arg)
        elif key.endswith("_s"):
            options[key.removesuffix("_s")] = timedelta(seconds=value)
        else:
            options[key] = value
    shipped = temporal.build_worker

    def build_worker(*args: Any, **kwargs: Any) -> Any:
        return shipped(*args, **{**kwargs, **options})
    temporal.build_worker = build_worker  # type: ignore[assignment]
    print(f"worker options: {options}", file=sys.stderr, flush=True)
    sys.argv = [str(root / "worker.py")]
    runpy.run_path(str(root / "worker.py"), run_name="__main__")
