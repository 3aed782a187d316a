"""Write the committed ticket histories that CI replays against the code.

    .venv/bin/python -m tests.replay.make_histories

It writes only the scenarios that have no file yet: the point of the committed files is
that they were produced by *earlier* code, so a change that alters replay fails CI until
it is guarded with `workflow.patched`. Add a scenario, run this, commit the new file.

Payloads are encrypted as in production, under the committed, public fixture key
(tests/replay/codec_fixture_keys.json, which the test session's key ring keeps), never under
a real key: the files recorded before the codec stay plaintext and replay as they are.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

from temporalio import activity
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from starter.client.incidents import IncidentClient
from starter.client.postmortems import PostmortemClient
from starter.client.sponsorships import SponsorshipClient
from starter.runtime.archive import Archiver
from starter.runtime.policy_file import load_policy
from tests.support.workflows import local_env, running_worker, start_ticket, ticket, time_skipping_env
from workflows import ticket as core
from workflows.archive import ArchiveRequest, ArchiveResult
from workflows.common.policy import Policy
from workflows.incident import LinkRequest, PostUpdate, ResolveIncident, incident_workflow_id
from workflows.postmortem import ActionItemIn, AssignIn, CompleteIn, ReviewIn, RootCauseIn
from workflows.rotation import RotationInput, rotation_workflow_id
from workflows.rotation.workflow import RotationWorkflow
from workflows.sponsorship import CheckIn, ExitRequest, sponsorship_workflow_id
from workflows.survey import SurveyAnswer, survey_workflow_id
from workflows.survey.workflow import SurveyWorkflow
from workflows.ticket.workflow import TicketWorkflow

OUT = Path(__file__).parent / "histories"
AGENT = "agent:history"


async def seed_escalation(env: WorkflowEnvironment, tq: str) -> str:
    handle = await start_ticket(env.client, tq, ticket(await env.get_current_time(), id="H-seed"))
    await env.sleep(timedelta(hours=5, minutes=5))  # ack breach -> tier2; tier2's 4 h -> tier3
    await handle.execute_update(TicketWorkflow.acknowledge, core.Acknowledge(actor=AGENT))
    await handle.execute_update(TicketWorkflow.resolve, core.Resolve(actor=AGENT, summary="app fixed"))
    await handle.execute_update(TicketWorkflow.close, core.Close(actor=AGENT))
    await handle.result()
    return handle.id


async def full_lifecycle(env: WorkflowEnvironment, tq: str) -> str:
    t = ticket(await env.get_current_time(), id="H-lifecycle", description="invoice wrong, we may cancel")
    handle = await start_ticket(env.client, tq, t)
    await handle.execute_update(TicketWorkflow.acknowledge, core.Acknowledge(actor=AGENT))
    await handle.execute_update(TicketWorkflow.assign, core.Assign(actor=AGENT, assignee="agent-1"))
    await handle.execute_update(TicketWorkflow.wait_on_customer, core.WaitOnCustomer(actor=AGENT, reason="need logs"))
    await env.sleep(timedelta(hours=2))
    await handle.signal(TicketWorkflow.customer_replied, core.CustomerReply(message="logs attached"))
    await handle.execute_update(TicketWorkflow.transfer, core.Transfer(actor=AGENT, department="networking"))
    await handle.execute_update(TicketWorkflow.note, core.AddNote(actor=AGENT, text="working on it", public=True))
    await handle.execute_update(TicketWorkflow.change_priority, core.ChangePriority(actor=AGENT, priority="P2"))
    await handle.execute_update(TicketWorkflow.escalate, core.Escalate(actor=AGENT, reason="router bug"))
    await handle.execute_update(TicketWorkflow.resolve, core.Resolve(actor=AGENT, summary="workaround", resolution="workaround"))
    await env.sleep(timedelta(hours=1))
    await handle.execute_update(TicketWorkflow.customer_reply, core.CustomerReply(message="it is back"))
    await handle.execute_update(TicketWorkflow.resolve, core.Resolve(actor=AGENT, summary="firmware fix"))
    await handle.result()  # the reopen window runs out: auto-close
    return handle.id


async def late_reply_follow_up(env: WorkflowEnvironment, tq: str) -> str:
    """Closed while its last notifications are held: a signalled customer message opens a follow-up (a child)."""
    release = asyncio.Event()

    @activity.defn(name="notify")
    async def held_notify(n: core.Notify) -> None:
        await release.wait()

    async with running_worker(env.client, replace_activities=[held_notify]) as held:
        handle = await start_ticket(env.client, held, ticket(await env.get_current_time(), id="H-late-reply"))
        await handle.execute_update(TicketWorkflow.resolve, core.Resolve(actor=AGENT, summary="fixed"))
        await handle.execute_update(TicketWorkflow.close, core.Close(actor=AGENT))
        await handle.signal(TicketWorkflow.customer_replied, core.CustomerReply(message="again", message_id="m-late"))
        follow = env.client.get_workflow_handle(f"ticket-{core.follow_up_id('H-late-reply', 'm-late')}")
        while True:
            try:
                await follow.describe()
                break
            except RPCError:
                await asyncio.sleep(0.2)
        release.set()
        await handle.result()
    return handle.id


async def small_action_answers(env: WorkflowEnvironment, tq: str) -> str:
    """Updates answered with an ActionResult (patch `small-action-answer`), not the state."""
    handle = await start_ticket(env.client, tq, ticket(await env.get_current_time(), id="H-small-answers"))
    await handle.execute_update(TicketWorkflow.acknowledge, core.Acknowledge(actor=AGENT))
    await handle.execute_update(TicketWorkflow.assign, core.Assign(actor=AGENT, assignee="agent-1"))
    await handle.execute_update(TicketWorkflow.note, core.AddNote(actor=AGENT, text="looking", public=False))
    await handle.execute_update(TicketWorkflow.resolve, core.Resolve(actor=AGENT, summary="fixed"))
    await handle.execute_update(TicketWorkflow.close, core.Close(actor=AGENT))
    await handle.result()
    return handle.id


async def bot_hand_off_in_the_past(env: WorkflowEnvironment, tq: str) -> str:
    """A bot's hand-off opened by a named actor two hours back: overdue warnings superseded (patch
    `supersede-due-warnings`), the hand-off and the opener in the timeline (input fields `handoff`, `opened_by`)."""
    now = await env.get_current_time()
    t = ticket(now - timedelta(hours=2), id="H-bot-past", channel="bot", priority="P1")
    bot = core.Handoff(actor="bot:helpbot", reason="customer asked for a human", at=t.opened_at,
                       since=t.opened_at - timedelta(minutes=3))
    handle = await env.client.start_workflow(
        TicketWorkflow.run, core.TicketInput(ticket=t, policy=load_policy(), opened_by="agent:olga", handoff=bot),
        id=core.workflow_id(t.id), task_queue=tq)
    await handle.execute_update(TicketWorkflow.acknowledge, core.Acknowledge(actor=AGENT))
    await handle.execute_update(TicketWorkflow.resolve, core.Resolve(actor=AGENT, summary="link resent"))
    await handle.execute_update(TicketWorkflow.close, core.Close(actor=AGENT))
    await handle.result()
    return handle.id


async def duplicate_replies(env: WorkflowEnvironment, tq: str) -> str:
    """A customer reply retried by Update and by Signal: recorded once (patch `deduplicate-replies`)."""
    handle = await start_ticket(env.client, tq, ticket(await env.get_current_time(), id="H-duplicate-replies"))
    reply = core.CustomerReply(message="logs attached", message_id="m-1")
    await handle.execute_update(TicketWorkflow.customer_reply, reply)
    await handle.execute_update(TicketWorkflow.customer_reply, reply)
    await handle.signal(TicketWorkflow.customer_replied, reply)
    await handle.execute_update(TicketWorkflow.resolve, core.Resolve(actor=AGENT, summary="fixed"))
    await handle.execute_update(TicketWorkflow.close, core.Close(actor=AGENT))
    await handle.result()
    return handle.id


async def people_told(env: WorkflowEnvironment, tq: str) -> str:
    """Real delivery (patch `real-delivery`: prepare + deliver per message), the escalation manager from the rotation
    (patch `escalation-managers`), public replies to the customer and the customer_update status message (patch
    `customer-notices`), an agent's executive request, then a supervisor's executive escalation."""
    data = load_policy().model_dump(mode="json", by_alias=True)
    data["clocks"]["customer_update"]["on_breach"] = "message_customer"
    policy = Policy.model_validate(data)
    t = ticket(await env.get_current_time(), id="H-people-told", customer_id="cust-1001",
               customer_contact="buyer@example.com")
    handle = await start_ticket(env.client, tq, t, policy)
    await handle.execute_update(TicketWorkflow.acknowledge, core.Acknowledge(actor=AGENT))
    await handle.execute_update(TicketWorkflow.note, core.AddNote(actor=AGENT, text="Looking into it.", public=True))
    await env.sleep(timedelta(minutes=40))  # P1: the customer hears back every 30 minutes
    await handle.execute_update(TicketWorkflow.escalate_to_executive, core.EscalateToExecutive(
        actor=AGENT, reason="threatens to cancel", request_only=True))
    await handle.execute_update(TicketWorkflow.assign_manager, core.AssignManager(actor="supervisor:sam", manager="leo"))
    await handle.execute_update(TicketWorkflow.escalate_to_executive, core.EscalateToExecutive(
        actor="supervisor:sam", reason="threatens to cancel"))
    await handle.execute_update(TicketWorkflow.resolve, core.Resolve(actor=AGENT, summary="refund issued"))
    await handle.execute_update(TicketWorkflow.close, core.Close(actor=AGENT))
    await handle.result()
    return handle.id


async def rotation_turns(env: WorkflowEnvironment, tq: str) -> tuple[str, str]:
    """The escalation managers' rotation: three P1 openings take three turns, then its run continues as new
    (RotationWorkflow's first run: a whole history)."""
    first = await env.client.start_workflow(
        RotationWorkflow.run, RotationInput(pool="escalation-managers", turns_per_run=3),
        id=rotation_workflow_id("escalation-managers", tq), task_queue=tq)
    for i in range(3):
        handle = await start_ticket(env.client, tq, ticket(await env.get_current_time(), id=f"H-rotation-{i}"))
        for _ in range(50):
            if (await handle.query(TicketWorkflow.current_state)).escalation_manager:
                break
            await asyncio.sleep(0.1)
    return first.id, first.result_run_id or ""


async def closed_with_survey(env: WorkflowEnvironment, tq: str) -> str:
    """A closed ticket starts its customer's survey (patch `surveys`: an abandoned child SurveyWorkflow); a supervisor's
    executive escalation enrols the account in the sponsorship program (patch `sponsorship`: an activity's
    signal-with-start)."""
    t = ticket(await env.get_current_time(), id="H-survey", customer_id="cust-1001", customer_contact="buyer@example.com")
    handle = await start_ticket(env.client, tq, t)
    await handle.execute_update(TicketWorkflow.escalate_to_executive, core.EscalateToExecutive(
        actor="supervisor:sam", reason="threatens to cancel"))
    await handle.execute_update(TicketWorkflow.resolve, core.Resolve(actor=AGENT, summary="refund issued"))
    await handle.execute_update(TicketWorkflow.close, core.Close(actor=AGENT))
    await handle.result()
    return handle.id


async def survey_answered(env: WorkflowEnvironment, tq: str) -> str:
    """SurveyWorkflow's whole life: sent, answered with a low score (the team is told), completed."""
    t = ticket(await env.get_current_time(), id="H-survey-answer", customer_id="cust-1001",
               customer_contact="buyer@example.com", priority="P3")
    handle = await start_ticket(env.client, tq, t)
    await handle.execute_update(TicketWorkflow.resolve, core.Resolve(actor=AGENT, summary="fixed"))
    await handle.execute_update(TicketWorkflow.close, core.Close(actor=AGENT))
    await handle.result()
    survey = env.client.get_workflow_handle_for(SurveyWorkflow.run, survey_workflow_id(t.id))
    for _ in range(100):
        if (await survey.query(SurveyWorkflow.current_state)).status == "sent":
            break
        await asyncio.sleep(0.05)
    await survey.execute_update(SurveyWorkflow.answer, SurveyAnswer(score=2, comment="slow"))
    await survey.result()
    return survey.id


async def sponsorship_program(env: WorkflowEnvironment, tq: str) -> str:
    """SponsorshipWorkflow: enrolled by hand, reminded when the check-in falls due, checked in, enrolled again by a
    ticket, ended with a reason."""
    sponsorships = SponsorshipClient(env.client, load_policy(), tq, timedelta(seconds=10))
    await sponsorships.enrol("cust-1001", "strategic renewal", by="admin:history")
    await env.sleep(timedelta(days=15))
    await sponsorships.check_in("cust-1001", CheckIn(by="exec:eva", notes="QBR held"))
    await sponsorships.enrol("cust-1001", "escalated again", by="admin:history")
    await sponsorships.exit("cust-1001", ExitRequest(by="admin:history", reason="renewal signed"))
    handle = env.client.get_workflow_handle(sponsorship_workflow_id("cust-1001"))
    await handle.result()
    return handle.id


async def incident_outage(env: WorkflowEnvironment, tq: str) -> str:
    """IncidentWorkflow's whole life: declared, two tickets linked, a status update told to both, the commander
    reminded once (SEV1: 30 minutes), resolved (the tickets resolved with its summary)."""
    incidents = IncidentClient(env.client, load_policy(), tq, timedelta(seconds=10))
    for i in range(2):
        await start_ticket(env.client, tq, ticket(await env.get_current_time(), id=f"H-outage-{i}",
                                                  customer_contact=f"buyer{i}@example.com"))
    await incidents.declare("streaming-eu", "Streaming down in the EU", "SEV1", "agent:mia", "supervisor:history")
    await incidents.link("streaming-eu", LinkRequest(tickets=["H-outage-0", "H-outage-1"], by=AGENT))
    await incidents.post_update("streaming-eu", PostUpdate(text="Restoring the EU cluster.", by="agent:mia"))
    await env.sleep(timedelta(minutes=31))
    await incidents.resolve("streaming-eu", ResolveIncident(summary="EU cluster restored", by="supervisor:history"))
    handle = env.client.get_workflow_handle(incident_workflow_id("streaming-eu"))
    await handle.result()
    return handle.id


async def incident_linked_ticket(env: WorkflowEnvironment, tq: str) -> str:
    """A ticket's side of an incident (the `incident` Signal): linked with the latest update, told a second update,
    a repeated notice ignored, resolved by the incident."""
    t = ticket(await env.get_current_time(), id="H-incident-ticket", customer_contact="buyer@example.com")
    handle = await start_ticket(env.client, tq, t)
    for notice in (
        core.IncidentNotice(actor="incident:login", kind="linked", incident_id="login", title="Login fails", number=1,
                            text="Investigating."),
        core.IncidentNotice(actor="incident:login", kind="update", incident_id="login", title="Login fails", number=2,
                            text="Cause found."),
        core.IncidentNotice(actor="incident:login", kind="update", incident_id="login", title="Login fails", number=2,
                            text="Cause found."),
        core.IncidentNotice(actor="incident:login", kind="resolved", incident_id="login", title="Login fails",
                            text="Fixed.", resolve=True),
    ):
        await handle.signal(TicketWorkflow.incident, notice)
    await handle.execute_update(TicketWorkflow.close, core.Close(actor=AGENT))
    await handle.result()
    return handle.id


async def postmortem_life(env: WorkflowEnvironment, tq: str) -> str:
    """A P1 resolved at Tier 3 starts its post-mortem (patch `postmortems`); the post-mortem's whole life: reminded,
    reviewed, root cause, an action item done, completed, its knowledge-base article published."""
    t = ticket(await env.get_current_time(), id="H-postmortem", customer_contact="buyer@example.com")
    handle = await start_ticket(env.client, tq, t)
    await handle.execute_update(TicketWorkflow.acknowledge, core.Acknowledge(actor=AGENT))
    await handle.execute_update(TicketWorkflow.escalate, core.Escalate(actor=AGENT, to_tier="tier3", reason="eng"))
    await handle.execute_update(TicketWorkflow.resolve, core.Resolve(actor=AGENT, summary="hotfix"))
    pms = PostmortemClient(env.client, timedelta(seconds=10))
    pm_id = "postmortem-ticket-H-postmortem"
    await env.sleep(timedelta(days=1, minutes=5))
    await pms.act(pm_id, "review", ReviewIn(by="agent:mia", notes="held"))
    await pms.act(pm_id, "root_cause", RootCauseIn(by="agent:mia", root_cause="no canary"))
    await pms.act(pm_id, "add_action_item", ActionItemIn(by="agent:mia", text="canary", owner="agent:leo"))
    await pms.act(pm_id, "complete_action_item", 1)
    await pms.act(pm_id, "complete", CompleteIn(by="agent:mia", summary="canaried"))
    handle_pm = env.client.get_workflow_handle(pm_id)
    await handle_pm.result()
    return handle_pm.id


async def severe_ticket_resolved(env: WorkflowEnvironment, tq: str) -> str:
    """The ticket's side: resolved at Tier 3 (starts the post-mortem child), reopened and resolved again (no second),
    closed."""
    t = ticket(await env.get_current_time(), id="H-severe", customer_contact="buyer@example.com")
    handle = await start_ticket(env.client, tq, t)
    await handle.execute_update(TicketWorkflow.acknowledge, core.Acknowledge(actor=AGENT))
    await handle.execute_update(TicketWorkflow.escalate, core.Escalate(actor=AGENT, to_tier="tier3", reason="eng"))
    await handle.execute_update(TicketWorkflow.resolve, core.Resolve(actor=AGENT, summary="hotfix"))
    await handle.execute_update(TicketWorkflow.customer_reply, core.CustomerReply(message="back again"))
    await handle.execute_update(TicketWorkflow.resolve, core.Resolve(actor=AGENT, summary="real fix"))
    await handle.execute_update(TicketWorkflow.close, core.Close(actor=AGENT))
    await handle.result()
    return handle.id


async def _severe_ticket_postmortem(env: WorkflowEnvironment, tq: str, ticket_id: str) -> tuple[PostmortemClient, str]:
    """A ticket resolved at once (a P1 at tier 3: its post-mortem starts), five minutes on."""
    t = ticket(await env.get_current_time(), id=ticket_id, customer_contact="buyer@example.com")
    handle = await start_ticket(env.client, tq, t)
    await handle.execute_update(TicketWorkflow.resolve, core.Resolve(actor=AGENT, summary="hotfix"))
    await env.sleep(timedelta(minutes=5))
    return PostmortemClient(env.client, timedelta(seconds=10)), f"postmortem-ticket-{ticket_id}"


async def _finish_postmortem(env: WorkflowEnvironment, pms: PostmortemClient, pm_id: str, by: str) -> str:
    await pms.act(pm_id, "review", ReviewIn(by=by, notes="held"))
    await pms.act(pm_id, "root_cause", RootCauseIn(by=by, root_cause="no drill"))
    await pms.act(pm_id, "complete", CompleteIn(by=by, summary="drilled"))
    await env.client.get_workflow_handle(pm_id).result()
    return pm_id


async def postmortem_action_item_reminded(env: WorkflowEnvironment, tq: str) -> str:
    """An action item's own reminder (patch `action-item-reminders`): its owner told a day before it is due."""
    pms, pm_id = await _severe_ticket_postmortem(env, tq, "H-pm-reminded")
    await pms.act(pm_id, "add_action_item", ActionItemIn(by="agent:mia", text="drill", owner="agent:leo",
                                                         due_in_days=2))
    await env.sleep(timedelta(days=1, hours=1))
    await pms.act(pm_id, "complete_action_item", 1)
    return await _finish_postmortem(env, pms, pm_id, "agent:mia")


async def postmortem_handed_over(env: WorkflowEnvironment, tq: str) -> str:
    """A post-mortem handed to another owner (the `assign` Update), who gets the next daily reminder."""
    pms, pm_id = await _severe_ticket_postmortem(env, tq, "H-pm-handed")
    await pms.act(pm_id, "assign", AssignIn(by="supervisor:sam", owner="agent:leo"))
    await env.sleep(timedelta(days=1, hours=1))
    return await _finish_postmortem(env, pms, pm_id, "agent:leo")


async def incident_postmortem_with_breaches(env: WorkflowEnvironment, tq: str) -> str:
    """A SEV1 whose linked P1 breached its acknowledgement: the resolution gathers the tickets' breaches (the
    `breaches` query) for the post-mortem, whose id names the declaration to the second (patch
    `postmortem-id-seconds`)."""
    incidents = IncidentClient(env.client, load_policy(), tq, timedelta(seconds=10))
    await start_ticket(env.client, tq, ticket(await env.get_current_time(), id="H-breached",
                                              customer_contact="buyer@example.com"))
    await incidents.declare("payments", "Payments fail", "SEV1", "agent:mia", "supervisor:history")
    await incidents.link("payments", LinkRequest(tickets=["H-breached"], by=AGENT))
    await env.sleep(timedelta(minutes=31))
    await incidents.resolve("payments", ResolveIncident(summary="Processor restored", by="supervisor:history"))
    await env.client.get_workflow_handle(incident_workflow_id("payments")).result()
    return incident_workflow_id("payments")


Scenario = Callable[[WorkflowEnvironment, str], Awaitable[str | tuple[str, str]]]
# Each scenario with the server it needs: time skipping, or the dev server where activities may be held open.
async def _outage_with_reminder(env: WorkflowEnvironment, tq: str, service: str, prefix: str) -> list[str]:
    incidents = IncidentClient(env.client, load_policy(), tq, timedelta(seconds=10))
    ids = [f"{prefix}-{i}" for i in range(2)]
    for tid in ids:
        await start_ticket(env.client, tq, ticket(await env.get_current_time(), id=tid,
                                                  customer_contact=f"{tid.lower()}@example.com"))
    await incidents.declare(service, "Checkout fails", "SEV1", "agent:mia", "supervisor:history")
    await incidents.link(service, LinkRequest(tickets=ids, by=AGENT))
    await env.sleep(timedelta(minutes=31))  # the commander's reminder (in the background: patch)
    await incidents.post_update(service, PostUpdate(text="Failing over to the second processor.", by="agent:mia"))
    await env.sleep(timedelta(minutes=1))
    await incidents.resolve(service, ResolveIncident(summary="Processor restored", by="supervisor:history"))
    await env.client.get_workflow_handle(incident_workflow_id(service)).result()
    return ids


async def incident_reminded_in_background(env: WorkflowEnvironment, tq: str) -> str:
    """The commander's reminder sent in the background (patch `reminders-in-background`), the resolution told by
    Update and the resolved tickets counted."""
    await _outage_with_reminder(env, tq, "checkout", "H-checkout")
    return incident_workflow_id("checkout")


async def ticket_resolved_by_incident_update(env: WorkflowEnvironment, tq: str) -> str:
    """A ticket's side: the incident's resolution arrives as the `incident_resolution` Update."""
    ids = await _outage_with_reminder(env, tq, "checkout", "H-resolved-by-update")
    handle = env.client.get_workflow_handle_for(TicketWorkflow.run, core.workflow_id(ids[0]))  # type: ignore[arg-type]
    await handle.execute_update(TicketWorkflow.close, core.Close(actor=AGENT))
    await handle.result()
    return handle.id


async def ticket_unlinked_from_incident(env: WorkflowEnvironment, tq: str) -> str:
    """Linked, then unlinked: its TicketIncident search attribute cleared (patch `clear-incident`); then closed."""
    incidents = IncidentClient(env.client, load_policy(), tq, timedelta(seconds=10))
    handle = await start_ticket(env.client, tq, ticket(await env.get_current_time(), id="H-unlinked",
                                                       customer_contact="buyer@example.com"))
    await incidents.declare("login", "Login fails", "SEV3", "agent:mia", "supervisor:history")
    await incidents.link("login", LinkRequest(tickets=["H-unlinked"], by=AGENT))
    await env.sleep(timedelta(minutes=1))
    await incidents.unlink("login", LinkRequest(tickets=["H-unlinked"], by=AGENT))
    await env.sleep(timedelta(minutes=1))
    await handle.execute_update(TicketWorkflow.resolve, core.Resolve(actor=AGENT, summary="was not the outage"))
    await handle.execute_update(TicketWorkflow.close, core.Close(actor=AGENT))
    await handle.result()
    return handle.id


async def archive_run(env: WorkflowEnvironment, tq: str) -> str:
    """A scheduled archive run's workflow (started directly: the schedule only starts it), over a terminated ticket;
    the worker's archive activity writes to a temporary folder."""
    handle = await start_ticket(env.client, tq, ticket(await env.get_current_time()))
    await handle.terminate("closed for the archive's history")
    return await _archive_once(env, tq)


async def _archive_once(env: WorkflowEnvironment, tq: str) -> str:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        async with running_worker(env.client, replace_activities=[Archiver(Path(folder), None).archive]) as own_tq:
            result = await env.client.execute_workflow(
                "ArchiveWorkflow", ArchiveRequest(lookback_days=1), id=f"audit-archive-{own_tq}", task_queue=own_tq,
                result_type=ArchiveResult)
        assert result.written >= 1, result
    return f"audit-archive-{own_tq}"


async def policy_migrated(env: WorkflowEnvironment, tq: str) -> str:
    """An admin moves an acknowledged P1 to a policy giving Tier 1 40 minutes (the `migrate_policy` Update): it
    escalates at the new due time, then is resolved and closed."""
    policy = load_policy()
    data = policy.model_dump(mode="json", by_alias=True)
    data["priorities"]["P1"]["tier"]["tier1"] = "40m"
    handle = await start_ticket(env.client, tq, ticket(await env.get_current_time(), id="H-migrated"), policy)
    await handle.execute_update(TicketWorkflow.acknowledge, core.Acknowledge(actor=AGENT))
    await env.sleep(timedelta(minutes=5))
    await handle.execute_update(TicketWorkflow.migrate_policy, core.MigratePolicy(
        actor="admin:history", policy=Policy.model_validate(data), reason="Tier 1 gets 40 minutes"))
    await env.sleep(timedelta(minutes=36))  # the tier clock's new due time passes: Tier 2
    await handle.execute_update(TicketWorkflow.resolve, core.Resolve(actor=AGENT, summary="fixed"))
    await handle.execute_update(TicketWorkflow.close, core.Close(actor=AGENT))
    await handle.result()
    return handle.id


SCENARIOS: list[tuple[Scenario, Callable[[], Awaitable[WorkflowEnvironment]]]] = [
    (seed_escalation, time_skipping_env), (full_lifecycle, time_skipping_env), (late_reply_follow_up, local_env),
    (small_action_answers, time_skipping_env), (bot_hand_off_in_the_past, time_skipping_env),
    (duplicate_replies, time_skipping_env), (people_told, time_skipping_env), (rotation_turns, local_env),
    (closed_with_survey, time_skipping_env), (survey_answered, time_skipping_env),
    (sponsorship_program, time_skipping_env), (incident_outage, time_skipping_env),
    (incident_linked_ticket, time_skipping_env), (postmortem_life, time_skipping_env),
    (severe_ticket_resolved, time_skipping_env), (incident_reminded_in_background, time_skipping_env),
    (ticket_resolved_by_incident_update, time_skipping_env), (ticket_unlinked_from_incident, time_skipping_env),
    (postmortem_action_item_reminded, time_skipping_env), (incident_postmortem_with_breaches, time_skipping_env),
    (postmortem_handed_over, time_skipping_env), (archive_run, local_env), (policy_migrated, time_skipping_env),
]


def _id_and_run(found: str | tuple[str, str]) -> tuple[str, str | None]:
    """A scenario names its workflow (the latest run), or a workflow and one of its runs."""
    return (found, None) if isinstance(found, str) else found


async def encrypted_lifecycle(env: WorkflowEnvironment, tq: str) -> str:
    """The full lifecycle recorded with the codec on: pins the codec's format (an encrypted history of before keeps
    decoding)."""
    return await full_lifecycle(env, tq)


SCENARIOS.append((encrypted_lifecycle, time_skipping_env))


async def metrics_figures(env: WorkflowEnvironment, tq: str) -> str:
    """Under patch `metrics-figures`: the TicketOpenedAt/TicketTags upsert (started without them) and the memo's
    figures upserted as they change (acknowledged, breached and escalated, resolved, reopened, resolved again)."""
    t = ticket(await env.get_current_time(), id="H-metrics", tags=["billing", "refund"])
    handle = await start_ticket(env.client, tq, t)
    await env.sleep(timedelta(hours=1, minutes=5))  # the acknowledge clock breaches: escalated to tier2
    await handle.execute_update(TicketWorkflow.acknowledge, core.Acknowledge(actor=AGENT))
    await handle.execute_update(TicketWorkflow.resolve, core.Resolve(actor=AGENT, summary="refunded"))
    await handle.execute_update(TicketWorkflow.reopen, core.Reopen(actor=AGENT, reason="refund bounced"))
    await handle.execute_update(TicketWorkflow.resolve, core.Resolve(actor=AGENT, summary="refunded again"))
    await handle.execute_update(TicketWorkflow.close, core.Close(actor=AGENT))
    await handle.result()
    return handle.id


SCENARIOS.append((metrics_figures, time_skipping_env))


async def caught_up_after_outage(env: WorkflowEnvironment, tq: str) -> str:
    """Under patch `catch-up-acted-at`: the worker is down across the acknowledgement's deadline (3 s) for about
    12 s; when it is back the ticket escalates once, stamped with both its due time and when the system acted, and
    Tier 2's clock (6 s) starts then; Tier 2's own deadline escalates it to Tier 3 on time. Then it is resolved and
    closed. Real time on the dev server (a deadline is late only if the worker was away)."""
    import asyncio

    from starter.runtime.temporal import build_worker
    from tests.support.workflows import policy_with

    p1 = policy_with(acknowledge="3s", tier={"tier0": "5m", "tier1": "20m", "tier2": "6s", "tier3": "8h"})
    policy = Policy.model_validate({**p1.model_dump(mode="json", by_alias=True), "catch_up": {"late_after": "2s"}})
    own_tq = f"{tq}-outage"
    async with build_worker(env.client, own_tq, max_cached_workflows=0):
        handle = await start_ticket(env.client, own_tq, ticket(await env.get_current_time(), id="H-caught-up"), policy)
        await handle.query(TicketWorkflow.current_state)
    await asyncio.sleep(12)  # no worker: the acknowledgement's deadline passes unseen
    async with build_worker(env.client, own_tq, max_cached_workflows=0):
        for _ in range(300):
            state: core.TicketState = await handle.query(TicketWorkflow.current_state)
            if state.escalation_count >= 2:
                break
            await asyncio.sleep(0.1)
        caught_up = next(e for e in state.timeline if e.action == "escalated")
        assert state.escalation_count == 2 and caught_up.acted_at is not None, state.timeline
        await handle.execute_update(TicketWorkflow.acknowledge, core.Acknowledge(actor=AGENT))
        await handle.execute_update(TicketWorkflow.resolve, core.Resolve(actor=AGENT, summary="back up"))
        await handle.execute_update(TicketWorkflow.close, core.Close(actor=AGENT))
        await handle.result()
    return handle.id


SCENARIOS.append((caught_up_after_outage, local_env))


async def main() -> None:
    for scenario, start_env in SCENARIOS:
        path = OUT / f"{scenario.__name__}.json"
        if path.exists():
            print(f"kept {path} (committed histories are never rewritten)")
            continue
        env = await start_env()
        try:
            async with running_worker(env.client) as tq:
                wf_id, run_id = _id_and_run(await scenario(env, tq))
                history = await env.client.get_workflow_handle(wf_id, run_id=run_id).fetch_history()
            path.write_text(json.dumps(history.to_json_dict(), indent=1) + "\n", encoding="utf-8")
            print(f"wrote {path} ({len(history.events)} events)")
        finally:
            await env.shutdown()


if __name__ == "__main__":
    import os
    import sys

    from tests.support.codec import fixture_ring_json

    os.environ["ESCALATION_CODEC_KEYS"] = fixture_ring_json()  # before anything reads the settings
    asyncio.run(main())
    sys.stdout.flush()
    os._exit(0)  # the SDK's Rust threads may abort interpreter finalisation (see worker.main)
