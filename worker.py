"""The worker: the composition root, running every registered workflow and activity on one task queue.

Run it with `python worker.py` (or `escalation worker`); it connects with TEMPORAL_ADDRESS /
TEMPORAL_NAMESPACE, polls ESCALATION_TASK_QUEUE, and shuts down gracefully on SIGINT/SIGTERM.
It imports only the runtime layer (`starter.runtime`); nothing imports this file.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from datetime import timedelta

import structlog
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from starter.runtime.logs import configure_logging
from starter.runtime.settings import settings_or_exit
from starter.runtime.temporal import build_worker, connect, tune_gc

log = structlog.get_logger("escalation.worker")
# Temporal's worker heartbeat (the SDK's default is 60 s): the API's /readyz counts a worker live while its last
# heartbeat is under 10 s old, so a SIGKILLed worker is noticed within ~10 s (starter/http/routers/health.py).
WORKER_HEARTBEAT_INTERVAL = timedelta(seconds=3)


async def run(stop: asyncio.Event | None = None) -> None:
    s = settings_or_exit()
    configure_logging(s.escalation_log_level)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    # The SDK's runtime serves its own metrics and those the workflows and activities record through its meter
    # (README "Prometheus"); the SDK does not record during replay, so a replayed ticket counts nothing twice.
    metrics = None if s.escalation_worker_metrics_port is None else PrometheusConfig(
        bind_address=f"{s.escalation_worker_metrics_host}:{s.escalation_worker_metrics_port}")
    Runtime.set_default(Runtime(telemetry=TelemetryConfig(metrics=metrics),
                                worker_heartbeat_interval=WORKER_HEARTBEAT_INTERVAL), error_if_already_set=False)
    client = await connect()
    worker = build_worker(client)
    tune_gc(s.escalation_gc_young_objects)
    log.info("worker_started", address=s.temporal_address, namespace=s.temporal_namespace,
             task_queue=s.escalation_task_queue)
    async with worker:
        await stop.wait()
        log.info("worker_stopping")
    log.info("worker_stopped")


def main() -> None:
    asyncio.run(run())
    # The SDK's Rust runtime threads may still call into Python while the interpreter
    # finalises (a "PyGILState_Release" abort); everything is drained by now, so leave at once.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
