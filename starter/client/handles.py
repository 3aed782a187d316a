"""How the client reads and acts on the long-running workflows other than tickets (sponsorships, incidents,
post-mortems): one rule each, written once.

- reading: the latest run's state, by Query while it runs and from its recorded result once it completed;
- acting: an Update whose validator's refusal is an ActionRejected with the workflow's own code; an Update to a
  completed workflow is told apart from one to a workflow that never existed (not found)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pydantic import BaseModel
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from starter.client.errors import ActionRejected, Busy, TicketNotFound
from workflows.common.crowding import crowded

S = TypeVar("S", bound=BaseModel)
T = TypeVar("T")

CROWDED_PATIENCE_S = 30.0  # how long a burst of Updates to one workflow is sent again before Busy is answered


def too_busy(exc: RPCError) -> Busy:
    return Busy(f"too many actions at once on one workflow ({exc.message}); try again shortly")


async def while_crowded(send: Callable[[], Awaitable[T]], patience: float = CROWDED_PATIENCE_S) -> T:
    """`send()`, sent again with jittered backoff while the workflow has too many Updates in flight (an outage's
    tickets joining one incident at once) or aborts them (its worker restarted); Busy once `patience` seconds have
    gone by. Anything else is raised."""
    loop = asyncio.get_running_loop()
    deadline, delay = loop.time() + patience, 0.05
    while True:
        try:
            return await send()
        except RPCError as exc:
            if not crowded(exc):
                raise
            if loop.time() + delay > deadline:
                raise too_busy(exc) from None
        await asyncio.sleep(random.uniform(delay / 2, delay))
        delay = min(delay * 2, 2.0)


async def latest_state(handle: WorkflowHandle[Any, S], query: Any, rpc_timeout: Any, missing: str) -> S:
    try:
        desc = await handle.describe(rpc_timeout=rpc_timeout)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise TicketNotFound(missing) from None
        raise
    if desc.status == WorkflowExecutionStatus.COMPLETED:
        return await handle.result(rpc_timeout=rpc_timeout)
    state: S = await handle.query(query, rpc_timeout=rpc_timeout)
    return state


async def run_update(handle: WorkflowHandle[Any, Any], name: str, arg: Any, result_type: type, rpc_timeout: Any,
                     *, missing: str, ended: ActionRejected) -> Any:
    """The Update's answer; ActionRejected (the validator's code), TicketNotFound (`missing`), or `ended` when the
    workflow has completed. A workflow started a moment after the Update was refused as not found (a post-mortem a
    ticket's resolution starts) is running by the time it is described: the Update is sent again, once."""
    for attempt in (1, 2):
        try:
            return await while_crowded(lambda: handle.execute_update(name, arg, result_type=result_type,
                                                                     rpc_timeout=rpc_timeout))
        except WorkflowUpdateFailedError as exc:
            if isinstance(exc.cause, ApplicationError):
                raise ActionRejected(exc.cause.type or "rejected", exc.cause.message) from None
            raise
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise
        try:
            described = await handle.describe(rpc_timeout=rpc_timeout)
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                raise TicketNotFound(missing) from None
            raise
        if attempt == 2 or described.status != WorkflowExecutionStatus.RUNNING:
            break
    raise ended
