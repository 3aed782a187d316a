"""The ticket state machine: `step(state, event, now, policy) -> (state, effects)`.

Pure: no clock (the caller passes `now`), no I/O, no Temporal. The workflow
feeds it what happened and carries out the effects it returns; the CLI, the API
and the policy simulator use the same functions.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime

from workflows.common import clocks
from workflows.common.clocks import ClockState
from workflows.common.delivery import Message, Prepared, PrepareInput
from workflows.common.policy import Policy
from workflows.common.vocabulary import ClockName, Status, Trigger, contains_keyword, format_duration
from workflows.ticket.clocks import apply_triggers, clock_target, deadlines, next_due, settle_pauses
from workflows.ticket.effects import (
    Effect,
    EnrolSponsorship,
    FindEscalationManager,
    Notify,
    StartPostmortem,
    StepResult,
    notify,
)
from workflows.ticket.events import (
    SYSTEM_SLA,
    Acknowledge,
    AddNote,
    Assign,
    AssignManager,
    ChangePriority,
    Close,
    CustomerReply,
    DeadlineReached,
    Escalate,
    EscalateToExecutive,
    Event,
    IncidentNotice,
    Rejected,
    Reopen,
    Resolve,
    Transfer,
    WaitOnCustomer,
)
from workflows.ticket.routing import RoutingDecision, route
from workflows.ticket.state import (
    ACTIVE,
    Breach,
    Handoff,
    Ticket,
    TicketState,
    record,
    record_breach,
    remember_reply,
)

# ----- opening ----------------------------------------------------------------------


OPENER = "system:intake"  # who opens a ticket when the caller does not say


def open_ticket(ticket: Ticket, policy: Policy, now: datetime, *, opened_by: str | None = None,
                handoff: Handoff | None = None, customer_notices: bool = False,
                find_manager: bool = False) -> StepResult:
    """Route the new ticket, start its clocks, confirm receipt, notify stakeholders.

    `opened_by`: who opened it (default OPENER); `handoff`: the Tier 0 channel that handed the customer over,
    recorded before the opening with its own actor, reason and time at Tier 0."""
    decision = route(ticket, policy)
    s = TicketState(
        ticket=ticket, policy_version=policy.version(), tier=decision.tier, department=decision.department,
        priority=decision.priority, routing_rule=decision.rule,
        clocks={name: ClockState(name=name) for name in ClockName}, calendar=policy.calendar_for(decision.priority),
        as_of=now, customer_notices=customer_notices,
    )
    fx: list[Effect] = []
    if handoff is not None:
        record(s, handoff.at, handoff.actor, "handed_off", _handoff_summary(handoff, s.tier, policy), handoff.reason)
    record(s, ticket.opened_at, opened_by or OPENER, "opened", _routing_summary(decision), rule=decision.rule)
    apply_triggers(s, [Trigger.opened], ticket.opened_at, policy)
    settle_pauses(s, ticket.opened_at, policy)
    fx.append(notify(s, "opened", ["customer"], f"We received your request: {ticket.subject}",
                      f"Priority {s.priority}; we will acknowledge within "
                      f"{format_duration(policy.sla(s.priority).acknowledge)} ({s.calendar.name} hours)."))
    stakeholders = policy.sla(s.priority).stakeholders
    if stakeholders:
        fx.append(notify(s, "stakeholders", stakeholders, f"{s.priority} ticket opened: {ticket.subject}",
                          f"Customer {ticket.customer_id} ({ticket.customer_plan}), tier {s.tier}, "
                          f"department {s.department}."))
    if decision.executive_keywords:
        fx += _flag_executive(s, policy, ticket.opened_at, opened_by or OPENER, decision.executive_keywords)
    if ticket.customer_plan in policy.sponsorship.plans:
        fx.append(_enrol(s, policy, "plan", f"plan {ticket.customer_plan}", "system:sponsorship.plans", now))
    if find_manager and s.priority in policy.escalation_managers.priorities:
        s.seq += 1
        fx.append(FindEscalationManager(key=f"ticket-{ticket.id}:{s.seq}:manager", ticket_id=ticket.id,
                                        pool=policy.escalation_managers.pool, priority=s.priority, tier=s.tier,
                                        department=s.department, customer_id=ticket.customer_id, at=now))
    s.as_of = now
    return StepResult(state=s, effects=fx)


def _routing_summary(d: RoutingDecision) -> str:
    by = f"rule {d.rule!r}" if d.rule else "the default route"
    priority = f"priority {d.priority}"
    if d.routed_priority is not None:  # the caller's priority wins over the rule's; both are recorded
        priority += f" (set by the caller; {'the rule' if d.rule else 'the default route'} sets {d.routed_priority})"
    return f"routed by {by}: tier {d.tier}, department {d.department}, {priority}"


def _handoff_summary(h: Handoff, tier: str, p: Policy) -> str:
    """The hand-off in words: who, after how long at Tier 0, and where the policy puts the ticket."""
    bottom = p.tiers[0]
    stay = f" after {format_duration(h.at - h.since)} at {bottom.id}" if h.since is not None and h.since <= h.at else ""
    where = f"the policy keeps it at {tier}" if tier == bottom.id else f"routed to {tier}"
    return f"handed off by {h.actor}{stay}; {where}"


# ----- validation --------------------------------------------------------------------


def check(state: TicketState, event: Event, policy: Policy) -> None:
    """Raise Rejected if `event` is not allowed now. Never mutates."""
    if state.status == Status.closed:
        raise Rejected("ticket_closed", f"ticket {state.ticket.id} is closed; open a new ticket instead")
    checker = _CHECKS.get(type(event))
    if checker is not None:
        checker(state, event, policy)


def _require_active(state: TicketState, action: str) -> None:
    if state.status == Status.resolved:
        raise Rejected("ticket_resolved", f"cannot {action}: ticket {state.ticket.id} is resolved; reopen it first")


def _check_acknowledge(s: TicketState, e: Acknowledge, p: Policy) -> None:
    _require_active(s, "acknowledge")
    if s.acknowledged_at is not None:
        raise Rejected("already_acknowledged", f"ticket {s.ticket.id} was acknowledged at {s.acknowledged_at.isoformat()}")


def _check_escalate(s: TicketState, e: Escalate, p: Policy) -> None:
    _require_active(s, "escalate")
    here = p.tier_index(s.tier)
    if e.to_tier is None:
        if here + 1 >= len(p.tiers):
            raise Rejected("top_tier", f"ticket {s.ticket.id} is already at the top tier ({s.tier}); nothing above it")
        return
    if e.to_tier not in p.tier_ids():
        raise Rejected("unknown_tier", f"to_tier {e.to_tier!r} is not a tier; allowed: {', '.join(p.tier_ids())}")
    if p.tier_index(e.to_tier) <= here:
        above = p.tier_ids()[here + 1:]
        raise Rejected("not_above", f"to_tier {e.to_tier!r} is not above the current tier {s.tier!r}; "
                                    f"allowed: {', '.join(above) or 'none (top tier)'}")


def executive_tier(p: Policy) -> str:
    """The tier an executive escalation moves a ticket to: the policy's executive tier, else the top tier."""
    return p.executive.tier or p.tiers[-1].id


def _check_executive(s: TicketState, e: EscalateToExecutive, p: Policy) -> None:
    _require_active(s, "escalate to the executives")
    if not e.request_only and s.tier == executive_tier(p) and s.executive_attention:
        raise Rejected("already_executive", f"ticket {s.ticket.id} is already with the executives ({s.tier})")


def _check_transfer(s: TicketState, e: Transfer, p: Policy) -> None:
    _require_active(s, "transfer")
    if e.department not in p.department_ids():
        raise Rejected("unknown_department",
                       f"department {e.department!r} does not exist; allowed: {', '.join(p.department_ids())}")
    if e.department == s.department:
        raise Rejected("same_department", f"ticket {s.ticket.id} is already with department {e.department!r}")


def _check_wait(s: TicketState, e: WaitOnCustomer, p: Policy) -> None:
    _require_active(s, "wait on the customer")
    if s.status == Status.waiting_on_customer:
        raise Rejected("already_waiting", f"ticket {s.ticket.id} is already waiting on the customer")


def _check_resolve(s: TicketState, e: Resolve, p: Policy) -> None:
    _require_active(s, "resolve")


def _check_reopen(s: TicketState, e: Reopen, p: Policy) -> None:
    if s.status != Status.resolved:
        raise Rejected("not_resolved", f"only a resolved ticket can be reopened; ticket {s.ticket.id} is {s.status}")


def _check_close(s: TicketState, e: Close, p: Policy) -> None:
    if s.status != Status.resolved:
        raise Rejected("not_resolved", f"only a resolved ticket can be closed; ticket {s.ticket.id} is {s.status}")


def _check_priority(s: TicketState, e: ChangePriority, p: Policy) -> None:
    _require_active(s, "change the priority")
    if e.priority == s.priority:
        raise Rejected("same_priority", f"ticket {s.ticket.id} already has priority {e.priority}")


_CHECKS: dict[type, Callable[[TicketState, object, Policy], None]] = {
    Acknowledge: _check_acknowledge,  # type: ignore[dict-item]
    Escalate: _check_escalate,  # type: ignore[dict-item]
    EscalateToExecutive: _check_executive,  # type: ignore[dict-item]
    Transfer: _check_transfer,  # type: ignore[dict-item]
    WaitOnCustomer: _check_wait,  # type: ignore[dict-item]
    Resolve: _check_resolve,  # type: ignore[dict-item]
    Reopen: _check_reopen,  # type: ignore[dict-item]
    Close: _check_close,  # type: ignore[dict-item]
    ChangePriority: _check_priority,  # type: ignore[dict-item]
}


# ----- the step ----------------------------------------------------------------------


def step(state: TicketState, event: Event, now: datetime, policy: Policy) -> StepResult:
    """Apply one event at `now`. Raises Rejected (and changes nothing) if it is not allowed."""
    check(state, event, policy)
    now = now.astimezone(UTC)  # interval arithmetic on aware datetimes is wall-clock arithmetic in their zone
    s = state.model_copy(deep=True)
    fx = _HANDLERS[type(event)](s, event, now, policy)
    settle_pauses(s, now, policy)
    s.as_of = now
    return StepResult(state=s, effects=fx)


def _on_acknowledge(s: TicketState, e: Acknowledge, now: datetime, p: Policy) -> list[Effect]:
    s.acknowledged_at = now
    if s.status == Status.new:
        s.status = Status.open
    waited = clocks.accrued_at(s.clocks[ClockName.acknowledge], now, s.calendar)
    record(s, now, e.actor, "acknowledged", f"acknowledged after {format_duration(waited)} of business time", e.note)
    apply_triggers(s, [Trigger.acknowledged], now, p)
    return []


def _on_escalate(s: TicketState, e: Escalate, now: datetime, p: Policy) -> list[Effect]:
    target = e.to_tier or p.next_tier(s.tier)
    assert target is not None  # check() guarantees it
    return _escalate(s, target, now, p, e.actor, e.reason)


def _on_executive(s: TicketState, e: EscalateToExecutive, now: datetime, p: Policy) -> list[Effect]:
    if e.request_only:
        record(s, now, e.actor, "executive_escalation_requested", "executive escalation requested", e.reason)
        return [notify(s, "executive_request", ["escalation_manager"],
                       f"Executive escalation requested: {s.ticket.subject}", f"By {e.actor}. Reason: {e.reason}")]
    s.executive_attention = True
    record(s, now, e.actor, "executive_escalation", "escalated to the executives", e.reason, rule="executive")
    fx: list[Effect] = [notify(s, "executive", p.executive.notify, f"Executive escalation: {s.ticket.subject}",
                               f"By {e.actor}. Customer {s.ticket.customer_id} ({s.ticket.customer_plan}). "
                               f"Reason: {e.reason}")]
    if p.sponsorship.on_executive_escalation:
        fx.append(_enrol(s, p, "executive_escalation", e.reason, e.actor, now))
    target = executive_tier(p)
    if p.tier_index(target) > p.tier_index(s.tier):
        fx += _escalate(s, target, now, p, e.actor, e.reason)
    return fx


def _escalate(s: TicketState, target: str, now: datetime, p: Policy, actor: str, reason: str,
              clock: ClockName | None = None, due_at: datetime | None = None) -> list[Effect]:
    before = s.tier
    s.tier = target
    s.escalation_count += 1
    record(s, now, actor, "escalated", f"escalated from {before} to {target}", reason, clock=clock, due_at=due_at,
         rule=f"clocks.{clock}.on_breach" if clock else None)
    apply_triggers(s, [Trigger.escalated], now, p)
    recipients = [*p.escalation_notify, *p.tier(target).notify, f"tier:{target}"]
    fx: list[Effect] = [notify(s, "escalation", recipients, f"Escalated to {p.tier(target).name}: {s.ticket.subject}",
                               f"From {before} to {target} by {actor}. Reason: {reason}", due_at)]
    if target in p.sponsorship.tiers:
        fx.append(_enrol(s, p, "tier", f"reached {target}: {reason}", actor, now))
    return fx


def _on_transfer(s: TicketState, e: Transfer, now: datetime, p: Policy) -> list[Effect]:
    before = s.department
    s.department = e.department
    record(s, now, e.actor, "transferred", f"transferred from {before} to {e.department} (tier stays {s.tier})", e.reason)
    apply_triggers(s, [Trigger.transferred], now, p)
    return [notify(s, "transferred", [f"department:{e.department}", *_manager(s)], f"Transferred to you: {s.ticket.subject}",
                    f"From {before} by {e.actor}. {e.reason}".strip())]


def _on_wait(s: TicketState, e: WaitOnCustomer, now: datetime, p: Policy) -> list[Effect]:
    s.status = Status.waiting_on_customer
    record(s, now, e.actor, "waiting_on_customer", "waiting on the customer; clocks that pause while waiting paused",
         e.reason)
    apply_triggers(s, [Trigger.public_reply], now, p)  # asking the customer is a customer-facing message
    return []


def _on_customer_reply(s: TicketState, e: CustomerReply, now: datetime, p: Policy) -> list[Effect]:
    fx: list[Effect] = []
    triggers = [Trigger.customer_replied]
    if s.status == Status.resolved:
        _reopen(s, now, e.actor, "customer replied within the reopen window", p)
        triggers = [Trigger.reopened, Trigger.customer_replied]
    elif s.status == Status.waiting_on_customer:
        s.status = Status.open if s.acknowledged_at else Status.new
    record(s, now, e.actor, "customer_replied", "the customer replied" + (f" ({e.message_id})" if e.message_id else ""))
    remember_reply(s, e.message_id)
    apply_triggers(s, triggers, now, p)
    found = [k for k in p.executive.keywords if contains_keyword(e.message, k)]
    if found:
        fx += _flag_executive(s, p, now, e.actor, found)
    return fx


def _on_resolve(s: TicketState, e: Resolve, now: datetime, p: Policy) -> list[Effect]:
    s.status = Status.resolved
    s.resolved_at = now
    s.resolution = e.resolution
    s.resolution_summary = e.summary
    record(s, now, e.actor, "resolved", f"resolved with a {e.resolution.value}; closes after "
         f"{format_duration(p.reopen_window)} unless the customer replies", e.summary)
    apply_triggers(s, [Trigger.resolved], now, p)
    fx: list[Effect] = [notify(s, "resolved", ["customer", "assignee", *_manager(s)], f"Resolved: {s.ticket.subject}",
                               f"{e.resolution.value}: {e.summary}")]
    # A severe ticket ends in a post-mortem, once (a reopened and resolved again ticket starts no second one); one
    # resolved by its incident is covered by the incident's.
    if s.postmortem_id is None and not e.actor.startswith("incident:") and ticket_qualifies(s, p):
        fx.append(StartPostmortem(ticket_id=s.ticket.id))
    return fx


def _on_reopen(s: TicketState, e: Reopen, now: datetime, p: Policy) -> list[Effect]:
    _reopen(s, now, e.actor, e.reason, p)
    apply_triggers(s, [Trigger.reopened], now, p)
    return []


def _reopen(s: TicketState, now: datetime, actor: str, reason: str, p: Policy) -> None:
    s.status = Status.open if s.acknowledged_at else Status.new
    s.reopen_count += 1
    s.resolved_at = None
    record(s, now, actor, "reopened", f"reopened (reopen #{s.reopen_count})", reason)


def _on_close(s: TicketState, e: Close, now: datetime, p: Policy) -> list[Effect]:
    s.status = Status.closed
    s.closed_at = now
    record(s, now, e.actor, "closed", "closed", e.reason)
    apply_triggers(s, [Trigger.closed], now, p)
    return []


def _on_assign(s: TicketState, e: Assign, now: datetime, p: Policy) -> list[Effect]:
    s.assignee = e.assignee or None
    record(s, now, e.actor, "assigned", f"assigned to {s.assignee}" if s.assignee else "unassigned")
    return []


def _manager(s: TicketState) -> list[str]:
    """The escalation manager hears of every step (tier changes and breaches already name the role in the policy;
    transfers and the resolution add it when the ticket has one: tickets from before managers had none)."""
    return ["escalation_manager"] if s.escalation_manager else []


def _on_assign_manager(s: TicketState, e: AssignManager, now: datetime, p: Policy) -> list[Effect]:
    before, s.escalation_manager = s.escalation_manager, e.manager
    record(s, now, e.actor, "escalation_manager_assigned",
           f"escalation manager {e.manager}" + (f" (was {before})" if before else ""))
    return []


def _on_note(s: TicketState, e: AddNote, now: datetime, p: Policy) -> list[Effect]:
    record(s, now, e.actor, "public_reply" if e.public else "note", e.text)
    if not e.public:
        return []
    apply_triggers(s, [Trigger.public_reply], now, p)
    if not s.customer_notices:
        return []
    return [notify(s, "public_reply", ["customer"], f"Re: {s.ticket.subject}", e.text)]


def _on_priority(s: TicketState, e: ChangePriority, now: datetime, p: Policy) -> list[Effect]:
    before = s.priority
    s.priority = e.priority
    old_cal, s.calendar = s.calendar, p.calendar_for(e.priority)
    for name, c in s.clocks.items():
        settled = clocks.retarget(c, now, c.target, old_cal)  # count what accrued under the old calendar
        s.clocks[name] = clocks.retarget(settled, now, clock_target(s, name, p), s.calendar)
    record(s, now, e.actor, "priority_changed", f"priority {before} -> {e.priority}; accrued SLA time kept", e.reason)
    return []


def _on_deadline(s: TicketState, e: DeadlineReached, now: datetime, p: Policy) -> list[Effect]:
    if e.kind == "auto_close":
        if s.status != Status.resolved or s.resolved_at is None or s.resolved_at + p.reopen_window > now:
            return []  # reopened since, or a stale/early timer: the reopen window is still open
        return _on_close(s, Close(actor="system:auto-close", reason="reopen window ended"), now, p)
    assert e.clock is not None
    c = s.clocks[e.clock]
    current = [d for d in deadlines(s, p) if d.clock == e.clock and d.kind == e.kind and d.percent == e.percent]
    if not current or current[0].at > now:  # stale: the state moved on since the timer was set
        return []
    if e.kind == "warning":
        assert e.percent is not None
        if e.percent in c.warnings_sent:
            return []
        s.clocks[e.clock] = clocks.mark_warned(c, e.percent)
        record(s, now, SYSTEM_SLA, "sla_warning", f"{e.clock} clock at {e.percent}% (due {c.due_at:%Y-%m-%d %H:%M %Z})",
             clock=e.clock, due_at=c.due_at)
        return [notify(s, "warning", [*p.breach_notify, f"tier:{s.tier}"],
                        f"SLA warning ({e.clock} {e.percent}%): {s.ticket.subject}", f"Due {c.due_at}")]
    return _breach(s, e.clock, now, p)


def _breach(s: TicketState, name: ClockName, now: datetime, p: Policy) -> list[Effect]:
    c = s.clocks[name]
    due = c.due_at or now
    s.clocks[name] = clocks.mark_breached(c, now)
    record_breach(s, Breach(clock=name, tier=s.tier, due_at=due, at=now))
    record(s, now, SYSTEM_SLA, "sla_breached", f"{name} SLA breached at tier {s.tier} (due {due.isoformat()})",
         clock=name, due_at=due, rule=f"priorities.{s.priority}")
    if p.clocks[name].on_breach in ("remind", "message_customer"):
        return _remind(s, name, due, now, p)
    fx: list[Effect] = [notify(s, "breach", [*p.breach_notify, f"tier:{s.tier}"],
                                f"SLA breached ({name}): {s.ticket.subject}", f"Due {due.isoformat()}, tier {s.tier}", due)]
    nxt = p.next_tier(s.tier)
    # A missed acknowledgement moves the ticket on only while its tier's own clock is still waiting for that
    # acknowledgement (Tier 1: "60 minutes to acknowledge, then Tier 2 at once"); once a tier clock runs
    # (Tier 2 "has 4 hours from entry"), that clock decides.
    waits_for_ack = name != ClockName.acknowledge or s.clocks[ClockName.tier].phase == "idle"
    if p.clocks[name].on_breach == "escalate" and waits_for_ack and nxt is not None and p.tier(nxt).automatic_entry:
        fx += _escalate(s, nxt, now, p, SYSTEM_SLA, f"{name} SLA breached (due {due.isoformat()})", name, due)
    return fx


def _remind(s: TicketState, name: ClockName, due: datetime, now: datetime, p: Policy) -> list[Effect]:
    """`on_breach: remind | message_customer`: the assignee (or the tier's on-duty contacts) is reminded; with
    message_customer the customer is also sent the status update, which counts as a public reply."""
    who = "assignee" if s.assignee else f"tier:{s.tier}"
    fx: list[Effect] = [notify(s, "reminder", [who], f"Reminder ({name} due {due.isoformat()}): {s.ticket.subject}",
                               f"The {name} clock fell due at tier {s.tier}.", due)]
    if p.clocks[name].on_breach == "message_customer":
        record(s, now, SYSTEM_SLA, "customer_updated", f"status update sent to the customer ({name} fell due)",
               clock=name, rule=f"clocks.{name}.on_breach")
        fx.append(notify(s, "customer_update", ["customer"], f"Update on your request: {s.ticket.subject}",
                         f"Your request is {s.status.value.replace('_', ' ')} with our {p.tier(s.tier).name} team."))
        apply_triggers(s, [Trigger.public_reply], now, p)
    return fx


def _on_incident(s: TicketState, e: IncidentNotice, now: datetime, p: Policy) -> list[Effect]:
    """An incident's notice: linking, its status updates for the customer, unlinking, its resolution."""
    if e.kind == "linked":
        if s.incident_id != e.incident_id or not s.incident_open:
            s.incident_id, s.incident_update, s.incident_open = e.incident_id, 0, True
            paused = ", ".join(c.value for c in p.incidents.pause_clocks) or "none"
            record(s, now, e.actor, "incident_linked", f"part of incident {e.incident_id}: {e.title}".rstrip(": "),
                   f"clocks paused while it is open: {paused}", rule="incidents.pause_clocks")
        return _incident_update(s, e, now, p) if e.number > s.incident_update and e.text else []
    if s.incident_id != e.incident_id:
        return []  # unlinked meanwhile, or another incident's: nothing to do
    if e.kind == "update":
        return _incident_update(s, e, now, p) if e.number > s.incident_update else []
    if e.kind == "unlinked":
        s.incident_id, s.incident_update, s.incident_open = None, 0, False
        record(s, now, e.actor, "incident_unlinked", f"no longer part of incident {e.incident_id}; its clocks resume")
        return []
    if not s.incident_open:
        return []  # told before (a fan-out retried after a crash)
    s.incident_open = False  # its clocks resume (settled after this step)
    record(s, now, e.actor, "incident_resolved", f"incident {e.incident_id} resolved", e.text)
    if e.resolve and s.status in ACTIVE:
        return _on_resolve(s, Resolve(actor=e.actor, summary=e.text or f"incident {e.incident_id} resolved",
                                      resolution=e.resolution), now, p)
    return []


def _incident_update(s: TicketState, e: IncidentNotice, now: datetime, p: Policy) -> list[Effect]:
    """The incident's status update, told to this ticket's customer: a customer-facing message (the clocks a public
    reply restarts restart), once per incident and update number."""
    s.incident_update = e.number
    record(s, now, e.actor, "incident_update", f"incident {e.incident_id} update #{e.number} to the customer", e.text)
    apply_triggers(s, [Trigger.public_reply], now, p)
    return [notify(s, "incident_update", ["customer"], f"Update on {e.title or 'the outage'}: {s.ticket.subject}",
                   e.text)]


_HANDLERS: dict[type, Callable[[TicketState, object, datetime, Policy], list[Effect]]] = {
    IncidentNotice: _on_incident,  # type: ignore[dict-item]
    Acknowledge: _on_acknowledge,  # type: ignore[dict-item]
    Escalate: _on_escalate,  # type: ignore[dict-item]
    EscalateToExecutive: _on_executive,  # type: ignore[dict-item]
    Transfer: _on_transfer,  # type: ignore[dict-item]
    WaitOnCustomer: _on_wait,  # type: ignore[dict-item]
    CustomerReply: _on_customer_reply,  # type: ignore[dict-item]
    Resolve: _on_resolve,  # type: ignore[dict-item]
    Reopen: _on_reopen,  # type: ignore[dict-item]
    Close: _on_close,  # type: ignore[dict-item]
    Assign: _on_assign,  # type: ignore[dict-item]
    AssignManager: _on_assign_manager,  # type: ignore[dict-item]
    AddNote: _on_note,  # type: ignore[dict-item]
    ChangePriority: _on_priority,  # type: ignore[dict-item]
    DeadlineReached: _on_deadline,  # type: ignore[dict-item]
}


def resolved_by(s: TicketState, actor: str) -> bool:
    """Whether `actor` (an incident's `incident:<service>`) resolved this ticket: the incident counts them."""
    return any(e.action == "resolved" and e.actor == actor for e in s.timeline)


def notification_failed(state: TicketState, n: Notify, now: datetime, error: str) -> TicketState:
    """A notification could not be delivered even after retrying: the timeline says so (people can follow up)."""
    s = state.model_copy(deep=True)
    record(s, now.astimezone(UTC), "system:notify", "notification_failed",
         f"{n.kind} notification to {', '.join(n.recipients)} not delivered", error[:500])
    return s


def prepare_input(s: TicketState, n: Notify, now: datetime) -> PrepareInput:
    """A notification with the ticket's variables, as the preparing step (directory + templates) takes it."""
    return PrepareInput(key=n.key, kind=n.kind, ticket_id=n.ticket_id, roles=n.recipients, subject=n.subject,
                        body=n.body, priority=n.priority, tier=n.tier, department=n.department, status=s.status.value,
                        due_at=n.due_at, ticket_subject=s.ticket.subject, customer_id=s.ticket.customer_id,
                        customer_contact=s.ticket.customer_contact, assignee=s.assignee,
                        escalation_manager=s.escalation_manager, at=now, thread_ref=s.ticket.thread_ref)


def notification_prepared(state: TicketState, n: Notify, prepared: Prepared, now: datetime) -> TicketState:
    """Who a notification reached (recipient ids and channels, never addresses), and which roles reached nobody."""
    s = state.model_copy(deep=True)
    reached = [f"{m.recipient_id} ({m.channel.value})" for m in prepared.messages
               if not m.recipient_id.startswith("role:")]
    summary = f"{n.kind} to {', '.join(reached) or 'nobody'}"
    record(s, now.astimezone(UTC), "system:notify", "notified", summary,
           ("unreached: " + "; ".join(prepared.unreached)) if prepared.unreached else "")
    return s


def delivery_failed(state: TicketState, m: Message, now: datetime, error: str) -> TicketState:
    """One message could not be delivered (refused, or still failing after a day): the timeline says so."""
    s = state.model_copy(deep=True)
    record(s, now.astimezone(UTC), "system:notify", "notification_failed",
           f"{m.kind} to {m.recipient_id} ({m.channel.value}) not delivered", error[:500])
    return s


def no_manager_found(state: TicketState, e: FindEscalationManager, now: datetime, why: str) -> TicketState:
    """Nobody took the turn (nobody on duty, or the rotation failed): recorded, so a supervisor assigns one."""
    s = state.model_copy(deep=True)
    record(s, now.astimezone(UTC), "system:rotation", "escalation_manager_unassigned",
           f"no escalation manager assigned from {e.pool}", why[:500])
    return s


def follow_up_id(ticket_id: str, message_key: str) -> str:
    """Deterministic id of the ticket a customer message after close opens (a redelivery opens nothing new)."""
    digest = hashlib.sha256(message_key.encode()).hexdigest()[:8]
    return f"{ticket_id[:87]}.re-{digest}"


def follow_up_ticket(closed: TicketState, reply: CustomerReply, now: datetime) -> Ticket:
    """The new ticket, linked to the closed one, that a customer's message after closing opens."""
    old = closed.ticket
    return Ticket(
        id=follow_up_id(old.id, reply.message_id or reply.message), subject=f"Re: {old.subject}"[:500],
        description=reply.message, channel=old.channel, customer_id=old.customer_id, customer_plan=old.customer_plan,
        tags=old.tags, priority=closed.priority,  # a P1 customer's reply after close is still P1
        opened_at=now.astimezone(UTC).replace(microsecond=0), linked_ticket_id=old.id, sensitive=old.sensitive,
    )


def follow_up_opened(state: TicketState, reply: CustomerReply, follow_up: str, now: datetime) -> TicketState:
    """The closed ticket's timeline records where a late message went."""
    s = state.model_copy(deep=True)
    record(s, now.astimezone(UTC), reply.actor, "follow_up_opened",
         f"the customer replied after closing; opened follow-up ticket {follow_up}")
    return s


def _always() -> bool:
    return True


def _noticed_late(p: Policy, due: datetime, now: datetime) -> bool:
    """Under the default rule, a decision applied more than `late_after` after its due time counts from when the
    system acted; within it (a timer's usual lag, a busy worker) it stands at its due time."""
    rule = p.catch_up_rule()
    return rule.new_tier_clock_starts == "acted_at" and now - due > rule.late_after


def catch_up(s: TicketState, now: datetime, p: Policy, supersede: Callable[[], bool] = _always,
             acted_at: Callable[[], bool] = _always) -> StepResult:
    """Apply every deadline that has passed by `now`, in order, earliest first.

    A timer may fire late (a worker was down, a burst queued) or not have fired yet when an action arrives. Each
    automatic decision records when it fell due (`due_at`) and when the system acted (`acted_at`, `now`). Under the
    policy's default (`catch_up.new_tier_clock_starts: acted_at`) one noticed more than `late_after` (10 s)
    late is applied at `now`: a tier entered late gets
    its full time from when the system acted, so one catch-up escalates once (people get their time). With `due_at`
    each is applied at its own instant, so the ticket is exactly where the policy says it should be (an
    unacknowledged P1 found 6 hours late has climbed twice). Never earlier than the state's own `as_of`.
    `acted_at` is asked once, when a deadline is applied (the workflow answers with `workflow.patched`: before that
    patch every deadline was applied at its due time and no `acted_at` recorded).

    A warning whose clock's breach is also due by `now` is superseded: marked as passed, not sent (nobody needs
    "50 % used" in the same instant as "breached"). `supersede` is asked only when that case arises (the workflow
    answers with `workflow.patched`: before that patch such warnings were sent)."""
    effects: list[Effect] = []
    record_acted: bool | None = None
    while (ev := next_due(s, now, p)) is not None:
        if _breach_also_due(s, ev, now) and supersede():
            s = _superseded(s, ev)
            continue
        if record_acted is None:
            record_acted = acted_at()
        at = min(max(ev.due_at, s.as_of), now)
        if record_acted and _noticed_late(p, at, now):
            at = now
        seen = s.seq
        out = step(s, ev, at, p)
        s, effects = out.state, effects + out.effects
        if record_acted:
            for entry in s.timeline:
                if entry.seq > seen:
                    entry.acted_at = now
    return StepResult(state=s, effects=effects)


def _breach_also_due(s: TicketState, ev: DeadlineReached, now: datetime) -> bool:
    if ev.kind != "warning" or ev.clock is None:
        return False
    due = s.clocks[ev.clock].due_at
    return due is not None and due <= now


def _superseded(state: TicketState, ev: DeadlineReached) -> TicketState:
    assert ev.clock is not None and ev.percent is not None  # a warning (see _breach_also_due)
    s = state.model_copy(deep=True)
    s.clocks[ev.clock] = clocks.mark_warned(s.clocks[ev.clock], ev.percent)
    return s


# ----- helpers -------------------------------------------------------------------------


def _enrol(s: TicketState, p: Policy, criterion: str, reason: str, actor: str, now: datetime) -> EnrolSponsorship:
    """The account enters the sponsorship program (the workflow's activity enrols it; the ticket's timeline says
    so when it did). The key is the ticket's and its sequence number's (each enrolment follows a notification of its
    own step): a retried enrolment is the same one, two steps' are two."""
    return EnrolSponsorship(
        key=f"ticket-{s.ticket.id}:{s.seq}:sponsorship:{criterion}", ticket_id=s.ticket.id,
        ticket_subject=s.ticket.subject, account_id=s.ticket.customer_id, criterion=criterion,  # type: ignore[arg-type]
        reason=reason, by=actor, at=now, priority=s.priority, tier=s.tier, department=s.department,
        check_in_every=p.sponsorship.check_in_every, exit_after_quiet=p.sponsorship.exit_after_quiet)


def _flag_executive(s: TicketState, p: Policy, now: datetime, actor: str, keywords: list[str]) -> list[Effect]:
    first = not s.executive_attention
    s.executive_attention = True
    record(s, now, actor, "executive_attention", f"executive keywords: {', '.join(keywords)}", rule="executive.keywords")
    if not first:
        return []
    fx: list[Effect] = [notify(s, "executive", p.executive.notify, f"Executive attention: {s.ticket.subject}",
                                f"Customer {s.ticket.customer_id} mentioned: {', '.join(keywords)}")]
    if p.sponsorship.on_executive_escalation:
        fx.append(_enrol(s, p, "executive_escalation", f"executive keywords: {', '.join(keywords)}", actor, now))
    target = p.executive.tier or p.tiers[-1].id
    if p.executive.on_match == "escalate" and s.status in ACTIVE and p.tier_index(target) > p.tier_index(s.tier):
        fx += _escalate(s, target, now, p, actor, f"executive keywords: {', '.join(keywords)}")
    return fx




def sponsorship_enrolled(state: TicketState, e: EnrolSponsorship, sponsor: str | None, now: datetime) -> TicketState:
    """The account is in the sponsorship program (or stays in it: a new escalation restarts its quiet period)."""
    s = state.model_copy(deep=True)
    record(s, now.astimezone(UTC), "system:sponsorship", "sponsorship_enrolled",
           f"account {e.account_id} in the executive sponsorship program (sponsor {sponsor or 'none named'})",
           e.reason[:500], rule=f"sponsorship.{e.criterion}")
    return s


def sponsorship_not_enrolled(state: TicketState, e: EnrolSponsorship, now: datetime, why: str) -> TicketState:
    s = state.model_copy(deep=True)
    record(s, now.astimezone(UTC), "system:sponsorship", "sponsorship_enrolment_failed",
           f"account {e.account_id} could not be enrolled in the sponsorship program", why[:500])
    return s


def ticket_qualifies(s: TicketState, p: Policy) -> bool:
    """The policy's post-mortem criteria: a priority it names, or resolved at (or above) a tier it names."""
    if s.priority in p.postmortems.priorities:
        return True
    known = [t for t in p.postmortems.tiers if t in p.tier_ids()]
    return s.tier in p.tier_ids() and any(p.tier_index(s.tier) >= p.tier_index(t) for t in known)


def postmortem_started(state: TicketState, postmortem_id: str, now: datetime) -> TicketState:
    s = state.model_copy(deep=True)
    s.postmortem_id = postmortem_id
    record(s, now.astimezone(UTC), "system:postmortem", "postmortem_started", f"post-mortem {postmortem_id} started",
           rule="postmortems")
    return s
