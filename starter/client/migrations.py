"""Moving open tickets to a new policy version (an admin's explicit act; a running ticket otherwise keeps its
snapshot).

Each ticket is read first (its state and its policy snapshot, two Queries). The dry run computes its due times
before and after with the pure core (`core.preview`, after the deadlines due by now, as the workflow would); the
real run sends the `migrate_policy` Update, whose validator runs the same check, so a refused move writes nothing.
One result per ticket: applied (or would_apply), rejected with the core's code and message, not_open, not_found.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Protocol

from pydantic import BaseModel, Field

from starter.client.errors import ActionRejected, EscalationError, TicketNotFound
from workflows import ticket as core
from workflows.common.policy import Policy

MAX_MIGRATIONS_PER_CALL = 1000  # tickets named or matched in one call
CONCURRENCY = 8  # tickets read or moved at once
NOT_OPEN_CODES = frozenset({"not_open", "ticket_closed"})


class Outcome(StrEnum):
    applied = "applied"
    would_apply = "would_apply"  # the dry run: the move is allowed, nothing was changed
    rejected = "rejected"  # the new policy cannot govern the ticket (code and message say why)
    not_open = "not_open"  # resolved or closed: only open tickets move
    not_found = "not_found"
    failed = "failed"  # could not be read or moved now (Temporal unavailable, the ticket busy, ...): try again


class TicketMigration(BaseModel):
    ticket_id: str
    outcome: Outcome
    from_version: str | None = Field(None, description="the policy version the ticket ran")
    code: str | None = Field(None, description="why it was not moved (the core's code: unknown_tier, "
                                               "unknown_department, same_policy, not_open, ...)")
    message: str | None = None
    changes: list[core.DueChange] = Field(default_factory=list, description="per clock: target and due time "
                                                                           "before and after; accrued time kept")


class MigrationReport(BaseModel):
    to_version: str
    dry_run: bool
    ok: bool = Field(description="no ticket was rejected, missing or failed (tickets not open are only skipped)")
    counts: dict[Outcome, int]
    tickets: list[TicketMigration]


class MigrationTarget(Protocol):
    """What the migration needs of the client (EscalationClient implements it)."""

    async def snapshot(self, ticket_id: str) -> tuple[core.TicketState, Policy | None]: ...
    async def send_migration(self, ticket_id: str, inp: core.MigratePolicy) -> core.MigrationPlan: ...


async def migrate_all(target: MigrationTarget, ticket_ids: Sequence[str], policy: Policy, actor: str, *,
                      dry_run: bool, reason: str = "", now: datetime | None = None) -> MigrationReport:
    sem = asyncio.Semaphore(CONCURRENCY)

    async def one(ticket_id: str) -> TicketMigration:
        async with sem:
            return await _migrate(target, ticket_id, policy, actor, dry_run, reason, now)

    results = list(await asyncio.gather(*(one(t) for t in ticket_ids)))
    counts = {o: sum(1 for r in results if r.outcome == o) for o in Outcome}
    return MigrationReport(to_version=policy.version(), dry_run=dry_run, tickets=results, counts=counts,
                           ok=not (counts[Outcome.rejected] or counts[Outcome.not_found] or counts[Outcome.failed]))


async def _migrate(target: MigrationTarget, ticket_id: str, policy: Policy, actor: str, dry_run: bool, reason: str,
                   now: datetime | None) -> TicketMigration:
    try:
        state, old = await target.snapshot(ticket_id)
    except EscalationError as exc:
        outcome = Outcome.not_found if isinstance(exc, TicketNotFound) else Outcome.failed
        return TicketMigration(ticket_id=ticket_id, outcome=outcome, code=exc.code, message=exc.message)
    base = TicketMigration(ticket_id=ticket_id, outcome=Outcome.would_apply, from_version=state.policy_version)
    try:
        if old is None:  # its workflow completed: nothing runs to move
            raise core.Rejected("not_open", f"ticket {ticket_id} is {state.status.value}; only open tickets move")
        if dry_run:
            at = (now or datetime.now(UTC)).astimezone(UTC)
            caught = core.catch_up(state, at, old).state  # the deadlines due by now, as the workflow applies first
            plan = core.preview(caught, old, policy, at)
            return base.model_copy(update={"changes": plan.changes})
        plan = await target.send_migration(ticket_id, core.MigratePolicy(
            actor=actor, policy=policy, reason=reason, from_version=state.policy_version))
        return base.model_copy(update={"outcome": Outcome.applied, "changes": plan.changes})
    except (core.Rejected, ActionRejected) as exc:
        outcome = Outcome.not_open if exc.code in NOT_OPEN_CODES else Outcome.rejected
        return base.model_copy(update={"outcome": outcome, "code": exc.code, "message": exc.message})
    except EscalationError as exc:
        outcome = Outcome.not_found if isinstance(exc, TicketNotFound) else Outcome.failed
        return base.model_copy(update={"outcome": outcome, "code": exc.code, "message": exc.message})
