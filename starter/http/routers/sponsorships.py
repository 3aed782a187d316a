"""The executive sponsorship program: list, read, enrol, check in, exit. Enrolling, checking in and ending need a
supervisor or an admin (as entering the executive tier does); reading needs the read permission."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from starter.client.principal import Permission, Principal
from starter.client.sponsorships import SponsorshipPage
from starter.http.deps import requires, temporal
from starter.http.errors import errors
from workflows.common.vocabulary import ID_PATTERN, CustomerId
from workflows.sponsorship import SponsorshipState

router = APIRouter(tags=["sponsorships"])
AccountPath = Annotated[str, Path(pattern=ID_PATTERN, max_length=100, description="the customer account id")]
Text = Annotated[str, Field(min_length=1, max_length=5000)]


class EnrolIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    account_id: CustomerId
    reason: Text


class CheckInIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    notes: Text = Field(description="what was discussed with the customer")


class ExitIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Text


@router.get("/v1/sponsorships", response_model=SponsorshipPage, responses=errors(403))  # scoped agents: 403
async def list_sponsorships(request: Request, who: Annotated[Principal, Depends(requires(Permission.list))],
                            status: Annotated[str | None, Query(pattern="^(active|ended)$")] = None,
                            limit: Annotated[int, Query(ge=1, le=500)] = 50,
                            cursor: Annotated[str | None, Query(pattern="^[0-9a-f]{1,4096}$")] = None) -> Any:
    """Accounts in (or once in) the program, newest first; `status=active` for the running ones."""
    active = None if status is None else status == "active"
    return await temporal(request, lambda c: c.list_sponsorships(principal=who, active=active, page_size=limit,
                                                                 cursor=cursor))


@router.get("/v1/sponsorships/{account_id}", response_model=SponsorshipState, responses=errors(403, 404))
async def show_sponsorship(request: Request, account_id: AccountPath,
                           who: Annotated[Principal, Depends(requires(Permission.read))]) -> Any:
    """The account's latest sponsorship: sponsor, enrolments, check-ins, next check-in, how it ended."""
    return await temporal(request, lambda c: c.sponsorship(account_id, principal=who))


@router.post("/v1/sponsorships", response_model=SponsorshipState, responses=errors(403, 409))
async def enrol(request: Request, body: EnrolIn,
                who: Annotated[Principal, Depends(requires(Permission.escalate_executive))],
                idempotency_key: Annotated[str | None, Header(pattern=r"^[A-Za-z0-9._:-]{1,100}$",
                                                              description="a retry with the same key is recorded "
                                                                          "once")] = None) -> Any:
    """Enrol an account by hand (an account already in the program stays in it, the reason recorded; one that left
    starts a new sponsorship)."""
    return await temporal(request, lambda c: c.enrol_sponsorship(body.account_id, body.reason, principal=who,
                                                                 request_key=idempotency_key))


@router.post("/v1/sponsorships/{account_id}/check-ins", response_model=SponsorshipState,
             responses=errors(403, 404, 409))
async def check_in(request: Request, account_id: AccountPath, body: CheckInIn,
                   who: Annotated[Principal, Depends(requires(Permission.escalate_executive))]) -> Any:
    """Record a check-in with notes; the next one is due a cadence later (409 `sponsorship_ended` once it ended)."""
    return await temporal(request, lambda c: c.sponsorship_check_in(account_id, body.notes, principal=who))


@router.post("/v1/sponsorships/{account_id}/exit", response_model=SponsorshipState, responses=errors(403, 404, 409))
async def exit_sponsorship(request: Request, account_id: AccountPath, body: ExitIn,
                           who: Annotated[Principal, Depends(requires(Permission.escalate_executive))]) -> Any:
    """End the sponsorship with a reason (the sponsor is told)."""
    return await temporal(request, lambda c: c.exit_sponsorship(account_id, body.reason, principal=who))
