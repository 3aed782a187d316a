"""Shared fixtures. Keep this file small and generic: helpers for one area live in their own modules."""

from __future__ import annotations

import asyncio
import os
import threading
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from temporalio.client import Client

from starter.client import EscalationClient
from starter.devstack.devserver import DevServer
from starter.runtime.policy_file import load_policy
from tests.support.api import Tokens, asgi_client, in_process_app, make_tokens
from workflows.common.policy import Policy


@dataclass
class TemporalStack:
    """A real Temporal dev server (in memory) and a worker polling `task_queue` in a background thread.

    The worker has its own thread and event loop, so a test that blocks (subprocess.run, requests,
    schemathesis) does not stall it. `client` is connected in the session's event loop.
    """

    server: DevServer
    client: Client
    task_queue: str
    policy: Policy
    outbox: Path

    @property
    def address(self) -> str:
        return self.server.address

    def env(self, **extra: str) -> dict[str, str]:
        """Environment for a subprocess (worker, API, CLI) that should use this stack."""
        return {**os.environ, "TEMPORAL_ADDRESS": self.address, "TEMPORAL_NAMESPACE": "default",
                "ESCALATION_TASK_QUEUE": self.task_queue, "ESCALATION_OUTBOX": str(self.outbox), **extra}


def _worker_thread(address: str, task_queue: str, ready: threading.Event,
                   stopper: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]]) -> None:
    from starter.runtime.temporal import build_worker, connect

    async def run() -> None:
        stop = asyncio.Event()
        stopper.append((asyncio.get_running_loop(), stop))
        client = await connect(address, "default")
        async with build_worker(client, task_queue):
            ready.set()
            await stop.wait()

    asyncio.run(run())


async def _until_polled(escalation: EscalationClient, timeout: float = 30.0) -> None:
    """A started worker has not necessarily reached the server yet: wait until the server lists its poller,
    so that no test (e.g. /readyz) races the worker's first poll."""
    deadline = asyncio.get_running_loop().time() + timeout
    while await escalation.workflow_pollers() == 0:
        if asyncio.get_running_loop().time() > deadline:
            raise RuntimeError(f"no worker polled {escalation.task_queue!r} within {timeout:.0f} s")
        await asyncio.sleep(0.1)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def temporal_stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[TemporalStack]:
    from starter.runtime.temporal import connect

    outbox = tmp_path_factory.mktemp("stack") / "outbox.jsonl"
    previous = os.environ.get("ESCALATION_OUTBOX")
    os.environ["ESCALATION_OUTBOX"] = str(outbox)  # the in-process worker's notifications stay out of var/
    server = DevServer(headless=True)
    await asyncio.to_thread(server.start)
    task_queue = f"stack-{uuid.uuid4().hex[:8]}"
    ready = threading.Event()
    stopper: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []
    thread = threading.Thread(target=_worker_thread, args=(server.address, task_queue, ready, stopper),
                              name="temporal-worker", daemon=True)
    thread.start()
    try:
        if not await asyncio.to_thread(ready.wait, 60):
            raise RuntimeError("the worker did not start within 60 s")
        client = await connect(server.address, "default")
        policy = load_policy()
        await _until_polled(EscalationClient(client, policy, task_queue))
        yield TemporalStack(server=server, client=client, task_queue=task_queue, policy=policy, outbox=outbox)
    finally:
        for loop, stop in stopper:
            loop.call_soon_threadsafe(stop.set)
        await asyncio.to_thread(thread.join, 30)
        server.stop()
        if previous is None:
            os.environ.pop("ESCALATION_OUTBOX", None)
        else:
            os.environ["ESCALATION_OUTBOX"] = previous


# ----- the HTTP API in process, on the session stack (tests/test_api*.py) -------------------------------------


@pytest.fixture(scope="module")
def tokens() -> Tokens:
    """A token per role (tests/api_support.py), fresh for each module."""
    return make_tokens()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def http(temporal_stack: TemporalStack, tokens: Tokens) -> AsyncIterator[httpx.AsyncClient]:
    """The API app in process (ASGI), on the session's dev server and worker."""
    async with asgi_client(in_process_app(temporal_stack, tokens)) as client:
        yield client
