"""Post-mortems on the time-skipping server: a P1 resolved at Tier 3 starts exactly one (a reopen and a second
resolution start no second), the owner is reminded until it completes, overdue steps and action items are told,
completion needs every step and action item and publishes the knowledge-base article."""

from __future__ import annotations

import asyncio
import tempfile
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio import activity
from temporalio.client import WorkflowExecutionStatus
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from activities.knowledge_base import KnowledgeBase
from starter.client import ActionRejected
from starter.client.postmortems import PostmortemClient
from tests.support.workflows import Recorder, on_time_skipping_server, start_ticket, ticket
from workflows import ticket as core
from workflows.postmortem import ActionItemIn, CompleteIn, PostmortemState, ReviewIn, RootCauseIn
from workflows.postmortem.workflow import PostmortemWorkflow
from workflows.ticket.workflow import TicketWorkflow

pytestmark = pytest.mark.timeout(150)
SENT = Recorder()
KB = KnowledgeBase(Path(tempfile.mkdtemp(prefix="kb-")))
AGENT = "agent:alice"


def kinds(kind: str, pm_id: str) -> int:
    return sum(1 for m in SENT.sent if m.kind == kind and m.notification_key.startswith(pm_id))


async def resolved_at_tier3(env: WorkflowEnvironment, tq: str) -> tuple[str, object]:
    t = ticket(await env.get_current_time(), priority="P1", customer_contact="buyer@example.com")
    handle = await start_ticket(env.client, tq, t)
    await handle.execute_update(TicketWorkflow.acknowledge, core.Acknowledge(actor=AGENT))
    await handle.execute_update(TicketWorkflow.escalate, core.Escalate(actor=AGENT, to_tier="tier3",
                                                                       reason="engineering needed"))
    await handle.execute_update(TicketWorkflow.resolve, core.Resolve(actor="agent:eng", summary="hotfix deployed"))
    return t.id, handle


async def once_started(handle: object) -> core.TicketState:
    """The ticket's state once its post-mortem is started: the start is carried out in the background after the
    resolution (a child workflow's start, one more workflow task), so a query right after the Update can precede it."""
    for _ in range(200):
        s: core.TicketState = await handle.query(TicketWorkflow.current_state)  # type: ignore[attr-defined]
        if s.postmortem_id is not None:
            break
        await asyncio.sleep(0.05)
    return s


@on_time_skipping_server(replace_activities=[SENT.deliver, KB.publish])
async def test_a_severe_ticket_starts_one_postmortem_which_publishes_its_article(env: WorkflowEnvironment,
                                                                                  tq: str) -> None:
    ticket_id, handle = await resolved_at_tier3(env, tq)
    pm_id = f"postmortem-ticket-{ticket_id}"
    s = await once_started(handle)
    assert s.postmortem_id == pm_id and [e.action for e in s.timeline].count("postmortem_started") == 1
    # Reopened by the customer and resolved again: no second post-mortem.
    await handle.execute_update(TicketWorkflow.customer_reply, core.CustomerReply(message="it is back"))  # type: ignore[attr-defined]
    await handle.execute_update(TicketWorkflow.resolve, core.Resolve(actor="agent:eng", summary="real fix"))  # type: ignore[attr-defined]
    s = await handle.query(TicketWorkflow.current_state)  # type: ignore[attr-defined]
    assert [e.action for e in s.timeline].count("postmortem_started") == 1

    pms = PostmortemClient(env.client, timedelta(seconds=10))
    pm = await pms.show(pm_id)
    assert pm.kind == "ticket" and pm.subject_id == ticket_id and [st.name for st in pm.steps] == \
        ["review", "root_cause", "complete"]
    assert "agent:eng" in pm.participants and "escalated from tier1 to tier3" in pm.draft
    # The ticket's calendar is 24x7: its steps fall due whole days later (the policy's 2, 5 and 10).
    assert [st.due_at - pm.started_at for st in pm.steps] == [timedelta(days=d) for d in (2, 5, 10)]

    await env.sleep(timedelta(days=1, minutes=1))
    assert kinds("postmortem_reminder", pm_id) >= 1, "the owner is reminded"
    await env.sleep(timedelta(days=2))
    assert kinds("postmortem_overdue", pm_id) >= 1, "the overdue review is told to the escalation managers"

    await pms.act(pm_id, "review", ReviewIn(by="agent:mia", notes="met with support and engineering"))
    await pms.act(pm_id, "root_cause", RootCauseIn(by="agent:mia", root_cause="a config push without canary",
                                                   contributing_factors=["no alert on error rate"]))
    await pms.act(pm_id, "add_action_item", ActionItemIn(by="agent:mia", text="canary every config push",
                                                        owner="agent:leo", due_in_days=3))
    with pytest.raises(ActionRejected) as early:
        await pms.act(pm_id, "complete", CompleteIn(by="agent:mia", summary="done"))
    assert early.value.code == "postmortem_incomplete" and "action item 1" in str(early.value)
    await pms.act(pm_id, "complete_action_item", 1)
    await pms.act(pm_id, "complete", CompleteIn(by="agent:mia", summary="Config pushes are canaried now."))
    final: PostmortemState = await env.client.get_workflow_handle_for(PostmortemWorkflow.run, pm_id).result()
    assert final.status == "completed" and final.kb_article is not None
    text = Path(final.kb_article).read_text()
    assert "a config push without canary" in text and "- [x] canary every config push" in text
    assert "Config pushes are canaried now." in text
    with pytest.raises(ActionRejected):
        await pms.act(pm_id, "review", ReviewIn(by="agent:mia", notes="again"))


@on_time_skipping_server(replace_activities=[SENT.deliver, KB.publish])
async def test_an_overdue_action_item_is_told_and_a_p3_starts_none(env: WorkflowEnvironment, tq: str) -> None:
    ticket_id, _ = await resolved_at_tier3(env, tq)
    pm_id = f"postmortem-ticket-{ticket_id}"
    pms = PostmortemClient(env.client, timedelta(seconds=10))
    await pms.act(pm_id, "add_action_item", ActionItemIn(by="agent:mia", text="runbook", owner="agent:leo",
                                                        due_in_days=1))
    before = kinds("postmortem_overdue", pm_id)
    for _ in range(100):  # the reminder is sent in the background
        if kinds("postmortem_action_item", pm_id):
            break
        await asyncio.sleep(0.05)
    assert kinds("postmortem_action_item", pm_id) == 1, "due within a day: its owner is reminded at once"
    await env.sleep(timedelta(days=1, hours=1))
    notices = [m for m in SENT.sent if m.kind == "postmortem_overdue" and m.notification_key.startswith(pm_id)]
    assert len(notices) > before and any("Action item overdue" in m.subject for m in notices)
    reminded = [m for m in SENT.sent if m.kind == "postmortem_action_item" and m.notification_key.startswith(pm_id)]
    assert len(reminded) == 1 and {m.recipient_id for m in reminded} == {"leo"}, \
        "overdue a day later: the managers are told instead (its history stays bounded)"

    small = await start_ticket(env.client, tq, ticket(await env.get_current_time(), priority="P3"))
    await small.execute_update(TicketWorkflow.resolve, core.Resolve(actor=AGENT, summary="fixed"))
    s: core.TicketState = await small.query(TicketWorkflow.current_state)
    assert s.postmortem_id is None
    with pytest.raises(RPCError):  # no post-mortem was started for it
        await env.client.get_workflow_handle(f"postmortem-ticket-{s.ticket.id}").describe()
    assert (await env.client.get_workflow_handle_for(PostmortemWorkflow.run, pm_id).describe()).status == \
        WorkflowExecutionStatus.RUNNING


@activity.defn(name="publish_kb_article")
async def refused_publish(postmortem_id: str, article: str) -> str:
    raise ApplicationError("the knowledge base refused the article", type="kb_refused", non_retryable=True)


@on_time_skipping_server(replace_activities=[SENT.deliver, refused_publish])
async def test_a_refused_article_leaves_the_postmortem_complete_and_says_why(env: WorkflowEnvironment,
                                                                            tq: str) -> None:
    ticket_id, _ = await resolved_at_tier3(env, tq)
    pm_id = f"postmortem-ticket-{ticket_id}"
    pms = PostmortemClient(env.client, timedelta(seconds=10))
    await pms.act(pm_id, "review", ReviewIn(by="agent:mia", notes="held"))
    await pms.act(pm_id, "root_cause", RootCauseIn(by="agent:mia", root_cause="expired certificate"))
    await pms.act(pm_id, "complete", CompleteIn(by="agent:mia", summary="renewal is automated now"))
    final: PostmortemState = await env.client.get_workflow_handle_for(PostmortemWorkflow.run, pm_id).result()
    assert final.status == "completed" and final.kb_article is None
    assert final.kb_error is not None and "refused the article" in final.kb_error
