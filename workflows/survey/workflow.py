"""SurveyWorkflow: one per closed ticket (id `survey-<ticket>`), started by the ticket as an abandoned child.

It sends the customer the survey (prepared and delivered like every notification: the signed link is made by the
preparing activity, which holds the secret), waits for the answer until the link expires, publishes the score as a
search attribute and tells the team on a low score. The `answer` Update's validator enforces single use and the
expiry, so a reused or late answer writes nothing to history."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

from workflows.common import workflow as shell

with workflow.unsafe.imports_passed_through():
    from workflows.common import search_attributes as sa
    from workflows.survey import rules
    from workflows.survey.rules import SurveyInput
    from workflows.survey.state import SurveyAnswer, SurveyState
    from workflows.ticket.events import Rejected


@workflow.defn(name="SurveyWorkflow")
class SurveyWorkflow:
    @workflow.init
    def __init__(self, inp: SurveyInput) -> None:
        self.inp = inp
        self.state = rules.new_survey(inp)

    @workflow.run
    async def run(self, inp: SurveyInput) -> SurveyState:
        if not await self._send("survey"):
            return self.state
        self.state = self.state.model_copy(update={"status": "sent", "sent_at": workflow.now()})
        left = max(inp.expires_at - workflow.now(), timedelta(milliseconds=1))
        try:
            await workflow.wait_condition(lambda: self.state.answer is not None, timeout=left)
        except TimeoutError:
            self.state = self.state.model_copy(update={"status": "expired"})
            return self.state
        assert self.state.answer is not None
        workflow.upsert_search_attributes([sa.SURVEY_SCORE.value_set(self.state.answer.score)])
        if rules.is_low(self.state, inp):
            await self._send("survey_low_score")
            self.state = self.state.model_copy(update={"low_score_notified": True})
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.state

    async def _send(self, kind: str) -> bool:
        """Prepare and deliver; False (and why, in the state) when the customer could not be reached at all."""
        try:
            prepared = await shell.prepare(rules.prepare_input(self.inp, self.state, kind, workflow.now()))  # type: ignore[arg-type]
        except ActivityError as exc:
            return self._not_sent(f"{kind} not prepared: {shell.failure(exc)}")
        reachable = [m for m in prepared.messages if m.channel.value != "outbox"]
        if kind == "survey" and not reachable:
            return self._not_sent("; ".join(prepared.unreached) or "the customer has no contact to send it to")
        failures: list[str] = []
        await shell.deliver_all(prepared, lambda m, error: failures.append(f"{m.recipient_id}: {error[:200]}"))
        if failures:
            self.state = self.state.model_copy(update={"note": f"{kind} not delivered to " + "; ".join(failures)})
            return kind != "survey"
        return True

    def _not_sent(self, why: str) -> bool:
        self.state = self.state.model_copy(update={"status": "not_sent", "note": why})
        return False

    @workflow.update(name="answer")
    def answer(self, a: SurveyAnswer) -> SurveyState:
        self.state = rules.answer(self.state, a, workflow.now())
        workflow.logger.info("survey %s answered: %s", self.state.survey_id, a.score)
        return self.state

    @answer.validator
    def _v_answer(self, a: SurveyAnswer) -> None:
        try:
            rules.check_answer(self.state, workflow.now())
        except Rejected as exc:
            raise ApplicationError(exc.message, type=exc.code, non_retryable=True) from None
        if self.state.status in ("sending", "not_sent"):
            raise ApplicationError("this survey was not sent", type="survey_not_sent", non_retryable=True)

    @workflow.query(name="state")
    def current_state(self) -> SurveyState:
        return self.state
