"""The incident's rules: declare, link and unlink tickets, post updates, remind the commander, resolve. Pure."""

from __future__ import annotations

from datetime import datetime

from workflows.common.delivery import PrepareInput
from workflows.incident.state import (
    BREACHES_KEPT,
    TIMELINE_KEPT,
    UPDATES_KEPT,
    FanOut,
    FanOutResult,
    IncidentEntry,
    IncidentInput,
    IncidentState,
    IncidentUpdate,
    LinkRequest,
    PostUpdate,
    ResolveIncident,
    incident_workflow_id,
)
from workflows.ticket.events import Rejected


def declare(inp: IncidentInput, now: datetime) -> IncidentState:
    if inp.state is not None:
        return inp.state
    s = IncidentState(id=inp.service, title=inp.title, severity=inp.severity, commander=inp.commander,
                      declared_by=inp.declared_by, declared_at=now,
                      next_reminder_at=now + inp.update_every if inp.update_every else None)
    _record(s, now, inp.declared_by, "declared", f"{inp.severity} on {inp.service}: {inp.title}; commander "
                                                  f"{inp.commander}")
    return s


def _record(s: IncidentState, at: datetime, actor: str, action: str, summary: str) -> None:
    s.timeline = [*s.timeline, IncidentEntry(at=at, actor=actor, action=action, summary=summary)][-TIMELINE_KEPT:]


def check_open(s: IncidentState) -> None:
    if s.status != "open":
        raise Rejected("incident_resolved", f"incident {s.id} is resolved; declare a new one")


def _notice(s: IncidentState, kind: str, by: str, tickets: list[str], **fields: object) -> FanOut:
    return FanOut(incident_id=s.id, kind=kind, title=s.title, by=by, tickets=tickets, **fields)  # type: ignore[arg-type]


def link(state: IncidentState, r: LinkRequest, now: datetime) -> tuple[IncidentState, list[str], FanOut | None]:
    """Link tickets (those linked already are left as they are); the new ones get the latest update at linking."""
    check_open(state)
    s = state.model_copy(deep=True)
    known = set(s.tickets)
    new = [t for t in dict.fromkeys(r.tickets) if t not in known]
    if not new:
        return s, [], None
    s.tickets = [*s.tickets, *new]
    _record(s, now, r.by, "linked", f"{len(new)} ticket(s) linked ({len(s.tickets)} in all)")
    latest = s.updates[-1] if s.updates else None
    return s, new, _notice(s, "linked", r.by, new, number=latest.number if latest else 0,
                           text=latest.text if latest else "")


def unlink(state: IncidentState, r: LinkRequest, now: datetime) -> tuple[IncidentState, list[str], FanOut | None]:
    check_open(state)
    s = state.model_copy(deep=True)
    gone = [t for t in dict.fromkeys(r.tickets) if t in set(s.tickets)]
    if not gone:
        return s, [], None
    s.tickets = [t for t in s.tickets if t not in set(gone)]
    _record(s, now, r.by, "unlinked", f"{len(gone)} ticket(s) unlinked ({len(s.tickets)} in all)")
    return s, gone, _notice(s, "unlinked", r.by, gone)


def post_update(state: IncidentState, u: PostUpdate, now: datetime,
                inp: IncidentInput) -> tuple[IncidentState, IncidentUpdate, FanOut]:
    """The commander's status update: numbered, in the incident's timeline, told to every linked ticket."""
    check_open(state)
    s = state.model_copy(deep=True)
    s.update_count += 1
    update = IncidentUpdate(number=s.update_count, text=u.text, by=u.by, at=now)
    s.updates = [*s.updates, update][-UPDATES_KEPT:]
    s.last_update_at = now
    s.next_reminder_at = now + inp.update_every if inp.update_every else None
    _record(s, now, u.by, "update", f"update #{update.number} to {len(s.tickets)} ticket(s): {u.text[:200]}")
    return s, update, _notice(s, "update", u.by, list(s.tickets), number=update.number, text=u.text)


def resolve(state: IncidentState, r: ResolveIncident, now: datetime,
            inp: IncidentInput) -> tuple[IncidentState, FanOut]:
    check_open(state)
    s = state.model_copy(deep=True)
    s.status, s.resolved_at, s.resolution_summary, s.next_reminder_at = "resolved", now, r.summary, None
    what = "resolving the linked tickets still open" if inp.resolve_linked else "telling the linked tickets"
    _record(s, now, r.by, "resolved", f"resolved ({r.resolution.value}): {r.summary[:200]}; {what}")
    return s, _notice(s, "resolved", r.by, list(s.tickets), text=r.summary, resolve=inp.resolve_linked,
                      resolution=r.resolution)


def enqueue(queue: list[FanOut], f: FanOut, size: int) -> list[FanOut]:
    """The queue with `f` added in bounded batches (each one activity), in order. A notice that says what the last
    queued batch says (tickets linked one by one at intake, during an outage) joins that batch up to `size`."""
    out = list(queue)
    tickets = list(f.tickets)
    last = out[-1] if out else None
    if last is not None and last.model_dump(exclude={"tickets", "by"}) == f.model_dump(exclude={"tickets", "by"}):
        room = size - len(last.tickets)
        if room > 0:
            out[-1] = last.model_copy(update={"tickets": [*last.tickets, *tickets[:room]]})
            tickets = tickets[room:]
    out += [f.model_copy(update={"tickets": tickets[i:i + size]}) for i in range(0, len(tickets), size)]
    return out


def fanned_out(state: IncidentState, f: FanOut, result: FanOutResult, now: datetime) -> IncidentState:
    s = state.model_copy(deep=True)
    s.told += result.told
    s.skipped_closed += len(result.closed)
    s.resolved_tickets += result.resolved
    s.ticket_breach_count += result.breach_count
    s.ticket_breaches_unread += result.breaches_unread
    s.ticket_breaches = [*s.ticket_breaches, *result.breaches][:BREACHES_KEPT]
    if f.kind in ("update", "resolved") or result.closed or result.missing:
        about = f"update #{f.number}" if f.kind == "update" else f.kind
        _record(s, now, "system:fan-out", "told", f"{about}: {result.told} ticket(s) told"
                + (f", {result.resolved} resolved by it" if f.kind == "resolved" else "")
                + f", {len(result.closed)} closed skipped"
                + (f", {len(result.missing)} not found" if result.missing else ""))
    return s


def reminder_due(s: IncidentState, now: datetime) -> bool:
    return s.status == "open" and s.next_reminder_at is not None and now >= s.next_reminder_at


def remind(state: IncidentState, now: datetime, inp: IncidentInput) -> tuple[IncidentState, PrepareInput]:
    """No update went out for the policy's cadence: the commander is reminded (once per cadence)."""
    s = state.model_copy(deep=True)
    s.reminders_sent += 1
    s.notices += 1
    s.next_reminder_at = now + inp.update_every if inp.update_every else None
    since = s.last_update_at or s.declared_at
    _record(s, now, "system:incident", "reminder", f"commander {s.commander} reminded: no update since "
                                                    f"{since.isoformat()}")
    # the declaration's time in the key: a service's next incident (same workflow id) counts its notices from 1 again
    key = f"{incident_workflow_id(s.id)}-{int(s.declared_at.timestamp())}:{s.notices}:incident_reminder"
    commander = s.commander.split(":", 1)[-1]
    return s, PrepareInput(key=key, kind="incident_reminder", ticket_id="-", roles=[f"person:{commander}"],
                           subject=f"Incident {s.id} ({s.severity}): an update is due",
                           body=f"No status update since {since.isoformat()}. Post one: "
                                f"`escalation incident update {s.id} --text ...`",
                           priority="P1", tier="", department="", status=s.status, ticket_subject=s.title,
                           customer_id="-", at=now)


def postmortem_started(state: IncidentState, postmortem_id: str, now: datetime) -> IncidentState:
    s = state.model_copy(deep=True)
    s.postmortem_id = postmortem_id
    _record(s, now, "system:postmortem", "postmortem_started", f"post-mortem {postmortem_id} started")
    return s
