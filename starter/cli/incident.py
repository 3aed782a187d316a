"""`escalation incident declare|show|tickets|link|unlink|update|resolve`: outages, addressed by their service."""

from __future__ import annotations

import argparse

from starter.cli.common import SubParsers, emit, table, time_text
from starter.cli.tickets import Context, run_ticket_command
from workflows.common.policy import SEVERITIES
from workflows.common.vocabulary import ResolutionKind
from workflows.incident import IncidentState


def render(s: IncidentState) -> str:
    head = [f"Incident {s.id} ({s.severity}): {s.title}   {s.status}",
            f"  commander {s.commander}   declared {time_text(s.declared_at)} by {s.declared_by}   "
            f"tickets {len(s.tickets)}   updates {s.update_count}   notices to tickets {s.told} (links, updates, "
            f"resolution)   closed skipped {s.skipped_closed}"
            f"   resolved by it {s.resolved_tickets}"]
    if s.next_reminder_at:
        head.append(f"  next update due {time_text(s.next_reminder_at)}")
    if s.resolved_at:
        head.append(f"  resolved {time_text(s.resolved_at)}: {s.resolution_summary}")
    rows = [[time_text(e.at), e.actor, e.action, e.summary] for e in s.timeline]
    return "\n".join([*head, "", table(rows, ["when", "who", "what", "details"])])


async def cmd_declare(c: Context) -> None:
    a = c.args
    d = await c.client.declare_incident(a.service, a.title, a.severity, a.commander, principal=c.principal)
    emit(d, a.json, lambda: ("declared" if d.created else "already open") + "\n" + render(d.incident))


async def cmd_show(c: Context) -> None:
    s = await c.client.incident(c.args.service, principal=c.principal)
    emit(s, c.args.json, lambda: render(s))


async def cmd_tickets(c: Context) -> None:
    page = await c.client.incident_tickets(c.args.service, principal=c.principal, page_size=c.args.limit,
                                           cursor=c.args.cursor)
    more = f"\nmore: --cursor {page.next_cursor}" if page.next_cursor else ""
    emit(page, c.args.json, lambda: "\n".join(page.tickets) + f"\n({page.total} linked){more}")


async def cmd_link(c: Context) -> None:
    unlink = c.args.command == "unlink"
    changed = await c.client.link_to_incident(c.args.service, c.args.tickets, principal=c.principal, unlink=unlink)
    emit({"changed": changed}, c.args.json,
         lambda: f"{'unlinked' if unlink else 'linked'} {len(changed)} ticket(s): {', '.join(changed) or 'none new'}")


async def cmd_update(c: Context) -> None:
    u = await c.client.post_incident_update(c.args.service, c.args.text, principal=c.principal)
    emit(u, c.args.json, lambda: f"update #{u.number} posted: every linked ticket's customer is told")


async def cmd_resolve(c: Context) -> None:
    s = await c.client.resolve_incident(c.args.service, c.args.summary, principal=c.principal,
                                        resolution=c.args.resolution)
    emit(s, c.args.json, lambda: f"incident {s.id} resolved; {len(s.tickets)} linked ticket(s) are being told")


def add_parser(sub: SubParsers) -> None:
    inc = sub.add_parser("incident", help="outages: one incident per service, many linked tickets"
                         ).add_subparsers(dest="command", metavar="ACTION", required=True)

    def cmd(name: str, help_: str, run: object) -> argparse.ArgumentParser:
        c = inc.add_parser(name, help=help_)
        c.add_argument("service", help="the affected service (the incident's id)")
        c.add_argument("--json", action="store_true", help="print JSON for scripts")
        c.add_argument("--actor", help="who acts (default $ESCALATION_ACTOR or cli:$USER)")
        c.set_defaults(run=run_ticket_command(run))  # type: ignore[arg-type]
        return c

    d = cmd("declare", "declare an outage (a second declare answers with the open one)", cmd_declare)
    d.add_argument("--title", required=True)
    d.add_argument("--severity", required=True, choices=SEVERITIES)
    d.add_argument("--commander", required=True, help="a person of the directory: reminded when an update is due")
    cmd("show", "the incident: commander, tickets, updates, timeline", cmd_show)
    t = cmd("tickets", "the linked tickets, a page at a time", cmd_tickets)
    t.add_argument("--limit", type=int, default=100)
    t.add_argument("--cursor")
    cmd("link", "link tickets (each hears the latest update now)", cmd_link).add_argument("tickets", nargs="+")
    cmd("unlink", "unlink tickets", cmd_link).add_argument("tickets", nargs="+")
    cmd("update", "a status update for every linked ticket's customer", cmd_update).add_argument("--text", required=True)
    r = cmd("resolve", "resolve: the linked tickets still open are resolved with the summary (policy)", cmd_resolve)
    r.add_argument("--summary", required=True)
    r.add_argument("--resolution", default="fix", choices=[x.value for x in ResolutionKind])
