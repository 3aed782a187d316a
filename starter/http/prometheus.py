"""The API's Prometheus metrics (prometheus_client): request latency and counts by route template and status, and
the time spent in Temporal calls. Route templates (`/v1/tickets/{ticket_id}`), never raw paths: a ticket id in a
label would make one time series per ticket (and put ids in the metrics)."""

from __future__ import annotations

import time

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    gc_collector,
    generate_latest,
    platform_collector,
    process_collector,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# One registry per process (the API's), not the library's global one: tests build many apps in one process.
REGISTRY = CollectorRegistry()
process_collector.ProcessCollector(registry=REGISTRY)
platform_collector.PlatformCollector(registry=REGISTRY)
gc_collector.GCCollector(registry=REGISTRY)

LABELS = ("method", "route", "status")
REQUESTS = Counter("escalation_api_requests", "API requests, by method, route template and status", LABELS,
                   registry=REGISTRY)
LATENCY = Histogram("escalation_api_request_duration_seconds", "API request latency, by method, route template "
                    "and status", LABELS, registry=REGISTRY,
                    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
TEMPORAL = Histogram("escalation_api_temporal_seconds", "time a request spent in Temporal calls, by route template",
                     ("route",), registry=REGISTRY, buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
# What /metrics documents (README "Prometheus"; tests/api/test_prometheus.py checks each is exposed).
NAMES = ("escalation_api_requests_total", "escalation_api_request_duration_seconds",
         "escalation_api_temporal_seconds")
UNMATCHED = "unmatched"  # no route matched (404s): one series, whatever the path


def route_of(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED


class LatencyMiddleware:
    """Pure ASGI: times each HTTP request and labels it with its route template once routing has run."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = route_of(scope)
            labels = (scope.get("method", ""), route, str(status))
            REQUESTS.labels(*labels).inc()
            LATENCY.labels(*labels).observe(time.perf_counter() - started)
            temporal_ms = scope.get("state", {}).get("temporal_ms")
            if temporal_ms is not None:
                TEMPORAL.labels(route).observe(temporal_ms / 1000)


def exposition() -> tuple[bytes, str]:
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
