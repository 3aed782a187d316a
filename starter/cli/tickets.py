"""`escalation ticket`: open, show, list and act on tickets, as an operator principal, through the client."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from starter.cli import audit
from starter.cli.common import CliError, SubParsers, actor, duration_text, emit, parse_time, table, time_text
from starter.client import EscalationClient, Principal
from starter.runtime.validation import problem
from workflows import ticket as core
from workflows.common.vocabulary import PRIORITIES, Channel, Status
from workflows.survey import SurveyState
from workflows.ticket import Ticket
from workflows.ticket.views import TicketView

# ----- running a ticket command --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Context:
    """What a ticket command works with: the client, acting as the operator principal, and the parsed options."""

    client: EscalationClient
    principal: Principal
    args: argparse.Namespace


TicketCommand = Callable[[Context], Awaitable[None]]


def run_ticket_command(command: TicketCommand) -> Callable[[argparse.Namespace], None]:
    """The command's `run`: connect, act as the operator principal (--actor, $ESCALATION_ACTOR or cli:$USER)."""
    async def connected(a: argparse.Namespace) -> None:
        await command(Context(await EscalationClient.connect(), Principal.operator(actor(a)), a))

    return lambda a: asyncio.run(connected(a))


# ----- output ----------------------------------------------------------------------------------------------------------


def render_view(v: TicketView) -> str:
    head = [
        f"Ticket {v.id}: {v.subject}",
        f"  status {v.status.value}   tier {v.tier}   department {v.department}   priority {v.priority}",
        f"  customer {v.customer_id}   channel {v.channel}   assignee {v.assignee or '-'}   escalations {v.escalation_count}"
        f"   SLA breached {'yes' if v.sla_breached else 'no'}{'   EXECUTIVE ATTENTION' if v.executive_attention else ''}",
        f"  policy {v.policy_version}   calendar {v.calendar}   as of {time_text(v.as_of)}",
        *([f"  part of incident {v.incident_id}: " + (v.incident_latest_update or "no update yet")]
          if v.incident_id else []),
        "",
    ]
    clock_rows = [[c.name.value, c.phase, duration_text(c.target), duration_text(c.accrued), duration_text(c.remaining),
                   time_text(c.due_at), "BREACHED" if c.breached else ""] for c in v.clocks]
    timeline_rows = [[time_text(e.at), e.actor, e.action, e.summary + (f" — {e.reason}" if e.reason else "")]
                     for e in v.timeline]
    survey = ["", render_survey(v.survey)] if v.status.value == "closed" else []
    return "\n".join([*head, table(clock_rows, ["clock", "phase", "target", "accrued", "remaining", "due", ""]), "",
                      table(timeline_rows, ["when", "who", "what", "details"]), *survey])


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _after_action(command: str, v: TicketView) -> str:
    return f"{command}: {v.id} is {v.status.value} at {v.tier} ({v.department})"


# ----- commands ------------------------------------------------------------------------------------------------------


async def cmd_open(c: Context) -> None:
    a = c.args
    ticket = Ticket(id=a.id, subject=a.subject, description=a.description or "", channel=a.channel,
                    customer_id=a.customer, customer_plan=a.plan, priority=a.priority, tags=a.tag or [],
                    opened_at=a.opened_at or datetime.now(UTC), customer_contact=a.contact)
    result = await c.client.open(ticket, opened_at_defaulted=a.opened_at is None, actor=c.principal.actor)
    word = "opened" if result.created else "exists"
    v = result.view
    emit(result, a.json, lambda: f"{word}: {v.id} ({v.status.value}, {v.tier}, {v.priority}, {v.department})")


async def cmd_show(c: Context) -> None:
    view = await c.client.view(c.args.id, principal=c.principal)
    emit(view, c.args.json, lambda: render_view(view))


def render_survey(s: SurveyState | None) -> str:
    if s is None:
        return "no survey (none is sent before the ticket closes, nor without a customer contact)"
    answer = (f"   score {s.answer.score}/5 at {time_text(s.answer.at)}" + (f": {s.answer.comment}" if s.answer.comment
                                                                             else "")) if s.answer else ""
    note = f"   ({s.note})" if s.note else ""
    return f"survey {s.survey_id}: {s.status}, open until {time_text(s.expires_at)}{answer}{note}"


async def cmd_reply(c: Context) -> None:
    view = await c.client.reply(c.args.id, principal=c.principal, text=c.args.text, macro=c.args.macro)
    sent = [e for e in view.timeline if e.action == "public_reply"]
    emit(view, c.args.json, lambda: f"replied to the customer of {view.id}:\n{sent[-1].summary if sent else ''}")


async def cmd_macros(c: Context) -> None:
    names = c.client.macro_names()
    emit({"macros": names}, c.args.json, lambda: "\n".join(names) or "no macros (config/templates/macros/*.txt)")


async def cmd_survey(c: Context) -> None:
    survey = await c.client.survey(c.args.id, principal=c.principal)
    emit(survey.model_dump(mode="json") if survey else {"survey": None}, c.args.json, lambda: render_survey(survey))


async def cmd_list(c: Context) -> None:
    a = c.args
    page = await c.client.list(principal=c.principal, status=a.status, tier=a.tier, priority=a.priority,
                               department=a.department, customer_id=a.customer, assignee=a.assignee,
                               breached=a.breached, page_size=a.limit, cursor=a.cursor)
    rows = [[t.id, _clip(t.subject or "", 40), t.status, t.tier, t.priority, t.department, t.assignee,
             t.escalation_count, "yes" if t.sla_breached else "no", time_text(t.opened_at)] for t in page.tickets]
    more = f"\nmore: --cursor {page.next_cursor}" if page.next_cursor else ""
    emit(page, a.json, lambda: table(rows, ["id", "subject", "status", "tier", "priority", "department", "assignee",
                                            "esc", "breached", "opened"]) + more)


async def cmd_history(c: Context) -> None:
    audit.write_history(await c.client.history_json(c.args.id, principal=c.principal), c.args)


def action_event(a: argparse.Namespace) -> core.Event:
    """The action's event from the command line: each option's dest is the event's field of that name.
    A customer's message is by "customer" unless --actor says otherwise; other actions by the CLI's user."""
    cls = core.ACTIONS[a.action]
    fields = {name: value for name in cls.model_fields if (value := getattr(a, name, None)) is not None}
    by = (a.actor or "customer") if cls is core.CustomerReply else actor(a)
    try:
        return cls(**{**fields, "actor": by})  # type: ignore[return-value]
    except ValidationError as exc:
        options: dict[str, str] = a.option_names
        problems = "; ".join(f"{options.get(str(e['loc'][0]), str(e['loc'][0]))}: {problem(dict(e))}" for e in exc.errors())
        raise CliError(f"{a.command}: {problems}") from None


async def cmd_action(c: Context, event: core.Event) -> None:
    view = await c.client.perform(c.args.id, event, principal=c.principal)
    emit(view, c.args.json, lambda: _after_action(c.args.command, view))


async def cmd_customer_reply(c: Context, reply: core.CustomerReply) -> None:
    a = c.args
    if not a.wait:
        sent = await c.client.signal_customer_reply(a.id, reply, principal=c.principal)
        emit(sent, a.json, lambda: f"ticket {a.id} is closed; opened follow-up {sent.follow_up_ticket_id}"
             if sent.follow_up_ticket_id else f"{a.command}: sent to {a.id} (applied when its worker next runs)")
        return
    result = await c.client.relay_customer_reply(a.id, reply, principal=c.principal)
    if result.follow_up_ticket_id:
        note = f"ticket {a.id} is closed; opened follow-up {result.follow_up_ticket_id}"
    elif result.duplicate:
        note = f"{a.command}: {a.id} already has message {reply.message_id} (recorded once)"
    else:
        note = _after_action(a.command, result.view)
    emit(result.view, a.json, lambda: note)


def run_action(a: argparse.Namespace) -> None:
    """An agent action: its event is built, and bad input reported, before connecting to Temporal."""
    event = action_event(a)
    if isinstance(event, core.CustomerReply):
        run_ticket_command(lambda c: cmd_customer_reply(c, event))(a)
    else:
        run_ticket_command(lambda c: cmd_action(c, event))(a)


# ----- parser ----------------------------------------------------------------------------------------------------------


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
    "escalate_to_executive": ("executive escalation (supervisors, admins; an agent's is a request)", ("executive",),
                              _options(_opt("--reason", required=True))),
    "transfer": ("transfer to another department (functional; tier stays)", (), _options(
        _opt("--department", required=True), _opt("--reason"))),
    "wait_on_customer": ("wait on the customer (pauses the clocks that pause)", ("wait",), _options(_opt("--reason"))),
    "resolve": ("resolve with a fix (or --workaround)", (), _options(
        _opt("--summary", required=True),
        _opt("--workaround", dest="resolution", action="store_const", const="workaround", help="resolved by a workaround"))),
    "reopen": ("reopen a resolved ticket", (), _options(_opt("--reason"))),
    "close": ("close a resolved ticket now", (), _options(_opt("--reason"))),
    "assign": ("assign to an agent", (), _options(_opt("--to", dest="assignee", required=True))),
    "assign_manager": ("make a person the escalation manager", (), _options(_opt("--to", dest="manager", required=True))),
    "note": ("add a note (--public: a customer-facing reply)", (), _options(
        _opt("--text", required=True), _opt("--public", action="store_true"))),
    "change_priority": ("change the priority (accrued SLA time is kept)", ("priority",), _options(
        _opt("--to", dest="priority", required=True, choices=PRIORITIES), _opt("--reason"))),
    "customer_reply": ("relay a customer message", (), _options(
        _opt("--message", required=True), _opt("--message-id"),
        _opt("--no-wait", dest="wait", action="store_false",
             help="fire and forget: send it as a Signal, applied when the ticket's worker next runs"))),
}
assert set(ACTION_COMMANDS) == set(core.ACTIONS), "every agent action of the core needs a CLI command"


def add_parser(sub: SubParsers) -> None:
    t = sub.add_parser("ticket", help="open, show, list and act on tickets").add_subparsers(
        dest="command", metavar="ACTION", required=True)

    def cmd(name: str, help_: str, run: TicketCommand | None, needs_id: bool = True,
            aliases: tuple[str, ...] = ()) -> argparse.ArgumentParser:
        c = t.add_parser(name, help=help_, aliases=list(aliases))
        if needs_id:
            c.add_argument("id", help="ticket id")
        c.add_argument("--json", action="store_true", help="print JSON for scripts")
        c.add_argument("--actor", help="who acts (default $ESCALATION_ACTOR or cli:$USER)")
        if run is not None:
            c.set_defaults(run=run_ticket_command(run))
        return c

    o = cmd("open", "open a ticket (idempotent on --id)", cmd_open, needs_id=False)
    o.add_argument("--id", required=True)
    o.add_argument("--subject", required=True)
    o.add_argument("--description")
    o.add_argument("--customer", required=True, help="opaque customer id (no email address)")
    o.add_argument("--contact", help="where the customer hears back: an email address (personal data: kept in the "
                                      "ticket, never in ids or logs)")
    o.add_argument("--plan", default="standard")
    o.add_argument("--channel", default="api", choices=[x.value for x in Channel])
    o.add_argument("--priority", choices=PRIORITIES)
    o.add_argument("--tag", action="append")
    o.add_argument("--opened-at", type=parse_time, help="ISO-8601 with offset (default now)")
    cmd("show", "show a ticket: status, clocks, timeline", cmd_show)
    r = cmd("reply", "reply to the customer (public): --text, or --macro NAME (see `ticket macros`)", cmd_reply)
    how = r.add_mutually_exclusive_group(required=True)
    how.add_argument("--text", help="the reply's text")
    how.add_argument("--macro", help="a macro's name, rendered for this ticket and agent")
    cmd("macros", "the macros agents may reply with (config/templates/macros)", cmd_macros, needs_id=False)
    cmd("survey", "a closed ticket's satisfaction survey: sent, answered (score, comment) or expired", cmd_survey)
    ls = cmd("list", "list tickets through Temporal visibility", cmd_list, needs_id=False)
    ls.add_argument("--status", choices=[x.value for x in Status])
    ls.add_argument("--priority", choices=PRIORITIES)
    ls.add_argument("--tier", help="a tier id of the policy, e.g. tier2")
    ls.add_argument("--department", help="a department id of the policy, e.g. billing")
    ls.add_argument("--customer", help="customer id")
    ls.add_argument("--assignee", help="assignee")
    ls.add_argument("--cursor", help="next page: the cursor the previous page printed")
    ls.add_argument("--breached", action=argparse.BooleanOptionalAction, default=None)
    ls.add_argument("--limit", type=int, default=50)
    h = cmd("history", "export the ticket's event history, every run (JSON), for audit and replay", cmd_history)
    audit.add_history_options(h)
    rp = cmd("replay", "replay every run of the ticket's recorded history against this code (auditor; "
                       "`audit replay` for many)", None)
    rp.set_defaults(run=lambda a: audit.cmd_replay(argparse.Namespace(sources=[a.id], query=None, limit=1, public_key=None,
                                                                        workflow_id=None, json=a.json)))

    for name, (help_, aliases, add_options) in ACTION_COMMANDS.items():
        c = cmd(name.replace("_", "-"), help_, None, aliases=aliases)
        add_options(c)
        c.set_defaults(action=name, run=run_action,
                       option_names={o.dest: o.option_strings[0] for o in c._actions if o.option_strings})
