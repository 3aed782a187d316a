"""The auditor's reading of the server: every run of a workflow's history, and the workflows a visibility query
names (any workflow type). Replaying them is starter.runtime.replay's; this only fetches."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.client import Client, WorkflowHistory
from temporalio.service import RPCError, RPCStatusCode

from starter.client.errors import InvalidInput, TemporalUnavailable, TicketNotFound

MAX_RUNS = 10_000  # a guard against a cycle in the chain of runs (never seen; a chain is finite)


async def every_run(client: Client, workflow_id: str, rpc_timeout: timedelta,
                    last_run_id: str | None = None) -> list[WorkflowHistory]:
    """Every run of the workflow, oldest first: the latest run (or `last_run_id`, the end of one execution chain
    of an id that was reused), then each run it continued from (its start event names the run before it,
    `continued_execution_run_id`), as far back as the server still keeps them."""
    runs: list[WorkflowHistory] = []
    run_id: str | None = last_run_id
    while len(runs) < MAX_RUNS:
        try:
            history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history(
                rpc_timeout=rpc_timeout)
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND and runs:  # an older run past the server's retention
                break
            raise
        runs.append(history)
        first = history.events[0] if history.events else None
        if first is None or not first.HasField("workflow_execution_started_event_attributes"):
            break
        run_id = first.workflow_execution_started_event_attributes.continued_execution_run_id or None
        if run_id is None:
            break
    return runs[::-1]


async def matching_workflow_ids(client: Client, query: str, limit: int, rpc_timeout: timedelta) -> list[str]:
    """The distinct workflow ids a visibility query matches (newest first, at most `limit`); a query the server
    cannot parse is InvalidInput naming it."""
    ids: list[str] = []
    seen: set[str] = set()
    try:
        async for execution in client.list_workflows(query, page_size=min(limit, 1000), rpc_timeout=rpc_timeout):
            if execution.id not in seen:
                seen.add(execution.id)
                ids.append(execution.id)
                if len(ids) >= limit:
                    break
    except RPCError as exc:
        if exc.status == RPCStatusCode.INVALID_ARGUMENT:  # its "at position N" counts in the server's own query
            reason = re.sub(r"\s*at position \d+", "", exc.message)
            raise InvalidInput(f"query {query!r} is not a visibility query the server accepts: {reason}",
                               field="query") from None
        raise TemporalUnavailable(f"Temporal refused or failed the listing: {exc.message}") from None
    return ids


async def closed_chains(client: Client, since: datetime, until: datetime | None, limit: int,
                        rpc_timeout: timedelta) -> list[tuple[str, str]]:
    """(workflow id, last run id) of each execution chain that closed in [since, until), newest first, at most
    `limit`: an id reused by a later execution (incidents, sponsorships allow it) is one chain per execution."""
    chains: list[tuple[str, str]] = []
    seen: set[tuple[str, str]] = set()
    try:
        async for execution in client.list_workflows(closed_query(since, until), page_size=min(limit, 1000),
                                                     rpc_timeout=rpc_timeout):
            if (chain := (execution.id, execution.run_id)) not in seen:  # a page boundary may repeat one
                seen.add(chain)
                chains.append(chain)
                if len(chains) >= limit:
                    break
    except RPCError as exc:
        raise TemporalUnavailable(f"Temporal refused or failed the listing: {exc.message}") from None
    return chains


def closed_query(since: datetime, until: datetime | None) -> str:
    """Workflows of every type whose last run closed in [since, until): a run that continued as new is part of its
    workflow's chain, archived with it once the chain ends."""
    clauses = ["ExecutionStatus != 'Running'", "ExecutionStatus != 'ContinuedAsNew'",
               f"CloseTime >= '{since.astimezone(UTC).isoformat().replace('+00:00', 'Z')}'"]
    if until is not None:
        clauses.append(f"CloseTime < '{until.astimezone(UTC).isoformat().replace('+00:00', 'Z')}'")
    return " AND ".join(clauses)


async def runs_of_each(client: Client, workflow_ids: list[str], rpc_timeout: timedelta,
                       ) -> AsyncIterator[tuple[str, list[WorkflowHistory] | TicketNotFound]]:
    """Each workflow's runs in turn (fetched as the replay goes: no more than one workflow's history in memory
    ahead of it); one the server does not have is reported, not raised."""
    for wid in workflow_ids:
        try:
            yield wid, await every_run(client, wid, rpc_timeout)
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise TemporalUnavailable(f"Temporal refused or failed to read {wid}: {exc.message}") from None
            yield wid, TicketNotFound(f"the server has no workflow {wid!r} (never started, or past retention)")


# `ticket history` writes every run of a workflow, oldest first: {"workflow_id", "runs": [{"run_id", "events"}]}
# (starter.runtime.replay reads it, and a single run as Temporal writes it: {"events": [...]}).


def export_runs(workflow_id: str, runs: Iterable[WorkflowHistory]) -> dict[str, Any]:
    return {"workflow_id": workflow_id, "runs": [{"run_id": run_id_of(h), **h.to_json_dict()} for h in runs]}


def run_id_of(history: WorkflowHistory) -> str | None:
    """The run's id as its start event records it (`original_execution_run_id`: the run's own id)."""
    first = history.events[0] if history.events else None
    if first is None or not first.HasField("workflow_execution_started_event_attributes"):
        return None
    return first.workflow_execution_started_event_attributes.original_execution_run_id or None
