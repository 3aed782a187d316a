"""Incidents on the time-skipping server: linked tickets hear each update once (one timeline entry, one customer
message), a repeated notice changes nothing, resolving resolves the tickets still open and leaves resolved ones
alone, the commander is reminded when no update went out for the policy's cadence."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta

import pytest
from temporalio import activity
from temporalio.client import WorkflowExecutionStatus
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from starter.client import ActionRejected
from starter.client.incidents import IncidentClient
from starter.client.postmortems import PostmortemClient
from starter.runtime.policy_file import load_policy
from tests.support.workflows import Recorder, on_time_skipping_server, start_ticket, ticket
from workflows import ticket as core
from workflows.common import search_attributes as sa
from workflows.common.delivery import DeliveryResult, Message
from workflows.common.policy import Policy
from workflows.common.vocabulary import ClockName
from workflows.incident import LinkRequest, PostUpdate, ResolveIncident, incident_workflow_id
from workflows.incident.workflow import IncidentWorkflow
from workflows.ticket.views import ticket_view
from workflows.ticket.workflow import TicketWorkflow

pytestmark = pytest.mark.timeout(150)
SENT = Recorder()
AGENT = "agent:alice"


def incidents(env: WorkflowEnvironment, tq: str) -> IncidentClient:
    return IncidentClient(env.client, load_policy(), tq, timedelta(seconds=10))


async def settled(env: WorkflowEnvironment, service: str) -> None:
    """Until the incident has told every batch it queued (its fan-out activities ran)."""
    handle = env.client.get_workflow_handle_for(IncidentWorkflow.run, incident_workflow_id(service))
    for _ in range(100):
        desc = await handle.describe()
        if desc.status != WorkflowExecutionStatus.RUNNING or not desc.raw_description.pending_activities:
            await asyncio.sleep(0.2)
            desc = await handle.describe()
            if desc.status != WorkflowExecutionStatus.RUNNING or not desc.raw_description.pending_activities:
                return
        await asyncio.sleep(0.1)


async def timeline(env: WorkflowEnvironment, ticket_id: str) -> list[core.TimelineEntry]:
    handle = env.client.get_workflow_handle_for(TicketWorkflow.run, core.workflow_id(ticket_id))  # type: ignore[arg-type]
    desc = await handle.describe()
    if desc.status == WorkflowExecutionStatus.COMPLETED:
        return (await handle.result()).timeline
    return (await handle.query(TicketWorkflow.current_state)).timeline


@on_time_skipping_server(replace_activities=[SENT.deliver])
async def test_one_update_reaches_each_linked_customer_once_and_resolution_resolves_them(
        env: WorkflowEnvironment, tq: str) -> None:
    now = await env.get_current_time()
    tickets = [ticket(now, priority="P2", customer_contact=f"buyer{i}@example.com") for i in range(5)]
    for t in tickets:
        await start_ticket(env.client, tq, t)
    done = await start_ticket(env.client, tq, ticket(now, priority="P3", customer_contact="early@example.com"))
    await done.execute_update(TicketWorkflow.resolve, core.Resolve(actor=AGENT, summary="fixed on its own"))
    ids = [t.id for t in tickets]
    client = incidents(env, tq)
    declared = await client.declare("streaming-eu", "Streaming down in EU", "SEV1", "agent:mia", "supervisor:sam")
    assert declared.created and declared.incident.status == "open"
    again = await client.declare("streaming-eu", "Streaming down (again)", "SEV1", "agent:leo", "supervisor:sam")
    assert not again.created and again.incident.title == "Streaming down in EU", "the open one answers"

    assert await client.link("streaming-eu", LinkRequest(tickets=[*ids, done.id.removeprefix("ticket-")],
                                                         by=AGENT)) == [*ids, done.id.removeprefix("ticket-")]
    assert await client.link("streaming-eu", LinkRequest(tickets=ids[:2], by=AGENT)) == [], "linked once"
    update = await client.post_update("streaming-eu", PostUpdate(text="We are restoring the EU cluster.",
                                                                 by="agent:mia"))
    assert update.number == 1
    await settled(env, "streaming-eu")
    await env.sleep(timedelta(seconds=5))  # the tickets' own deliveries
    for tid in ids:
        entries = [e for e in await timeline(env, tid) if e.action == "incident_update"]
        assert len(entries) == 1 and entries[0].reason == "We are restoring the EU cluster."
        assert len([m for m in SENT.sent if m.ticket_id == tid and m.kind == "incident_update"]) == 1
    # A fan-out retried after a crash tells a ticket again: it applies the notice once.
    await env.client.get_workflow_handle(core.workflow_id(ids[0])).signal("incident", core.IncidentNotice(
        actor="incident:streaming-eu", kind="update", incident_id="streaming-eu", number=1, text="again"))
    assert len([e for e in await timeline(env, ids[0]) if e.action == "incident_update"]) == 1

    state = await client.resolve("streaming-eu", ResolveIncident(summary="EU cluster restored", by="supervisor:sam"))
    assert state.status == "resolved"
    await settled(env, "streaming-eu")
    for tid in ids:
        s: core.TicketState = await env.client.get_workflow_handle(core.workflow_id(tid)).query(
            TicketWorkflow.current_state)
        assert s.status.value == "resolved" and s.resolution_summary == "EU cluster restored"
    left = await done.query(TicketWorkflow.current_state)
    assert left.resolution_summary == "fixed on its own", "a ticket resolved already is left alone"
    assert (await client.show("streaming-eu")).resolved_tickets == len(ids), "the count it resolved, exactly"
    # Its resolution told again (a fan-out retried after a crash): nothing changes, the answer is the same.
    again = await env.client.get_workflow_handle(core.workflow_id(ids[0])).execute_update(
        "incident_resolution", core.IncidentNotice(actor="incident:streaming-eu", kind="resolved",
                                                   incident_id="streaming-eu", text="EU cluster restored",
                                                   resolve=True), result_type=bool)
    assert again is True
    assert len([e for e in await timeline(env, ids[0]) if e.action == "incident_resolved"]) == 1
    with pytest.raises(ActionRejected) as refused:
        await client.post_update("streaming-eu", PostUpdate(text="late", by="agent:mia"))
    assert refused.value.code == "incident_resolved"


@on_time_skipping_server(replace_activities=[SENT.deliver])
async def test_the_commander_is_reminded_when_no_update_went_out(env: WorkflowEnvironment, tq: str) -> None:
    client = incidents(env, tq)
    await client.declare("billing-api", "Invoices fail", "SEV1", "agent:mia", "supervisor:sam")
    await env.sleep(timedelta(minutes=29))
    assert not [m for m in SENT.sent if m.kind == "incident_reminder" and "billing-api" in m.key]
    await env.sleep(timedelta(minutes=2))
    reminders = [m for m in SENT.sent if m.kind == "incident_reminder" and "billing-api" in m.key]
    assert [m.recipient_id for m in reminders] == ["mia"], "SEV1: the commander hears after 30 minutes"
    await client.post_update("billing-api", PostUpdate(text="Fix deploying.", by="agent:mia"))
    await env.sleep(timedelta(minutes=29))
    assert len([m for m in SENT.sent if m.kind == "incident_reminder" and "billing-api" in m.key]) == 1


@on_time_skipping_server(replace_activities=[SENT.deliver])
async def test_the_incidents_postmortem_lists_the_linked_tickets_breaches(env: WorkflowEnvironment, tq: str) -> None:
    now = await env.get_current_time()
    t = ticket(now, priority="P1", customer_contact="waiting@example.com")
    gone = ticket(now, priority="P1", customer_contact="gone@example.com")  # closed before the resolution
    await start_ticket(env.client, tq, t)
    gone_handle = await start_ticket(env.client, tq, gone)
    client = incidents(env, tq)
    await client.declare("search", "Search is down", "SEV2", "agent:mia", "supervisor:sam")
    await client.link("search", LinkRequest(tickets=[t.id, gone.id], by=AGENT))
    await env.sleep(timedelta(hours=2))  # nobody acknowledges (the incident pauses the tier and resolution clocks)
    await gone_handle.execute_update(TicketWorkflow.resolve, core.Resolve(actor=AGENT, summary="worked around"))
    await gone_handle.execute_update(TicketWorkflow.close, core.Close(actor=AGENT))
    await gone_handle.result()  # completed: the resolution's Update cannot reach it, its breaches are read anyway
    await client.resolve("search", ResolveIncident(summary="Search is back", by="supervisor:sam"))
    state = await env.client.get_workflow_handle_for(IncidentWorkflow.run, incident_workflow_id("search")).result()
    assert state.ticket_breach_count >= 2 and state.ticket_breaches_unread == 0
    for tid in (t.id, gone.id):
        assert any(b.startswith(f"- {tid}: acknowledge at ") for b in state.ticket_breaches), state.ticket_breaches
    assert state.postmortem_id is not None
    assert re.fullmatch(r"postmortem-incident-search-\d{14}", state.postmortem_id), "declared, to the second"
    pm = await PostmortemClient(env.client, timedelta(seconds=10)).show(state.postmortem_id)
    assert f"### SLA breaches of the linked tickets ({state.ticket_breach_count})" in pm.draft
    assert f"- {t.id}: acknowledge at " in pm.draft


@on_time_skipping_server(replace_activities=[SENT.deliver])
async def test_a_ticket_linked_later_gets_the_latest_update_and_unlinking_stops_them(env: WorkflowEnvironment,
                                                                                      tq: str) -> None:
    client = incidents(env, tq)
    await client.declare("login", "Login fails", "SEV2", "agent:mia", "supervisor:sam")
    await client.post_update("login", PostUpdate(text="Investigating.", by="agent:mia"))
    await client.post_update("login", PostUpdate(text="Cause found.", by="agent:mia"))
    t = ticket(await env.get_current_time(), priority="P3", customer_contact="late@example.com")
    await start_ticket(env.client, tq, t)
    await client.link("login", LinkRequest(tickets=[t.id], by=AGENT))
    await settled(env, "login")
    entries = await timeline(env, t.id)
    assert [e.reason for e in entries if e.action == "incident_update"] == ["Cause found."], "only the latest"
    s: core.TicketState = await env.client.get_workflow_handle(core.workflow_id(t.id)).query(
        TicketWorkflow.current_state)
    assert s.incident_id == "login"
    view = ticket_view(s, await env.get_current_time())
    assert (view.incident_id, view.incident_latest_update) == ("login", "Cause found."), "part of it, and what was said"
    await client.unlink("login", LinkRequest(tickets=[t.id], by=AGENT))
    await client.post_update("login", PostUpdate(text="Fixed.", by="agent:mia"))
    await settled(env, "login")
    s = await env.client.get_workflow_handle(core.workflow_id(t.id)).query(TicketWorkflow.current_state)
    assert s.incident_id is None and "Fixed." not in [e.reason for e in s.timeline]
    listed = (await env.client.get_workflow_handle(core.workflow_id(t.id)).describe()).typed_search_attributes
    assert listed.get(sa.INCIDENT) in (None, ""), "no longer listed under the incident"


@on_time_skipping_server(replace_activities=[SENT.deliver])
async def test_an_open_incident_pauses_the_policys_clocks_until_unlink(env: WorkflowEnvironment, tq: str) -> None:
    t = ticket(await env.get_current_time(), priority="P1", customer_contact="buyer@example.com")
    handle = await start_ticket(env.client, tq, t)
    await handle.execute_update(TicketWorkflow.acknowledge, core.Acknowledge(actor=AGENT))
    client = incidents(env, tq)
    await client.declare("cdn", "CDN errors", "SEV2", "agent:mia", "supervisor:sam")
    await env.sleep(timedelta(minutes=10))
    await client.link("cdn", LinkRequest(tickets=[t.id], by=AGENT))
    await settled(env, "cdn")
    s: core.TicketState = await handle.query(TicketWorkflow.current_state)
    paused = {n.value: c for n, c in s.clocks.items() if c.phase == "paused"}
    assert set(paused) == {"tier", "resolution"}, "the policy's incident clocks pause; the others run"
    target = paused["resolution"].target
    assert target is not None
    left = target - paused["resolution"].accrued

    await env.sleep(timedelta(hours=6))  # far beyond the P1 tier limit: nothing breaches while paused
    s = await handle.query(TicketWorkflow.current_state)
    assert s.tier == "tier1" and not [b for b in s.breaches if b.clock in (ClockName.tier, ClockName.resolution)]
    await client.unlink("cdn", LinkRequest(tickets=[t.id], by=AGENT))
    await settled(env, "cdn")
    s = await handle.query(TicketWorkflow.current_state)
    resumed = s.clocks[ClockName.resolution]
    unlinked_at = next(e.at for e in s.timeline if e.action == "incident_unlinked")
    assert resumed.phase == "running" and resumed.due_at is not None
    assert abs((resumed.due_at - (unlinked_at + left)).total_seconds()) < 2, "due = resume + remaining time"


@on_time_skipping_server(replace_activities=[SENT.deliver])
async def test_only_telling_at_resolution_resumes_the_clocks_and_leaves_the_ticket_open(env: WorkflowEnvironment,
                                                                                       tq: str) -> None:
    """`incidents.resolve_linked: false`: the resolution is told, the paused clocks resume with their remaining
    time, and the ticket stays open for its agent."""
    t = ticket(await env.get_current_time(), priority="P1", customer_contact="buyer@example.com")
    handle = await start_ticket(env.client, tq, t)
    await handle.execute_update(TicketWorkflow.acknowledge, core.Acknowledge(actor=AGENT))
    data = load_policy().model_dump(mode="json", by_alias=True)
    data["incidents"]["resolve_linked"] = False
    client = IncidentClient(env.client, Policy.model_validate(data), tq, timedelta(seconds=10))
    await client.declare("dns", "DNS errors", "SEV3", "agent:mia", "supervisor:sam")
    await client.link("dns", LinkRequest(tickets=[t.id], by=AGENT))
    await settled(env, "dns")
    s: core.TicketState = await handle.query(TicketWorkflow.current_state)
    paused = s.clocks[ClockName.resolution]
    assert paused.phase == "paused" and paused.target is not None
    left = paused.target - paused.accrued
    await env.sleep(timedelta(hours=3))
    await client.resolve("dns", ResolveIncident(summary="DNS answers again", by="supervisor:sam"))
    await settled(env, "dns")
    s = await handle.query(TicketWorkflow.current_state)
    assert s.status.value == "open", "only told: its agent resolves it"
    assert (await client.show("dns")).resolved_tickets == 0
    resumed = s.clocks[ClockName.resolution]
    told_at = next(e.at for e in s.timeline if e.action == "incident_resolved")
    assert resumed.phase == "running" and resumed.due_at is not None
    assert abs((resumed.due_at - (told_at + left)).total_seconds()) < 2, "due = resume + remaining time"


@activity.defn(name="deliver")
async def commander_unreachable(m: Message) -> DeliveryResult:
    """The commander's mail server is down (retried for up to a day); everyone else is reached."""
    if m.kind == "incident_reminder":
        raise ApplicationError("connection refused", type="delivery_failed")
    return await SENT.deliver(m)


@on_time_skipping_server(replace_activities=[commander_unreachable])
async def test_a_reminder_still_retrying_does_not_hold_up_the_updates(env: WorkflowEnvironment, tq: str) -> None:
    client = incidents(env, tq)
    await client.declare("payments", "Card payments fail", "SEV1", "agent:mia", "supervisor:sam")
    await env.sleep(timedelta(minutes=31))  # SEV1: the commander's reminder is due after 30 minutes, and fails
    t = ticket(await env.get_current_time(), priority="P2", customer_contact="shop@example.com")
    await start_ticket(env.client, tq, t)
    await client.link("payments", LinkRequest(tickets=[t.id], by=AGENT))
    await client.post_update("payments", PostUpdate(text="The card processor is failing over.", by="agent:mia"))
    for _ in range(50):
        if [e for e in await timeline(env, t.id) if e.action == "incident_update"]:
            break
        await asyncio.sleep(0.2)
    assert [e.reason for e in await timeline(env, t.id) if e.action == "incident_update"] == \
        ["The card processor is failing over."], "the update reached the ticket while the reminder retries"
