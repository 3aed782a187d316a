"""TicketWorkflow on the time-skipping test server: durable timers are the SLA deadlines."""

from __future__ import annotations

from datetime import timedelta

import pytest
from temporalio import activity
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from tests.support.workflows import (
    Recorder,
    minutes,
    on_time_skipping_server,
    policy_with,
    start_ticket,
    ticket,
)
from workflows import ticket as core
from workflows.common.delivery import DeliveryResult, Message
from workflows.common.vocabulary import ClockName, Status
from workflows.ticket.views import ActionResult
from workflows.ticket.workflow import TicketWorkflow

AGENT = "agent:alice"


# Each test runs on its own fresh time-skipping server (one test's timers never fire into another's time skips),
# retried once on a fresh server if that server wedges; this bounds the whole, should both runs hang.
pytestmark = pytest.mark.timeout(150)


async def state(handle) -> core.TicketState:  # type: ignore[no-untyped-def]
    return await handle.query(TicketWorkflow.current_state)


async def rejected_code(coro) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(WorkflowUpdateFailedError) as info:
        await coro
    assert isinstance(info.value.cause, ApplicationError)
    return info.value.cause.type or ""


@on_time_skipping_server()
async def test_seed_example_unacknowledged_p1_climbs_to_tier3(env: WorkflowEnvironment, tq: str) -> None:
    opened = await env.get_current_time()
    handle = await start_ticket(env.client, tq, ticket(opened))
    s = await state(handle)
    assert (s.tier, s.status) == ("tier1", Status.new)

    await env.sleep(minutes(59))
    assert (await state(handle)).tier == "tier1"
    await env.sleep(minutes(2))
    s = await state(handle)
    assert s.tier == "tier2", "a missed acknowledgement escalates to Tier 2 at 60 minutes"
    esc = next(e for e in s.timeline if e.action == "escalated")
    assert esc.clock == ClockName.acknowledge
    assert esc.due_at == opened + minutes(60)
    assert esc.at - esc.due_at < timedelta(seconds=5)
    assert esc.actor == core.SYSTEM_SLA

    await env.sleep(timedelta(hours=3, minutes=58))
    assert (await state(handle)).tier == "tier2"
    await env.sleep(minutes(3))
    s = await state(handle)
    assert s.tier == "tier3", "Tier 2's 4 hours from entry ran out"
    last = [e for e in s.timeline if e.action == "escalated"][-1]
    assert last.clock == ClockName.tier and last.due_at == esc.at + timedelta(hours=4)
    assert s.escalation_count == 2 and s.sla_breached


@on_time_skipping_server()
async def test_acknowledged_tier1_has_20_minutes(env: WorkflowEnvironment, tq: str) -> None:
    handle = await start_ticket(env.client, tq, ticket(await env.get_current_time()))
    await env.sleep(minutes(10))
    answer = await handle.execute_update(TicketWorkflow.acknowledge, core.Acknowledge(actor=AGENT))
    assert isinstance(answer, ActionResult)
    assert answer.ticket.status == Status.open
    assert ClockName.tier in {c.name for c in answer.ticket.clocks if c.phase == "running"}, "the tier clock runs"
    await env.sleep(minutes(19))
    assert (await state(handle)).tier == "tier1"
    await env.sleep(minutes(2))
    s = await state(handle)
    rules = [e for e in s.timeline if e.actor != "system:notify"]  # who was told is recorded too, as it happens
    assert s.tier == "tier2" and rules[-1].action in ("escalated", "sla_breached", "sla_warning")
    assert [e.clock for e in s.timeline if e.action == "escalated"] == [ClockName.tier]


@on_time_skipping_server()
async def test_waiting_on_customer_pauses_and_resume_never_breaches_instantly(env: WorkflowEnvironment, tq: str) -> None:
    handle = await start_ticket(env.client, tq, ticket(await env.get_current_time()))
    await handle.execute_update(TicketWorkflow.acknowledge, core.Acknowledge(actor=AGENT))
    await env.sleep(minutes(15))  # 15 of Tier 1's 20 minutes used
    await handle.execute_update(TicketWorkflow.wait_on_customer, core.WaitOnCustomer(actor=AGENT, reason="logs?"))
    assert (await state(handle)).clocks[ClockName.tier].phase == "paused"
    await env.sleep(timedelta(hours=6))  # far beyond every paused clock's target
    s = await state(handle)
    assert s.tier == "tier1" and s.status == Status.waiting_on_customer
    await handle.signal(TicketWorkflow.customer_replied, core.CustomerReply(message="here are the logs"))
    await env.sleep(minutes(4))
    s = await state(handle)
    assert s.tier == "tier1", "paused time must not count: 5 minutes were left"
    assert s.status == Status.open
    await env.sleep(minutes(2))
    assert (await state(handle)).tier == "tier2"


@on_time_skipping_server()
async def test_transfer_changes_department_not_tier(env: WorkflowEnvironment, tq: str) -> None:
    handle = await start_ticket(env.client, tq, ticket(await env.get_current_time(), description="invoice wrong"))
    await handle.execute_update(TicketWorkflow.acknowledge, core.Acknowledge(actor=AGENT))
    await env.sleep(minutes(10))
    before = (await state(handle)).clocks[ClockName.tier]
    answer = await handle.execute_update(TicketWorkflow.transfer, core.Transfer(actor=AGENT, department="networking"))
    assert isinstance(answer, ActionResult)
    assert (answer.ticket.department, answer.ticket.tier) == ("networking", "tier1")
    s = await state(handle)
    assert s.clocks[ClockName.tier].started_at == before.started_at, "a functional transfer keeps the tier clock"
    assert s.escalation_count == 0


@on_time_skipping_server()
async def test_rejected_actions_leave_no_trace_in_history(env: WorkflowEnvironment, tq: str) -> None:
    handle = await start_ticket(env.client, tq, ticket(await env.get_current_time()))
    events_before = len((await handle.fetch_history()).events)
    assert await rejected_code(handle.execute_update(
        TicketWorkflow.transfer, core.Transfer(actor=AGENT, department="astrology"))) == "unknown_department"
    assert await rejected_code(handle.execute_update(
        TicketWorkflow.reopen, core.Reopen(actor=AGENT))) == "not_resolved"
    assert await rejected_code(handle.execute_update(
        TicketWorkflow.escalate, core.Escalate(actor=AGENT, reason="x", to_tier="tier0"))) == "not_above"
    history = await handle.fetch_history()
    kinds = {e.WhichOneof("attributes") or "" for e in history.events[events_before:]}
    assert not any("update" in k for k in kinds), f"rejected updates must not be in history: {kinds}"

    await handle.execute_update(TicketWorkflow.escalate, core.Escalate(actor=AGENT, reason="exec", to_tier="executive"))
    assert await rejected_code(handle.execute_update(
        TicketWorkflow.escalate, core.Escalate(actor=AGENT, reason="more"))) == "top_tier"


@on_time_skipping_server()
async def test_reopen_window_customer_reply_reopens_then_ticket_closes(env: WorkflowEnvironment, tq: str) -> None:
    handle = await start_ticket(env.client, tq, ticket(await env.get_current_time()))
    await handle.execute_update(TicketWorkflow.acknowledge, core.Acknowledge(actor=AGENT))
    await env.sleep(minutes(5))
    await handle.execute_update(TicketWorkflow.resolve, core.Resolve(actor=AGENT, summary="reinstall the app"))
    s = await state(handle)
    accrued = s.clocks[ClockName.resolution].accrued
    assert s.status == Status.resolved
    await env.sleep(timedelta(days=1))
    await handle.execute_update(TicketWorkflow.customer_reply, core.CustomerReply(message="still broken"))
    s = await state(handle)
    assert s.status == Status.open and s.reopen_count == 1
    assert s.clocks[ClockName.resolution].phase == "running"
    assert s.clocks[ClockName.resolution].accrued == accrued, "resolution resumes with its accrued time"

    await handle.execute_update(TicketWorkflow.resolve, core.Resolve(actor=AGENT, summary="patched"))
    s = await state(handle)
    final = await handle.result()  # the reopen window (3 days) runs out; closing completes the workflow
    assert final.status == Status.closed
    assert final.timeline[-1].actor == "system:auto-close"
    assert final.closed_at is not None and final.closed_at - s.resolved_at >= timedelta(days=3)


SENT = Recorder()


@on_time_skipping_server(replace_activities=[SENT.deliver])
async def test_stakeholders_hear_of_a_new_p1_once(env: WorkflowEnvironment, tq: str) -> None:
    t = ticket(await env.get_current_time())
    handle = await start_ticket(env.client, tq, t)
    await handle.execute_update(TicketWorkflow.acknowledge, core.Acknowledge(actor=AGENT))
    await env.sleep(minutes(1))
    assert SENT.kinds(t.id).count("stakeholders") == 1


@on_time_skipping_server(replace_activities=[SENT.deliver])
async def test_executives_are_notified_once_however_often_the_keywords_come(env: WorkflowEnvironment, tq: str) -> None:
    t = ticket(await env.get_current_time(), description="Fix this or we cancel and call our lawyer.")
    handle = await start_ticket(env.client, tq, t)
    await handle.execute_update(TicketWorkflow.customer_reply, core.CustomerReply(message="legal action next"))
    await env.sleep(minutes(1))
    assert SENT.kinds(t.id).count("executive") == 1


@on_time_skipping_server()
async def test_each_executive_keyword_match_is_in_the_timeline(env: WorkflowEnvironment, tq: str) -> None:
    t = ticket(await env.get_current_time(), description="Fix this or we cancel and call our lawyer.")
    handle = await start_ticket(env.client, tq, t)
    await handle.execute_update(TicketWorkflow.customer_reply, core.CustomerReply(message="legal action next"))
    s = await state(handle)
    assert sum(1 for e in s.timeline if e.action == "executive_attention") == 2


@on_time_skipping_server()
async def test_priority_change_keeps_accrued_time(env: WorkflowEnvironment, tq: str) -> None:
    policy = policy_with(acknowledge="30m")
    handle = await start_ticket(env.client, tq, ticket(await env.get_current_time(), priority="P2"), policy)
    await env.sleep(minutes(20))
    answer = await handle.execute_update(TicketWorkflow.change_priority, core.ChangePriority(actor=AGENT, priority="P1"))
    assert isinstance(answer, ActionResult) and answer.ticket.priority == "P1"
    await env.sleep(minutes(11))  # 31 minutes accrued in all against P1's 30
    s = await state(handle)
    assert s.tier == "tier2" and s.breaches[0].clock == ClockName.acknowledge


@activity.defn(name="deliver")
async def unreachable_notify(m: Message) -> DeliveryResult:
    # Non-retryable, so the time-skipping server does not run a day of retries in real time.
    raise ApplicationError("SMTP relay unreachable", non_retryable=True)


@on_time_skipping_server(replace_activities=[unreachable_notify], max_cached_workflows=1000)
async def test_failing_notifications_never_hold_up_sla_timers(env: WorkflowEnvironment, tq: str) -> None:
    handle = await start_ticket(env.client, tq, ticket(await env.get_current_time()))
    await env.sleep(minutes(61))
    s = await state(handle)
    assert s.tier == "tier2", "the acknowledge breach escalates on time although no notification gets through"
    esc = next(e for e in s.timeline if e.action == "escalated")
    assert esc.at == esc.due_at
    failed = [e for e in s.timeline if e.action == "notification_failed"]
    assert len(failed) >= 3 and "SMTP relay unreachable" in failed[0].reason
    assert s.status == Status.new, "the ticket lives on: a failed notification never fails the workflow"
    desc = await handle.describe()
    assert desc.status is not None and desc.status.name == "RUNNING"


# ----- opening: who, a bot's hand-off, a ticket opened in the past --------------------------------------------


async def start_with(env: WorkflowEnvironment, tq: str, inp: core.TicketInput):  # type: ignore[no-untyped-def]
    return await env.client.start_workflow(TicketWorkflow.run, inp, id=core.workflow_id(inp.ticket.id), task_queue=tq)


@on_time_skipping_server()
async def test_the_workflow_records_who_opened_the_ticket(env: WorkflowEnvironment, tq: str) -> None:
    t = ticket(await env.get_current_time())
    handle = await start_with(env, tq, core.TicketInput(ticket=t, policy=policy_with(), opened_by="agent:olga"))
    opened = (await state(handle)).timeline[0]
    assert (opened.action, opened.actor) == ("opened", "agent:olga")


@on_time_skipping_server()
async def test_the_workflow_records_a_bots_hand_off_before_the_opening(env: WorkflowEnvironment, tq: str) -> None:
    now = await env.get_current_time()
    t = ticket(now, channel="bot", priority=None)
    bot = core.Handoff(actor="bot:helpbot", reason="customer asked for a human", at=now, since=now - minutes(3))
    handle = await start_with(env, tq, core.TicketInput(ticket=t, policy=policy_with(), handoff=bot))
    handed, opened = (await state(handle)).timeline[:2]
    assert (handed.action, handed.actor, handed.reason) == ("handed_off", "bot:helpbot", "customer asked for a human")
    assert "after 3m at tier0" in handed.summary and opened.actor == "system:intake"


@on_time_skipping_server(replace_activities=[SENT.deliver])
async def test_a_ticket_opened_in_the_past_sends_no_warning_with_its_breach(env: WorkflowEnvironment, tq: str) -> None:
    t = ticket(await env.get_current_time() - timedelta(hours=2))  # P1: acknowledge 60 m, long overdue
    handle = await start_ticket(env.client, tq, t)
    assert (await state(handle)).tier == "tier2"
    await env.sleep(minutes(1))
    sent = SENT.kinds(t.id)
    assert "breach" in sent and "warning" not in sent, sent


# ----- a retried customer reply (same message_id) ---------------------------------------------------------------


def replies(s: core.TicketState) -> int:
    return sum(1 for e in s.timeline if e.action == "customer_replied")


@on_time_skipping_server()
async def test_a_retried_reply_update_is_answered_as_a_duplicate(env: WorkflowEnvironment, tq: str) -> None:
    handle = await start_ticket(env.client, tq, ticket(await env.get_current_time()))
    reply = core.CustomerReply(message="logs attached", message_id="m-1")
    first = await handle.execute_update(TicketWorkflow.customer_reply, reply)
    again = await handle.execute_update(TicketWorkflow.customer_reply, reply)
    assert isinstance(first, ActionResult) and isinstance(again, ActionResult)
    assert (first.outcome, again.outcome) == ("customer_reply", "duplicate")
    assert again.ticket.timeline == []


@on_time_skipping_server()
async def test_a_reply_is_recorded_once_whatever_surface_retries_it(env: WorkflowEnvironment, tq: str) -> None:
    handle = await start_ticket(env.client, tq, ticket(await env.get_current_time()))
    reply = core.CustomerReply(message="logs attached", message_id="m-1")
    await handle.signal(TicketWorkflow.customer_replied, reply)
    await handle.execute_update(TicketWorkflow.customer_reply, reply)
    await handle.signal(TicketWorkflow.customer_replied, reply)
    await handle.execute_update(TicketWorkflow.customer_reply, core.CustomerReply(message="and this", message_id="m-2"))
    assert replies(await state(handle)) == 2


@on_time_skipping_server()
async def test_replies_without_a_message_id_are_each_recorded(env: WorkflowEnvironment, tq: str) -> None:
    handle = await start_ticket(env.client, tq, ticket(await env.get_current_time()))
    for _ in range(2):
        await handle.execute_update(TicketWorkflow.customer_reply, core.CustomerReply(message="hello?"))
    assert replies(await state(handle)) == 2


@on_time_skipping_server()
async def test_the_ids_seen_are_carried_through_continue_as_new(env: WorkflowEnvironment, tq: str) -> None:
    """A run continued as new starts from the state it was given (TicketInput.state), reply ids included."""
    t = ticket(await env.get_current_time())
    before = core.open_ticket(t, policy_with(), t.opened_at).state
    before = core.step(before, core.CustomerReply(message="hi", message_id="m-1"), t.opened_at, policy_with()).state
    handle = await start_with(env, tq, core.TicketInput(ticket=t, policy=policy_with(), state=before))
    again = await handle.execute_update(TicketWorkflow.customer_reply, core.CustomerReply(message="hi", message_id="m-1"))
    assert again.outcome == "duplicate" and replies(await state(handle)) == 1
