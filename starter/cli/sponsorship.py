"""`escalation sponsorship list|show|enrol|check-in|exit`: the executive sponsorship program, per account."""

from __future__ import annotations

import argparse

from starter.cli.common import SubParsers, emit, table, time_text
from starter.cli.tickets import Context, run_ticket_command
from workflows.sponsorship import SponsorshipState


def render(s: SponsorshipState) -> str:
    head = [f"Sponsorship of account {s.account_id}: {s.status}   sponsor {s.sponsor or '-'}",
            f"  enrolled {time_text(s.enrolled_at)}   enrolments {s.enrolment_count}   last escalation "
            f"{time_text(s.last_escalation_at)}",
            f"  check-ins {s.check_in_count}   next check-in due {time_text(s.next_check_in_due)}   reminders sent "
            f"{s.reminders_sent}"]
    if s.exited:
        head.append(f"  ended {time_text(s.exited.at)} by {s.exited.by}: {s.exited.reason}")
    rows = [[time_text(e.at), e.by, f"enrolled ({e.criterion})", (f"{e.ticket_id}: " if e.ticket_id else "") + e.reason]
            for e in s.enrolments]
    rows += [[time_text(c.at), c.by, "check-in", c.notes] for c in s.check_ins]
    rows.sort(key=lambda r: r[0])
    return "\n".join([*head, "", table(rows, ["when", "who", "what", "details"])])


async def cmd_list(c: Context) -> None:
    active = None if c.args.status is None else c.args.status == "active"
    page = await c.client.list_sponsorships(principal=c.principal, active=active, page_size=c.args.limit, cursor=c.args.cursor)
    rows = [[p.account_id, p.status, time_text(p.started_at), time_text(p.ended_at)] for p in page.sponsorships]
    more = f"\nmore: --cursor {page.next_cursor}" if page.next_cursor else ""
    emit(page, c.args.json, lambda: table(rows, ["account", "status", "started", "ended"]) + more)


async def cmd_show(c: Context) -> None:
    s = await c.client.sponsorship(c.args.account, principal=c.principal)
    emit(s, c.args.json, lambda: render(s))


async def cmd_enrol(c: Context) -> None:
    s = await c.client.enrol_sponsorship(c.args.account, c.args.reason, principal=c.principal)
    emit(s, c.args.json, lambda: render(s))


async def cmd_check_in(c: Context) -> None:
    s = await c.client.sponsorship_check_in(c.args.account, c.args.notes, principal=c.principal)
    emit(s, c.args.json, lambda: f"check-in recorded; next due {time_text(s.next_check_in_due)}")


async def cmd_exit(c: Context) -> None:
    s = await c.client.exit_sponsorship(c.args.account, c.args.reason, principal=c.principal)
    emit(s, c.args.json, lambda: f"sponsorship of {s.account_id} ended")


def add_parser(sub: SubParsers) -> None:
    sp = sub.add_parser("sponsorship", help="the executive sponsorship program (one per customer account)"
                        ).add_subparsers(dest="command", metavar="ACTION", required=True)

    def cmd(name: str, help_: str, run: object, account: bool = True) -> argparse.ArgumentParser:
        c = sp.add_parser(name, help=help_)
        if account:
            c.add_argument("account", help="customer account id")
        c.add_argument("--json", action="store_true", help="print JSON for scripts")
        c.add_argument("--actor", help="who acts (default $ESCALATION_ACTOR or cli:$USER)")
        c.set_defaults(run=run_ticket_command(run))  # type: ignore[arg-type]
        return c

    ls = cmd("list", "accounts in (or once in) the program", cmd_list, account=False)
    ls.add_argument("--status", choices=["active", "ended"])
    ls.add_argument("--limit", type=int, default=50)
    ls.add_argument("--cursor", help="next page: the cursor the previous page printed")
    cmd("show", "an account's sponsorship: sponsor, enrolments, check-ins, next check-in", cmd_show)
    cmd("enrol", "enrol an account by hand (idempotent)", cmd_enrol).add_argument("--reason", required=True)
    cmd("check-in", "record a sponsor check-in with notes", cmd_check_in).add_argument("--notes", required=True)
    cmd("exit", "end an account's sponsorship", cmd_exit).add_argument("--reason", required=True)
