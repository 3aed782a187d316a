"""Escalation metrics over a time window: the report's model and the pure rules that compute it.

The facts come from Temporal visibility alone (starter/client/tickets.py `EscalationClient.metrics` lists them):
each ticket's search attributes (tier, department, priority, channel, status, TicketOpenedAt, TicketTags) and its
memo's `metrics` entry (workflows/ticket/figures.py), plus the surveys' SurveyScore. Everything here is a plain
function of those facts: no server, unit-tested (tests/unit/test_metrics_rules.py).

Definitions (README "Metrics"):
- a ticket belongs to the window [from, to) by its `opened_at`;
- percentiles are nearest-rank (p50 of 1..10 is 5, p90 is 9): always a value that was observed;
- escalation rate: tickets escalated at least once / tickets; per tier by the tier the ticket was opened at, per
  department by its department now;
- breach rate per clock (and tier): tickets that breached that clock (at that tier) / the window's tickets;
- time to acknowledge / resolution: from opened_at to the (last) acknowledgement / resolution, wall time and
  business time (the ticket's calendar); a reopened ticket counts from opened_at to its latest resolution;
- first-contact resolution: resolved tickets never escalated nor reopened / resolved tickets;
- reopen rate: tickets reopened at least once / tickets resolved at least once;
- CSAT: the answered surveys of the window's tickets: mean score (1..5) and the share of 4 and 5;
- tag shares: escalated tickets carrying the tag / escalated tickets; the trend is the change of that share against
  the previous window of the same length, largest moves first.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, Field

GroupBy = Literal["tier", "department", "priority", "channel"]
GROUP_BY: tuple[str, ...] = ("tier", "department", "priority", "channel")
DEFAULT_WINDOW = timedelta(days=30)
MAX_WINDOW = timedelta(days=366)
TRENDS_SHOWN = 5
EARLIEST, LATEST = datetime(1971, 1, 1), datetime(2999, 12, 31)  # the years a window may name
SATISFIED = 4  # a CSAT answer of 4 or 5 of 5 counts as satisfied


class TicketFacts(BaseModel):
    """One ticket as visibility lists it (search attributes and the memo's figures)."""

    id: str
    opened_at: datetime
    status: str = ""
    tier: str = ""
    department: str = ""
    priority: str = ""
    channel: str = ""
    tags: list[str] = []
    has_figures: bool = True  # False: no memo figures yet (a ticket started without them, before its first task)
    opened_tier: str = ""
    escalations: int = 0
    reopens: int = 0
    breaches: list[str] = []  # "clock:tier"
    acknowledged_at: datetime | None = None
    ack_business_s: float | None = None
    resolved_at: datetime | None = None
    resolve_business_s: float | None = None
    csat: int | None = None


def facts_from(id_: str, opened_at: datetime, attributes: dict[str, Any], figures: dict[str, Any] | None,
               csat: int | None = None) -> TicketFacts:
    """A ticket's facts from its listed search attributes (by name) and the memo's `metrics` entry."""
    f = figures or {}
    return TicketFacts(
        id=id_, opened_at=opened_at, status=attributes.get("TicketStatus") or "", tier=attributes.get("TicketTier") or "",
        department=attributes.get("TicketDepartment") or "", priority=attributes.get("TicketPriority") or "",
        channel=attributes.get("TicketChannel") or "", tags=list(attributes.get("TicketTags") or []),
        has_figures=figures is not None, opened_tier=f.get("opened_tier") or attributes.get("TicketTier") or "",
        escalations=int(f.get("escalations", attributes.get("TicketEscalationCount") or 0)),
        reopens=int(f.get("reopens", 0)), breaches=list(f.get("breaches", [])),
        acknowledged_at=f.get("acknowledged_at"), ack_business_s=f.get("ack_business_s"),
        resolved_at=f.get("resolved_at"), resolve_business_s=f.get("resolve_business_s"), csat=csat,
    )


class Rate(BaseModel):
    count: int
    of: int
    rate: float | None = Field(description="count / of, rounded to 4 places; null when `of` is 0")


class Spread(BaseModel):
    """Seconds: nearest-rank median and 90th percentile over `n` tickets (null when none)."""

    n: int
    median_s: float | None
    p90_s: float | None


class Durations(BaseModel):
    wall: Spread
    business: Spread


class Csat(BaseModel):
    responses: int
    mean_score: float | None
    satisfied: Rate


class TagShare(BaseModel):
    tag: str
    escalations: int
    share: float = Field(description="of the window's escalated tickets")
    previous_share: float = Field(description="the same in the previous window")
    change: float = Field(description="share - previous_share (a fraction: 0.10 is 10 points)")


class GroupFigures(BaseModel):
    group: str
    tickets: int
    escalation: Rate
    breach: Rate
    time_to_resolution: Spread


class MetricsReport(BaseModel):
    start: datetime = Field(description="the window: tickets opened at or after this")
    end: datetime = Field(description="and before this")
    previous_start: datetime = Field(description="the previous window of the same length (the tag trends)")
    group_by: str | None = None
    tickets_opened: int
    tickets_without_figures: int = Field(description="listed without the memo's figures (counted in the totals only)")
    escalation: Rate
    escalation_by_tier: dict[str, Rate] = Field(description="by the tier the ticket was opened at")
    escalation_by_department: dict[str, Rate]
    breach: Rate = Field(description="tickets with any SLA breach")
    breach_by_clock: dict[str, Rate]
    breach_by_clock_and_tier: dict[str, dict[str, Rate]]
    time_to_acknowledge: Durations
    time_to_resolution: Durations
    first_contact_resolution: Rate
    reopen: Rate
    csat: Csat
    escalation_tags: list[TagShare] = Field(description="every tag of an escalated ticket, largest share first")
    tag_trends: list[TagShare] = Field(description=f"the {TRENDS_SHOWN} tags whose share moved most")
    groups: list[GroupFigures] = []


# ----- the rules ---------------------------------------------------------------------------------------------------


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile (0 < p <= 100): the smallest value with at least p % of the values at or below it."""
    if not 0 < p <= 100:
        raise ValueError(f"percentile p={p} must be in (0, 100]")
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(1, math.ceil(p / 100 * len(ordered))) - 1]


def spread(values: Sequence[float]) -> Spread:
    return Spread(n=len(values), median_s=percentile(values, 50), p90_s=percentile(values, 90))


def rate(count: int, of: int) -> Rate:
    return Rate(count=count, of=of, rate=round(count / of, 4) if of else None)


def rates_by(tickets: Iterable[TicketFacts], key: Callable[[TicketFacts], str],
             hit: Callable[[TicketFacts], bool]) -> dict[str, Rate]:
    of: Counter[str] = Counter()
    count: Counter[str] = Counter()
    for t in tickets:
        of[key(t)] += 1
        count[key(t)] += hit(t)
    return {k: rate(count[k], of[k]) for k in sorted(of)}


def escalated(t: TicketFacts) -> bool:
    return t.escalations > 0


def tag_shares(tickets: Sequence[TicketFacts]) -> dict[str, tuple[int, float]]:
    """tag -> (escalated tickets carrying it, their share of the escalated tickets)."""
    up = [t for t in tickets if escalated(t)]
    counts = Counter(tag for t in up for tag in set(t.tags))
    return {tag: (n, round(n / len(up), 4)) for tag, n in counts.items()}


def tag_trends(current: Sequence[TicketFacts], previous: Sequence[TicketFacts]) -> list[TagShare]:
    """Every tag of either window's escalations, the largest share first (then the name)."""
    now, before = tag_shares(current), tag_shares(previous)
    out = [TagShare(tag=tag, escalations=now.get(tag, (0, 0.0))[0], share=now.get(tag, (0, 0.0))[1],
                    previous_share=before.get(tag, (0, 0.0))[1],
                    change=round(now.get(tag, (0, 0.0))[1] - before.get(tag, (0, 0.0))[1], 4))
           for tag in set(now) | set(before)]
    return sorted(out, key=lambda s: (-s.share, s.tag))


def movers(shares: Sequence[TagShare], n: int = TRENDS_SHOWN) -> list[TagShare]:
    """The tags whose share moved most (either way), ties by name; unchanged ones are left out."""
    return sorted((s for s in shares if s.change), key=lambda s: (-abs(s.change), s.tag))[:n]


def _wall(start: datetime, end: datetime | None) -> float | None:
    return None if end is None else max(0.0, (end - start).total_seconds())


def durations(tickets: Sequence[TicketFacts], at: Callable[[TicketFacts], datetime | None],
              business: Callable[[TicketFacts], float | None]) -> Durations:
    wall = [w for t in tickets if (w := _wall(t.opened_at, at(t))) is not None]
    return Durations(wall=spread(wall), business=spread([b for t in tickets if (b := business(t)) is not None]))


def compute(current: Sequence[TicketFacts], previous: Sequence[TicketFacts], *, start: datetime, end: datetime,
            group_by: str | None = None) -> MetricsReport:
    """The report of the window's tickets (`previous`: the window before, for the tag trends)."""
    if group_by is not None and group_by not in GROUP_BY:
        raise ValueError(f"group_by {group_by!r} is not one of {', '.join(GROUP_BY)}")
    n = len(current)
    breached = [t for t in current if t.breaches]
    clocks = sorted({b.split(":", 1)[0] for t in current for b in t.breaches})
    by_clock_tier: dict[str, dict[str, int]] = defaultdict(Counter)
    for t in current:
        for b in set(t.breaches):
            clock, _, tier = b.partition(":")
            by_clock_tier[clock][tier] += 1
    ever_resolved = [t for t in current if t.resolved_at is not None or t.reopens > 0]
    resolved = [t for t in current if t.resolved_at is not None]
    scores = [t.csat for t in current if t.csat is not None]
    shares = tag_trends(current, previous)
    groups: list[GroupFigures] = []
    if group_by is not None:
        members: dict[str, list[TicketFacts]] = defaultdict(list)
        for t in current:
            members[getattr(t, group_by)].append(t)
        groups = [GroupFigures(group=g, tickets=len(ts), escalation=rate(sum(map(escalated, ts)), len(ts)),
                               breach=rate(sum(bool(t.breaches) for t in ts), len(ts)),
                               time_to_resolution=spread([w for t in ts if (w := _wall(t.opened_at, t.resolved_at))
                                                          is not None]))
                  for g, ts in sorted(members.items())]
    return MetricsReport(
        start=start, end=end, previous_start=start - (end - start), group_by=group_by, tickets_opened=n,
        tickets_without_figures=sum(not t.has_figures for t in current),
        escalation=rate(sum(map(escalated, current)), n),
        escalation_by_tier=rates_by(current, lambda t: t.opened_tier, escalated),
        escalation_by_department=rates_by(current, lambda t: t.department, escalated),
        breach=rate(len(breached), n),
        breach_by_clock={c: rate(sum(any(b.startswith(c + ":") for b in t.breaches) for t in current), n)
                         for c in clocks},
        breach_by_clock_and_tier={c: {tier: rate(k, n) for tier, k in sorted(by_clock_tier[c].items())}
                                  for c in clocks},
        time_to_acknowledge=durations(current, lambda t: t.acknowledged_at, lambda t: t.ack_business_s),
        time_to_resolution=durations(current, lambda t: t.resolved_at, lambda t: t.resolve_business_s),
        first_contact_resolution=rate(sum(not escalated(t) and not t.reopens for t in resolved), len(resolved)),
        reopen=rate(sum(t.reopens > 0 for t in ever_resolved), len(ever_resolved)),
        csat=Csat(responses=len(scores), mean_score=round(sum(scores) / len(scores), 4) if scores else None,
                  satisfied=rate(sum(s >= SATISFIED for s in scores), len(scores))),
        escalation_tags=[s for s in shares if s.escalations], tag_trends=movers(shares), groups=groups,
    )


def window(start: datetime | None, end: datetime | None, now: datetime) -> tuple[datetime, datetime]:
    """The window asked for: `to` defaults to now, `from` to 30 days before `to`; both need a time zone."""
    end = end or now
    start = start or end - DEFAULT_WINDOW
    for name, value in (("from", start), ("to", end)):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"{name} {value.isoformat()} has no time zone (add Z or an offset such as +01:00)")
        if not EARLIEST.year <= value.year <= LATEST.year:
            raise ValueError(f"{name} {value.isoformat()} is outside {EARLIEST.year}..{LATEST.year}")
    if start >= end:
        raise ValueError(f"from {start.isoformat()} must be before to {end.isoformat()}")
    if end - start > MAX_WINDOW:
        raise ValueError(f"the window from {start.isoformat()} to {end.isoformat()} is longer than "
                         f"{MAX_WINDOW.days} days")
    return start, end
