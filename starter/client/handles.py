"""How the client reads and acts on the long-running workflows other than tickets (sponsorships, incidents,
post-mortems): one rule each, written once.

- reading: the latest run's state, by Query while it runs and from its recorded result once it completed;
- acting: an Update whose validator's refusal is an ActionRejected with the workflow's own code; an Update to a
  completed workflow is told apart from one to a workflow that never existed (not found)."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from starter.client.errors import ActionRejected, TicketNotFound

S = TypeVar("S", bound=BaseModel)


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
    workflow has completed."""
    try:
        return await handle.execute_update(name, arg, result_type=result_type, rpc_timeout=rpc_timeout)
    except WorkflowUpdateFailedError as exc:
        if isinstance(exc.cause, ApplicationError):
            raise ActionRejected(exc.cause.type or "rejected", exc.cause.message) from None
        raise
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise
    try:
        await handle.describe(rpc_timeout=rpc_timeout)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise TicketNotFound(missing) from None
        raise
    raise ended
