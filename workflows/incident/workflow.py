"""IncidentWorkflow: one per affected service (id `incident-<service>`), a thin shell around `rules`.

Declared by the client (start with USE_EXISTING: a second declare for the service answers with the open one). Link,
unlink, status updates and resolution are Updates whose validators refuse them once resolved. What linked tickets
must hear goes out through the `fan_out_incident` activity in bounded batches, one batch at a time and in order
(each ticket applies a notice once, by incident and update number, so a batch retried after a crash tells nobody
twice). The commander is reminded when no update went out for the policy's cadence. A long incident continues as
new; resolving completes it once every linked ticket was told."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

from temporalio import workflow
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import ActivityError, ApplicationError, WorkflowAlreadyStartedError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from workflows.common import sending as shell
    from workflows.common.delivery import PrepareInput
    from workflows.incident import rules
    from workflows.incident.state import (
        FanOut,
        FanOutResult,
        IncidentInput,
        IncidentState,
        IncidentUpdate,
        LinkRequest,
        PostUpdate,
        ResolveIncident,
    )
    from workflows.postmortem import subjects
    from workflows.postmortem.state import postmortem_workflow_id
    from workflows.ticket.events import Rejected


# The commander's reminder is sent in the background: a reminder still retrying (the commander's mail server down)
# no longer holds up the fan-out of the updates queued behind it. Before this patch it was awaited in the loop.
REMINDERS_IN_BACKGROUND = "reminders-in-background"
# The incident's post-mortem id names its declaration to the second (before: to the minute, shared by a service's
# incidents declared within one minute).
POSTMORTEM_ID_SECONDS = "postmortem-id-seconds"


def rejection(exc: Rejected) -> ApplicationError:
    return ApplicationError(exc.message, type=exc.code, non_retryable=True)


@workflow.defn(name="IncidentWorkflow")
class IncidentWorkflow:
    @workflow.init
    def __init__(self, inp: IncidentInput) -> None:
        self.inp = inp
        self.state = rules.declare(inp, workflow.now())
        self.queue: list[FanOut] = []  # batches to tell, in order
        self.reminding: set[asyncio.Task[None]] = set()  # reminders being sent (retrying)
        self.changed = False

    @workflow.run
    async def run(self, inp: IncidentInput) -> IncidentState:
        while True:
            if self.queue:
                await self._tell(self.queue.pop(0))
                continue
            if self.state.status == "resolved":
                await workflow.wait_condition(lambda: workflow.all_handlers_finished() and not self.reminding)
                if not self.queue:
                    await self._start_postmortem()
                    return self.state
                continue
            if rules.reminder_due(self.state, workflow.now()):
                self.state, notice = rules.remind(self.state, workflow.now(), self.inp)  # the next one is set now
                if workflow.patched(REMINDERS_IN_BACKGROUND):
                    task = asyncio.create_task(self._remind(notice))
                    self.reminding.add(task)
                    task.add_done_callback(self.reminding.discard)
                else:
                    await self._remind(notice)
                continue
            if self._long() and workflow.all_handlers_finished() and not self.reminding:
                workflow.continue_as_new(inp.model_copy(update={"state": self.state}))
            await self._wait()

    def _long(self) -> bool:
        info = workflow.info()
        return info.is_continue_as_new_suggested() or info.get_current_history_length() > self.inp.events_per_run

    async def _wait(self) -> None:
        due = self.state.next_reminder_at
        timeout = max(due - workflow.now(), timedelta(milliseconds=1)) if due else None
        with contextlib.suppress(asyncio.TimeoutError):
            await workflow.wait_condition(lambda: self.changed or bool(self.queue), timeout=timeout)
        self.changed = False

    async def _tell(self, batch: FanOut) -> None:
        try:
            result = await workflow.execute_activity(
                "fan_out_incident", batch, start_to_close_timeout=timedelta(minutes=2),
                heartbeat_timeout=timedelta(seconds=10), schedule_to_close_timeout=timedelta(hours=6),
                retry_policy=shell.NOTIFY_RETRY, result_type=FanOutResult)
        except ActivityError as exc:  # still failing after hours: recorded, the incident goes on
            # nobody's breaches were read: the post-mortem's draft says so rather than "none"
            result = FanOutResult(breaches_unread=len(batch.tickets) if batch.kind == "resolved" else 0)
            workflow.logger.warning("incident %s: %s not told: %s", self.state.id, batch.kind, shell.failure(exc))
        self.state = rules.fanned_out(self.state, batch, result, workflow.now())

    async def _start_postmortem(self) -> None:
        """A severe incident ends in a post-mortem (the policy's severities), which outlives it."""
        if self.inp.postmortem is None or self.state.postmortem_id is not None:
            return
        inp = subjects.for_incident(self.state, self.inp.postmortem, seconds=workflow.patched(POSTMORTEM_ID_SECONDS))
        pm_id = postmortem_workflow_id("incident", inp.subject_id)
        with contextlib.suppress(WorkflowAlreadyStartedError):
            await workflow.start_child_workflow(
                "PostmortemWorkflow", inp, id=pm_id, id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                parent_close_policy=ParentClosePolicy.ABANDON)
        self.state = rules.postmortem_started(self.state, pm_id, workflow.now())

    async def _remind(self, notice: PrepareInput) -> None:
        try:
            prepared = await shell.prepare(notice)
        except ActivityError as exc:
            workflow.logger.warning("incident %s: reminder not prepared: %s", self.state.id, shell.failure(exc))
            return
        await shell.deliver_all(prepared, lambda m, error: workflow.logger.warning(
            "incident %s: reminder to %s not delivered: %s", self.state.id, m.recipient_id, error))

    def _enqueue(self, f: FanOut | None) -> None:
        if f is not None:
            self.queue = rules.enqueue(self.queue, f, self.inp.batch_size)
        self.changed = True

    def _check(self) -> None:
        try:
            rules.check_open(self.state)
        except Rejected as exc:
            raise rejection(exc) from None

    @workflow.update(name="link")
    def link(self, r: LinkRequest) -> list[str]:
        """The tickets newly linked (those linked already are left as they are)."""
        self.state, new, notice = rules.link(self.state, r, workflow.now())
        self._enqueue(notice)
        return new

    @link.validator
    def _v_link(self, r: LinkRequest) -> None:
        self._check()

    @workflow.update(name="unlink")
    def unlink(self, r: LinkRequest) -> list[str]:
        self.state, gone, notice = rules.unlink(self.state, r, workflow.now())
        self._enqueue(notice)
        return gone

    @unlink.validator
    def _v_unlink(self, r: LinkRequest) -> None:
        self._check()

    @workflow.update(name="post_update")
    def post_update(self, u: PostUpdate) -> IncidentUpdate:
        self.state, update, notice = rules.post_update(self.state, u, workflow.now(), self.inp)
        self._enqueue(notice)
        return update

    @post_update.validator
    def _v_post_update(self, u: PostUpdate) -> None:
        self._check()

    @workflow.update(name="resolve")
    def resolve(self, r: ResolveIncident) -> IncidentState:
        self.state, notice = rules.resolve(self.state, r, workflow.now(), self.inp)
        self._enqueue(notice)
        return self.state

    @resolve.validator
    def _v_resolve(self, r: ResolveIncident) -> None:
        self._check()

    @workflow.query(name="state")
    def current_state(self) -> IncidentState:
        return self.state
