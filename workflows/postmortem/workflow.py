"""PostmortemWorkflow: one per ticket or incident that ended severely, a thin shell around `rules`.

Started as an abandoned child when its subject is resolved (it outlives the ticket, whose workflow completes and then
accepts nothing). It waits for the owner's steps (Updates whose validators refuse what is not allowed yet), reminds the
owner until completion, tells the escalation managers of overdue steps and action items, and on completion publishes
the knowledge-base article (an activity) before it completes."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from workflows.common import sending as shell
    from workflows.postmortem import rules
    from workflows.postmortem.state import (
        ActionItemIn,
        AssignIn,
        CompleteIn,
        PostmortemInput,
        PostmortemState,
        ReviewIn,
        RootCauseIn,
    )
    from workflows.ticket.events import Rejected


# Due dates on a 24x7 calendar count whole days (before: they fell on the start, so every step was overdue at once).
WHOLE_DAYS_24X7 = "whole-days-24x7"
# Each action item has its own reminder timer (its owner is reminded before it is due, until done). The patch's answer
# holds for the rest of a run: a post-mortem that had an item added before it reminds for none of its items.
ACTION_ITEM_REMINDERS = "action-item-reminders"


def rejection(exc: Rejected) -> ApplicationError:
    return ApplicationError(exc.message, type=exc.code, non_retryable=True)


@workflow.defn(name="PostmortemWorkflow")
class PostmortemWorkflow:
    @workflow.init
    def __init__(self, inp: PostmortemInput) -> None:
        self.inp = inp
        self.state = rules.begin(inp, workflow.now(), whole_days_24x7=workflow.patched(WHOLE_DAYS_24X7))
        self.changed = False
        self.sending: set[asyncio.Task[None]] = set()

    @workflow.run
    async def run(self, inp: PostmortemInput) -> PostmortemState:
        while self.state.status == "open":
            self.state, notices = rules.on_time(self.state, workflow.now(), inp)
            for n in notices:
                self.state = self.state.model_copy(update={"notices": self.state.notices + 1})
                task = asyncio.create_task(self._notify(rules.prepare_input(self.state, n, workflow.now(), inp)))
                self.sending.add(task)
                task.add_done_callback(self.sending.discard)
            deadline = rules.next_deadline(self.state)
            timeout = max(deadline - workflow.now(), timedelta(milliseconds=1)) if deadline else None
            with contextlib.suppress(asyncio.TimeoutError):
                await workflow.wait_condition(lambda: self.changed, timeout=timeout)
            self.changed = False
        try:
            path = await workflow.execute_activity(
                "publish_kb_article", args=[self.state.id, rules.article(self.state)],
                start_to_close_timeout=timedelta(seconds=30), schedule_to_close_timeout=timedelta(days=1),
                retry_policy=shell.NOTIFY_RETRY, result_type=str)
        except ActivityError as exc:  # still failing after a day: the post-mortem is complete all the same
            workflow.logger.warning("post-mortem %s: article not published: %s", self.state.id, shell.failure(exc))
            self.state = self.state.model_copy(update={"kb_error": shell.failure(exc)[:500]})
        else:
            self.state = self.state.model_copy(update={"kb_article": path})
        await workflow.wait_condition(lambda: workflow.all_handlers_finished() and not self.sending)
        return self.state

    async def _notify(self, n: object) -> None:
        try:
            prepared = await shell.prepare(n)  # type: ignore[arg-type]
        except ActivityError as exc:
            workflow.logger.warning("post-mortem %s: notice not prepared: %s", self.state.id, shell.failure(exc))
            return
        await shell.deliver_all(prepared, lambda m, error: workflow.logger.warning(
            "post-mortem %s: notice to %s not delivered: %s", self.state.id, m.recipient_id, error))

    def _guard(self, check: object) -> None:
        try:
            check()  # type: ignore[operator]
        except Rejected as exc:
            raise rejection(exc) from None

    @workflow.update(name="review")
    def review(self, r: ReviewIn) -> PostmortemState:
        self.state, self.changed = rules.hold_review(self.state, r, workflow.now()), True
        return self.state

    @review.validator
    def _v_review(self, r: ReviewIn) -> None:
        self._guard(lambda: rules.check_open(self.state))

    @workflow.update(name="root_cause")
    def root_cause(self, r: RootCauseIn) -> PostmortemState:
        self.state, self.changed = rules.record_root_cause(self.state, r, workflow.now()), True
        return self.state

    @root_cause.validator
    def _v_root_cause(self, r: RootCauseIn) -> None:
        self._guard(lambda: rules.check_open(self.state))

    @workflow.update(name="add_action_item")
    def add_action_item(self, a: ActionItemIn) -> PostmortemState:
        self.state, self.changed = rules.add_action_item(self.state, a, workflow.now(), self.inp,
                                                         reminders=workflow.patched(ACTION_ITEM_REMINDERS)), True
        return self.state

    @add_action_item.validator
    def _v_add_action_item(self, a: ActionItemIn) -> None:
        self._guard(lambda: rules.check_open(self.state))

    @workflow.update(name="complete_action_item")
    def complete_action_item(self, number: int) -> PostmortemState:
        self.state, self.changed = rules.complete_action_item(self.state, number, workflow.now()), True
        return self.state

    @complete_action_item.validator
    def _v_complete_action_item(self, number: int) -> None:
        self._guard(lambda: rules.check_action_item(self.state, number))

    @workflow.update(name="assign")
    def assign(self, a: AssignIn) -> PostmortemState:
        """A new Update (no recorded history has it): the owner's reminders go to the new owner from the next one."""
        self.state, self.changed = rules.assign_owner(self.state, a, workflow.now()), True
        return self.state

    @assign.validator
    def _v_assign(self, a: AssignIn) -> None:
        self._guard(lambda: rules.check_assign(self.state, a))

    @workflow.update(name="complete")
    def complete(self, c: CompleteIn) -> PostmortemState:
        self.state, self.changed = rules.complete(self.state, c, workflow.now()), True
        return self.state

    @complete.validator
    def _v_complete(self, c: CompleteIn) -> None:
        self._guard(lambda: rules.check_complete(self.state))

    @workflow.query(name="state")
    def current_state(self) -> PostmortemState:
        return self.state
