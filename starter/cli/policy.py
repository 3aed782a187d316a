"""`escalation policy`: check a policy file; preview the deadlines it sets (no server needed); move open tickets to
a new policy version (`migrate`, through the client)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel

from starter.cli.common import (
    CliError,
    ExitCode,
    SubParsers,
    actor,
    duration_text,
    emit,
    parse_time,
    table,
    time_text,
)
from starter.client import EscalationClient, Principal
from starter.client.migrations import MAX_MIGRATIONS_PER_CALL, MigrationReport, Outcome
from starter.runtime.directory_file import (
    DEFAULT_TEMPLATES,
    directory_path,
    load_directory,
    template_problems,
    unknown_roles,
)
from starter.runtime.policy_file import PolicyError, load_policy, policy_path
from workflows import ticket as core
from workflows.common import clocks
from workflows.common.calendar import TZDATA_VERSION
from workflows.common.policy import Policy
from workflows.common.vocabulary import PRIORITIES, ClockName, IsoDuration
from workflows.ticket import Ticket


def add_parser(sub: SubParsers) -> None:
    pol = sub.add_parser("policy", help="check a policy; preview its deadlines").add_subparsers(
        dest="command", metavar="ACTION", required=True)
    check = pol.add_parser("check", help="validate a policy file (with --directory: its roles resolve; every template "
                                         "renders)")
    check.add_argument("file", nargs="?")
    check.add_argument("--directory", nargs="?", const="", metavar="FILE",
                       help="also check that every role the policy notifies resolves in this directory (no FILE: "
                            "$ESCALATION_DIRECTORY or config/directory.yaml)")
    check.add_argument("--templates", help="templates folder to render against a sample ticket "
                                           "(default $ESCALATION_TEMPLATES or config/templates)")
    check.set_defaults(run=cmd_check)
    directory = sub.add_parser("directory", help="check the directory (people, teams, accounts)").add_subparsers(
        dest="command", metavar="ACTION", required=True)
    dcheck = directory.add_parser("check", help="validate a directory file")
    dcheck.add_argument("file", nargs="?", help="default $ESCALATION_DIRECTORY or config/directory.yaml")
    dcheck.set_defaults(run=cmd_directory_check)
    d = pol.add_parser("deadlines", help="every SLA due time for a ticket opened at a given time")
    d.add_argument("--priority", required=True, choices=PRIORITIES)
    d.add_argument("--opened-at", required=True, type=parse_time)
    d.add_argument("--tier", help="starting tier (default: the policy's default route)")
    d.add_argument("--policy", help="policy file (default $ESCALATION_POLICY or config/policy.yaml)")
    d.add_argument("--json", action="store_true", help="print JSON for scripts")
    d.set_defaults(run=cmd_deadlines)
    m = pol.add_parser("migrate", help="move open tickets to a new policy version (admins); --dry-run shows each "
                                       "ticket's due times before and after and changes nothing")
    m.add_argument("--to", required=True, metavar="FILE", help="the new policy file")
    which = m.add_mutually_exclusive_group(required=True)
    which.add_argument("--ticket", action="append", dest="tickets", metavar="ID", help="a ticket id (repeatable)")
    which.add_argument("--query", help="a visibility query over the running tickets, e.g. \"TicketPriority = 'P1'\"")
    m.add_argument("--dry-run", action="store_true", help="show the due times before and after; change nothing")
    m.add_argument("--reason", default="", help="why (recorded in each ticket's timeline)")
    m.add_argument("--limit", type=int, default=MAX_MIGRATIONS_PER_CALL,
                   help=f"at most this many tickets (1 to {MAX_MIGRATIONS_PER_CALL})")
    m.add_argument("--actor", help="who moves them (default $ESCALATION_ACTOR or cli:$USER)")
    m.add_argument("--json", action="store_true", help="print JSON for scripts")
    m.set_defaults(run=cmd_migrate)


def cmd_check(a: argparse.Namespace) -> None:
    policy = load_policy(a.file)
    problems = []
    if a.directory is not None:
        problems += unknown_roles(policy, load_directory(a.directory or None))
    folder = Path(a.templates or os.environ.get("ESCALATION_TEMPLATES") or DEFAULT_TEMPLATES)
    problems += template_problems(folder, policy)
    if problems:
        raise PolicyError(f"{policy_path(a.file)}: {len(problems)} problem(s)\n  " + "\n  ".join(problems))
    print(f"{policy_path(a.file)}: ok, version {policy.version()}: {len(policy.tiers)} tiers, "
          f"{len(policy.departments)} departments, {len(policy.routing.rules)} routing rules; "
          f"templates in {folder} render"
          + (f"; every role resolves in {directory_path(a.directory or None)}" if a.directory is not None else ""))


def cmd_directory_check(a: argparse.Namespace) -> None:
    d = load_directory(a.file)
    print(f"{directory_path(a.file)}: ok: {len(d.people)} people, {len(d.teams)} teams, {len(d.accounts)} accounts")


class DeadlineRow(BaseModel):
    clock: ClockName
    target: IsoDuration | None
    due_at: datetime | None
    due_local: str | None
    warnings: dict[int, datetime]
    note: str


def policy_deadlines(policy: Policy, priority: str, opened_at: datetime, tier: str | None = None) -> list[DeadlineRow]:
    """Every SLA due time for a ticket opened at `opened_at` (acknowledged never: the tier clock as configured)."""
    if tier is not None:
        if tier not in policy.tier_ids():
            raise CliError(f"--tier {tier!r} is not a tier; allowed: {', '.join(policy.tier_ids())}")
        start_at = policy.routing.default.model_copy(update={"tier": tier})
        policy = policy.model_copy(update={"routing": policy.routing.model_copy(update={"rules": [], "default": start_at})})
    ticket = Ticket(id="preview", subject="preview", customer_id="preview", priority=priority, opened_at=opened_at)
    state = core.open_ticket(ticket, policy, opened_at).state
    cal, sla = state.calendar, policy.sla(priority)
    rows = []
    for name, c in state.clocks.items():
        if name == ClockName.tier and c.phase == "idle":
            limit = sla.tier.get(state.tier)
            note = (f"starts when {state.tier} acknowledges; then due {duration_text(limit)} of business time later"
                    if limit else f"no time limit at {state.tier} for {priority}")
            rows.append(DeadlineRow(clock=name, target=limit, due_at=None, due_local=None, warnings={}, note=note))
            continue
        warn = {p: w for p in sla.warn_at_percent if (w := clocks.warning_at(c, p, cal)) is not None}
        rows.append(DeadlineRow(clock=name, target=c.target, due_at=c.due_at,
                                due_local=c.due_at.astimezone(cal.zone).isoformat() if c.due_at else None,
                                warnings=warn, note="" if c.target else "no target at this priority/tier"))
    return rows


def cmd_deadlines(a: argparse.Namespace) -> None:
    policy = load_policy(a.policy)
    rows = policy_deadlines(policy, a.priority, a.opened_at, a.tier)
    cal = policy.calendar_for(a.priority)
    if a.json:
        print(json.dumps({"priority": a.priority, "opened_at": a.opened_at.isoformat(), "calendar": cal.name,
                          "timezone": cal.timezone, "tzdata": TZDATA_VERSION, "policy_version": policy.version(),
                          "deadlines": [r.model_dump(mode="json") for r in rows]}, indent=2))
        return
    print(f"{a.priority} opened {a.opened_at.isoformat()}: calendar {cal.name} ({cal.timezone}, "
          f"tzdata {TZDATA_VERSION}), policy {policy.version()}")
    print(table([[r.clock.value, duration_text(r.target) if r.target else "-", r.due_local or "-",
                  ", ".join(f"{p}% {w.astimezone(cal.zone):%a %Y-%m-%d %H:%M}" for p, w in r.warnings.items()), r.note]
                 for r in rows], ["clock", "target", "due (calendar time)", "warnings", "note"]))


def cmd_migrate(a: argparse.Namespace) -> int:
    """Exit code 1 (error) when a ticket was rejected, missing or failed; tickets not open are only skipped."""
    if not 1 <= a.limit <= MAX_MIGRATIONS_PER_CALL:
        raise CliError(f"--limit {a.limit} is out of range: 1 to {MAX_MIGRATIONS_PER_CALL}")
    policy = load_policy(a.to)

    async def run() -> MigrationReport:
        client = await EscalationClient.connect()
        return await client.migrate_policy(policy, principal=Principal.operator(actor(a)), tickets=a.tickets or (),
                                           query=a.query, dry_run=a.dry_run, reason=a.reason, limit=a.limit)

    report = asyncio.run(run())
    emit(report, a.json, lambda: render_migration(report))
    return ExitCode.ok if report.ok else ExitCode.error


def render_migration(r: MigrationReport) -> str:
    """One row per clock whose target or due time moves (or that has a due time), one per ticket not moved."""
    rows: list[list[object]] = []
    for t in r.tickets:
        head = [t.ticket_id, t.outcome.value, t.from_version or "-"]
        if t.outcome not in (Outcome.applied, Outcome.would_apply):
            rows.append([*head, "", "", "", "", t.message or t.code or ""])
            continue
        shown = [c for c in t.changes if c.changed or c.due_before or c.due_after]
        for i, c in enumerate(shown or t.changes[:1]):
            target = duration_text(c.target_before) + ("" if c.target_after == c.target_before
                                                        else f" -> {duration_text(c.target_after)}")
            note = ("OVERDUE: breaches at once" if c.overdue else "breached before" if c.breached
                    else "" if c.changed else "unchanged")
            rows.append([*(head if i == 0 else ["", "", ""]), c.clock.value, target, time_text(c.due_before),
                         time_text(c.due_after), note])
    counts = ", ".join(f"{n} {o.value}" for o, n in r.counts.items() if n)
    title = f"to policy {r.to_version}" + (" (dry run: nothing changed)" if r.dry_run else "")
    return "\n".join([title, table(rows, ["ticket", "outcome", "from", "clock", "target", "due before", "due after",
                                         "note"]), counts])
