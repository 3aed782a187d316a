"""The auditor's bounded replay: every run of the tickets named, or of the workflows a visibility query matches,
replayed against the code the API runs (`escalation audit replay` for folders, archives and larger sets)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field, model_validator

from starter.client.principal import Permission, Principal
from starter.client.tickets import MAX_REPLAYS_PER_CALL
from starter.http.deps import requires, temporal
from starter.http.errors import errors
from starter.runtime.replay import ReplayAudit
from workflows.common.vocabulary import TicketId

router = APIRouter(tags=["audit"])


class ReplayIn(BaseModel):
    """What to replay: tickets by id, a visibility query (any workflow type), or both."""

    model_config = ConfigDict(extra="forbid")
    tickets: list[TicketId] = Field(default_factory=list, max_length=MAX_REPLAYS_PER_CALL,
                                    description=f"ticket ids (at most {MAX_REPLAYS_PER_CALL})")
    query: Annotated[str, Field(min_length=1, max_length=2000)] | None = Field(
        None, description="a visibility query, e.g. \"TicketStatus = 'closed' AND CloseTime > '2026-11-01T00:00:00Z'\"")
    limit: int = Field(MAX_REPLAYS_PER_CALL, ge=1, le=MAX_REPLAYS_PER_CALL,
                       description="at most this many workflows in all")

    @model_validator(mode="after")
    def something_to_replay(self) -> ReplayIn:
        if not self.tickets and self.query is None:
            raise ValueError("give tickets, a query, or both")
        return self


@router.post("/v1/audit/replays", response_model=ReplayAudit, responses=errors(403, 422, 500))
async def post_replay(request: Request, body: ReplayIn,
                      who: Annotated[Principal, Depends(requires(Permission.history))]) -> ReplayAudit:
    """Replay every run against this code: one verdict per run (passed, or the event where it diverged, or why it
    could not be read); `ok` is true when every run passed. One replay at a time per API process."""
    return await temporal(request, lambda c: c.replay(principal=who, tickets=body.tickets, query=body.query,
                                                      limit=body.limit))
