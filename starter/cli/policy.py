"""`escalation policy`: check a policy file; preview the deadlines it sets (no server needed)."""

from __future__ import annotations

import argparse
import json
import os
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel

from starter.cli.common import CliError, SubParsers, duration_text, parse_time, table
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
