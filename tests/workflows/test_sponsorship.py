"""The executive sponsorship program on the time-skipping server: enrolment is idempotent (one workflow per
account), the sponsor is reminded on the check-in cadence, a check-in moves the next one, a quiet period or an
explicit exit ends it, and a later enrolment starts a new run under the same id."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from activities.sponsorship import Sponsorships
from starter.client import ActionRejected
from starter.client.sponsorships import SponsorshipClient
from starter.runtime.policy_file import load_policy
from tests.support.workflows import Recorder, on_time_skipping_server, start_ticket, ticket
from workflows import ticket as core
from workflows.sponsorship import (
    CheckIn,
    Enrolment,
    ExitRequest,
    SponsorshipInput,
    SponsorshipState,
    sponsorship_workflow_id,
)
from workflows.sponsorship.workflow import SponsorshipWorkflow
from workflows.ticket.workflow import TicketWorkflow

pytestmark = pytest.mark.timeout(150)
SENT = Recorder()
SPONSORS = Sponsorships(lambda account: "eva")


def client(env: WorkflowEnvironment, tq: str) -> SponsorshipClient:
    return SponsorshipClient(env.client, load_policy(), tq, timedelta(seconds=10))


def sent_to_sponsor(account: str, kind: str) -> int:
    return sum(1 for m in SENT.sent if m.notification_key.startswith(sponsorship_workflow_id(account))
               and m.kind == kind)


@on_time_skipping_server(replace_activities=[SENT.deliver, SPONSORS.enrol])
async def test_an_executive_escalation_enrols_the_account_once(env: WorkflowEnvironment, tq: str) -> None:
    account = f"acct-{uuid.uuid4().hex[:6]}"
    t = ticket(await env.get_current_time(), customer_id=account)
    handle = await start_ticket(env.client, tq, t)
    await handle.execute_update(TicketWorkflow.escalate_to_executive,
                                core.EscalateToExecutive(actor="supervisor:lee", reason="renewal at risk"))
    for _ in range(50):
        s: core.TicketState = await handle.query(TicketWorkflow.current_state)
        if any(e.action == "sponsorship_enrolled" for e in s.timeline):
            break
        await env.sleep(timedelta(seconds=1))
    entry = next(e for e in s.timeline if e.action == "sponsorship_enrolled")
    assert "sponsor eva" in entry.summary and entry.rule == "sponsorship.executive_escalation"

    sponsorships = client(env, tq)
    first = await env.client.get_workflow_handle(sponsorship_workflow_id(account)).describe()
    again = await sponsorships.enrol(account, "the CEO called", by="admin:ops")
    second = await env.client.get_workflow_handle(sponsorship_workflow_id(account)).describe()
    assert first.run_id == second.run_id, "enrolling again signals the running sponsorship"
    assert again.enrolment_count == 2 and again.sponsor == "eva"
    assert [e.criterion for e in again.enrolments] == ["executive_escalation", "manual"]
    await env.sleep(timedelta(seconds=5))  # the notice is delivered by activities of its own
    assert sent_to_sponsor(account, "sponsorship_enrolled") == 1, "the sponsor hears of the enrolment once"


@on_time_skipping_server(replace_activities=[SENT.deliver])
async def test_check_in_cadence_reminds_the_sponsor_and_a_check_in_moves_it(env: WorkflowEnvironment, tq: str) -> None:
    account = f"acct-{uuid.uuid4().hex[:6]}"
    sponsorships = client(env, tq)
    started = await sponsorships.enrol(account, "strategic account", by="admin:ops")
    assert started.next_check_in_due - started.enrolled_at == timedelta(days=14)

    await env.sleep(timedelta(days=13))
    assert sent_to_sponsor(account, "sponsorship_check_in") == 0
    await env.sleep(timedelta(days=2))
    assert sent_to_sponsor(account, "sponsorship_check_in") == 1, "reminded when the check-in fell due"
    assert (await sponsorships.show(account)).reminders_sent == 1

    checked = await sponsorships.check_in(account, CheckIn(by="exec:eva", notes="QBR held; roadmap shared"))
    assert checked.check_in_count == 1 and checked.check_ins[-1].notes == "QBR held; roadmap shared"
    assert checked.next_check_in_due == checked.check_ins[-1].at + timedelta(days=14)
    await env.sleep(timedelta(days=13))
    assert sent_to_sponsor(account, "sponsorship_check_in") == 1, "the check-in moved the next reminder"


@on_time_skipping_server(replace_activities=[SENT.deliver])
async def test_quiet_for_90_days_ends_it_and_a_new_enrolment_starts_a_new_run(env: WorkflowEnvironment,
                                                                              tq: str) -> None:
    account = f"acct-{uuid.uuid4().hex[:6]}"
    sponsorships = client(env, tq)
    await sponsorships.enrol(account, "strategic account", by="admin:ops")
    handle = env.client.get_workflow_handle_for(SponsorshipWorkflow.run, sponsorship_workflow_id(account))
    first_run = (await handle.describe()).run_id
    for _ in range(12):  # weekly, up to the policy's 90 quiet days
        if (await handle.describe()).status != WorkflowExecutionStatus.RUNNING:
            break
        await env.sleep(timedelta(days=8))
    ended: SponsorshipState = await handle.result()
    assert ended.status == "ended" and ended.exited is not None
    assert ended.exited.reason == "no executive escalation for 90 days"
    assert sent_to_sponsor(account, "sponsorship_ended") == 1
    with pytest.raises(ActionRejected) as refused:
        await sponsorships.check_in(account, CheckIn(by="exec:eva", notes="too late"))
    assert refused.value.code == "sponsorship_ended"

    renewed = await sponsorships.enrol(account, "escalated again", by="admin:ops")
    assert renewed.status == "active" and renewed.enrolment_count == 1
    assert (await handle.describe()).run_id != first_run, "a new run under the same id"


@on_time_skipping_server(replace_activities=[SENT.deliver])
async def test_an_explicit_exit_needs_a_reason_and_ends_it(env: WorkflowEnvironment, tq: str) -> None:
    account = f"acct-{uuid.uuid4().hex[:6]}"
    sponsorships = client(env, tq)
    await sponsorships.enrol(account, "strategic account", by="admin:ops")
    with pytest.raises(ValueError):
        ExitRequest(by="admin:ops", reason="")
    ended = await sponsorships.exit(account, ExitRequest(by="admin:ops", reason="account churned"))
    assert ended.status == "ended" and ended.exited is not None and ended.exited.reason == "account churned"
    with pytest.raises(ActionRejected):
        await sponsorships.exit(account, ExitRequest(by="admin:ops", reason="again"))


@on_time_skipping_server(replace_activities=[SENT.deliver])
async def test_a_long_sponsorship_continues_as_new_with_its_state(env: WorkflowEnvironment, tq: str) -> None:
    account = f"acct-{uuid.uuid4().hex[:6]}"
    handle = await env.client.start_workflow(
        SponsorshipWorkflow.run, SponsorshipInput(account_id=account, events_per_run=100),
        id=sponsorship_workflow_id(account), task_queue=tq, start_signal="enrol",
        start_signal_args=[Enrolment(key="k-1", account_id=account, criterion="manual", reason="strategic",
                                     by="admin:ops", at=await env.get_current_time())])
    first_run = handle.result_run_id
    sponsorships = client(env, tq)
    for i in range(30):  # each check-in is an Update: a few events each
        await sponsorships.check_in(account, CheckIn(by="exec:eva", notes=f"call {i}"))
    now = await env.client.get_workflow_handle(sponsorship_workflow_id(account)).describe()
    assert now.run_id != first_run, "the history grew past events_per_run: a new run"
    state = await sponsorships.show(account)
    assert state.check_in_count == 30 and state.enrolment_count == 1, "carried over, not applied twice"
    assert state.check_ins[-1].notes == "call 29"
