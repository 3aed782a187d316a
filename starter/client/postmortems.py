"""Post-mortems as the client reads and advances them: by their id (`postmortem-ticket-<id>`, or an incident's), or
through the ticket they follow (the id derives from the ticket's: a closed ticket's workflow accepts nothing)."""

from __future__ import annotations

import re
from datetime import timedelta

from pydantic import BaseModel
from temporalio.client import Client

from starter.client.errors import ActionRejected, InvalidInput
from starter.client.handles import latest_state, run_update
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
        return await latest_state(self._handle(postmortem_id), PostmortemWorkflow.current_state, self.rpc_timeout,
                                  f"no post-mortem {postmortem_id}")

    async def act(self, postmortem_id: str, update: str, arg: BaseModel | int) -> PostmortemState:
        state: PostmortemState = await run_update(
            self._handle(postmortem_id), update, arg, PostmortemState, self.rpc_timeout,
            missing=f"no post-mortem {postmortem_id}",
            ended=ActionRejected("postmortem_completed", f"post-mortem {postmortem_id} is completed"))
        return state
