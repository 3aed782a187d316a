"""Post-mortems as the client reads and advances them: by their id (`postmortem-ticket-<id>`, or an incident's), or
by what they follow: `ticket:<id>` (the id derives from the ticket's: a closed ticket's workflow accepts nothing) or
`incident:<service>` (the post-mortem of the service's latest incident, named in the incident's state)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from datetime import timedelta

from pydantic import BaseModel
from temporalio.client import Client

from starter.client.errors import ActionRejected, Busy, InvalidInput, TicketNotFound
from starter.client.handles import latest_state, run_update
from workflows.incident import IncidentState
from workflows.postmortem import PostmortemState, postmortem_workflow_id
from workflows.postmortem.workflow import PostmortemWorkflow

POSTMORTEM_ID = re.compile(r"^postmortem-(ticket|incident)-[A-Za-z0-9][A-Za-z0-9._-]{0,120}$")
REFERENCE = re.compile(r"^(ticket|incident):([A-Za-z0-9][A-Za-z0-9._-]{0,99})$")
# A resolved incident starts its post-mortem once every linked ticket has been told: a moment after `resolve`.
STARTING_WAIT_S = 20.0


class PostmortemClient:
    def __init__(self, temporal: Client, rpc_timeout: timedelta,
                 incident: Callable[[str], Awaitable[IncidentState]] | None = None,
                 severities: frozenset[str] = frozenset()) -> None:
        self.temporal, self.rpc_timeout = temporal, rpc_timeout
        self.incident = incident  # reads a service's latest incident
        self.severities = severities  # the policy's: incidents of these severities end in a post-mortem

    async def resolve(self, ref: str) -> str:
        """The post-mortem id `ref` means: an id as it is, `ticket:<id>`, or `incident:<service>`."""
        m = REFERENCE.match(ref)
        if m is None:
            self._handle(ref)  # InvalidInput naming the accepted forms
            return ref
        kind, subject = m.groups()
        if kind == "ticket":
            return postmortem_workflow_id("ticket", subject)
        if self.incident is None:
            raise InvalidInput("this client cannot read incidents: name the post-mortem by its id", field="postmortem_id")
        deadline = asyncio.get_running_loop().time() + STARTING_WAIT_S
        while True:
            incident = await self.incident(subject)
            if incident.postmortem_id is not None:
                return incident.postmortem_id
            if incident.status == "open":
                raise TicketNotFound(f"incident {subject} is open: its post-mortem starts when it is resolved")
            if incident.severity not in self.severities:
                raise TicketNotFound(f"incident {subject} ({incident.severity}) has no post-mortem (the policy's "
                                     "`postmortems.severities` name the severities that have one)")
            if asyncio.get_running_loop().time() > deadline:
                raise Busy(f"incident {subject}'s post-mortem starts once its {len(incident.tickets)} linked "
                           "ticket(s) have been told of the resolution; retry shortly", retry_after=10)
            await asyncio.sleep(0.3)

    def _handle(self, postmortem_id: str):  # type: ignore[no-untyped-def]
        if not POSTMORTEM_ID.match(postmortem_id):
            raise InvalidInput(f"{postmortem_id!r} is not a post-mortem id (postmortem-ticket-<id>, "
                               "postmortem-incident-<service>-<declared>) nor a reference (ticket:<id>, "
                               "incident:<service>)", field="postmortem_id")
        return self.temporal.get_workflow_handle_for(PostmortemWorkflow.run, postmortem_id)  # type: ignore[arg-type]

    async def show(self, postmortem_id: str) -> PostmortemState:
        return await latest_state(self._handle(postmortem_id), PostmortemWorkflow.current_state, self.rpc_timeout,
                                  f"no post-mortem {postmortem_id}")

    async def published(self, completed: PostmortemState, wait_s: float = 15.0) -> PostmortemState:
        """A completed post-mortem once its article is published (or refused): the completion's answer names it.
        Publishing is an activity after the Update: if it takes longer than `wait_s`, the completion as it was."""
        deadline = asyncio.get_running_loop().time() + wait_s
        state = completed
        while state.kb_article is None and state.kb_error is None:
            if asyncio.get_running_loop().time() > deadline:
                return state
            await asyncio.sleep(0.2)
            state = await self.show(completed.id)
        return state

    async def act(self, postmortem_id: str, update: str, arg: BaseModel | int) -> PostmortemState:
        state: PostmortemState = await run_update(
            self._handle(postmortem_id), update, arg, PostmortemState, self.rpc_timeout,
            missing=f"no post-mortem {postmortem_id}",
            ended=ActionRejected("postmortem_completed", f"post-mortem {postmortem_id} is completed"))
        return state
