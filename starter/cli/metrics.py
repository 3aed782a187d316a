"""`escalation metrics`: the escalation metrics over a time window (the same client function as GET /v1/metrics),
as a table, as JSON (`--json`), and drawn (`--plot FILE.png`)."""

from __future__ import annotations

from pathlib import Path

from starter.cli.common import SubParsers, emit, parse_time, table
from starter.cli.tickets import Context, run_ticket_command
from starter.client.metrics import GROUP_BY, MetricsReport, Rate, Spread


def _pct(r: Rate) -> str:
    return "-" if r.rate is None else f"{r.rate:.1%} ({r.count}/{r.of})"


def _dur(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes = round(seconds / 60)
    return f"{minutes // 60}h{minutes % 60:02d}m"


def _spread(s: Spread) -> str:
    return f"median {_dur(s.median_s)}, p90 {_dur(s.p90_s)} (n={s.n})"


def render(r: MetricsReport) -> str:
    lines = [f"Escalation metrics: tickets opened {r.start.isoformat()} to {r.end.isoformat()}",
             f"  tickets opened          {r.tickets_opened}" + (
                 f" ({r.tickets_without_figures} without figures yet)" if r.tickets_without_figures else ""),
             f"  escalation rate         {_pct(r.escalation)}",
             f"  SLA breach rate         {_pct(r.breach)}",
             f"  time to acknowledge     wall {_spread(r.time_to_acknowledge.wall)}; business "
             f"{_spread(r.time_to_acknowledge.business)}",
             f"  time to resolution      wall {_spread(r.time_to_resolution.wall)}; business "
             f"{_spread(r.time_to_resolution.business)}",
             f"  first-contact resolution {_pct(r.first_contact_resolution)}",
             f"  reopen rate             {_pct(r.reopen)}",
             "  CSAT                    " + (f"mean {r.csat.mean_score} of 5, satisfied {_pct(r.csat.satisfied)}"
                                              if r.csat.responses else "no answered surveys"), ""]
    rows = [["escalation", "opening tier", k, _pct(v)] for k, v in r.escalation_by_tier.items()]
    rows += [["escalation", "department", k, _pct(v)] for k, v in r.escalation_by_department.items()]
    rows += [["breach", clock, tier, _pct(v)] for clock, tiers in r.breach_by_clock_and_tier.items()
             for tier, v in tiers.items()]
    lines += [table(rows, ["figure", "by", "value", "rate"]), ""]
    if r.escalation_tags:
        lines += [table([[s.tag, s.escalations, f"{s.share:.1%}", f"{s.previous_share:.1%}", f"{s.change:+.1%}"]
                         for s in r.escalation_tags], ["tag", "escalations", "share", "previous", "change"]), ""]
    if r.tag_trends:
        lines.append("moved most: " + ", ".join(f"{s.tag} {s.change:+.1%}" for s in r.tag_trends))
    if r.groups:
        lines += ["", table([[g.group, g.tickets, _pct(g.escalation), _pct(g.breach), _spread(g.time_to_resolution)]
                             for g in r.groups], [r.group_by or "group", "tickets", "escalation", "breach",
                                                  "time to resolution (wall)"])]
    return "\n".join(lines).rstrip()


async def cmd_metrics(c: Context) -> None:
    if c.args.backfill:
        done = await c.client.backfill_figures(principal=c.principal)
        emit(done, c.args.json, lambda: f"{done.asked} running ticket(s) without figures asked; {done.published} "
                                        f"publish them now")
        return
    r = await c.client.metrics(principal=c.principal, start=c.args.start, end=c.args.end, group_by=c.args.group_by)
    if c.args.plot:
        from starter.client.plots import write_png  # matplotlib only when drawing

        write_png(r, Path(c.args.plot))
    emit(r, c.args.json, lambda: render(r) + (f"\n\nplot written to {c.args.plot}" if c.args.plot else ""))


def add_parser(sub: SubParsers) -> None:
    m = sub.add_parser("metrics", help="escalation metrics over a time window (rates, breaches, times, CSAT, tags)")
    m.add_argument("--from", dest="start", type=parse_time, help="tickets opened at or after this (ISO-8601 with a "
                                                                 "time zone; default: 30 days before --to)")
    m.add_argument("--to", dest="end", type=parse_time, help="and before this (default: now)")
    m.add_argument("--group-by", choices=GROUP_BY, help="also the main figures per group")
    m.add_argument("--json", action="store_true", help="print the report as one JSON document")
    m.add_argument("--plot", metavar="FILE.png", help="draw the figures into this PNG file")
    m.add_argument("--backfill", action="store_true", help="instead: ask every running ticket from before the "
                   "metrics' figures (no TicketOpenedAt) to publish them (the publish_figures Update; idempotent)")
    m.add_argument("--actor", help="who asks (default $ESCALATION_ACTOR or cli:$USER)")
    m.set_defaults(run=run_ticket_command(cmd_metrics))
