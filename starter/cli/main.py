"""`escalation`: the command line for agents, auditors and operators; thin over EscalationClient.

Exit codes: 0 done, 1 action rejected, 2 bad input, 3 unknown ticket, 4 Temporal unavailable.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn

from pydantic import BaseModel, ValidationError

from starter.client import (
    ActionRejected,
    EscalationClient,
    EscalationError,
    IdConflict,
    InvalidInput,
    TemporalUnavailable,
    TicketNotFound,
    workflow_id,
)
from starter.runtime import replay as audit
from starter.runtime.policy_file import PolicyError, load_policy, policy_path
from starter.runtime.settings import SettingsError
from starter.runtime.validation import problem
from workflows import ticket as core
from workflows.common import clocks
from workflows.common.calendar import TZDATA_VERSION
from workflows.common.policy import Policy
from workflows.common.vocabulary import ClockName, Status, format_duration
from workflows.ticket import Ticket
from workflows.ticket.views import TicketView

EXIT_REJECTED, EXIT_INPUT, EXIT_NOT_FOUND, EXIT_UNAVAILABLE = 1, 2, 3, 4
EXIT_CODES: dict[type[EscalationError], int] = {
    ActionRejected: EXIT_REJECTED, IdConflict: EXIT_REJECTED, InvalidInput: EXIT_INPUT,
    TicketNotFound: EXIT_NOT_FOUND, TemporalUnavailable: EXIT_UNAVAILABLE,
}


class CliError(Exception):
    def __init__(self, message: str, code: int = EXIT_INPUT) -> None:
        super().__init__(message)
        self.code = code


# ----- output -------------------------------------------------------------------------


def emit(data: BaseModel | dict[str, Any] | list[Any], as_json: bool, human: Callable[[], str]) -> None:
    if as_json:
        payload = data.model_dump(mode="json") if isinstance(data, BaseModel) else data
        print(json.dumps(payload, indent=2, default=str))
    else:
        print(human())


def table(rows: Sequence[Sequence[object]], headers: Sequence[str]) -> str:
    cells = [[("" if v is None else str(v)) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    line = lambda vals: "  ".join(v.ljust(w) for v, w in zip(vals, widths, strict=True)).rstrip()  # noqa: E731
    return "\n".join([line(list(headers)), line(["-" * w for w in widths]), *(line(r) for r in cells)])


def _dur(value: timedelta | None) -> str:
    return "-" if value is None else format_duration(value)


def _at(value: datetime | None) -> str:
    return "-" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def render_view(v: TicketView) -> str:
    head = [
        f"Ticket {v.id}: {v.subject}",
        f"  status {v.status.value}   tier {v.tier}   department {v.department}   priority {v.priority}",
        f"  customer {v.customer_id}   channel {v.channel}   assignee {v.assignee or '-'}   escalations {v.escalation_count}"
        f"   SLA breached {'yes' if v.sla_breached else 'no'}{'   EXECUTIVE ATTENTION' if v.executive_attention else ''}",
        f"  policy {v.policy_version}   calendar {v.calendar}   as of {_at(v.as_of)}",
        "",
    ]
    clock_rows = [[c.name.value, c.phase, _dur(c.target), _dur(c.accrued), _dur(c.remaining), _at(c.due_at),
                   "BREACHED" if c.breached else ""] for c in v.clocks]
    timeline_rows = [[_at(e.at), e.actor, e.action, e.summary + (f" — {e.reason}" if e.reason else "")] for e in v.timeline]
    return "\n".join([*head, table(clock_rows, ["clock", "phase", "target", "accrued", "remaining", "due", ""]), "",
                      table(timeline_rows, ["when", "who", "what", "details"])])


# ----- commands -------------------------------------------------------------------------


def _actor(args: argparse.Namespace) -> str:
    return args.actor or os.environ.get("ESCALATION_ACTOR") or f"cli:{getpass.getuser()}"


def _parse_time(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an ISO-8601 time (e.g. 2026-11-27T17:30:00+01:00)") from None
    if parsed.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{value!r} has no time zone; add an offset such as +01:00 or Z")
    return parsed


async def cmd_open(ec: EscalationClient, a: argparse.Namespace) -> None:
    ticket = Ticket(id=a.id, subject=a.subject, description=a.description or "", channel=a.channel,
                    customer_id=a.customer, customer_plan=a.plan, priority=a.priority, tags=a.tag or [],
                    opened_at=a.opened_at or datetime.now(UTC))
    result = await ec.open(ticket, opened_at_defaulted=a.opened_at is None)
    word = "opened" if result.created else "exists"
    emit(result, a.json, lambda: f"{word}: {result.view.id} ({result.view.status.value}, {result.view.tier}, "
                                 f"{result.view.priority}, {result.view.department})")


async def cmd_show(ec: EscalationClient, a: argparse.Namespace) -> None:
    view = await ec.view(a.id)
    emit(view, a.json, lambda: render_view(view))


async def cmd_list(ec: EscalationClient, a: argparse.Namespace) -> None:
    page = await ec.list(status=a.status, tier=a.tier, priority=a.priority, department=a.department,
                         customer_id=a.customer, assignee=a.assignee, breached=a.breached, page_size=a.limit,
                         cursor=a.cursor)
    rows = [[t.id, _clip(t.subject or "", 40), t.status, t.tier, t.priority, t.department, t.assignee,
             t.escalation_count, "yes" if t.sla_breached else "no", _at(t.opened_at)] for t in page.tickets]
    more = f"\nmore: --cursor {page.next_cursor}" if page.next_cursor else ""
    emit(page, a.json, lambda: table(rows, ["id", "subject", "status", "tier", "priority", "department", "assignee",
                                            "esc", "breached", "opened"]) + more)


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


async def cmd_history(ec: EscalationClient, a: argparse.Namespace) -> None:
    history = await ec.history_json(a.id)
    text = json.dumps(history, indent=2)
    if a.output:
        Path(a.output).parent.mkdir(parents=True, exist_ok=True)
        Path(a.output).write_text(text, encoding="utf-8")
        print(f"wrote {len(history.get('events', []))} events to {a.output}")
    else:
        print(text)


async def cmd_replay(ec: EscalationClient, a: argparse.Namespace) -> None:
    report = await audit.replay(await ec.history_json(a.id), workflow_id(a.id))
    _print_replay(report, a.json)


def _print_replay(report: audit.ReplayReport, as_json: bool) -> None:
    emit(report, as_json, lambda: f"{report.workflow_id}: replayed {report.events} events against this code: "
                                  + ("no divergence" if report.ok else f"DIVERGED: {report.error}"))
    if not report.ok:
        raise CliError(f"replay of {report.workflow_id} diverged", EXIT_REJECTED)


def cmd_replay_file(a: argparse.Namespace) -> None:
    path = Path(a.file)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CliError(f"{path}: cannot read a JSON history: {exc}") from None
    try:
        report = asyncio.run(audit.replay(data, a.workflow_id or path.stem))
    except ValueError as exc:
        raise CliError(f"{path}: {exc}") from None
    _print_replay(report, a.json)


def _event(a: argparse.Namespace) -> core.Event:
    """The action's event from the command line: each option's dest is the event's field of that name.
    A customer's message is by "customer" unless --actor says otherwise; other actions by the CLI's user."""
    cls = core.ACTIONS[a.action]
    fields = {name: value for name in cls.model_fields if (value := getattr(a, name, None)) is not None}
    actor = (a.actor or "customer") if cls is core.CustomerReply else _actor(a)
    try:
        return cls(**{**fields, "actor": actor})  # type: ignore[return-value]
    except ValidationError as exc:
        options: dict[str, str] = a.option_names
        problems = "; ".join(f"{options.get(str(e['loc'][0]), str(e['loc'][0]))}: {problem(dict(e))}" for e in exc.errors())
        raise CliError(f"{a.command}: {problems}") from None


async def cmd_action(ec: EscalationClient, a: argparse.Namespace, event: core.Event) -> None:
    view = await ec.act(a.id, event)
    emit(view, a.json, lambda: f"{a.command}: {view.id} is {view.status.value} at {view.tier} ({view.department})")


async def cmd_customer_reply(ec: EscalationClient, a: argparse.Namespace, reply: core.CustomerReply) -> None:
    if not a.wait:
        sent = await ec.signal_customer_reply(a.id, reply)
        emit(sent, a.json, lambda: f"ticket {a.id} is closed; opened follow-up {sent.follow_up_ticket_id}"
             if sent.follow_up_ticket_id else f"{a.command}: sent to {a.id} (applied when its worker next runs)")
        return
    view, new = await ec.customer_reply(a.id, reply)
    note = (f"ticket {a.id} is closed; opened follow-up {view.id}" if new
            else f"{a.command}: {view.id} is {view.status.value} at {view.tier} ({view.department})")
    emit(view, a.json, lambda: note)


def cmd_policy_check(a: argparse.Namespace) -> None:
    policy = load_policy(a.file)
    print(f"{policy_path(a.file)}: ok, version {policy.version()}: {len(policy.tiers)} tiers, "
          f"{len(policy.departments)} departments, {len(policy.routing.rules)} routing rules")


class DeadlineRow(BaseModel):
    clock: ClockName
    target: str | None
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
            note = (f"starts when {state.tier} acknowledges; then due {_dur(limit)} of business time later" if limit
                    else f"no time limit at {state.tier} for {priority}")
            rows.append(DeadlineRow(clock=name, target=_dur(limit) if limit else None, due_at=None, due_local=None,
                                    warnings={}, note=note))
            continue
        warn = {p: w for p in sla.warn_at_percent if (w := clocks.warning_at(c, p, cal)) is not None}
        rows.append(DeadlineRow(clock=name, target=_dur(c.target) if c.target else None, due_at=c.due_at,
                                due_local=c.due_at.astimezone(cal.zone).isoformat() if c.due_at else None,
                                warnings=warn, note="" if c.target else "no target at this priority/tier"))
    return rows


def cmd_policy_deadlines(a: argparse.Namespace) -> None:
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
    print(table([[r.clock.value, r.target or "-", r.due_local or "-",
                  ", ".join(f"{p}% {w.astimezone(cal.zone):%a %Y-%m-%d %H:%M}" for p, w in r.warnings.items()), r.note]
                 for r in rows], ["clock", "target", "due (calendar time)", "warnings", "note"]))


# ----- parser ---------------------------------------------------------------------------


def _options(*specs: tuple[tuple[str, ...], dict[str, Any]]) -> Callable[[argparse.ArgumentParser], None]:
    def add(c: argparse.ArgumentParser) -> None:
        for flags, kwargs in specs:
            c.add_argument(*flags, **kwargs)
    return add


def _opt(*flags: str, **kwargs: Any) -> tuple[tuple[str, ...], dict[str, Any]]:
    return flags, kwargs


# One subcommand per agent action of the core (`core.ACTIONS`): help, short aliases and options, whose dest
# is the event field they fill.
ACTION_COMMANDS: dict[str, tuple[str, tuple[str, ...], Callable[[argparse.ArgumentParser], None]]] = {
    "acknowledge": ("acknowledge the ticket", (), _options(_opt("--note"))),
    "escalate": ("escalate up the tiers (hierarchical)", (), _options(
        _opt("--reason", required=True), _opt("--to-tier", help="jump to this tier (default: the next one up)"))),
    "transfer": ("transfer to another department (functional; tier stays)", (), _options(
        _opt("--department", required=True), _opt("--reason"))),
    "wait_on_customer": ("wait on the customer (pauses the clocks that pause)", ("wait",), _options(_opt("--reason"))),
    "resolve": ("resolve with a fix (or --workaround)", (), _options(
        _opt("--summary", required=True),
        _opt("--workaround", dest="resolution", action="store_const", const="workaround", help="resolved by a workaround"))),
    "reopen": ("reopen a resolved ticket", (), _options(_opt("--reason"))),
    "close": ("close a resolved ticket now", (), _options(_opt("--reason"))),
    "assign": ("assign to an agent", (), _options(_opt("--to", dest="assignee", required=True))),
    "note": ("add a note (--public: a customer-facing reply)", (), _options(
        _opt("--text", required=True), _opt("--public", action="store_true"))),
    "change_priority": ("change the priority (accrued SLA time is kept)", ("priority",), _options(
        _opt("--to", dest="priority", required=True, choices=["P1", "P2", "P3", "P4"]), _opt("--reason"))),
    "customer_reply": ("relay a customer message", (), _options(
        _opt("--message", required=True), _opt("--message-id"),
        _opt("--no-wait", dest="wait", action="store_false",
             help="fire and forget: send it as a Signal, applied when the ticket's worker next runs"))),
}
assert set(ACTION_COMMANDS) == set(core.ACTIONS), "every agent action of the core needs a CLI command"


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="escalation", description="Durable escalation management on Temporal.")
    sub = p.add_subparsers(dest="group", metavar="COMMAND", required=True)

    t = sub.add_parser("ticket", help="open, show, list and act on tickets").add_subparsers(
        dest="command", metavar="ACTION", required=True)

    def cmd(name: str, help_: str, needs_id: bool = True, aliases: tuple[str, ...] = ()) -> argparse.ArgumentParser:
        c = t.add_parser(name, help=help_, aliases=list(aliases))
        if needs_id:
            c.add_argument("id", help="ticket id")
        c.add_argument("--json", action="store_true", help="print JSON for scripts")
        c.add_argument("--actor", help="who acts (default $ESCALATION_ACTOR or cli:$USER)")
        return c

    o = cmd("open", "open a ticket (idempotent on --id)", needs_id=False)
    o.add_argument("--id", required=True)
    o.add_argument("--subject", required=True)
    o.add_argument("--description")
    o.add_argument("--customer", required=True, help="opaque customer id (no email address)")
    o.add_argument("--plan", default="standard")
    o.add_argument("--channel", default="api", choices=["email", "chat", "phone", "social", "portal", "bot", "api"])
    o.add_argument("--priority", choices=["P1", "P2", "P3", "P4"])
    o.add_argument("--tag", action="append")
    o.add_argument("--opened-at", type=_parse_time, help="ISO-8601 with offset (default now)")
    cmd("show", "show a ticket: status, clocks, timeline")
    ls = cmd("list", "list tickets through Temporal visibility", needs_id=False)
    ls.add_argument("--status", choices=[x.value for x in Status])
    ls.add_argument("--priority", choices=["P1", "P2", "P3", "P4"])
    ls.add_argument("--tier", help="a tier id of the policy, e.g. tier2")
    ls.add_argument("--department", help="a department id of the policy, e.g. billing")
    ls.add_argument("--customer", help="customer id")
    ls.add_argument("--assignee", help="assignee")
    ls.add_argument("--cursor", help="next page: the cursor the previous page printed")
    ls.add_argument("--breached", action=argparse.BooleanOptionalAction, default=None)
    ls.add_argument("--limit", type=int, default=50)
    h = cmd("history", "export the ticket's event history (JSON) for audit and replay")
    h.add_argument("--output", "-o", help="file to write (default stdout)")
    cmd("replay", "replay the ticket's recorded history against this code (auditor)")

    for name, (help_, aliases, add_options) in ACTION_COMMANDS.items():
        c = cmd(name.replace("_", "-"), help_, aliases=aliases)
        add_options(c)
        c.set_defaults(action=name, option_names={o.dest: o.option_strings[0] for o in c._actions if o.option_strings})

    pol = sub.add_parser("policy", help="check a policy; preview its deadlines").add_subparsers(dest="command",
                                                                                                 required=True)
    pol.add_parser("check", help="validate a policy file").add_argument("file", nargs="?")
    d = pol.add_parser("deadlines", help="every SLA due time for a ticket opened at a given time")
    d.add_argument("--priority", required=True, choices=["P1", "P2", "P3", "P4"])
    d.add_argument("--opened-at", required=True, type=_parse_time)
    d.add_argument("--tier", help="starting tier (default: the policy's default route)")
    d.add_argument("--policy", help="policy file (default $ESCALATION_POLICY or config/policy.yaml)")
    d.add_argument("--json", action="store_true")

    au = sub.add_parser("audit", help="auditor tools").add_subparsers(dest="command", required=True)
    rf = au.add_parser("replay", help="replay an exported history file (no server needed)")
    rf.add_argument("file")
    rf.add_argument("--workflow-id")
    rf.add_argument("--json", action="store_true")

    sub.add_parser("worker", help="run a worker (all workflows and activities)")
    sub.add_parser("api", help="serve the HTTP API")
    sub.add_parser("dev", help="the embedded stack: dev server, worker, API (what `make run` starts)",
                   description="Start the Temporal dev server (SQLite under var/), the worker and the HTTP API; "
                               "Ctrl-C stops them all. This is what `make run` runs.")
    return p


TICKET_COMMANDS: dict[str, Callable[[EscalationClient, argparse.Namespace], Awaitable[None]]] = {
    "open": cmd_open, "show": cmd_show, "list": cmd_list, "history": cmd_history, "replay": cmd_replay,
}


async def run_ticket_command(a: argparse.Namespace) -> None:
    event = _event(a) if getattr(a, "action", None) else None  # bad input is reported before connecting
    ec = await EscalationClient.connect()
    if event is None:
        await TICKET_COMMANDS[a.command](ec, a)
    elif isinstance(event, core.CustomerReply):
        await cmd_customer_reply(ec, a, event)
    else:
        await cmd_action(ec, a, event)


class _Parser(argparse.ArgumentParser):
    """Usage errors as JSON too when the command line asks for --json (scripts parse one format)."""

    wants_json = False

    def error(self, message: str) -> NoReturn:
        if _Parser.wants_json:
            _report_error("invalid_input", f"{self.prog}: {message}", as_json=True)
            raise SystemExit(EXIT_INPUT)
        super().error(message)


def _report_error(code: str, message: str, as_json: bool) -> None:
    """JSON on stdout for scripts (with --json), and always the one line on stderr for the person watching."""
    if as_json:
        print(json.dumps({"error": {"code": code, "message": message}}))
    print(f"error: {message}" if code == "invalid_input" else f"error: {code}: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    _Parser.wants_json = "--json" in args
    a = build_parser().parse_args(args)
    as_json = bool(getattr(a, "json", False))
    try:
        if a.group == "ticket":
            asyncio.run(run_ticket_command(a))
        elif a.group == "audit":
            cmd_replay_file(a)
        elif a.group == "policy":
            (cmd_policy_check if a.command == "check" else cmd_policy_deadlines)(a)
        elif a.group == "worker":
            # worker.py is the composition root and nothing imports it: run it as the program it is.
            os.execv(sys.executable, [sys.executable, "-m", "worker"])
        elif a.group == "api":
            from starter.http.app import serve

            serve()
        elif a.group == "dev":
            from starter.devstack.stack import main as dev_main

            return dev_main()
        return 0
    except EscalationError as exc:
        _report_error(exc.code, exc.message, as_json)
        return EXIT_CODES.get(type(exc), 1)
    except (PolicyError, CliError, SettingsError) as exc:
        _report_error("invalid_input", str(exc), as_json)
        return EXIT_INPUT
    except ValidationError as exc:
        problems = [f"invalid {'.'.join(str(x) for x in e['loc'])}: {problem(dict(e))}" for e in exc.errors()]
        _report_error("invalid_input", "; ".join(problems), as_json)
        return EXIT_INPUT
    except KeyboardInterrupt:
        return 130


def entry() -> None:
    """Console-script entry: exit without interpreter finalisation, which the SDK's Rust threads can abort."""
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    entry()
