"""The worker: every workflow and activity of the engine on one task queue.

Run it with `python worker.py` (or `escalation worker`); it connects with
TEMPORAL_ADDRESS / TEMPORAL_NAMESPACE and polls ESCALATION_TASK_QUEUE, and
shuts down gracefully on SIGINT/SIGTERM.
"""

from __future__ import annotations

import asyncio
import compileall
import inspect
import os
import signal
import sys
from datetime import timedelta
from typing import Any

import structlog
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.notify import notify
from starter.logs import configure_logging
from starter.settings import settings, settings_or_exit
from workflows.ticket import TicketWorkflow

WORKFLOWS: list[type] = [TicketWorkflow]
# The pure core is deterministic, side-effect free at import and read-only at run time: loading it once for
# the worker, not once per workflow run inside the sandbox, saves most of a ticket's CPU cost (pydantic builds
# every model class again on each import). Workflow modules themselves stay sandboxed.
PURE_CORE = ("workflows.model", "workflows.calendar", "workflows.policy", "workflows.clocks", "workflows.routing",
             "workflows.ticket_core", "workflows.views", "workflows.search_attributes")
ACTIVITIES: list[Any] = [notify]
log = structlog.get_logger("escalation.worker")


def workflow_runner() -> SandboxedWorkflowRunner:
    """The sandbox every worker and replayer uses (the same code path for a live run and an auditor's replay)."""
    return SandboxedWorkflowRunner(restrictions=SandboxRestrictions.default.with_passthrough_modules(*PURE_CORE))


async def connect(address: str | None = None, namespace: str | None = None) -> Client:
    s = settings()
    return await Client.connect(address or s.temporal_address, namespace=namespace or s.temporal_namespace,
                                data_converter=pydantic_data_converter)


def cache_bytecode(workflows: list[type]) -> None:
    """The sandbox imports each workflow's module afresh for every new run. Without cached bytecode (e.g. under
    PYTHONDONTWRITEBYTECODE, or a fresh checkout) that means compiling its source every time; compile it once
    here, unless it is already up to date (a container image ships it, compiled at build time)."""
    for wf in workflows:
        source = inspect.getsourcefile(wf)
        if source and not compileall.compile_file(source, quiet=2):
            log.debug("bytecode_not_cached", file=source, hint="the sandbox compiles this module for every new run")


def build_worker(client: Client, task_queue: str | None = None, **options: Any) -> Worker:
    s = settings()
    cache_bytecode(WORKFLOWS)
    options.setdefault("max_cached_workflows", s.escalation_max_cached_workflows)
    options.setdefault("workflow_runner", workflow_runner())
    options.setdefault("graceful_shutdown_timeout", timedelta(seconds=10))  # let in-flight notifications finish
    options.setdefault("activities", ACTIVITIES)  # tests swap in failing receivers
    return Worker(client, task_queue=task_queue or s.escalation_task_queue, workflows=WORKFLOWS, **options)


async def run(stop: asyncio.Event | None = None) -> None:
    s = settings_or_exit()
    configure_logging(s.escalation_log_level)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    client = await connect()
    worker = build_worker(client)
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
