"""What a post-mortem is started with, from its subject: a resolved ticket's or incident's state (pure)."""

from __future__ import annotations

from workflows.common.policy import Policy
from workflows.incident.state import IncidentState
from workflows.postmortem.state import PostmortemInput
from workflows.ticket.rules import ticket_qualifies
from workflows.ticket.state import Breach, TicketState

__all__ = ["breach_line", "for_incident", "for_ticket", "incident_template", "ticket_qualifies"]


def breach_line(b: Breach, ticket_id: str | None = None) -> str:
    """One SLA breach in a draft: which clock, where, due when, by how much."""
    return (f"- {ticket_id + ': ' if ticket_id else ''}{b.clock.value} at {b.tier}: due "
            f"{b.due_at.isoformat(timespec='minutes')}, breached {b.at.isoformat(timespec='minutes')} "
            f"({int((b.at - b.due_at).total_seconds() // 60)} min late)")


def _settings(p: Policy) -> dict[str, object]:
    pm = p.postmortems
    calendar = p.calendars[pm.calendar] if pm.calendar else p.calendar_for("P1")
    return {"calendar": calendar, "review_within_days": pm.review_within_days,
            "root_cause_within_days": pm.root_cause_within_days, "complete_within_days": pm.complete_within_days,
            "action_item_days": pm.action_item_days, "remind_every": pm.remind_every}


def _participants(actors: list[str]) -> list[str]:
    return sorted({a for a in actors if not a.startswith(("system:", "incident:")) and a != "customer"})


def for_ticket(s: TicketState, p: Policy) -> PostmortemInput:
    t = s.ticket
    lines = [f"- {e.at.isoformat(timespec='minutes')} {e.actor}: {e.summary}" + (f" ({e.reason})" if e.reason else "")
             for e in s.timeline]
    breaches = [breach_line(b) for b in s.breaches]
    told = [e.summary for e in s.timeline if e.action == "notified"]
    draft = "\n".join([f"Ticket {t.id} ({s.priority}, {s.tier}, {s.department}): {t.subject}", "", "### Timeline",
                       *lines, "", "### SLA breaches", *(breaches or ["- none"]), "", "### Who was told",
                       *([f"- {x}" for x in told] or ["- nobody recorded"])])
    owner = s.escalation_manager or s.assignee or "escalation_manager"
    return PostmortemInput(kind="ticket", subject_id=t.id, title=f"Post-mortem: {t.subject}", owner=owner,
                           participants=_participants([e.actor for e in s.timeline]), draft=draft,
                           priority=s.priority, tier=s.tier, department=s.department, customer_id=t.customer_id,
                           escalation_manager=s.escalation_manager, **_settings(p))  # type: ignore[arg-type]


def incident_subject_id(s: IncidentState, seconds: bool = True) -> str:
    """The service and when its incident was declared (to the second: a service's incidents declared within one
    minute had one id before the patch `postmortem-id-seconds`, and the second's post-mortem was never started)."""
    return f"{s.id}-{s.declared_at.strftime('%Y%m%d%H%M%S' if seconds else '%Y%m%d%H%M')}"


def incident_template(p: Policy, severity: str) -> PostmortemInput | None:
    """What an incident of this severity will start its post-mortem with (None: the policy wants none); decided at
    declaration, filled in at resolution (`for_incident`)."""
    if severity not in p.postmortems.severities:
        return None
    return PostmortemInput(kind="incident", subject_id="", title="", owner="", draft="", **_settings(p))  # type: ignore[arg-type]


def for_incident(s: IncidentState, template: PostmortemInput, seconds: bool = True) -> PostmortemInput:
    lines = [f"- {e.at.isoformat(timespec='minutes')} {e.actor}: {e.summary}" for e in s.timeline]
    more = s.ticket_breach_count - len(s.ticket_breaches)
    breaches = [*s.ticket_breaches, *([f"- and {more} more"] if more > 0 else [])] or ["- none"]
    if s.ticket_breaches_unread:
        breaches.append(f"- not read: the breaches of {s.ticket_breaches_unread} ticket(s) (see their timelines)")
    draft = "\n".join([f"Incident {s.id} ({s.severity}): {s.title}; {len(s.tickets)} linked ticket(s), "
                       f"{s.update_count} update(s)", "", "### Timeline", *lines, "",
                       f"### SLA breaches of the linked tickets ({s.ticket_breach_count})", *breaches])
    return template.model_copy(update={
        "subject_id": incident_subject_id(s, seconds), "title": f"Post-mortem: {s.title}", "owner": s.commander,
        "participants": _participants([e.actor for e in s.timeline]), "draft": draft})
