"""The escalation metrics over a time window (`GET /v1/metrics`), thin over EscalationClient.metrics; and the
Prometheus exposition of the API itself (`GET /metrics`: request latency by route template and status)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from starter.client.metrics import GROUP_BY, MetricsReport
from starter.client.principal import Permission, Principal
from starter.http import prometheus
from starter.http.deps import requires, temporal
from starter.http.errors import errors

router = APIRouter(tags=["metrics"])


@router.get("/v1/metrics", response_model=MetricsReport, responses=errors(403, 422))
async def get_metrics(
        request: Request, who: Annotated[Principal, Depends(requires(Permission.list))],
        start: Annotated[datetime | None, Query(alias="from", description="tickets opened at or after this (ISO-8601 "
                                                "with a time zone; default: 30 days before `to`)")] = None,
        end: Annotated[datetime | None, Query(alias="to", description="and before this (default: now)")] = None,
        group_by: Annotated[str | None, Query(description=f"also per group: one of {', '.join(GROUP_BY)}")] = None,
) -> Any:
    """Tickets opened, escalation rate (per opening tier, per department), SLA breach rate per clock and tier, time
    to acknowledge and to resolution (median, p90; wall and business time), first-contact resolution, reopen rate,
    CSAT, and each tag's share of the escalations with the tags that moved most against the previous window. A
    scoped agent's figures cover its tiers and departments only."""
    return await temporal(request, lambda c: c.metrics(principal=who, start=start, end=end, group_by=group_by))


@router.get("/metrics", include_in_schema=False)
async def prometheus_metrics() -> Response:
    """Prometheus text exposition (no token: serve it on an internal listener only; README "Prometheus")."""
    body, content_type = prometheus.exposition()
    return Response(body, media_type=content_type)
