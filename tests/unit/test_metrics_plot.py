"""`escalation metrics --plot`: the series behind the bars are the report's figures, and the file is a valid PNG."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

from PIL import Image

from starter.client.metrics import TicketFacts, compute
from starter.client.plots import render_png, series

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def report() -> object:
    tickets = [
        TicketFacts(id="A", opened_at=T0, opened_tier="tier1", department="billing", escalations=1, tags=["refund"],
                    breaches=["acknowledge:tier1"], acknowledged_at=T0 + timedelta(hours=1), ack_business_s=1800.0,
                    resolved_at=T0 + timedelta(hours=3), resolve_business_s=5400.0),
        TicketFacts(id="B", opened_at=T0, opened_tier="tier1", department="general", tags=["login"],
                    acknowledged_at=T0 + timedelta(hours=2), ack_business_s=7200.0,
                    resolved_at=T0 + timedelta(hours=4), resolve_business_s=14400.0),
    ]
    previous = [TicketFacts(id="C", opened_at=T0 - timedelta(days=1), escalations=1, tags=["login"])]
    return compute(tickets, previous, start=T0, end=T0 + timedelta(days=1))


def test_the_series_are_the_reports_figures() -> None:
    s = series(report())  # type: ignore[arg-type]
    assert s["Escalation rate"] == {"by opening tier": {"tier1": 0.5},
                                    "by department": {"billing": 1.0, "general": 0.0}}
    assert s["SLA breach rate by clock and tier"] == {"acknowledge": {"tier1": 0.5}}
    times = s["Time to acknowledge / resolve (hours)"]
    assert times["wall median"] == {"acknowledge": 1.0, "resolution": 3.0}  # nearest rank of two: the first
    assert times["wall p90"] == {"acknowledge": 2.0, "resolution": 4.0}
    assert times["business median"] == {"acknowledge": 0.5, "resolution": 1.5}
    assert s["Share of escalations per tag"] == {"this window": {"refund": 1.0, "login": 0.0},
                                                "previous window": {"refund": 0.0, "login": 1.0}}


def test_the_plot_is_a_valid_png() -> None:
    png = render_png(report())  # type: ignore[arg-type]
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    image = Image.open(io.BytesIO(png))
    image.verify()
    assert image.format == "PNG" and image.size == (960, 640)


def test_an_empty_report_still_draws() -> None:
    empty = compute([], [], start=T0, end=T0 + timedelta(days=1))
    assert render_png(empty).startswith(b"\x89PNG")
    assert series(empty)["Escalation rate"] == {"by opening tier": {}, "by department": {}}


def test_the_grafana_dashboard_uses_only_documented_metrics() -> None:
    import json
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    dashboard = json.loads((root / "deploy/grafana/escalation.json").read_text())
    readme = (root / "README.md").read_text()
    used = {m for p in dashboard["panels"] for t in p["targets"]
            for m in re.findall(r"\b(escalation_[a-z_]+?)(?:_bucket)?\b(?=[\[{ )])", t["expr"])}
    assert used and all(f"`{name}`" in readme for name in used), used
