"""Satisfaction surveys on the time-skipping server: closing a ticket starts its survey, which takes one answer
before it expires, keeps the score and tells the team of a low one. Answers go through the client's link checks."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta

import pytest
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from starter.client import ActionRejected, LinkRejected
from starter.client.surveys import SurveyClient
from starter.runtime.settings import survey_secret
from tests.support.workflows import Recorder, on_time_skipping_server, start_ticket, ticket
from workflows import ticket as core
from workflows.common import search_attributes as sa
from workflows.survey import SurveyAnswer, SurveyState, sign, survey_workflow_id
from workflows.survey.workflow import SurveyWorkflow
from workflows.ticket.workflow import TicketWorkflow

pytestmark = pytest.mark.timeout(150)
AGENT = "agent:alice"
SENT = Recorder()


async def closed_with_survey(env: WorkflowEnvironment, tq: str, **fields: object) -> tuple[str, WorkflowHandle]:  # type: ignore[type-arg]
    t = ticket(await env.get_current_time(), priority="P3", customer_contact="buyer@example.com", **fields)
    handle = await start_ticket(env.client, tq, t)
    await handle.execute_update(TicketWorkflow.resolve, core.Resolve(actor=AGENT, summary="fixed"))
    await handle.execute_update(TicketWorkflow.close, core.Close(actor=AGENT, reason="customer confirmed"))
    final: core.TicketState = await handle.result()
    assert any(e.action == "survey_started" for e in final.timeline), "the ticket's timeline names its survey"
    survey = env.client.get_workflow_handle_for(SurveyWorkflow.run, survey_workflow_id(t.id))
    for _ in range(100):  # the survey mail is prepared and delivered by activities of its own
        if (await survey.query(SurveyWorkflow.current_state)).status != "sending":
            break
        await asyncio.sleep(0.05)
    return t.id, survey


def link_token(ticket_id: str) -> str:
    mail = next(m for m in SENT.sent if m.ticket_id == ticket_id and m.kind == "survey")
    found = re.search(r"/v1/surveys/([A-Za-z0-9_.-]+)", mail.text)
    assert found, f"no survey link in the mail: {mail.text!r}"
    return found.group(1)


def surveys(env: WorkflowEnvironment) -> SurveyClient:
    return SurveyClient(env.client, timedelta(seconds=10), survey_secret)


@on_time_skipping_server(replace_activities=[SENT.deliver])
async def test_a_closed_ticket_asks_once_and_keeps_the_score(env: WorkflowEnvironment, tq: str) -> None:
    ticket_id, handle = await closed_with_survey(env, tq)
    state: SurveyState = await handle.query(SurveyWorkflow.current_state)
    assert state.status == "sent"
    mail = next(m for m in SENT.sent if m.ticket_id == ticket_id and m.kind == "survey")
    assert (mail.recipient_id, mail.channel.value, mail.address) == ("customer", "email", "buyer@example.com")
    token = link_token(ticket_id)

    answered = await surveys(env).answer(token, SurveyAnswer(score=5, comment="quick and kind"))
    assert answered.answer is not None and (answered.answer.score, answered.answer.comment) == (5, "quick and kind")
    with pytest.raises(ActionRejected) as reused:
        await surveys(env).answer(token, SurveyAnswer(score=1))
    assert reused.value.code == "survey_answered"
    final: SurveyState = await handle.result()
    assert final.status == "answered" and final.answer is not None and final.answer.score == 5, "the first answer holds"
    described = await handle.describe()
    assert described.typed_search_attributes.get(sa.SURVEY_SCORE) == 5
    assert "survey_low_score" not in SENT.kinds(ticket_id), "a 5 tells nobody"
    assert (await surveys(env).of_ticket(ticket_id)) == final, "read from the completed survey's result"


@on_time_skipping_server(replace_activities=[SENT.deliver])
async def test_a_low_score_tells_the_team(env: WorkflowEnvironment, tq: str) -> None:
    ticket_id, handle = await closed_with_survey(env, tq)
    await surveys(env).answer(link_token(ticket_id), SurveyAnswer(score=2, comment="took a week"))
    final: SurveyState = await handle.result()
    assert final.low_score_notified
    notice = next(m for m in SENT.sent if m.ticket_id == ticket_id and m.kind == "survey_low_score")
    assert "rated 2 of 5: took a week" in notice.text


@on_time_skipping_server(replace_activities=[SENT.deliver])
async def test_forged_and_expired_links_are_refused_before_temporal_is_asked(env: WorkflowEnvironment, tq: str) -> None:
    ticket_id, handle = await closed_with_survey(env, tq)
    token = link_token(ticket_id)
    payload, _, mac = token.partition(".")
    for forged in (f"{payload}.{mac[:-2]}xx", sign("not-our-secret", survey_workflow_id(ticket_id),
                                                    (await env.get_current_time()) + timedelta(days=1))):
        with pytest.raises(LinkRejected) as refused:
            await surveys(env).answer(forged, SurveyAnswer(score=4))
        assert refused.value.code == "link_forged"

    for _day in range(8):  # to the link's expiry, the policy's 7 days (the test server does not sleep past the end)
        if (await handle.describe()).status != WorkflowExecutionStatus.RUNNING:
            break
        await env.sleep(timedelta(days=1))
    final: SurveyState = await handle.result()
    assert final.status == "expired" and final.answer is None
    # The link's own expiry is checked against the real clock; a link still "open" by it meets the closed survey.
    late = sign(survey_secret(), survey_workflow_id(ticket_id), final.expires_at + timedelta(days=365))
    with pytest.raises(LinkRejected) as expired:
        await surveys(env).answer(late, SurveyAnswer(score=4))
    assert expired.value.code == "link_expired"


@on_time_skipping_server(replace_activities=[SENT.deliver])
async def test_no_contact_no_survey(env: WorkflowEnvironment, tq: str) -> None:
    t = ticket(await env.get_current_time(), priority="P3")
    handle = await start_ticket(env.client, tq, t)
    await handle.execute_update(TicketWorkflow.resolve, core.Resolve(actor=AGENT, summary="fixed"))
    await handle.execute_update(TicketWorkflow.close, core.Close(actor=AGENT, reason="duplicate"))
    final: core.TicketState = await handle.result()
    assert not any(e.action == "survey_started" for e in final.timeline)
    assert await surveys(env).of_ticket(t.id) is None
