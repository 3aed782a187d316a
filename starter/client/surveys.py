"""Surveys as the client reads and answers them: by the ticket (its survey's id is derived from the ticket's) or by
a signed link (the link is the credential: no principal). The survey workflow alone decides whether an answer is
still possible (single use, expiry); the link's signature and expiry are checked first, without asking Temporal."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.client import WorkflowExecutionStatus as ExecStatus
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from starter.client.errors import ActionRejected, LinkRejected, TicketNotFound
from workflows.survey import SurveyAnswer, SurveyState, TokenRejected, survey_workflow_id, verify
from workflows.survey.workflow import SurveyWorkflow

LINK_CODES = {"forged": "link_forged", "expired": "link_expired"}


class SurveyClient:
    def __init__(self, temporal: Client, rpc_timeout: timedelta, secret: Callable[[], str]) -> None:
        self.temporal = temporal
        self.rpc_timeout = rpc_timeout
        self.secret = secret

    async def of_ticket(self, ticket_id: str) -> SurveyState | None:
        """The ticket's survey (None: none was started), answered or not."""
        handle = self.temporal.get_workflow_handle_for(SurveyWorkflow.run, survey_workflow_id(ticket_id))  # type: ignore[arg-type]
        try:
            desc = await handle.describe(rpc_timeout=self.rpc_timeout)
            if desc.status == ExecStatus.COMPLETED:
                return await handle.result(rpc_timeout=self.rpc_timeout)
            if desc.status != ExecStatus.RUNNING:
                return None
            return await handle.query(SurveyWorkflow.current_state, rpc_timeout=self.rpc_timeout)
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return None
            raise

    def survey_id(self, token: str, now: datetime | None = None) -> str:
        try:
            return verify(self.secret(), token, now or datetime.now(UTC)).survey_id
        except TokenRejected as exc:
            raise LinkRejected(LINK_CODES[exc.reason], str(exc)) from None

    async def by_link(self, token: str) -> SurveyState:
        """The survey a valid link names; reading changes nothing (mail scanners open links)."""
        survey_id = self.survey_id(token)
        state = await self.of_ticket(survey_id.removeprefix("survey-"))
        if state is None:
            raise TicketNotFound(f"no survey {survey_id}")
        return state

    async def answer(self, token: str, answer: SurveyAnswer) -> SurveyState:
        """Record the customer's answer: once, before the link expires."""
        survey_id = self.survey_id(token)
        handle = self.temporal.get_workflow_handle_for(SurveyWorkflow.run, survey_id)  # type: ignore[arg-type]
        try:
            return await handle.execute_update(SurveyWorkflow.answer, answer, rpc_timeout=self.rpc_timeout)
        except WorkflowUpdateFailedError as exc:
            cause = exc.cause
            if isinstance(cause, ApplicationError) and cause.type == "survey_expired":
                raise LinkRejected("link_expired", cause.message) from None
            if isinstance(cause, ApplicationError):
                raise ActionRejected(cause.type or "rejected", cause.message) from None
            raise
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise
        # The survey has completed: answered before (409), or expired unanswered (410).
        state = await self.by_link(token)
        if state.answer is not None:
            raise ActionRejected("survey_answered", f"this survey was answered at {state.answer.at.isoformat()}; "
                                                    "it takes one answer")
        raise LinkRejected("link_expired", f"this survey closed at {state.expires_at.isoformat()}")
