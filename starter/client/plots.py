"""The escalation metrics drawn (matplotlib, Agg backend: no display): one PNG of four panels. `series` is the data
behind every bar, so a test (and the console's dashboard) checks and reuses the numbers, not the pixels."""

from __future__ import annotations

import io
from pathlib import Path

from starter.client.metrics import MetricsReport, Spread

Series = dict[str, dict[str, float]]
HOUR = 3600.0


def _hours(s: Spread, which: str) -> float | None:
    v = s.median_s if which == "median" else s.p90_s
    return None if v is None else round(v / HOUR, 4)


def series(r: MetricsReport) -> dict[str, Series]:
    """panel title -> series name -> category -> value (rates as fractions, times in hours)."""
    rates: Series = {
        "by opening tier": {k: v.rate or 0.0 for k, v in r.escalation_by_tier.items()},
        "by department": {k: v.rate or 0.0 for k, v in r.escalation_by_department.items()},
    }
    breaches: Series = {clock: {tier: v.rate or 0.0 for tier, v in tiers.items()}
                        for clock, tiers in r.breach_by_clock_and_tier.items()}
    times: Series = {  # a time with no data (nothing acknowledged yet) is left out, not drawn as 0
        f"{kind} {which}": {what: h for what, spread in (("acknowledge", r.time_to_acknowledge),
                                                         ("resolution", r.time_to_resolution))
                            if (h := _hours(getattr(spread, kind), which)) is not None}
        for kind in ("wall", "business") for which in ("median", "p90")}
    shown = [*r.escalation_tags, *(t for t in r.tag_trends if not t.escalations)]  # also the tags that left
    tags: Series = {"this window": {s.tag: s.share for s in shown},
                    "previous window": {s.tag: s.previous_share for s in shown}}
    return {"Escalation rate": rates, "SLA breach rate by clock and tier": breaches,
            "Time to acknowledge / resolve (hours)": times, "Share of escalations per tag": tags}


def render_png(r: MetricsReport) -> bytes:
    # The object API, not pyplot: no global figure state, so the console may draw in a thread off its event loop.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    panels = series(r)
    fig = Figure(figsize=(12, 8))
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, 2)
    for ax, (title, data) in zip(axes.flat, panels.items(), strict=True):
        categories = sorted({c for values in data.values() for c in values})
        width = 0.8 / max(1, len(data))
        for i, (name, values) in enumerate(data.items()):
            xs = [j + i * width for j in range(len(categories))]
            ax.bar(xs, [values.get(c, 0.0) for c in categories], width=width, label=name)
        ax.set_xticks([j + width * (len(data) - 1) / 2 for j in range(len(categories))], categories, rotation=20)
        ax.set_title(title)
        if data:
            ax.legend(fontsize="small")
        if not categories:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
    fig.suptitle(f"Escalation metrics {r.start:%Y-%m-%d %H:%M} to {r.end:%Y-%m-%d %H:%M} UTC: "
                 f"{r.tickets_opened} tickets, escalation rate {_pct(r.escalation.rate)}, "
                 f"breach rate {_pct(r.breach.rate)}")
    fig.tight_layout()
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=80)
    return out.getvalue()


def _pct(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:.1%}"


def write_png(r: MetricsReport, path: Path) -> None:
    path.write_bytes(render_png(r))
