"""`escalation postmortem show|review|root-cause|action-item|done|complete`: post-mortems by id (a ticket's view names
its own, `postmortem-ticket-<id>`) or by what they follow (`ticket:<id>`, `incident:<service>`)."""

from __future__ import annotations

import argparse

from starter.cli.common import SubParsers, emit, table, time_text
from starter.cli.tickets import Context, run_ticket_command
from workflows.postmortem import PostmortemState


def render(s: PostmortemState) -> str:
    head = [f"{s.id}: {s.title}   {s.status}   owner {s.owner}",
            f"  participants {', '.join(s.participants) or '-'}   reminders sent {s.reminders_sent}"]
    if s.kb_article:
        head.append(f"  knowledge-base article: {s.kb_article}")
    head += [f"  handed from {c.from_owner} to {c.to_owner} by {c.by} at {time_text(c.at)}" for c in s.owner_changes]
    steps = [[st.name, time_text(st.due_at), time_text(st.done_at) if st.done_at else "", st.by or ""] for st in s.steps]
    items = [[str(a.number), a.text, a.owner, time_text(a.due_at), time_text(a.done_at) if a.done_at else ""]
             for a in s.action_items]
    out = [*head, "", table(steps, ["step", "due", "done", "by"])]
    if s.root_cause:
        out += ["", f"root cause: {s.root_cause}"]
    if items:
        out += ["", table(items, ["#", "action item", "owner", "due", "done"])]
    return "\n".join(out)


async def cmd_show(c: Context) -> None:
    s = await c.client.postmortem(c.args.id, principal=c.principal)
    emit(s, c.args.json, lambda: render(s))


async def cmd_step(c: Context) -> None:
    a = c.args
    step = {"review": "review", "root-cause": "root_cause", "action-item": "add_action_item",
            "done": "complete_action_item", "assign": "assign", "complete": "complete"}[a.command]
    s = await c.client.postmortem_step(a.id, step, principal=c.principal, text=getattr(a, "text", "") or "",
                                       factors=getattr(a, "factor", None) or (), owner=getattr(a, "owner", None),
                                       number=getattr(a, "number", None), due_in_days=getattr(a, "due_in_days", None))
    emit(s, a.json, lambda: render(s))


def add_parser(sub: SubParsers) -> None:
    pm = sub.add_parser("postmortem", help="post-mortems of severe tickets and incidents"
                        ).add_subparsers(dest="command", metavar="ACTION", required=True)

    def cmd(name: str, help_: str, run: object) -> argparse.ArgumentParser:
        c = pm.add_parser(name, help=help_)
        c.add_argument("id", help="a post-mortem id (postmortem-ticket-<ticket id>, ...) or what it follows: "
                                  "ticket:<ticket id>, incident:<service> (that service's latest incident)")
        c.add_argument("--json", action="store_true", help="print JSON for scripts")
        c.add_argument("--actor", help="who acts (default $ESCALATION_ACTOR or cli:$USER)")
        c.set_defaults(run=run_ticket_command(run))  # type: ignore[arg-type]
        return c

    cmd("show", "steps with due dates, root cause, action items, the KB article", cmd_show)
    cmd("review", "the review meeting was held", cmd_step).add_argument("--notes", dest="text", required=True)
    rc = cmd("root-cause", "record the root cause (and contributing factors)", cmd_step)
    rc.add_argument("--text", required=True)
    rc.add_argument("--factor", action="append", help="a contributing factor (repeat)")
    ai = cmd("action-item", "add an action item", cmd_step)
    ai.add_argument("--text", required=True)
    ai.add_argument("--owner", required=True)
    ai.add_argument("--due-in-days", type=int, help="business days (default: the policy's)")
    cmd("done", "an action item is done", cmd_step).add_argument("number", type=int)
    cmd("assign", "hand it to another owner (a person of the directory)", cmd_step).add_argument(
        "--to", dest="owner", required=True, metavar="PERSON", help="the new owner: a directory id (`mia`) or an "
                                                                    "actor (`agent:mia`)")
    cmd("complete", "complete it: the knowledge-base article is published", cmd_step).add_argument(
        "--summary", dest="text", required=True)
