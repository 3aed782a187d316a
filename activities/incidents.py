"""The `fan_out_incident` activity: tell one batch of linked tickets one thing (linked, an update, unlinked,
resolved), as a Signal to each ticket's own workflow.

Bounded: at most `concurrency` Signals in flight. Resumable: the index reached is heartbeated, so an attempt that
follows a crash starts where the last one got to (and a ticket told twice applies the notice once: it
de-duplicates by incident and update number). A ticket that has completed (closed) is skipped and counted."""

from __future__ import annotations

import asyncio
from typing import Any

import structlog
from temporalio import activity
from temporalio.client import WorkflowHandle, WorkflowQueryFailedError
from temporalio.service import RPCError, RPCStatusCode

from workflows.incident import FanOut, FanOutResult
from workflows.incident.state import BREACHES_KEPT
from workflows.postmortem.subjects import breach_line
from workflows.ticket import Breach, IncidentNotice, workflow_id

log = structlog.get_logger("escalation.incidents")


class IncidentFanOut:
    def __init__(self, concurrency: int = 20, rate_per_s: float = 0.0) -> None:
        self.concurrency = concurrency
        self.rate_per_s = rate_per_s  # paced: at most this many Signals a second (0: as fast as they go)

    @activity.defn(name="fan_out_incident")
    async def fan_out(self, batch: FanOut) -> FanOutResult:
        details = activity.info().heartbeat_details
        start, result = (int(details[0]), FanOutResult.model_validate(details[1])) if details else (0, FanOutResult())
        notice = IncidentNotice(actor=f"incident:{batch.incident_id}", kind=batch.kind, incident_id=batch.incident_id,
                                title=batch.title, number=batch.number, text=batch.text, resolve=batch.resolve,
                                resolution=batch.resolution)
        client = activity.client()

        async def tell(ticket_id: str) -> None:
            handle = client.get_workflow_handle(workflow_id(ticket_id))
            try:
                if batch.kind == "resolved":  # by Update: the ticket answers whether the resolution resolved it
                    resolved = await handle.execute_update("incident_resolution", notice, result_type=bool)
                    result.resolved += int(resolved)
                    await gather_breaches(ticket_id, handle)
                else:
                    await handle.signal("incident", notice)
                result.told += 1
            except RPCError as exc:
                if exc.status != RPCStatusCode.NOT_FOUND:
                    raise
                # completed (closed) or never existed: told apart by asking once
                try:
                    await handle.describe()
                except RPCError:
                    result.missing.append(ticket_id)
                    return
                result.closed.append(ticket_id)
                if batch.kind == "resolved":  # a ticket closed meanwhile breached all the same
                    await gather_breaches(ticket_id, handle)

        async def gather_breaches(ticket_id: str, handle: WorkflowHandle[Any, Any]) -> None:
            """The ticket's SLA breaches, for the incident's post-mortem (a worker of before has no such query)."""
            try:
                breaches = await handle.query("breaches", result_type=list[Breach])
            except (WorkflowQueryFailedError, RPCError) as exc:
                log.warning("breaches not read", ticket_id=ticket_id, error=str(exc)[:200])
                result.breaches_unread += 1
                return
            result.breach_count += len(breaches)
            room = BREACHES_KEPT - len(result.breaches)
            result.breaches += [breach_line(b, ticket_id) for b in breaches[:max(room, 0)]]

        loop = asyncio.get_running_loop()
        for i in range(start, len(batch.tickets), self.concurrency):
            began = loop.time()
            chunk = batch.tickets[i:i + self.concurrency]
            await asyncio.gather(*(tell(t) for t in chunk))
            activity.heartbeat(i + len(chunk), result.model_dump(mode="json"))
            if self.rate_per_s > 0:
                await asyncio.sleep(max(0.0, len(chunk) / self.rate_per_s - (loop.time() - began)))
        log.info("incident fan-out", incident_id=batch.incident_id, kind=batch.kind, number=batch.number,
                 told=result.told, resolved=result.resolved, closed=len(result.closed), missing=len(result.missing))
        return result
