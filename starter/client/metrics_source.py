"""Where the escalation metrics' facts come from: Temporal visibility, listed (no second database).

What the visibility store can do for us, checked on the dev server (SQLite visibility, Server 1.32):
`CountWorkflowExecutions` counts any query and groups only by `ExecutionStatus`; a GROUP BY on a custom search
attribute (TicketTier, ...) is refused, and there are no sums, averages or percentiles. So the window's tickets are
listed (1,000 per page, search attributes and memo with each) and the figures computed here, in the client, by the
pure rules of starter/client/metrics.py. Elasticsearch visibility (a cluster) lists the same way, faster and without
the SQLite write lock, and can group counts by more; the report does not depend on it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from temporalio.client import Client, WorkflowExecution

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


def _attributes(w: WorkflowExecution) -> dict[str, Any]:
    return {k.name: v for k in (*sa.ALL, *sa.METRICS) if (v := w.typed_search_attributes.get(k)) is not None}


async def list_facts(client: Client, start: datetime, end: datetime, scope: list[str], *,
                     rpc_timeout: Any = None) -> list[TicketFacts]:
    out: list[TicketFacts] = []
    async for w in client.list_workflows(window_query(start, end, scope), page_size=PAGE, rpc_timeout=rpc_timeout):
        attrs = _attributes(w)
        memo = await w.memo()
        figures = memo.get(MEMO_KEY)
        opened = attrs.get(sa.OPENED_AT.name) or w.start_time
        out.append(facts_from(w.id.removeprefix("ticket-"), opened, attrs, figures if isinstance(figures, dict) else None))
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
