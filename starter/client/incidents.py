"""Incidents as the client declares, reads and drives them: by service (the workflow id is the service's).

Declaring is idempotent: a second declare for a service with an open incident answers with that one (USE_EXISTING);
after its resolution a declare starts a new run under the same id. Updates and resolution belong to the commander,
supervisors and admins; agents may link and read."""

from __future__ import annotations

import re
from datetime import timedelta

from pydantic import BaseModel
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy

from starter.client.errors import ActionRejected, InvalidInput
from starter.client.handles import latest_state, run_update
from starter.runtime.sdk_private import started_new
from workflows.common.policy import Policy
from workflows.common.vocabulary import ID_PATTERN
from workflows.incident import (
    IncidentInput,
    IncidentState,
    IncidentUpdate,
    LinkRequest,
    PostUpdate,
    ResolveIncident,
    incident_workflow_id,
)
from workflows.incident.workflow import IncidentWorkflow
from workflows.postmortem.subjects import incident_template


class Declared(BaseModel):
    created: bool
    incident: IncidentState


class TicketIdsPage(BaseModel):
    tickets: list[str]
    total: int
    next_cursor: str | None


class IncidentClient:
    def __init__(self, temporal: Client, policy: Policy, task_queue: str, rpc_timeout: timedelta) -> None:
        self.temporal, self.policy, self.task_queue, self.rpc_timeout = temporal, policy, task_queue, rpc_timeout

    def _handle(self, service: str):  # type: ignore[no-untyped-def]
        if not re.match(ID_PATTERN, service):
            raise InvalidInput(f"incident {service!r}: a service id is 1-100 letters, digits, '.', '_' or '-'",
                               field="service")
        return self.temporal.get_workflow_handle_for(IncidentWorkflow.run, incident_workflow_id(service))  # type: ignore[arg-type]

    async def declare(self, service: str, title: str, severity: str, commander: str, by: str) -> Declared:
        self._handle(service)
        inp = IncidentInput(service=service, title=title, severity=severity, commander=commander,  # type: ignore[arg-type]
                            declared_by=by, update_every=self.policy.incidents.update_every.get(severity),  # type: ignore[call-overload]
                            resolve_linked=self.policy.incidents.resolve_linked,
                            postmortem=incident_template(self.policy, severity))
        handle = await self.temporal.start_workflow(
            IncidentWorkflow.run, inp, id=incident_workflow_id(service), task_queue=self.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE, rpc_timeout=self.rpc_timeout)
        return Declared(created=started_new(handle), incident=await self.show(service))

    async def show(self, service: str) -> IncidentState:
        return await latest_state(self._handle(service), IncidentWorkflow.current_state, self.rpc_timeout,
                                  f"no incident for service {service!r}")

    async def tickets(self, service: str, *, page_size: int = 100, cursor: str | None = None) -> TicketIdsPage:
        """The linked tickets, in the order they were linked, a page at a time."""
        state = await self.show(service)
        try:
            start = int(cursor or 0)
        except ValueError:
            raise InvalidInput("cursor is not one this API returned", field="cursor") from None
        end = start + page_size
        return TicketIdsPage(tickets=state.tickets[start:end], total=len(state.tickets),
                             next_cursor=str(end) if end < len(state.tickets) else None)

    async def _update(self, service: str, name: str, arg: BaseModel, result_type: type) -> object:
        return await run_update(self._handle(service), name, arg, result_type, self.rpc_timeout,
                                missing=f"no incident for service {service!r}",
                                ended=ActionRejected("incident_resolved",
                                                     f"incident {service} is resolved; declare a new one"))

    async def link(self, service: str, r: LinkRequest) -> list[str]:
        return await self._update(service, "link", r, list[str])  # type: ignore[return-value]

    async def unlink(self, service: str, r: LinkRequest) -> list[str]:
        return await self._update(service, "unlink", r, list[str])  # type: ignore[return-value]

    async def post_update(self, service: str, u: PostUpdate) -> IncidentUpdate:
        return await self._update(service, "post_update", u, IncidentUpdate)  # type: ignore[return-value]

    async def resolve(self, service: str, r: ResolveIncident) -> IncidentState:
        return await self._update(service, "resolve", r, IncidentState)  # type: ignore[return-value]
