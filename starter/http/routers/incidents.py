"""Incidents: declare (supervisors, admins), read, link and unlink tickets (agents in scope too), post status
updates and resolve (the commander, supervisors, admins). An incident is addressed by its service."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from starter.client.incidents import TicketIdsPage
from starter.client.principal import Permission, Principal
from starter.http.deps import requires, temporal
from starter.http.errors import errors
from workflows.common.policy import Severity
from workflows.common.vocabulary import ID_PATTERN, ResolutionKind, Slug, TicketId
from workflows.incident import IncidentState, IncidentUpdate
from workflows.incident.state import LINKS_PER_REQUEST

router = APIRouter(tags=["incidents"])
ServicePath = Annotated[str, Path(pattern=ID_PATTERN, max_length=100, description="the affected service (the "
                                                                                  "incident's id)")]
Text = Annotated[str, Field(min_length=1, max_length=5000)]


class DeclareIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "service": "streaming-eu", "title": "Streaming down in the EU", "severity": "SEV1", "commander": "mia"}]})
    service: Slug
    title: Text
    severity: Severity
    commander: Annotated[str, Field(min_length=1, max_length=200, description="a person of the directory (reminded "
                                                                             "when an update is due)")]


class TicketsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tickets: Annotated[list[TicketId], Field(min_length=1, max_length=LINKS_PER_REQUEST)]


class UpdateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: Text = Field(description="what every linked ticket's customer is told")


class ResolveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    summary: Text
    resolution: ResolutionKind = ResolutionKind.fix


class LinkedOut(BaseModel):
    changed: list[str] = Field(description="the tickets this request linked (or unlinked); the others were already")


@router.post("/v1/incidents", response_model=IncidentState, status_code=201,
             responses={200: {"model": IncidentState, "description": "the service's open incident (declared before)"},
                        **errors(403, 409)})
async def declare(request: Request, response: Response, body: DeclareIn,
                  who: Annotated[Principal, Depends(requires(Permission.declare_incident))]) -> Any:
    """Declare an outage (201); a service has at most one open incident: declaring it again answers with it (200)."""
    declared = await temporal(request, lambda c: c.declare_incident(body.service, body.title, body.severity,
                                                                    body.commander, principal=who))
    if not declared.created:
        response.status_code = 200
    return declared.incident


@router.get("/v1/incidents/{service}", response_model=IncidentState, responses=errors(403, 404))
async def show(request: Request, service: ServicePath,
               who: Annotated[Principal, Depends(requires(Permission.read_incident))]) -> Any:
    return await temporal(request, lambda c: c.incident(service, principal=who))


@router.get("/v1/incidents/{service}/tickets", response_model=TicketIdsPage, responses=errors(403, 404))
async def tickets(request: Request, service: ServicePath,
                  who: Annotated[Principal, Depends(requires(Permission.read_incident))],
                  limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                  cursor: Annotated[str | None, Query(pattern="^[0-9]{1,9}$")] = None) -> Any:
    """The linked tickets in the order they were linked, a page at a time."""
    return await temporal(request, lambda c: c.incident_tickets(service, principal=who, page_size=limit,
                                                                cursor=cursor))


async def _link(request: Request, service: str, body: TicketsIn, who: Principal, unlink: bool) -> LinkedOut:
    changed = await temporal(request, lambda c: c.link_to_incident(service, body.tickets, principal=who,
                                                                   unlink=unlink))
    return LinkedOut(changed=list(changed))


@router.post("/v1/incidents/{service}/link", response_model=LinkedOut, responses=errors(403, 404, 409))
async def link(request: Request, service: ServicePath, body: TicketsIn,
               who: Annotated[Principal, Depends(requires(Permission.act))]) -> LinkedOut:
    """Link tickets (up to 500 a request): each hears the latest update now and every later one."""
    return await _link(request, service, body, who, unlink=False)


@router.post("/v1/incidents/{service}/unlink", response_model=LinkedOut, responses=errors(403, 404, 409))
async def unlink(request: Request, service: ServicePath, body: TicketsIn,
                 who: Annotated[Principal, Depends(requires(Permission.act))]) -> LinkedOut:
    return await _link(request, service, body, who, unlink=True)


@router.post("/v1/incidents/{service}/updates", response_model=IncidentUpdate, responses=errors(403, 404, 409))
async def post_update(request: Request, service: ServicePath, body: UpdateIn,
                      who: Annotated[Principal, Depends(requires(Permission.act))]) -> Any:
    """A status update for every linked ticket's customer (the commander, supervisors, admins)."""
    return await temporal(request, lambda c: c.post_incident_update(service, body.text, principal=who))


@router.post("/v1/incidents/{service}/resolve", response_model=IncidentState, responses=errors(403, 404, 409))
async def resolve(request: Request, service: ServicePath, body: ResolveIn,
                  who: Annotated[Principal, Depends(requires(Permission.act))]) -> Any:
    """Resolve the incident: by the policy, the linked tickets still open are resolved with its summary (or told)."""
    return await temporal(request, lambda c: c.resolve_incident(service, body.summary, principal=who,
                                                                resolution=body.resolution.value))

