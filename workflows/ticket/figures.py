"""What a ticket publishes for the escalation metrics (patch `metrics-figures`), and what it counts on the worker's
Prometheus meter. Pure: the shell publishes and records what these return.

The window's filter and the tags' shares are search attributes (`TicketOpenedAt`, `TicketTags`): the server filters
by them. The figures the report computes from (times, tiers, breached clocks, reopens) are the memo's `metrics`
entry: listed with each ticket, never indexed, so they use none of the server's few custom-attribute slots (a
SQL-visibility dev server allows 3 Datetime, 3 KeywordList, 3 Int per namespace).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from workflows.common import search_attributes as sa
from workflows.common.policy import Policy
from workflows.ticket.clocks import deadlines
from workflows.ticket.state import TicketState, TimelineEntry

MEMO_KEY = "metrics"
_ESCALATED = re.compile(r"^escalated from \S+ to (\S+)$")


def search_attributes(s: TicketState) -> dict[str, object]:
    """Indexed: what a window and a tag filter select by (no personal data: stored unencrypted)."""
    return {sa.OPENED_AT.name: s.ticket.opened_at.astimezone(UTC), sa.TAGS.name: list(s.ticket.tags)}


def _seconds(d: timedelta) -> float:
    return round(d.total_seconds(), 3)


def opening_tier(s: TicketState) -> str:
    """The tier the routing chose: the first escalation's origin, else the current tier."""
    for e in s.timeline:
        if e.action == "escalated" and e.summary.startswith("escalated from "):
            return e.summary.split()[2]
    return s.tier


def memo(s: TicketState) -> dict[str, Any]:
    """The figures of one ticket, as of its state (JSON: the memo is a payload)."""
    opened = s.ticket.opened_at
    ack, resolved = s.acknowledged_at, s.resolved_at
    return {
        "v": 1,
        "opened_tier": opening_tier(s),
        "escalations": s.escalation_count,
        "reopens": s.reopen_count,
        "breaches": sorted({f"{b.clock}:{b.tier}" for b in s.breaches}),
        "acknowledged_at": ack.astimezone(UTC).isoformat() if ack else None,
        "ack_business_s": _seconds(s.calendar.elapsed(opened, ack)) if ack else None,
        "resolved_at": resolved.astimezone(UTC).isoformat() if resolved else None,
        "resolve_business_s": _seconds(s.calendar.elapsed(opened, resolved)) if resolved else None,
    }


# ----- the worker's business metrics (recorded through workflow.metric_meter(): nothing during replay) ------------

@dataclass(frozen=True)
class Count:
    """One increment of a counter (or one observation of a histogram, with `value`)."""

    name: str
    labels: dict[str, str] = field(default_factory=dict)
    value: float = 1.0


COUNTERS = {
    "escalation_tickets_opened": "tickets opened, by channel and priority",
    "escalation_escalations": "escalations, by reason (auto: an SLA rule; manual: a person) and the tier entered",
    "escalation_sla_warnings": "SLA warnings, by clock",
    "escalation_sla_breaches": "SLA breaches, by clock and tier",
}
HISTOGRAMS = {
    "escalation_sla_warning_lateness_seconds": "how late a warning was applied after its instant, by clock",
    "escalation_sla_breach_lateness_seconds": "how late a breach was applied after its due time, by clock",
}


def counts(s: TicketState, entries: list[TimelineEntry]) -> list[Count]:
    """What the new timeline entries add to the worker's counters and histograms."""
    out: list[Count] = []
    for e in entries:
        if e.action == "opened":
            out.append(Count("escalation_tickets_opened", {"channel": s.ticket.channel.value, "priority": s.priority}))
        elif e.action == "escalated":
            m = _ESCALATED.match(e.summary)
            auto = e.clock is not None or e.actor.startswith("system:")
            out.append(Count("escalation_escalations", {"reason": "auto" if auto else "manual",
                                                        "tier": m.group(1) if m else s.tier}))
        elif e.action in ("sla_warning", "sla_breached") and e.clock is not None:
            kind = "warning" if e.action == "sla_warning" else "breach"
            labels = {"clock": str(e.clock)}
            if kind == "breach":
                tiers = [b.tier for b in s.breaches if b.clock == e.clock and b.at == e.at]
                out.append(Count("escalation_sla_breaches", {**labels, "tier": tiers[-1] if tiers else s.tier}))
            else:
                out.append(Count("escalation_sla_warnings", labels))
    return out


def lateness(s: TicketState, p: Policy, now: datetime) -> list[Count]:
    """How late the deadlines passed by `now` are being applied (the shell asks before its catch-up): the timers'
    lag, or a worker's outage. Never before the state's `as_of` (a ticket opened in the past is not late); a
    warning whose breach is due as well is not sent, so not measured."""
    due = [d for d in deadlines(s, p) if d.at <= now and d.kind in ("warning", "breach") and d.clock is not None]
    breaching = {d.clock for d in due if d.kind == "breach"}
    return [Count(f"escalation_sla_{d.kind}_lateness_seconds", {"clock": str(d.clock)},
                  max(0.0, (now - max(d.at, s.as_of)).total_seconds()))
            for d in due if d.kind == "breach" or d.clock not in breaching]
