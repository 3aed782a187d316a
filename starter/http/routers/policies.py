"""Moving open tickets to a new policy version (admins): the tickets named, or the running tickets a visibility
query matches; a dry run shows each one's due times before and after and changes nothing."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field, model_validator

from starter.client.migrations import MAX_MIGRATIONS_PER_CALL, MigrationReport
from starter.client.principal import Permission, Principal
from starter.http.deps import requires, temporal
from starter.http.errors import errors
from workflows.common.policy import Policy
from workflows.common.vocabulary import TicketId

router = APIRouter(tags=["policy"])


class MigrationIn(BaseModel):
    """The new policy document (as the policy file, in JSON) and which open tickets move to it."""

    model_config = ConfigDict(extra="forbid")
    policy: Policy = Field(description="the whole policy, validated as `escalation policy check` does")
    tickets: list[TicketId] = Field(default_factory=list, max_length=MAX_MIGRATIONS_PER_CALL,
                                    description=f"ticket ids (at most {MAX_MIGRATIONS_PER_CALL})")
    query: Annotated[str, Field(min_length=1, max_length=2000)] | None = Field(
        None, description="a visibility query over the running tickets, e.g. \"TicketPriority = 'P1'\"")
    dry_run: bool = Field(False, description="show the due times before and after; change nothing")
    reason: Annotated[str, Field(max_length=2000)] = Field("", description="recorded in each ticket's timeline")
    limit: int = Field(MAX_MIGRATIONS_PER_CALL, ge=1, le=MAX_MIGRATIONS_PER_CALL,
                       description="at most this many tickets in all")

    @model_validator(mode="after")
    def something_to_move(self) -> MigrationIn:
        if not self.tickets and self.query is None:
            raise ValueError("give tickets, a query, or both")
        return self


@router.post("/v1/policy/migrations", response_model=MigrationReport, responses=errors(403, 422, 503))
async def post_migration(request: Request, body: MigrationIn,
                         who: Annotated[Principal, Depends(requires(Permission.policy_migrate))]) -> MigrationReport:
    """One result per ticket: `applied` (or `would_apply` in a dry run) with each clock's target and due time before
    and after (accrued business time is kept), `rejected` with the reason (the new policy lacks the ticket's tier or
    department, ...), `not_open`, `not_found` or `failed`. `ok` is false when any ticket was rejected, missing or
    failed. A rejected move writes nothing to the ticket's history."""
    return await temporal(request, lambda c: c.migrate_policy(
        body.policy, principal=who, tickets=body.tickets, query=body.query, dry_run=body.dry_run,
        reason=body.reason, limit=body.limit))
