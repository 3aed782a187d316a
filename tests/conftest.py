"""Shared fixtures. Keep this file small and generic: helpers for one area live in their own modules."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from temporalio.client import Client

from tests.support.codec import session_ring_json

# The session's payload encryption keys (a random current key, and the committed histories' fixture key), set before
# anything reads the settings: every process the tests start (worker, API, CLI) inherits them from this environment,
# so they all share one key ring.
os.environ["ESCALATION_CODEC_KEYS"] = session_ring_json()
os.environ.pop("ESCALATION_CODEC_KEY_FILE", None)

from starter.devstack.stack import Stack
from starter.runtime.policy_file import load_policy
from starter.runtime.temporal import connect
from tests.support.api import Tokens, asgi_client, fake_app, in_process_app, make_tokens
from tests.support.fake_client import FakeTicketClient
from workflows.common.policy import Policy


@dataclass
class TemporalStack:
    """The session's stack (starter/devstack/stack.py): a real Temporal dev server (in memory) and `python worker.py`
    polling `task_queue`, both child processes, so a test that blocks (subprocess.run, requests, schemathesis)
    never stalls the worker. `client` is connected in the session's event loop."""

    stack: Stack
    client: Client
    policy: Policy

    @property
    def address(self) -> str:
        return self.stack.address

    @property
    def task_queue(self) -> str:
        return self.stack.task_queue

    @property
    def outbox(self) -> Path:
        return self.stack.outbox

    def env(self, **extra: str) -> dict[str, str]:
        """Environment for a subprocess (worker, API, CLI) that should use this stack."""
        return self.stack.env(**extra)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def temporal_stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[TemporalStack]:
    stack = Stack(tmp_path_factory.mktemp("stack"), task_queue=f"stack-{uuid.uuid4().hex[:8]}")
    try:
        await asyncio.to_thread(stack.start_server)
        await asyncio.to_thread(stack.start_worker)  # returns once the worker polls: no test races its first poll
        yield TemporalStack(stack=stack, client=await connect(stack.address, stack.namespace), policy=load_policy())
    finally:
        await asyncio.to_thread(stack.stop)


# ----- the HTTP API in process, on the session stack (tests/api/test_api.py) -------------------------------------


@pytest.fixture(scope="module")
def tokens() -> Tokens:
    """A token per role (tests/support/api.py), fresh for each module."""
    return make_tokens()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def http(temporal_stack: TemporalStack, tokens: Tokens) -> AsyncIterator[httpx.AsyncClient]:
    """The API app in process (ASGI), on the session's dev server and worker."""
    async with asgi_client(in_process_app(temporal_stack, tokens)) as client:
        yield client


# ----- the HTTP API in process, on the in-memory client (no Temporal) ------------------------------------------


@pytest.fixture(scope="module")
def fake_client() -> FakeTicketClient:
    """The client's rules over an in-memory store (tests/support/fake_client.py), fresh for each module."""
    return FakeTicketClient(load_policy())


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def fake_http(fake_client: FakeTicketClient, tokens: Tokens) -> AsyncIterator[httpx.AsyncClient]:
    """The API app in process (ASGI) on the in-memory client: routing, validation and authorization tests that do
    not need a Temporal server. Every route keeps a test against the real one (`http`, tests/api/test_api.py)."""
    async with asgi_client(fake_app(tokens, fake_client)) as client:
        yield client
