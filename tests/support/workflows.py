"""Shared helpers for workflow tests: the real servers from PyPI, never downloaded."""

from __future__ import annotations

import asyncio
import functools
import uuid
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio import activity
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.testing import WorkflowEnvironment

from starter.devstack.devserver import venv_bin
from starter.runtime.policy_file import load_policy
from starter.runtime.temporal import build_worker, data_converter
from workflows.common import search_attributes as sa
from workflows.common.delivery import DeliveryResult, Message
from workflows.common.policy import Policy
from workflows.ticket import Ticket
from workflows.ticket.workflow import TicketInput, TicketWorkflow

WorkflowTest = Callable[[WorkflowEnvironment, str], Awaitable[None]]


# A test here takes a few seconds; the time-skipping test server, though, can wedge on a rare interleaving of an
# Update with a time skip ("invalid history builder state for action" in its log, then nothing moves).
WEDGE_TIMEOUT_S = 30.0


def on_time_skipping_server(**worker_options: Any) -> Callable[[WorkflowTest], Callable[[], Awaitable[None]]]:
    """Run the test as `test(env, task_queue)` on a fresh time-skipping server with a worker (max_cached_workflows=0
    unless given, so every task is a full replay). A run that times out (the server wedged) is run once more on a
    fresh server, with a warning; a test that times out twice fails. Any other failure fails at once."""
    worker_options.setdefault("max_cached_workflows", 0)

    def decorate(test: WorkflowTest) -> Callable[[], Awaitable[None]]:
        async def run_once() -> bool:
            """Run the test once; True if it made no progress before the deadline (the server wedged)."""
            env = await time_skipping_env()
            try:
                async with running_worker(env.client, **worker_options) as task_queue:
                    deadline = asyncio.timeout(WEDGE_TIMEOUT_S)
                    try:
                        async with deadline:
                            await test(env, task_queue)
                    except Exception:
                        # The deadline cancels the test; the SDK may turn that cancellation into its own error
                        # (an Update waiting: WorkflowUpdateRPCTimeoutOrCancelledError), not TimeoutError.
                        if not deadline.expired():
                            raise  # the test's own failure or timeout
                        return True
                return False
            finally:
                try:
                    await asyncio.wait_for(env.shutdown(), 30)
                except TimeoutError:  # never hide the test's own outcome behind a slow shutdown
                    warnings.warn("the time-skipping server did not shut down within 30 s", stacklevel=1)

        @functools.wraps(test, assigned=("__module__", "__name__", "__qualname__", "__doc__"), updated=())
        async def run() -> None:
            if not await run_once():
                return
            warnings.warn(f"{test.__name__}: no progress within {WEDGE_TIMEOUT_S:.0f}s on the time-skipping "
                          "server; running it again on a fresh one", stacklevel=1)
            if await run_once():
                raise AssertionError(f"{test.__name__}: no progress within {WEDGE_TIMEOUT_S:.0f}s, twice")

        del run.__wrapped__  # type: ignore[attr-defined]  # pytest must see no fixture arguments: the servers are ours
        return run

    return decorate


async def time_skipping_env() -> WorkflowEnvironment:
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=venv_bin("temporal-test-server"), data_converter=data_converter())
    await register_search_attributes(env.client)
    return env


async def register_search_attributes(client: Client) -> None:
    await client.operator_service.add_search_attributes(AddSearchAttributesRequest(
        namespace=client.namespace,
        search_attributes={k.name: IndexedValueType.ValueType(k.indexed_value_type.value) for k in sa.REGISTERED}))


async def local_env(*extra_args: str) -> WorkflowEnvironment:
    return await WorkflowEnvironment.start_local(
        dev_server_existing_path=venv_bin("temporal"), data_converter=data_converter(),
        search_attributes=list(sa.REGISTERED), dev_server_extra_args=list(extra_args))


@asynccontextmanager
async def running_worker(client: Client, **options: Any) -> AsyncIterator[str]:
    task_queue = f"tq-{uuid.uuid4().hex[:8]}"
    async with build_worker(client, task_queue, **options):
        yield task_queue


def policy_with(**priority_p1: Any) -> Policy:
    """The default policy with P1's SLA fields replaced (durations as strings or timedeltas)."""
    policy = load_policy()
    data = policy.model_dump(mode="json", by_alias=True)
    data["priorities"]["P1"].update(priority_p1)
    return Policy.model_validate(data)


def ticket(opened_at: datetime, **fields: Any) -> Ticket:
    base: dict[str, Any] = {"id": f"T-{uuid.uuid4().hex[:10]}", "subject": "Streaming app fails to start",
                            "description": "The app crashes on launch.", "customer_id": "cust-42",
                            "priority": "P1", "opened_at": opened_at}
    return Ticket(**{**base, **fields})


async def start_ticket(client: Client, task_queue: str, t: Ticket, policy: Policy | None = None) -> WorkflowHandle[Any, Any]:
    return await client.start_workflow(
        TicketWorkflow.run, TicketInput(ticket=t, policy=policy or load_policy()), id=f"ticket-{t.id}",
        task_queue=task_queue, id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE)


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


class Recorder:
    """The `deliver` activity of a test: keeps every message it is given (what the preparing step decided)."""

    def __init__(self) -> None:
        self.sent: list[Message] = []

    @activity.defn(name="deliver")
    async def deliver(self, m: Message) -> DeliveryResult:
        self.sent.append(m)
        return DeliveryResult(key=m.key, outcome="delivered", at=datetime.now(UTC))

    def kinds(self, ticket_id: str) -> list[str]:
        """One entry per notification (a notification is one message per recipient and channel)."""
        return list({m.notification_key: m.kind for m in self.sent if m.ticket_id == ticket_id}.values())
