"""The auditor's report of one ticket, read from its history alone (every run): no query, no worker, so it works for
completed and terminated tickets and for archived exports.

Built on the decision check's walk (decisions.py): each decision with who, when, why, the policy rule and clock (its
due time against the time it happened: the lateness), every notification with who it reached and each delivery's
result, the policy version, and the verdicts (replay against the code in hand, and the decisions recomputed from the
recorded inputs). `render_text` is the terminal's view; the model is what `--json` prints and what an HTML view or an
API endpoint would render.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field
from temporalio.client import WorkflowHistory

from starter.client.histories import run_id_of
from starter.runtime.decisions import DecisionCheck, Step, check_decisions
from starter.runtime.replay import RunVerdict, Sourced, replay_all, workflow_type_of
from workflows.common.vocabulary import format_duration


class DecisionLine(BaseModel):
    """One entry of the ticket's timeline: who decided what, when, why, under which rule and clock."""

    run: int = Field(description="the run it belongs to (0: the first)")
    seq: int
    at: datetime = Field(description="when it took effect (a deadline: its due time)")
    noticed_at: datetime = Field(description="workflow time when the workflow applied it")
    who: str
    what: str
    why: str
    rule: str | None = None
    clock: str | None = None
    due_at: datetime | None = None
    lateness: str | None = Field(None, description="at minus due_at, ISO 8601 (negative: ahead of the due time)")
    applied_late_by: str | None = Field(None, description="noticed_at minus at, when the workflow applied it later "
                                                          "(a timer that fired late, a worker that was down)")
    event_id: int = Field(description="the history event behind it (in its run)")
    event_type: str


class Delivery(BaseModel):
    recipient: str
    channel: str
    outcome: str = Field(description="delivered, duplicate (the sink had it), failed: why, or pending")
    at: datetime | None = None
    event_id: int = Field(description="the deliver activity's scheduling event")


class NotificationLine(BaseModel):
    run: int
    event_id: int = Field(description="the prepare (or, before real delivery, notify) activity's scheduling event")
    at: datetime
    kind: str
    roles: list[str] = Field(description="who the rules asked to tell (roles, as the policy names them)")
    reached: list[str] = Field(default_factory=list, description="recipient (channel), as the directory resolved them")
    unreached: list[str] = Field(default_factory=list)
    outcome: str = Field(description="prepared, failed: why, outbox (before real delivery), or pending")
    deliveries: list[Delivery] = Field(default_factory=list)


class RunLine(BaseModel):
    run_id: str | None
    source: str
    events: int
    verdict: str = Field(description="passed, diverged, decisions_differ, unreadable")
    detail: str | None = None
    decisions_verified: int = 0
    differences: list[str] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)


class AuditReport(BaseModel):
    workflow_id: str
    ticket_id: str | None = None
    priority: str | None = None
    tier: str | None = None
    department: str | None = None
    status: str | None = Field(None, description="at the end of the last run recorded")
    policy_version: str | None = None
    verdict: str = Field(description="passed, or the worst run's verdict")
    runs: list[RunLine]
    decisions: list[DecisionLine]
    notifications: list[NotificationLine]

    @property
    def ok(self) -> bool:
        return self.verdict == "passed"


ORDER = ("passed", "unreadable", "decisions_differ", "diverged")  # worst last


async def build_report(workflow_id: str, runs: Sequence[tuple[str, WorkflowHistory]]) -> AuditReport:
    """Every run replayed, its decisions recomputed, and the report assembled; ValueError when a run is not a
    ticket's (the report reads tickets only)."""
    for _, h in runs:
        if (kind := workflow_type_of(h)) != "Ticket":
            raise ValueError(f"audit report reads ticket histories; {h.workflow_id} is a {kind} workflow "
                             f"(`audit replay` checks every type)")

    async def each() -> AsyncIterator[Sourced]:
        for source, h in runs:
            yield source, h

    replayed = await replay_all(each(), decisions=False)
    report = AuditReport(workflow_id=workflow_id, verdict="passed", runs=[], decisions=[], notifications=[])
    by_run = {v.run_id: v for v in replayed.verdicts}
    for index, (source, history) in enumerate(runs):
        verdict = by_run.get(run_id_of(history), replayed.verdicts[index])
        check = await check_decisions(history)
        report.runs.append(_run_line(source, history, verdict, check))
        report.decisions += _decisions(index, check)
        report.notifications += _notifications(index, check.steps)
        report.policy_version = check.policy_version or report.policy_version
        if check.final_state is not None:
            report.ticket_id = check.final_state["ticket"]["id"]
            report.status = check.final_state.get("status")
            report.priority = check.final_state.get("priority")
            report.tier = check.final_state.get("tier")
            report.department = check.final_state.get("department")
            report.policy_version = check.final_state.get("policy_version") or report.policy_version  # after a move
    report.verdict = max((r.verdict for r in report.runs), key=ORDER.index)
    return report


def _run_line(source: str, history: WorkflowHistory, verdict: RunVerdict, check: DecisionCheck) -> RunLine:
    detail: str | None
    if verdict.divergence is not None:
        kind, detail = "diverged", verdict.divergence
    elif check.differences:
        kind, detail = "decisions_differ", f"{len(check.differences)} decision(s) are not the rules'"
    else:
        kind, detail = "passed", check.not_checked
    return RunLine(run_id=run_id_of(history), source=source, events=len(history.events), verdict=kind, detail=detail,
                   decisions_verified=check.decisions if check.checked else 0,
                   differences=[f"event {d.event_id} ({d.event_type}) {d.decision}: history {d.recorded}; "
                                f"rules {d.computed}" for d in check.differences],
                   notes=check.notes)


def _signed(delta: timedelta) -> str:
    return ("-" if delta < timedelta(0) else "") + format_duration(abs(delta))


def _decisions(run: int, check: DecisionCheck) -> list[DecisionLine]:
    out = []
    for d in check.timeline:
        e = d.entry
        late = d.noticed_at - e.at
        out.append(DecisionLine(
            run=run, seq=e.seq, at=e.at, noticed_at=d.noticed_at, who=e.actor, what=e.action,
            why="; ".join(x for x in (e.summary, e.reason) if x), rule=e.rule, clock=e.clock, due_at=e.due_at,
            lateness=_signed(e.at - e.due_at) if e.due_at is not None else None,
            applied_late_by=format_duration(late) if late > timedelta(seconds=1) else None,
            event_id=d.event_id, event_type=d.event_type))
    return out


def _notifications(run: int, steps: list[Step]) -> list[NotificationLine]:
    results = {s.answers: s for s in steps if s.answers is not None}
    delivered_by_note: dict[str, list[Delivery]] = {}
    out: list[NotificationLine] = []
    for s in steps:
        if s.role != "decision" or not isinstance(s.value, dict):
            continue
        result = results.get(s.event_id)
        if s.name == "deliver":
            outcome, at = _delivery_outcome(result)
            delivered_by_note.setdefault(str(s.value.get("notification_key")), []).append(Delivery(
                recipient=str(s.value.get("recipient_id")), channel=str(s.value.get("channel")), outcome=outcome,
                at=at, event_id=s.event_id))
        elif s.name in ("prepare_notification", "notify"):
            line = NotificationLine(run=run, event_id=s.event_id, at=s.effective_at or s.at,
                                    kind=str(s.value.get("kind")),
                                    roles=list(s.value.get("roles") or s.value.get("recipients") or []),
                                    outcome="pending")
            if result is not None and result.summary:
                line.outcome = f"failed: {result.summary}"
            elif result is not None and s.name == "notify":
                line.outcome = "outbox" + (" (duplicate)" if isinstance(result.value, dict)
                                           and result.value.get("duplicate") else "")
            elif result is not None and isinstance(result.value, dict):
                line.outcome = "prepared"
                line.reached = [f"{m.get('recipient_id')} ({m.get('channel')})"
                                for m in result.value.get("messages", [])]
                line.unreached = list(result.value.get("unreached", []))
            out.append(line)
    for line in out:
        key = next((str(s.value.get("key")) for s in steps if s.event_id == line.event_id and isinstance(s.value, dict)),
                   None)
        line.deliveries = delivered_by_note.get(key or "", [])
    return out


def _delivery_outcome(result: Step | None) -> tuple[str, datetime | None]:
    if result is None:
        return "pending", None
    if result.summary:
        return f"failed: {result.summary}", result.effective_at
    value: Any = result.value
    if isinstance(value, dict):
        at = value.get("at")
        return str(value.get("outcome", "delivered")), datetime.fromisoformat(at) if isinstance(at, str) else None
    return "delivered", result.effective_at


# ----- the terminal's view -------------------------------------------------------------------------------------------


def _t(at: datetime | None) -> str:
    return "-" if at is None else at.strftime("%Y-%m-%d %H:%M:%S")


def render_text(r: AuditReport) -> str:
    lines = [f"Audit report: ticket {r.ticket_id or '?'} (workflow {r.workflow_id})",
             f"  policy {r.policy_version or '?'}; {r.priority or '?'} {r.tier or '?'} {r.department or '?'}; "
             f"status at the end of the history: {r.status or '?'}",
             f"  verdict: {r.verdict.upper()} ({len(r.runs)} run(s); replayed against this code, decisions "
             f"recomputed from the recorded inputs)", ""]
    for i, run in enumerate(r.runs):
        lines.append(f"run {i} {run.run_id or ''} ({run.source}, {run.events} events): {run.verdict}, "
                     f"{run.decisions_verified} decisions verified" + (f"; {run.detail}" if run.detail else ""))
        lines += [f"  DIFFERS {d}" for d in run.differences]
        lines += [f"  note: {n}" for n in run.notes]
    lines += ["", "Decisions (who, what, why; rule and clock: due time, lateness):"]
    for d in r.decisions:
        rule = f" [rule {d.rule}]" if d.rule else ""
        clock = (f" [clock {d.clock}: due {_t(d.due_at)}, " + (f"{d.lateness} after due" if d.lateness
                 and not d.lateness.startswith("-") else f"{(d.lateness or '').lstrip('-')} ahead") + "]"
                 if d.clock and d.due_at else "")
        late = f" (applied {d.applied_late_by} later)" if d.applied_late_by else ""
        lines.append(f"  {_t(d.at)}  {d.who:<22} {d.what:<28} {d.why}{rule}{clock}{late}  <event {d.event_id}>")
    lines += ["", "Notifications (roles asked -> who was reached; each delivery):"]
    for n in r.notifications:
        reached = ", ".join(n.reached) or "-"
        lines.append(f"  {_t(n.at)}  {n.kind:<18} {', '.join(n.roles)} -> {reached}: {n.outcome}  <event {n.event_id}>")
        lines += [f"      unreached {u}" for u in n.unreached]
        lines += [f"      {d.recipient} ({d.channel}): {d.outcome}" + (f" at {_t(d.at)}" if d.at else "")
                  for d in n.deliveries]
    return "\n".join(lines)


# ----- the HTML view: one self-contained file (inline CSS, no script, nothing fetched) --------------------------------

HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>Audit report: ticket {{ r.ticket_id or r.workflow_id }}</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:2rem;color:#1b1b1b;max-width:1400px}
h1{font-size:1.4rem;margin:0 0 .3rem} h2{font-size:1.1rem;margin:1.6rem 0 .4rem}
table{border-collapse:collapse;width:100%} th,td{border:1px solid #ccc;padding:.25rem .45rem;text-align:left;
vertical-align:top} th{background:#f2f2f2} td.num{white-space:nowrap} .late{color:#a40000;font-weight:600}
.verdict{display:inline-block;padding:.3rem .7rem;border-radius:4px;font-weight:700;font-size:1.05rem}
.passed{background:#dff3df;color:#14532d;border:1px solid #14532d} .failed{background:#fde2e2;color:#7f1d1d;
border:1px solid #7f1d1d} .meta{color:#555} ul.diff{color:#7f1d1d} code{font-size:.92em}
</style></head>
<body>
<h1>Audit report: ticket <span id="ticket">{{ r.ticket_id or "?" }}</span></h1>
<p class="meta">workflow {{ r.workflow_id }} &middot; policy version <code id="policy">{{ r.policy_version or "?" }}</code>
&middot; {{ r.priority or "?" }}, {{ r.tier or "?" }}, {{ r.department or "?" }} &middot; status at the end of the
history: {{ r.status or "?" }}</p>
<p><span id="verdict" class="verdict {{ 'passed' if r.ok else 'failed' }}">{{ verdict_text }}</span></p>
<p class="meta">Read from the ticket's recorded history alone ({{ r.runs|length }} run(s)): replayed against the code
in hand and every decision recomputed with the rules from the recorded inputs. Generated {{ generated_at }}{% if
source %} from {{ source }}{% endif %}{% if code_version %} by code {{ code_version }}{% endif %}.</p>

<h2>Runs</h2>
<table id="runs"><tr><th>run</th><th>run id</th><th>source</th><th>events</th><th>verdict</th>
<th>decisions verified</th><th>detail</th></tr>
{% for run in r.runs %}<tr><td class="num">{{ loop.index0 }}</td><td><code>{{ run.run_id or "-" }}</code></td>
<td>{{ run.source }}</td><td class="num">{{ run.events }}</td><td>{{ run.verdict }}</td>
<td class="num">{{ run.decisions_verified }}</td><td>{{ run.detail or "" }}
{% if run.differences %}<ul class="diff">{% for d in run.differences %}<li>{{ d }}</li>{% endfor %}</ul>{% endif %}
{% for n in run.notes %}<div class="meta">note: {{ n }}</div>{% endfor %}</td></tr>
{% endfor %}</table>

<h2>Decisions</h2>
<table id="decisions"><tr><th>when</th><th>who</th><th>what</th><th>why</th><th>rule</th><th>clock</th><th>due</th>
<th>lateness</th><th>applied later by</th><th>event</th></tr>
{% for d in r.decisions %}<tr><td class="num">{{ t(d.at) }}</td><td>{{ d.who }}</td><td>{{ d.what }}</td>
<td>{{ d.why }}</td><td>{{ d.rule or "" }}</td><td>{{ d.clock or "" }}</td><td class="num">{{ t(d.due_at) if d.due_at
else "" }}</td><td class="num{{ ' late' if d.lateness and not d.lateness.startswith('-') and d.lateness != '0s'
else '' }}">{{ d.lateness or "" }}</td><td class="num">{{ d.applied_late_by or "" }}</td>
<td class="num">{{ d.run }}/{{ d.event_id }}</td></tr>
{% endfor %}</table>

<h2>Notifications</h2>
<table id="notifications"><tr><th>when</th><th>kind</th><th>roles asked</th><th>reached</th><th>outcome</th>
<th>deliveries</th><th>event</th></tr>
{% for n in r.notifications %}<tr><td class="num">{{ t(n.at) }}</td><td>{{ n.kind }}</td><td>{{ n.roles|join(", ")
}}</td><td>{{ n.reached|join(", ") or "-" }}{% for u in n.unreached %}<div class="late">unreached: {{ u }}</div>{%
endfor %}</td><td>{{ n.outcome }}</td><td>{% for d in n.deliveries %}<div>{{ d.recipient }} ({{ d.channel }}): {{
d.outcome }}{% if d.at %} at {{ t(d.at) }}{% endif %}</div>{% endfor %}</td><td class="num">{{ n.run }}/{{
n.event_id }}</td></tr>
{% endfor %}</table>
</body></html>
"""


def verdict_text(r: AuditReport) -> str:
    return {"passed": "PASSED: replayed, and every decision is the rules'",
            "diverged": "FAILED: the history diverges from this code",
            "decisions_differ": "FAILED: decisions differ from what the rules compute",
            "unreadable": "FAILED: a run could not be read"}.get(r.verdict, r.verdict.upper())


def render_html(r: AuditReport, *, generated_at: datetime, source: str | None = None,
                code_version: str | None = None) -> str:
    """One self-contained page (inline CSS, no script, nothing fetched: its own CSP says so) an auditor can attach to
    a finding. Every value is escaped (autoescape): a subject or actor holding markup shows as text."""
    from jinja2 import Environment

    env = Environment(autoescape=True, keep_trailing_newline=True)
    return env.from_string(HTML).render(r=r, t=_t, verdict_text=verdict_text(r), source=source,
                                        code_version=code_version,
                                        generated_at=generated_at.strftime("%Y-%m-%d %H:%M:%S %Z").strip())
