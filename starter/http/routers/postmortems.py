"""Post-mortems: read one (any reader), advance its steps (its owner, supervisors, admins). A ticket's view names its
post-mortem (`postmortem_id`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from starter.client.principal import Permission, Principal
from starter.http.deps import requires, temporal
from starter.http.errors import errors
from workflows.postmortem import PostmortemState

router = APIRouter(tags=["postmortems"])
PostmortemPath = Annotated[str, Path(
    pattern=r"^(postmortem-(ticket|incident)-[A-Za-z0-9][A-Za-z0-9._-]{0,120}|(ticket|incident):[A-Za-z0-9][A-Za-z0-9._-]{0,99})$",
    description="postmortem-ticket-<ticket id>, postmortem-incident-<service>-<when>, or what it follows: "
                "ticket:<ticket id>, incident:<service> (that service's latest incident)")]
Text = Annotated[str, Field(min_length=1, max_length=20_000)]
Reader = Annotated[Principal, Depends(requires(Permission.read))]
Actor = Annotated[Principal, Depends(requires(Permission.act))]


class NotesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    notes: Text


class RootCauseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    root_cause: Text
    contributing_factors: list[Annotated[str, Field(min_length=1, max_length=2000)]] = Field(default_factory=list,
                                                                                             max_length=50)


class ActionItemIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: Annotated[str, Field(min_length=1, max_length=2000)]
    owner: Annotated[str, Field(min_length=1, max_length=200)]
    due_in_days: Annotated[int | None, Field(ge=1, le=365, description="business days (default: the policy's)")] = None


class OwnerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    owner: Annotated[str, Field(min_length=1, max_length=200, description="a person of the directory (`leo` or "
                                                                           "`agent:leo`)")]


class SummaryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    summary: Text


R = errors(403, 404, 409)


@router.get("/v1/postmortems/{postmortem_id}", response_model=PostmortemState, responses=errors(403, 404))
async def show(request: Request, postmortem_id: PostmortemPath, who: Reader) -> Any:
    """The post-mortem: owner, participants, draft, steps with due dates, root cause, action items, KB article."""
    return await temporal(request, lambda c: c.postmortem(postmortem_id, principal=who))


@router.post("/v1/postmortems/{postmortem_id}/review", response_model=PostmortemState, responses=R)
async def review(request: Request, postmortem_id: PostmortemPath, body: NotesIn, who: Actor) -> Any:
    """The review meeting was held (its notes)."""
    return await temporal(request, lambda c: c.postmortem_step(postmortem_id, "review", principal=who, text=body.notes))


@router.post("/v1/postmortems/{postmortem_id}/root-cause", response_model=PostmortemState, responses=R)
async def root_cause(request: Request, postmortem_id: PostmortemPath, body: RootCauseIn, who: Actor) -> Any:
    return await temporal(request, lambda c: c.postmortem_step(postmortem_id, "root_cause", principal=who,
                                                               text=body.root_cause,
                                                               factors=body.contributing_factors))


@router.post("/v1/postmortems/{postmortem_id}/action-items", response_model=PostmortemState, responses=R)
async def add_action_item(request: Request, postmortem_id: PostmortemPath, body: ActionItemIn, who: Actor) -> Any:
    """An action item with its owner and due date (its own reminder; overdue: the escalation managers are told)."""
    return await temporal(request, lambda c: c.postmortem_step(postmortem_id, "add_action_item", principal=who,
                                                               text=body.text, owner=body.owner,
                                                               due_in_days=body.due_in_days))


@router.post("/v1/postmortems/{postmortem_id}/action-items/{number}/done", response_model=PostmortemState,
             responses=R)
async def action_item_done(request: Request, postmortem_id: PostmortemPath,
                           number: Annotated[int, Path(ge=1, le=10_000)], who: Actor) -> Any:
    return await temporal(request, lambda c: c.postmortem_step(postmortem_id, "complete_action_item", principal=who,
                                                               number=number))


@router.post("/v1/postmortems/{postmortem_id}/assign", response_model=PostmortemState, responses=R)
async def assign(request: Request, postmortem_id: PostmortemPath, body: OwnerIn, who: Actor) -> Any:
    """Hand it to another owner (a person of the directory), who is reminded from then on; `owner_changes` keeps
    who handed it to whom, when."""
    return await temporal(request, lambda c: c.postmortem_step(postmortem_id, "assign", principal=who,
                                                               owner=body.owner))


@router.post("/v1/postmortems/{postmortem_id}/complete", response_model=PostmortemState, responses=R)
async def complete(request: Request, postmortem_id: PostmortemPath, body: SummaryIn, who: Actor) -> Any:
    """Complete it (409 `postmortem_incomplete` while a step or action item is open): the knowledge-base article is
    published (`kb_article` once it is)."""
    return await temporal(request, lambda c: c.postmortem_step(postmortem_id, "complete", principal=who,
                                                               text=body.summary))
