"""Post-mortems as the client reads and advances them: by their id (`postmortem-ticket-<id>`, or an incident's), or
through the ticket they follow (the id derives from the ticket's: a closed ticket's workflow accepts nothing)."""

from __future__ import annotations

import re
from datetime import timedelta

from pydantic import BaseModel
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from starter.client.errors import ActionRejected, InvalidInput, TicketNotFound
from workflows.postmortem import PostmortemState
from workflows.postmortem.workflow import PostmortemWorkflow

POSTMORTEM_ID = re.compile(r"^postmortem-(ticket|incident)-[A-Za-z0-9][A-Za-z0-9._-]{0,120}$")


class PostmortemClient:
    def __init__(self, temporal: Client, rpc_timeout: timedelta) -> None:
        self.temporal, self.rpc_timeout = temporal, rpc_timeout

    def _handle(self, postmortem_id: str):  # type: ignore[no-untyped-def]
        if not POSTMORTEM_ID.match(postmortem_id):
            raise InvalidInput(f"{postmortem_id!r} is not a post-mortem id (postmortem-ticket-<id> or "
                               "postmortem-incident-<service>-<declared>)", field="postmortem_id")
        return self.temporal.get_workflow_handle_for(PostmortemWorkflow.run, postmortem_id)  # type: ignore[arg-type]

    async def show(self, postmortem_id: str) -> PostmortemState:
        handle = self._handle(postmortem_id)
        try:
            desc = await handle.describe(rpc_timeout=self.rpc_timeout)
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                raise TicketNotFound(f"no post-mortem {postmortem_id}") from None
            raise
        if desc.status == WorkflowExecutionStatus.COMPLETED:
            return await handle.result(rpc_timeout=self.rpc_timeout)
        return await handle.query(PostmortemWorkflow.current_state, rpc_timeout=self.rpc_timeout)

    async def act(self, postmortem_id: str, update: str, arg: BaseModel | int) -> PostmortemState:
        handle = self._handle(postmortem_id)
        try:
            return await handle.execute_update(update, arg, result_type=PostmortemState, rpc_timeout=self.rpc_timeout)
        except WorkflowUpdateFailedError as exc:
            if isinstance(exc.cause, ApplicationError):
                raise ActionRejected(exc.cause.type or "rejected", exc.cause.message) from None
            raise
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise
        await self.show(postmortem_id)  # TicketNotFound if there never was one
        raise ActionRejected("postmortem_completed", f"post-mortem {postmortem_id} is completed")
