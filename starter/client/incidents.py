"""Incidents as the client declares, reads and drives them: by service (the workflow id is the service's).

Declaring is idempotent: a second declare for a service with an open incident answers with that one (USE_EXISTING);
after its resolution a declare starts a new run under the same id. Updates and resolution belong to the commander,
supervisors and admins; agents may link and read."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta

from pydantic import BaseModel
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy

from starter.client.errors import ActionRejected, InvalidInput, TicketNotFound
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
from workflows.incident.state import LINKS_PER_REQUEST
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
        self._joining: dict[str, list[tuple[str, asyncio.Future[bool]]]] = {}  # service -> tickets waiting to join
        self._senders: dict[str, asyncio.Task[None]] = {}  # service -> the task sending its link Updates

    async def join(self, service: str, ticket_id: str, by: str) -> bool:
        """Link a ticket at intake; False when the service has no open incident. Tickets opened together join in
        one Update: while a link Update for the service is in flight, those that arrive wait and go in the next, so
        an outage's burst costs a few Updates, not one each (the server admits 10 in flight per workflow)."""
        joined: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._joining.setdefault(service, []).append((ticket_id, joined))
        if service not in self._senders:
            self._senders[service] = asyncio.create_task(self._send_joins(service, by))
        return await asyncio.shield(joined)  # a caller that gives up does not cancel the others' Update

    async def _send_joins(self, service: str, by: str) -> None:
        try:
            while waiting := self._joining.pop(service, []):
                for start in range(0, len(waiting), LINKS_PER_REQUEST):
                    batch = waiting[start:start + LINKS_PER_REQUEST]
                    outcome: bool | BaseException
                    try:
                        await self.link(service, LinkRequest(tickets=[t for t, _ in batch], by=by))
                        outcome = True
                    except (TicketNotFound, ActionRejected):
                        outcome = False  # no incident for the service, or resolved meanwhile
                    except Exception as exc:  # handed to each waiting caller
                        outcome = exc
                    for _, joined in batch:
                        if joined.done():
                            continue
                        if isinstance(outcome, BaseException):
                            joined.set_exception(outcome)
                        else:
                            joined.set_result(outcome)
        finally:
            del self._senders[service]

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
