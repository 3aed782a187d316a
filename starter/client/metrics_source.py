"""Where the escalation metrics' facts come from: Temporal visibility, listed (no second database).

What the visibility store can do for us, checked on the dev server (SQLite visibility, Server 1.32):
`CountWorkflowExecutions` counts any query and groups only by `ExecutionStatus`; a GROUP BY on a custom search
attribute (TicketTier, ...) is refused, and there are no sums, averages or percentiles. So the window's tickets are
listed (1,000 per page, search attributes and memo with each) and the figures computed here, in the client, by the
pure rules of starter/client/metrics.py. Elasticsearch visibility (a cluster) lists the same way, faster and without
the SQLite write lock, and can group counts by more; the report does not depend on it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from temporalio.api.workflowservice.v1 import ListWorkflowExecutionsRequest
from temporalio.client import Client

from starter.client.metrics import TicketFacts, facts_from
from workflows.common import search_attributes as sa
from workflows.survey.state import survey_workflow_id
from workflows.ticket.figures import MEMO_KEY

PAGE = 1000


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def window_query(start: datetime, end: datetime, scope: list[str]) -> str:
    """The window's tickets: one row per ticket (a continued-as-new run is listed by its latest run only)."""
    return " AND ".join(["WorkflowType = 'Ticket'", "ExecutionStatus != 'ContinuedAsNew'",
                         f"{sa.OPENED_AT.name} >= '{_iso(start)}'", f"{sa.OPENED_AT.name} < '{_iso(end)}'", *scope])


# What the report reads of each listed ticket: only these search attributes are decoded (JSON, never encoded).
READ = (sa.STATUS, sa.TIER, sa.DEPARTMENT, sa.PRIORITY, sa.CHANNEL, sa.ESCALATION_COUNT, sa.OPENED_AT, sa.TAGS)


def _attributes(indexed: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in READ:
        p = indexed.get(key.name)
        if p is not None and p.data:
            out[key.name] = json.loads(p.data)
    return out


async def list_facts(client: Client, start: datetime, end: datetime, scope: list[str], *,
                     rpc_timeout: Any = None) -> list[TicketFacts]:
    """The window's tickets, a page (1,000) at a time through the raw ListWorkflowExecutions call: the SDK's listing
    decodes every search attribute of every row and each memo on its own; here only what the report reads, and the
    page's memos in one codec call (measured: about twice as fast)."""
    out: list[TicketFacts] = []
    token = b""
    while True:
        page = await client.workflow_service.list_workflow_executions(ListWorkflowExecutionsRequest(
            namespace=client.namespace, page_size=PAGE, next_page_token=token,
            query=window_query(start, end, scope)), retry=True, timeout=rpc_timeout)
        rows = [(e.execution.workflow_id, e.start_time.ToDatetime(tzinfo=UTC), _attributes(e.search_attributes.indexed_fields),
                 e.memo.fields.get(MEMO_KEY)) for e in page.executions]
        memos = [m for *_, m in rows if m is not None]
        decoded = iter(await client.data_converter.decode(memos) if memos else [])
        for wid, started, attrs, memo in rows:
            figures = next(decoded) if memo is not None else None
            opened = attrs.get(sa.OPENED_AT.name)
            out.append(facts_from(wid.removeprefix("ticket-"), datetime.fromisoformat(opened) if opened else started,
                                  attrs, figures if isinstance(figures, dict) else None))
        token = page.next_page_token
        if not token:
            return out


async def survey_scores(client: Client, since: datetime, *, rpc_timeout: Any = None) -> dict[str, int]:
    """workflow id of the survey -> its score, for surveys answered (started since `since`: after their ticket)."""
    query = f"WorkflowType = 'SurveyWorkflow' AND {sa.SURVEY_SCORE.name} >= 1 AND StartTime >= '{_iso(since)}'"
    scores: dict[str, int] = {}
    async for w in client.list_workflows(query, page_size=PAGE, rpc_timeout=rpc_timeout):
        score = w.typed_search_attributes.get(sa.SURVEY_SCORE)
        if score is not None:
            scores[w.id] = score
    return scores


def with_csat(facts: list[TicketFacts], scores: dict[str, int]) -> list[TicketFacts]:
    return [f.model_copy(update={"csat": scores.get(survey_workflow_id(f.id))}) for f in facts]
