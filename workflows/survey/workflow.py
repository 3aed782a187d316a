"""SurveyWorkflow: one per closed ticket (id `survey-<ticket>`), started by the ticket as an abandoned child.

It sends the customer the survey (prepared and delivered like every notification: the signed link is made by the
preparing activity, which holds the secret), waits for the answer until the link expires, publishes the score as a
search attribute and tells the team on a low score. The `answer` Update's validator enforces single use and the
expiry, so a reused or late answer writes nothing to history."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from workflows.common import search_attributes as sa
    from workflows.common import sending as shell
    from workflows.common.delivery import DeliveryChannel, Prepared
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
        if not await self._send_survey():
            return self.state
        left = max(inp.expires_at - workflow.now(), timedelta(milliseconds=1))
        try:
            await workflow.wait_condition(lambda: self.state.answer is not None, timeout=left)
        except TimeoutError:
            self.state = self.state.model_copy(update={"status": "expired"})
            return self.state
        assert self.state.answer is not None
        workflow.upsert_search_attributes([sa.SURVEY_SCORE.value_set(self.state.answer.score)])
        if rules.is_low(self.state, inp):
            await self._send_low_score()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.state

    async def _prepare(self, kind: str) -> Prepared | None:
        try:
            return await shell.prepare(rules.prepare_input(self.inp, self.state, kind, workflow.now()))  # type: ignore[arg-type]
        except ActivityError as exc:
            self._note(f"{kind} not prepared: {shell.failure(exc)}")
            return None

    async def _send_survey(self) -> bool:
        """The survey mail: answerable from the moment it is prepared (its link exists, and a customer may click it
        before the delivery's completion is recorded); False when the customer cannot be reached at all."""
        prepared = await self._prepare("survey")
        reachable = [m for m in prepared.messages if m.channel != DeliveryChannel.outbox] if prepared else []
        if prepared is None or not reachable:
            why = "; ".join(prepared.unreached) if prepared else ""
            self.state = self.state.model_copy(update={"status": "not_sent", "note": self.state.note or why or
                                                       "the customer has no contact to send it to"})
            return False
        self.state = self.state.model_copy(update={"status": "sent", "sent_at": workflow.now()})
        failed: list[str] = []
        await shell.deliver_all(prepared, lambda m, error: failed.append(m.recipient_id))
        if failed and self.state.answer is None:  # refused, or failing for a day: nobody can answer it
            self.state = self.state.model_copy(update={"status": "not_sent", "note": "survey mail not delivered"})
            return False
        return True

    async def _send_low_score(self) -> None:
        prepared = await self._prepare("survey_low_score")
        if prepared is not None:
            failed: list[str] = []
            await shell.deliver_all(prepared, lambda m, error: failed.append(m.recipient_id))
            if failed:
                self._note(f"low-score notice not delivered to {', '.join(failed)}")
        self.state = self.state.model_copy(update={"low_score_notified": prepared is not None})

    def _note(self, text: str) -> None:
        """What went wrong, by recipient id (never an address: a refusal's own text often holds one)."""
        self.state = self.state.model_copy(update={"note": text.split(":", 1)[0] if "@" in text else text})

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
