"""Sponsorships as the client reads and changes them: by account (the workflow id is the account's).

Enrolment here is a person's (a supervisor's or an admin's, `manual`); tickets enrol through their own activity.
Both are the same signal-with-start, so an account is enrolled once however many ask."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel
from temporalio.client import Client, WorkflowExecutionStatus

from starter.client.errors import ActionRejected, InvalidInput
from starter.client.handles import latest_state, run_update
from workflows.common.policy import Policy
from workflows.common.vocabulary import ID_PATTERN
from workflows.sponsorship import (
    ENROL_SIGNAL,
    CheckIn,
    Enrolment,
    ExitRequest,
    SponsorshipInput,
    SponsorshipState,
    sponsorship_workflow_id,
)
from workflows.sponsorship.workflow import SPONSORSHIP_ID_REUSE, SponsorshipWorkflow


class SponsorshipSummary(BaseModel):
    account_id: str
    status: str
    started_at: datetime | None
    ended_at: datetime | None


class SponsorshipPage(BaseModel):
    sponsorships: list[SponsorshipSummary]
    next_cursor: str | None


class SponsorshipClient:
    def __init__(self, temporal: Client, policy: Policy, task_queue: str, rpc_timeout: timedelta) -> None:
        self.temporal = temporal
        self.policy = policy
        self.task_queue = task_queue
        self.rpc_timeout = rpc_timeout

    def _handle(self, account_id: str):  # type: ignore[no-untyped-def]
        import re

        if not re.match(ID_PATTERN, account_id):
            raise InvalidInput(f"account id {account_id!r} must be 1-100 letters, digits, '.', '_' or '-'",
                               field="account_id")
        return self.temporal.get_workflow_handle_for(SponsorshipWorkflow.run,  # type: ignore[arg-type]
                                                     sponsorship_workflow_id(account_id))

    async def enrol(self, account_id: str, reason: str, by: str, sponsor: str | None = None,
                    request_key: str | None = None) -> SponsorshipState:
        """Enrol the account by hand (a running sponsorship records the reason and goes on). `request_key`: the
        caller's idempotency key, so a retried request is recorded once."""
        enrolment = Enrolment(key=f"manual:{request_key or uuid.uuid4().hex}", account_id=account_id, criterion="manual",
                              reason=reason, by=by, at=datetime.now(UTC), sponsor=sponsor)
        inp = SponsorshipInput(account_id=account_id, check_in_every=self.policy.sponsorship.check_in_every,
                               exit_after_quiet=self.policy.sponsorship.exit_after_quiet)
        self._handle(account_id)  # validates the id
        await self.temporal.start_workflow(
            SponsorshipWorkflow.run, inp, id=sponsorship_workflow_id(account_id), task_queue=self.task_queue,
            start_signal=ENROL_SIGNAL, start_signal_args=[enrolment], id_reuse_policy=SPONSORSHIP_ID_REUSE,
            rpc_timeout=self.rpc_timeout)
        return await self.show(account_id)

    async def show(self, account_id: str) -> SponsorshipState:
        """The account's latest sponsorship, running or ended."""
        return await latest_state(self._handle(account_id), SponsorshipWorkflow.current_state, self.rpc_timeout,
                                  f"account {account_id} has no sponsorship")

    async def _update(self, account_id: str, name: str, arg: CheckIn | ExitRequest) -> SponsorshipState:
        state: SponsorshipState = await run_update(
            self._handle(account_id), name, arg, SponsorshipState, self.rpc_timeout,
            missing=f"account {account_id} has no sponsorship",
            ended=ActionRejected("sponsorship_ended", f"the sponsorship of account {account_id} has ended; enrol it "
                                                      "again to start a new one"))
        return state

    async def check_in(self, account_id: str, c: CheckIn) -> SponsorshipState:
        return await self._update(account_id, "check_in", c)

    async def exit(self, account_id: str, x: ExitRequest) -> SponsorshipState:
        return await self._update(account_id, "exit", x)

    async def list(self, *, active: bool | None = None, page_size: int = 50,
                   cursor: str | None = None) -> SponsorshipPage:
        # A run that continued as new is the same sponsorship: only its latest run is listed.
        query = "WorkflowType = 'SponsorshipWorkflow' AND ExecutionStatus != 'ContinuedAsNew'"
        if active is not None:
            query += " AND ExecutionStatus = 'Running'" if active else " AND ExecutionStatus != 'Running'"
        try:
            token = bytes.fromhex(cursor) if cursor else None
        except ValueError:
            raise InvalidInput("cursor is not one this API returned", field="cursor") from None
        it = self.temporal.list_workflows(query, page_size=page_size, next_page_token=token,
                                          rpc_timeout=self.rpc_timeout)
        await it.fetch_next_page(page_size=page_size)
        rows = [SponsorshipSummary(account_id=w.id.removeprefix("sponsorship-"),
                                   status="active" if w.status == WorkflowExecutionStatus.RUNNING else "ended",
                                   started_at=w.start_time, ended_at=w.close_time) for w in it.current_page or []]
        return SponsorshipPage(sponsorships=rows, next_cursor=it.next_page_token.hex() if it.next_page_token else None)
