"""TicketWorkflow on the real dev server: continue-as-new, visibility, replay of real histories."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from temporalio import activity
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from starter.client import EscalationClient, Principal
from starter.runtime.policy_file import load_policy
from starter.runtime.replay import Sourced, histories_in, replay_all
from starter.runtime.temporal import replayer as make_replayer
from tests.support.workflows import local_env, policy_with, running_worker, start_ticket, ticket
from workflows import ticket as core
from workflows.common.vocabulary import Status
from workflows.ticket.workflow import TicketWorkflow

AGENT = "agent:bob"
OPERATOR = Principal.operator(AGENT)


@pytest.fixture(scope="module")
async def env() -> AsyncIterator[WorkflowEnvironment]:
    environment = await local_env("--dynamic-config-value", "limit.historyCount.suggestContinueAsNew=60")
    yield environment
    await environment.shutdown()


@pytest.fixture(scope="module")
async def tq(env: WorkflowEnvironment) -> AsyncIterator[str]:
    async with running_worker(env.client) as task_queue:
        yield task_queue


async def eventually(check: Any, timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result or time.monotonic() > deadline:
            return result
        await asyncio.sleep(0.2)


async def test_continue_as_new_keeps_state_and_timers(env: WorkflowEnvironment, tq: str) -> None:
    policy = policy_with(acknowledge="6s", warn_at_percent=[50])
    t = ticket(datetime.now(UTC))
    first = await start_ticket(env.client, tq, t, policy)
    handle = env.client.get_workflow_handle(first.id)  # follows the latest run
    for i in range(30):
        await handle.execute_update(TicketWorkflow.note, core.AddNote(actor=AGENT, text=f"note {i}"))

    async def continued() -> bool:
        return (await handle.describe()).run_id != first.result_run_id

    assert await eventually(continued), "history grew past the suggestion: the ticket must continue as new"
    s = await handle.query(TicketWorkflow.current_state)
    assert [e.summary for e in s.timeline if e.action == "note"] == [f"note {i}" for i in range(30)]

    async def escalated() -> core.TicketState | None:
        s = await handle.query(TicketWorkflow.current_state)
        return s if s.tier == "tier2" else None

    s = await eventually(escalated, timeout=20)
    assert s is not None, "the acknowledge deadline still fires after continue-as-new"
    escalations = [e for e in s.timeline if e.action == "escalated"]
    assert [e.clock for e in escalations] == ["acknowledge"], "escalated exactly once"
    assert escalations[0].due_at == t.opened_at + timedelta(seconds=6), "the clock kept its start across runs"
    assert s.clocks["acknowledge"].warnings_sent == [50], "the 50 % warning went out once, before or after the new run"
    assert s.ticket == t
    await every_run_exports_and_replays(env, tq, t.id, first.result_run_id)


async def every_run_exports_and_replays(env: WorkflowEnvironment, tq: str, ticket_id: str, first_run: str | None) -> None:
    """The auditor's export holds every run, oldest first (the first is the one started), and each replays."""
    export = await EscalationClient(env.client, load_policy(), tq).history_json(ticket_id, principal=OPERATOR)
    runs = export["runs"]
    assert len(runs) >= 2 and runs[0]["run_id"] == first_run, [r["run_id"] for r in runs]
    assert len({r["run_id"] for r in runs}) == len(runs)
    ends = [r["events"][-1]["eventType"] for r in runs[:-1]]
    assert set(ends) == {"EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW"}, ends

    async def sourced() -> AsyncIterator[Sourced]:
        for h in histories_in(export, "unused"):
            yield "export", h

    report = await replay_all(sourced())
    assert (report.histories, report.passed) == (len(runs), len(runs)), [
        (v.verdict, v.divergence, v.unreadable, v.decisions.differences if v.decisions else None) for v in report.verdicts]
    assert report.events == sum(len(r["events"]) for r in runs)
    # each run's decisions recomputed from its own input (the next run's state is the one the last carried over)
    assert all(v.decisions is not None and v.decisions.checked and not v.decisions.differences
               for v in report.verdicts), [v.decisions for v in report.verdicts]


async def test_search_attributes_list_tickets(env: WorkflowEnvironment, tq: str) -> None:
    ec = EscalationClient(env.client, load_policy(), tq)
    t = ticket(datetime.now(UTC), customer_id="cust-visible", priority="P2")
    opened = await ec.open(t)
    assert opened.created and opened.view.status == Status.new
    again = await ec.open(t)
    assert not again.created, "the same ticket id twice gives the same workflow"
    await ec.perform(t.id, core.Escalate(actor=AGENT, reason="needs an expert"), principal=OPERATOR)
    await ec.perform(t.id, core.Assign(actor=AGENT, assignee="agent-7"), principal=OPERATOR)

    async def listed() -> list[Any]:
        page = await ec.list(principal=OPERATOR, customer_id="cust-visible", tier="tier2")
        return [x for x in page.tickets if x.assignee == "agent-7"]

    rows = await eventually(listed)
    assert [(r.id, r.status, r.tier, r.priority, r.escalation_count) for r in rows] == [(t.id, "new", "tier2", "P2", 1)]
    none = await ec.list(principal=OPERATOR, customer_id="cust-visible", tier="tier3")
    assert none.tickets == []


async def test_a_reply_signalled_while_a_closed_ticket_finishes_opens_a_follow_up(env: WorkflowEnvironment) -> None:
    """Closed, but still running until its notifications are out: a signalled customer message is not lost."""
    release = asyncio.Event()

    @activity.defn(name="notify")
    async def held_notify(n: core.Notify) -> None:
        await release.wait()  # e.g. an SMTP relay that keeps the last notifications pending

    async with running_worker(env.client, replace_activities=[held_notify]) as queue:
        ec = EscalationClient(env.client, load_policy(), queue)
        t = ticket(datetime.now(UTC), customer_id="cust-late")
        await ec.open(t)
        await ec.perform(t.id, core.Resolve(actor=AGENT, summary="fixed"), principal=OPERATOR)
        await ec.perform(t.id, core.Close(actor=AGENT), principal=OPERATOR)
        handle = ec.handle(t.id)
        assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING, "its notifications are held"

        reply = core.CustomerReply(message="it broke again", message_id="late-1")
        sent = await ec.signal_customer_reply(t.id, reply, principal=OPERATOR)
        assert sent.follow_up_ticket_id is None, "delivered to the (closed, still running) ticket"
        follow_id = core.follow_up_id(t.id, "late-1")

        async def follow_up_started() -> bool:
            try:
                return (await ec.temporal.get_workflow_handle(f"ticket-{follow_id}").describe()) is not None
            except RPCError:
                return False

        assert await eventually(follow_up_started), "the late message opened a follow-up ticket"
        release.set()
        closed = await handle.result()
        assert closed.timeline[-1].action == "follow_up_opened" and follow_id in closed.timeline[-1].summary
        follow = await ec.state(follow_id, principal=OPERATOR)
        assert follow.ticket.linked_ticket_id == t.id and follow.ticket.description == "it broke again"
        assert follow.priority == closed.priority and follow.status == Status.new

        # The same message again, now that the ticket has completed: the client finds the same follow-up.
        assert (await ec.signal_customer_reply(t.id, reply, principal=OPERATOR)).follow_up_ticket_id == follow_id


async def test_replay_every_ticket_history(env: WorkflowEnvironment, tq: str) -> None:
    """An auditor's replay: every history this module produced replays against the code without divergence."""
    client: Client = env.client
    handle = await start_ticket(client, tq, ticket(datetime.now(UTC)))
    await handle.execute_update(TicketWorkflow.acknowledge, core.Acknowledge(actor=AGENT))
    await handle.execute_update(TicketWorkflow.wait_on_customer, core.WaitOnCustomer(actor=AGENT))
    await handle.signal(TicketWorkflow.customer_replied, core.CustomerReply(message="done"))
    await handle.execute_update(TicketWorkflow.resolve, core.Resolve(actor=AGENT, summary="fixed"))
    await handle.execute_update(TicketWorkflow.close, core.Close(actor=AGENT))
    assert (await handle.result()).status == Status.closed

    count = (await client.count_workflows("WorkflowType = 'Ticket'")).count
    assert count >= 4, f"expected the module's tickets in visibility, found {count}"
    replayer = make_replayer()
    histories = client.list_workflows("WorkflowType = 'Ticket'").map_histories()
    results = await replayer.replay_workflows(histories, raise_on_replay_failure=False)
    assert len(results.replay_failures) == 0, results.replay_failures
