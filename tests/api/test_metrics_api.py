"""GET /v1/metrics (the same client function as `escalation metrics`) and GET /metrics (Prometheus) on the real
server: a ticket opened through the API is counted in the window; the exposition names every documented metric,
labelled by route template (never a ticket id)."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from starter.http.prometheus import NAMES
from tests.support.api import Tokens, error

README = Path(__file__).resolve().parents[2] / "README.md"


async def test_metrics_count_a_new_ticket_and_refuse_bad_input(http: httpx.AsyncClient, tokens: Tokens) -> None:
    sup = tokens.header("supervisor")
    tag = f"probe{uuid.uuid4().hex[:6]}"
    opened = await http.post("/v1/tickets", headers={**tokens.header("intake"), "Idempotency-Key": tag}, json={
        "id": f"MX-{tag}", "subject": "Invoice wrong", "customer_id": "cust-9", "priority": "P3", "tags": [tag]})
    assert opened.status_code in (200, 201), opened.text
    start = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    end = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    for _ in range(50):  # visibility trails the start by a moment
        r = await http.get("/v1/metrics", params={"from": start, "to": end, "group_by": "priority"}, headers=sup)
        assert r.status_code == 200, r.text
        if r.json()["tickets_opened"] >= 1 and any(g["group"] == "P3" for g in r.json()["groups"]):
            break
        await asyncio.sleep(0.2)
    body = r.json()
    assert body["group_by"] == "priority" and any(g["group"] == "P3" for g in body["groups"])
    assert {"escalation", "breach_by_clock", "time_to_resolution", "first_contact_resolution", "csat",
            "tag_trends"} <= set(body)

    bad = await http.get("/v1/metrics", params={"group_by": "colour"}, headers=sup)
    assert "group_by 'colour' is not one of tier, department, priority, channel" in error(bad, 422, "invalid_request")[
        "message"]
    backwards = await http.get("/v1/metrics", params={"from": end, "to": start}, headers=sup)
    assert "must be before" in error(backwards, 422, "invalid_request")["message"]
    error(await http.get("/v1/metrics", headers=tokens.header("intake")), 403, "forbidden")


async def test_prometheus_exposes_the_documented_names(http: httpx.AsyncClient, tokens: Tokens) -> None:
    await http.get("/v1/tickets/NOPE-1", headers=tokens.header("supervisor"))  # a 404 on a templated route
    r = await http.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    for name in NAMES:
        assert re.search(rf"^{name}", text, re.M), name
        assert f"`{name}`" in README.read_text(), f"{name} is not in the README's table"
    assert re.search(r'escalation_api_requests_total\{method="GET",route="/v1/tickets/\{ticket_id\}",status="404"\}',
                     text), "labelled by the route template"
    assert "NOPE-1" not in text
