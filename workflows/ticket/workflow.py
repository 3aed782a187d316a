"""TicketWorkflow: one durable workflow per ticket, a thin shell around the rules (rules.py).

It waits until the next deadline derived from the state (durable timers are
the SLA deadlines), feeds what happened into the pure core, and carries out
the effects the core returns. Agent actions are Updates whose validators run
the core's checks, so a rejected action writes nothing to history.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import MetricCounter, MetricHistogramFloat, TypedSearchAttributes, WorkflowIDReusePolicy
from temporalio.exceptions import ActivityError, ApplicationError, WorkflowAlreadyStartedError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from workflows import ticket as core
    from workflows.common import search_attributes as sa
    from workflows.common import sending as shell
    from workflows.common.delivery import Message
    from workflows.common.policy import Policy, intern_policy
    from workflows.postmortem import subjects as postmortem_subjects
    from workflows.postmortem.state import postmortem_workflow_id
    from workflows.survey import rules as survey
    from workflows.ticket import TicketInput, decide, figures
    from workflows.ticket.views import DUPLICATE, ActionResult, TicketView, action_result, ticket_view

# A customer message signalled to a closed ticket that has not completed yet opens a follow-up ticket (a child
# workflow, abandoned on completion); before this patch it was only logged.
FOLLOW_UP_FROM_LATE_REPLY = "follow-up-from-late-reply"
# An Update answers with an ActionResult (the outcome and the ticket's view with only the entries it added); before
# this patch it answered with the state itself (the ticket, calendar and clocks each time). What the ActionResult
# carries may grow without a patch: an Update's answer is recorded, but replay does not compare it.
SMALL_ACTION_ANSWER = "small-action-answer"
# A customer reply whose message_id the ticket has seen is recorded once and answered as a duplicate; before this
# patch a retried reply was applied again.
DEDUPLICATE_REPLIES = "deduplicate-replies"
# A warning whose breach is also due when the deadlines are caught up is not sent (a ticket opened in the past, a
# worker that was down); before this patch it was sent in the same instant as the breach.
SUPERSEDE_DUE_WARNINGS = "supersede-due-warnings"
# Automatic decisions record when the system acted (`acted_at`) and, under the policy's default, are applied then: a
# tier entered by a late decision gets its full time; before this patch each was applied at its due time (a catch-up
# after an outage could cascade through tiers in one instant).
CATCH_UP_ACTED_AT = "catch-up-acted-at"
# The customer hears of public replies (and of the policy's status updates): before this patch only of the
# opening and the resolution. Decided once, at opening, and kept in the state (continue-as-new carries it).
CUSTOMER_NOTICES = "customer-notices"
# A notification is prepared (roles resolved through the directory, templates rendered: one recorded step) and
# each message delivered on its channel (email, signed webhook, chat, outbox); before this patch the `notify`
# activity wrote it to the outbox. Asked per notification: a ticket running on the code of before keeps the old path
# for the rest of its run (the first answer is remembered for the run).
REAL_DELIVERY = "real-delivery"
# High-priority openings get an escalation manager from the rotation (an activity at opening); before this patch
# none was assigned.
ESCALATION_MANAGERS = "escalation-managers"
# A closed ticket starts its customer's satisfaction survey (a SurveyWorkflow, abandoned child); before this patch
# none was sent.
SURVEYS = "surveys"
# An executive escalation (or a plan or tier the policy names) enrols the account in the executive sponsorship
# program (an activity's signal-with-start of its SponsorshipWorkflow); before this patch nobody was enrolled.
SPONSORSHIP = "sponsorship"
# A severe ticket's resolution (the policy's criteria) starts its post-mortem (an abandoned child
# PostmortemWorkflow); before this patch none was started.
POSTMORTEMS = "postmortems"
# An unlinked ticket's TicketIncident search attribute is cleared (before this patch it kept the incident's service).
CLEAR_INCIDENT = "clear-incident"
# The figures the escalation metrics read: the TicketOpenedAt/TicketTags search attributes (set at start by the
# client; upserted by a ticket started without them) and the memo's `metrics` entry, upserted as it changes (one
# more command in the workflow tasks that change it). Tickets running from before publish neither (README "Metrics").
METRICS_FIGURES = "metrics-figures"
# Tickets opened "now" by a client whose clock runs slightly ahead are fine.
CLOCK_SKEW = timedelta(minutes=5)
# Also None: committed histories whose stand-in activity answered nothing must still replay.
NOTIFY_RESULT: Any = core.NotifyResult | None
NOTIFY_RETRY = shell.NOTIFY_RETRY


# What an Update answers (the state: only in histories from before SMALL_ACTION_ANSWER).
UpdateAnswer = ActionResult | core.TicketState


def rejection(exc: core.Rejected) -> ApplicationError:
    return ApplicationError(exc.message, type=exc.code, non_retryable=True)


@workflow.defn(name="Ticket")
class TicketWorkflow:
    @workflow.init
    def __init__(self, inp: TicketInput) -> None:
        self.policy = intern_policy(inp.policy)
        self.pending: list[core.Effect] = []  # notifications to send
        self.in_flight: set[asyncio.Task[None]] = set()  # notifications being sent (retrying)
        started = workflow.info().typed_search_attributes  # set by the client at start: not upserted again
        self.published: dict[str, object] = {k.name: v for k in (*sa.ALL, *sa.METRICS) if (v := started.get(k)) is not None}
        self.figures_published: dict[str, Any] | None = workflow.memo_value(figures.MEMO_KEY, None, type_hint=dict)
        # timeline entries counted on the worker's meter (a continued run's were counted by the run before)
        self.counted_seq = 0 if inp.state is None else inp.state.seq
        self.figures_on = False  # publishing the metrics' figures (patched, or backfilled by publish_figures)
        self.figures_forced = False  # backfilled: a ticket from before the patch asked to publish them
        self.counters: dict[str, MetricCounter] = {}
        self.histograms: dict[str, MetricHistogramFloat] = {}
        if inp.state is None:
            opened = core.open_ticket(inp.ticket, inp.policy, workflow.now(), opened_by=inp.opened_by, handoff=inp.handoff,
                                      customer_notices=workflow.patched(CUSTOMER_NOTICES),
                                      find_manager=workflow.patched(ESCALATION_MANAGERS))
            self.state, self.pending = opened.state, list(opened.effects)
        else:
            self.state = inp.state
        self.changed = False
        self.late_replies: list[core.CustomerReply] = []  # signalled after closing; each opens a follow-up ticket

    @workflow.run
    async def run(self, inp: TicketInput) -> core.TicketState:
        if inp.state is None and inp.ticket.opened_at > workflow.now() + CLOCK_SKEW:
            raise ApplicationError(f"opened_at {inp.ticket.opened_at.isoformat()} is in the future",
                                   type="invalid_opened_at", non_retryable=True)
        while True:
            self._apply_due()
            self._publish_search_attributes()
            self._count_new_entries()
            self._send_notifications()
            if self.state.closed:
                break
            if workflow.info().is_continue_as_new_suggested() and self._idle():
                workflow.continue_as_new(TicketInput(ticket=self.state.ticket, policy=self.policy, state=self.state))
            await self._wait_for_news()
        if workflow.patched(SURVEYS):
            await self._start_survey()
        # Closed, but still running until its last notifications are out: a customer message signalled now must
        # not be lost, so it opens the follow-up ticket that a message after completion would.
        while True:
            await workflow.wait_condition(lambda: self._idle() or bool(self.late_replies))
            if not self.late_replies:
                return self.state
            await self._open_follow_up(self.late_replies.pop(0))

    def _idle(self) -> bool:
        return workflow.all_handlers_finished() and not self.pending and not self.in_flight

    async def _wait_for_news(self) -> None:
        wait = decide.next_wait(self.state, self.policy, workflow.now())
        timeout = None if wait is None else wait[0]
        with contextlib.suppress(asyncio.TimeoutError):
            await workflow.wait_condition(lambda: self.changed or bool(self.pending), timeout=timeout)
        self.changed = False

    def _apply_due(self) -> None:
        self._record(figures.lateness(self.state, self.policy, workflow.now()))
        caught_up = decide.due_caught_up(self.state, workflow.now(), self.policy,
                                         supersede=lambda: workflow.patched(SUPERSEDE_DUE_WARNINGS),
                                         acted_at=lambda: workflow.patched(CATCH_UP_ACTED_AT))
        if caught_up is None:
            return
        self.state = caught_up.state
        self.pending += caught_up.effects

    def _send_notifications(self) -> None:
        """Carry out the effects in the background: one that retries never holds up the SLA timers."""
        for effect in self.pending:
            task = asyncio.create_task(self._carry_out(effect))
            self.in_flight.add(task)
            task.add_done_callback(self.in_flight.discard)
        self.pending = []

    async def _prepare_and_deliver(self, n: core.Notify) -> None:
        """Who and what decided once (recorded), then each message delivered on its own under its own key."""
        try:
            prepared = await shell.prepare(core.prepare_input(self.state, n, workflow.now()))
        except ActivityError as exc:
            self.state = core.notification_failed(self.state, n, workflow.now(), shell.failure(exc))
            self.changed = True
            return
        self.state = core.notification_prepared(self.state, n, prepared, workflow.now())
        self.changed = True
        await shell.deliver_all(prepared, self._delivery_failed)

    def _delivery_failed(self, m: Message, error: str) -> None:
        """Refused (final), or still failing after a day: recorded, never fatal."""
        self.state = core.delivery_failed(self.state, m, workflow.now(), error)
        self.changed = True

    async def _carry_out(self, effect: core.Effect) -> None:
        if isinstance(effect, core.Notify):
            await self._notify(effect)
        elif isinstance(effect, core.EnrolSponsorship):
            await self._enrol_sponsorship(effect)
        elif isinstance(effect, core.StartPostmortem):
            await self._start_postmortem()
        else:
            await self._find_manager(effect)

    async def _enrol_sponsorship(self, e: core.EnrolSponsorship) -> None:
        """The account enters the sponsorship program: an activity's signal-with-start (the sponsorship's id is
        the account's; workflow code starts nothing it would not own)."""
        if not workflow.patched(SPONSORSHIP):  # histories from before: nobody was enrolled
            return
        try:
            sponsor = await workflow.execute_activity(
                "enrol_sponsorship", e, start_to_close_timeout=timedelta(seconds=30),
                schedule_to_close_timeout=timedelta(hours=1), retry_policy=NOTIFY_RETRY, result_type=str | None,  # type: ignore[arg-type]
            )
        except ActivityError as exc:
            self.state = core.sponsorship_not_enrolled(self.state, e, workflow.now(), shell.failure(exc))
        else:
            self.state = core.sponsorship_enrolled(self.state, e, sponsor, workflow.now())
        self.changed = True

    async def _find_manager(self, e: core.FindEscalationManager) -> None:
        """Whose turn it is among the escalation managers on duty (None: nobody on duty; the timeline says so)."""
        try:
            manager = await workflow.execute_activity(
                "assign_escalation_manager", e, start_to_close_timeout=timedelta(seconds=30),
                schedule_to_close_timeout=timedelta(hours=1), retry_policy=NOTIFY_RETRY, result_type=str | None,  # type: ignore[arg-type]
            )
        except ActivityError as exc:
            manager, why = None, str(exc.cause or exc)
        else:
            why = "no escalation manager on duty"
        if self.state.closed or self.state.escalation_manager is not None:  # closed, or a supervisor chose meanwhile
            return
        if manager is None:
            self.state = core.no_manager_found(self.state, e, workflow.now(), why)
            self.changed = True
            return
        self._apply(core.AssignManager(actor="system:rotation", manager=manager))

    async def _notify(self, n: core.Notify) -> None:
        if workflow.patched(REAL_DELIVERY):
            await self._prepare_and_deliver(n)
            return
        try:
            await workflow.execute_activity(
                "notify", n, start_to_close_timeout=timedelta(seconds=30), schedule_to_close_timeout=timedelta(days=1),
                retry_policy=NOTIFY_RETRY, result_type=NOTIFY_RESULT,
            )
        except ActivityError as exc:  # retried for a day: record it, never fail the ticket over it
            self.state = core.notification_failed(self.state, n, workflow.now(), str(exc.cause or exc))
            self.changed = True

    async def _start_postmortem(self) -> None:
        """A severe ticket's post-mortem: a workflow of its own that outlives the ticket (abandoned child), started
        once (the id is the ticket's; a second start finds it)."""
        if not workflow.patched(POSTMORTEMS) or self.state.postmortem_id is not None:
            return
        inp = postmortem_subjects.for_ticket(self.state, self.policy)
        pm_id = postmortem_workflow_id("ticket", inp.subject_id)
        with contextlib.suppress(WorkflowAlreadyStartedError):
            await workflow.start_child_workflow(
                "PostmortemWorkflow", inp, id=pm_id, id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                parent_close_policy=ParentClosePolicy.ABANDON)
        self.state = core.postmortem_started(self.state, pm_id, workflow.now())
        self.changed = True

    async def _start_survey(self) -> None:
        """The customer is asked how it went: a workflow of its own, which outlives the ticket (abandoned child)."""
        inp = survey.survey_input(self.state, self.policy, workflow.now())
        if inp is None:
            return
        with contextlib.suppress(WorkflowAlreadyStartedError):
            await workflow.start_child_workflow(
                "SurveyWorkflow", inp, id=survey.survey_workflow_id(inp.ticket_id),
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE, parent_close_policy=ParentClosePolicy.ABANDON)
        self.state = survey.survey_started(self.state, inp, workflow.now())

    async def _open_follow_up(self, reply: core.CustomerReply) -> None:
        if not workflow.patched(FOLLOW_UP_FROM_LATE_REPLY):  # histories from before: such a reply was only logged
            workflow.logger.warning("ticket %s: customer reply after close ignored", self.state.ticket.id)
            return
        follow = core.follow_up_ticket(self.state, reply, workflow.now())
        opened = core.open_ticket(follow, self.policy, workflow.now()).state
        with contextlib.suppress(WorkflowAlreadyStartedError):  # the same message again: its follow-up exists
            await workflow.start_child_workflow(
                TicketWorkflow.run, TicketInput(ticket=follow, policy=self.policy), id=core.workflow_id(follow.id),
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE, parent_close_policy=ParentClosePolicy.ABANDON,
                search_attributes=TypedSearchAttributes(sa.pairs(core.search_attributes(opened))),
                memo=core.list_memo(follow),
            )
        self.state = core.follow_up_opened(self.state, reply, follow.id, workflow.now())

    def _publish_search_attributes(self) -> None:
        values = core.search_attributes(self.state)
        if self.published.get(sa.INCIDENT.name) and sa.INCIDENT.name not in values and workflow.patched(
                CLEAR_INCIDENT):
            values[sa.INCIDENT.name] = ""  # unlinked: listed under no incident any more
        metrics = self.figures_forced or workflow.patched(METRICS_FIGURES)
        self.figures_on = metrics
        if metrics:
            values.update(figures.search_attributes(self.state))
        changed = sa.updates(values, self.published)
        if changed:
            workflow.upsert_search_attributes(changed)
            self.published = values
        if metrics and (memo := figures.memo(self.state)) != self.figures_published:
            workflow.upsert_memo({figures.MEMO_KEY: memo})
            self.figures_published = memo

    # ----- the worker's Prometheus meter (the SDK records nothing while replaying) ----------------

    def _count_new_entries(self) -> None:
        new = [e for e in self.state.timeline if e.seq > self.counted_seq]
        self.counted_seq = self.state.seq
        self._record(figures.counts(self.state, new))

    def _record(self, counts: list[figures.Count]) -> None:
        for c in counts:
            if c.name in figures.HISTOGRAMS:
                histogram = self.histograms.get(c.name)
                if histogram is None:
                    histogram = workflow.metric_meter().create_histogram_float(c.name, figures.HISTOGRAMS[c.name], "s")
                    self.histograms[c.name] = histogram
                histogram.record(c.value, additional_attributes=c.labels)
            else:
                counter = self.counters.get(c.name)
                if counter is None:
                    counter = workflow.metric_meter().create_counter(c.name, figures.COUNTERS[c.name])
                    self.counters[c.name] = counter
                counter.add(int(c.value), additional_attributes=c.labels)

    # ----- applying events ---------------------------------------------------------

    def _check(self, event: core.Event) -> None:
        state = self.state
        if core.next_due(state, workflow.now(), self.policy) is not None:
            state = core.catch_up(state, workflow.now(), self.policy).state
        try:
            core.check(state, event, self.policy)
        except core.Rejected as exc:
            raise rejection(exc) from None

    def _apply(self, event: core.Event) -> list[core.TimelineEntry]:
        """Apply an action (a deadline that passed comes first); return the timeline entries it added."""
        seen = self.state.seq
        self._apply_due()  # a deadline that passed comes first, as it did in the real world
        try:
            out = core.step(self.state, event, workflow.now(), self.policy)
        except core.Rejected as exc:  # only if the catch-up changed what was validated
            raise rejection(exc) from None
        self.state, self.changed = out.state, True
        self.pending += out.effects
        workflow.logger.info("ticket %s: %s by %s", self.state.ticket.id, event.type, event.actor)
        return decide.added_since(self.state, seen)

    def _repeated(self, event: core.Event) -> bool:
        """A customer reply this ticket has applied before (by message_id): not applied again."""
        return (isinstance(event, core.CustomerReply) and core.reply_seen(self.state, event.message_id)
                and workflow.patched(DEDUPLICATE_REPLIES))  # histories from before applied it again

    def _act(self, event: core.Event) -> UpdateAnswer:
        """An agent action's answer. Only the entries the action added: returning the whole timeline would put
        it into the history again with each answer (quadratic growth for long tickets)."""
        if self._repeated(event):
            return action_result(self.state, DUPLICATE, [], workflow.now())
        added = self._apply(event)
        # histories from before answered with the state
        return decide.action_answer(self.state, event.type, added, workflow.now(),
                                    small=workflow.patched(SMALL_ACTION_ANSWER))

    # ----- agent actions: updates with validators ---------------------------------

    @workflow.update(name="acknowledge")
    def acknowledge(self, e: core.Acknowledge) -> UpdateAnswer:
        return self._act(e)

    @acknowledge.validator
    def _v_acknowledge(self, e: core.Acknowledge) -> None:
        self._check(e)

    @workflow.update(name="escalate")
    def escalate(self, e: core.Escalate) -> UpdateAnswer:
        return self._act(e)

    @escalate.validator
    def _v_escalate(self, e: core.Escalate) -> None:
        self._check(e)

    @workflow.update(name="escalate_to_executive")
    def escalate_to_executive(self, e: core.EscalateToExecutive) -> UpdateAnswer:
        return self._act(e)

    @escalate_to_executive.validator
    def _v_escalate_to_executive(self, e: core.EscalateToExecutive) -> None:
        self._check(e)

    @workflow.update(name="transfer")
    def transfer(self, e: core.Transfer) -> UpdateAnswer:
        return self._act(e)

    @transfer.validator
    def _v_transfer(self, e: core.Transfer) -> None:
        self._check(e)

    @workflow.update(name="wait_on_customer")
    def wait_on_customer(self, e: core.WaitOnCustomer) -> UpdateAnswer:
        return self._act(e)

    @wait_on_customer.validator
    def _v_wait_on_customer(self, e: core.WaitOnCustomer) -> None:
        self._check(e)

    @workflow.update(name="resolve")
    def resolve(self, e: core.Resolve) -> UpdateAnswer:
        return self._act(e)

    @resolve.validator
    def _v_resolve(self, e: core.Resolve) -> None:
        self._check(e)

    @workflow.update(name="reopen")
    def reopen(self, e: core.Reopen) -> UpdateAnswer:
        return self._act(e)

    @reopen.validator
    def _v_reopen(self, e: core.Reopen) -> None:
        self._check(e)

    @workflow.update(name="close")
    def close(self, e: core.Close) -> UpdateAnswer:
        return self._act(e)

    @close.validator
    def _v_close(self, e: core.Close) -> None:
        self._check(e)

    @workflow.update(name="assign")
    def assign(self, e: core.Assign) -> UpdateAnswer:
        return self._act(e)

    @assign.validator
    def _v_assign(self, e: core.Assign) -> None:
        self._check(e)

    @workflow.update(name="assign_manager")
    def assign_manager(self, e: core.AssignManager) -> UpdateAnswer:
        return self._act(e)

    @assign_manager.validator
    def _v_assign_manager(self, e: core.AssignManager) -> None:
        self._check(e)

    @workflow.update(name="note")
    def note(self, e: core.AddNote) -> UpdateAnswer:
        return self._act(e)

    @note.validator
    def _v_note(self, e: core.AddNote) -> None:
        self._check(e)

    @workflow.update(name="change_priority")
    def change_priority(self, e: core.ChangePriority) -> UpdateAnswer:
        return self._act(e)

    @change_priority.validator
    def _v_change_priority(self, e: core.ChangePriority) -> None:
        self._check(e)

    @workflow.update(name="customer_reply")
    def customer_reply(self, e: core.CustomerReply) -> UpdateAnswer:
        return self._act(e)

    @customer_reply.validator
    def _v_customer_reply(self, e: core.CustomerReply) -> None:
        self._check(e)

    # ----- customer and system events: signals; reads: query ----------------------

    @workflow.signal(name="customer_replied")
    def customer_replied(self, e: core.CustomerReply) -> None:
        if self.state.closed:
            self.late_replies.append(e)
            return
        if self._repeated(e):
            workflow.logger.info("ticket %s: customer reply %s received before", self.state.ticket.id, e.message_id)
            return
        try:
            self._apply(e)
        except ApplicationError as exc:  # a signal cannot be refused; record why it was ignored
            workflow.logger.warning("ticket %s: customer reply ignored: %s", self.state.ticket.id, exc)

    @workflow.signal(name="incident")
    def incident(self, e: core.IncidentNotice) -> None:
        """An incident's notice (its fan-out activity signals every linked ticket; a repeat changes nothing)."""
        if self.state.closed:
            workflow.logger.info("ticket %s: closed, incident %s %s skipped", self.state.ticket.id, e.incident_id, e.kind)
            return
        try:
            self._apply(e)
        except ApplicationError as exc:  # a signal cannot be refused; record why it was ignored
            workflow.logger.warning("ticket %s: incident notice ignored: %s", self.state.ticket.id, exc)

    @workflow.update(name="incident_resolution")
    def incident_resolution(self, e: core.IncidentNotice) -> bool:
        """The incident's resolution, told by Update (not Signal) so that the incident learns whether it resolved
        this ticket and can count them; applied as the Signal is, once. True: resolved by that incident."""
        self.incident(e)
        return core.resolved_by(self.state, e.actor)

    # ----- an explicit move to another policy version (admins) -------------------

    @workflow.update(name="migrate_policy")
    def migrate_policy(self, inp: core.MigratePolicy) -> core.MigrationPlan:
        """Move the ticket to the policy snapshot given: clocks keep their accrued time, the run loop waits on the
        deadlines the new policy sets (it re-reads them once `changed`), continue-as-new carries the new snapshot."""
        self._apply_due()  # the old policy's deadlines due by now stand, as they did in the real world
        try:
            out = core.migrate(self.state, self.policy, inp.policy, workflow.now(), inp.actor, inp.reason,
                               inp.from_version)
        except core.Rejected as exc:  # only if the catch-up changed what was validated
            raise rejection(exc) from None
        self.state, self.policy, self.changed = out.state, intern_policy(inp.policy), True
        workflow.logger.info("ticket %s: policy %s -> %s by %s", self.state.ticket.id, out.plan.from_version,
                             out.plan.to_version, inp.actor)
        return out.plan

    @migrate_policy.validator
    def _v_migrate_policy(self, inp: core.MigratePolicy) -> None:
        state = self.state
        if core.next_due(state, workflow.now(), self.policy) is not None:
            state = core.catch_up(state, workflow.now(), self.policy).state
        try:
            core.check_migration(state, inp.policy, inp.from_version)
        except core.Rejected as exc:
            raise rejection(exc) from None

    @workflow.update(name="publish_figures")
    def publish_figures(self, actor: str) -> bool:
        """The metrics' backfill for a ticket running from before `metrics-figures` (it answers that patch with
        false for the rest of its run): publish the figures now and as they change. Replay-safe without a patch:
        only histories that hold this Update run it, always at the same point. False: published already."""
        if self.figures_on:
            return False
        workflow.logger.info("ticket %s: metrics figures backfilled by %s", self.state.ticket.id, actor)
        self.figures_forced = True
        self._publish_search_attributes()
        return True

    @workflow.query(name="state")
    def current_state(self) -> core.TicketState:
        return self.state

    @workflow.query(name="breaches")
    def current_breaches(self) -> list[core.Breach]:
        """The SLA breaches so far (an incident's post-mortem gathers its tickets')."""
        return self.state.breaches

    @workflow.query(name="view")
    def current_view(self) -> TicketView:
        """The view as of the workflow's last activation (workflow time does not move in a query)."""
        return ticket_view(self.state, workflow.now())

    @workflow.query(name="policy_snapshot")
    def policy_snapshot(self) -> Policy:
        return self.policy


def update_names() -> dict[str, Any]:
    """Action name -> update method, for clients that dispatch by name (each action's Update is named after it)."""
    return {name: getattr(TicketWorkflow, name) for name in core.ACTIONS}
