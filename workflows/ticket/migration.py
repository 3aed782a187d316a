"""Moving an open ticket to another policy version, explicitly (a running ticket otherwise keeps its snapshot).

Pure, like the rest of the core: `check_migration` says whether the new policy can govern the ticket (it has the
ticket's tier, department and priority), `migrate` applies it at `now`: every clock keeps the business time it
accrued (counted under the old calendar up to `now`), only its target changes, so its due and warning instants are
recomputed under the new policy; the timeline records who moved it, from which version to which, and how the due
times moved. The dry run (`preview`) and the workflow's Update run these same functions.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel, Field, ValidatorFunctionWrapHandler, field_validator

from workflows.common import clocks
from workflows.common.policy import Policy, shared_policy
from workflows.common.vocabulary import ClockName, IsoDuration
from workflows.ticket.clocks import clock_target, deadlines, settle_pauses
from workflows.ticket.events import Actor, Reason, Rejected
from workflows.ticket.state import ACTIVE, TicketState, record

MIGRATED = "policy_migrated"  # the timeline entry's action


class MigratePolicy(BaseModel):
    """The Update's input: the new policy snapshot, who moves the ticket and why.

    `from_version`: the version the caller's dry run saw; a ticket moved to another version meanwhile is refused
    (None: whatever it runs now)."""

    actor: Actor
    policy: Policy
    reason: Reason = ""
    from_version: str | None = None

    @field_validator("policy", mode="wrap")
    @classmethod
    def _one_object_per_policy(cls, value: object, validate: ValidatorFunctionWrapHandler) -> Policy:
        return shared_policy(value, validate)


class DueChange(BaseModel):
    """One clock across the migration: its target and due instant before and after; the accrued time is kept."""

    clock: ClockName
    phase: clocks.Phase
    accrued: IsoDuration
    target_before: IsoDuration | None
    target_after: IsoDuration | None
    due_before: datetime | None
    due_after: datetime | None
    warnings_before: dict[int, datetime] = Field(default_factory=dict, description="warnings not yet sent: percent "
                                                                                   "-> instant")
    warnings_after: dict[int, datetime] = Field(default_factory=dict)
    breached: bool = Field(False, description="breached before: stays breached, sets no more deadlines")
    overdue: bool = Field(False, description="the new due time has already passed: it breaches at once")

    @property
    def changed(self) -> bool:
        return (self.target_before, self.due_before, self.warnings_before) != (
            self.target_after, self.due_after, self.warnings_after)


class MigrationPlan(BaseModel):
    """What the migration changes (or changed) on one ticket, as of `at`."""

    ticket_id: str
    from_version: str
    to_version: str
    at: datetime
    changes: list[DueChange]


class Migrated(BaseModel):
    state: TicketState
    plan: MigrationPlan


def check_migration(s: TicketState, new: Policy, from_version: str | None = None) -> None:
    """Raise Rejected if `new` cannot govern this ticket now. Never mutates."""
    if s.status not in ACTIVE:
        raise Rejected("not_open", f"ticket {s.ticket.id} is {s.status.value}; only open tickets "
                                   f"({', '.join(x.value for x in ACTIVE)}) move to another policy")
    if from_version is not None and s.policy_version != from_version:
        raise Rejected("policy_changed", f"ticket {s.ticket.id} runs policy {s.policy_version}, not {from_version} "
                                         "(moved meanwhile); preview it again")
    if s.policy_version == new.version():
        raise Rejected("same_policy", f"ticket {s.ticket.id} already runs policy {new.version()}")
    if s.tier not in new.tier_ids():
        raise Rejected("unknown_tier", f"ticket {s.ticket.id} is at tier {s.tier!r}, which policy {new.version()} "
                                       f"lacks; its tiers: {', '.join(new.tier_ids())}")
    if s.department not in new.department_ids():
        raise Rejected("unknown_department",
                       f"ticket {s.ticket.id} is with department {s.department!r}, which policy {new.version()} "
                       f"lacks; its departments: {', '.join(new.department_ids())}")
    if s.priority not in new.priorities:
        raise Rejected("unknown_priority", f"ticket {s.ticket.id} has priority {s.priority}, for which policy "
                                           f"{new.version()} sets no SLA; its priorities: {', '.join(new.priorities)}")
    missing = [c.value for c in ClockName if c not in new.clocks and s.clocks[c].phase in ("running", "paused")]
    if missing:
        raise Rejected("unknown_clock", f"ticket {s.ticket.id} runs clock(s) {', '.join(missing)}, for which policy "
                                        f"{new.version()} has no rules; its clocks: {', '.join(new.clocks)}")


def migrate(state: TicketState, old: Policy, new: Policy, now: datetime, actor: str, reason: str = "",
            from_version: str | None = None) -> Migrated:
    """Move the ticket to `new` at `now` (raises Rejected, changing nothing, if it cannot govern the ticket).

    The caller has applied every deadline due by `now` under the old policy first (the workflow's catch-up), so
    the old policy's decisions up to `now` stand."""
    check_migration(state, new, from_version)
    now = now.astimezone(UTC)
    s = state.model_copy(deep=True)
    old_cal, new_cal = s.calendar, new.calendar_for(s.priority)
    for name, c in s.clocks.items():
        if c.phase == "idle":
            continue  # not started: it takes the new policy's target when it starts
        settled = clocks.retarget(c, now, c.target, old_cal)  # what accrued up to now, counted in the old calendar
        s.clocks[name] = clocks.retarget(settled, now, clock_target(s, name, new), new_cal)
    s.calendar = new_cal
    s.policy_version = new.version()
    settle_pauses(s, now, new)  # the new policy may pause (or resume) other clocks in this status
    plan = MigrationPlan(ticket_id=s.ticket.id, from_version=state.policy_version, to_version=s.policy_version, at=now,
                         changes=_changes(state, old, s, new, now))
    moved = [_change_text(c) for c in plan.changes if c.changed]
    record(s, now, actor, MIGRATED, f"policy {plan.from_version} -> {plan.to_version}; accrued SLA time kept"
           + (f"; {'; '.join(moved)}" if moved else "; no due time changed"), reason, rule="policy")
    s.as_of = now
    return Migrated(state=s, plan=plan)


def preview(state: TicketState, old: Policy, new: Policy, now: datetime) -> MigrationPlan:
    """The dry run: what `migrate` would change at `now` (raises Rejected as it would)."""
    return migrate(state, old, new, now, "preview").plan


def _pending(s: TicketState, p: Policy, name: ClockName) -> tuple[datetime | None, dict[int, datetime]]:
    due, warnings = None, {}
    for d in deadlines(s, p):
        if d.clock != name:
            continue
        if d.kind == "breach":
            due = d.at
        elif d.percent is not None:
            warnings[d.percent] = d.at
    return due, warnings


def _changes(before: TicketState, old: Policy, after: TicketState, new: Policy, now: datetime) -> list[DueChange]:
    out = []
    for name, c in after.clocks.items():
        b = before.clocks[name]
        due_before, warn_before = _pending(before, old, name)
        due_after, warn_after = _pending(after, new, name)
        out.append(DueChange(clock=name, phase=c.phase, accrued=c.accrued, target_before=b.target,
                             target_after=c.target, due_before=due_before, due_after=due_after,
                             warnings_before=warn_before, warnings_after=warn_after, breached=c.breached,
                             overdue=due_after is not None and due_after <= now))
    return out


def _change_text(c: DueChange) -> str:
    def when(t: datetime | None) -> str:
        return "none" if t is None else t.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    return f"{c.clock.value} due {when(c.due_before)} -> {when(c.due_after)}"
