"""SponsorshipWorkflow: one per customer account (id `sponsorship-<account>`), a thin shell around `rules`.

Entered by signal-with-start (`enrol`) from the ticket's activity or the client; it waits for the next check-in or
the quiet period's end (durable timers), reminds the sponsor, takes check-ins and an exit as Updates whose
validators refuse them once it has ended (nothing is written then), and continues as new when its history grows
long. It completes when the sponsorship ends; a later enrolment starts a new run under the same id
(id reuse policy ALLOW_DUPLICATE, see `SPONSORSHIP_ID_REUSE`)."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

from temporalio import workflow
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from workflows.common import sending as shell
    from workflows.sponsorship import rules
    from workflows.sponsorship.state import CheckIn, Enrolment, ExitRequest, SponsorshipInput, SponsorshipState
    from workflows.ticket.events import Rejected

# After an exit (the run completed), a new enrolment starts a new run; a running one is signalled.
SPONSORSHIP_ID_REUSE = WorkflowIDReusePolicy.ALLOW_DUPLICATE


def rejection(exc: Rejected) -> ApplicationError:
    return ApplicationError(exc.message, type=exc.code, non_retryable=True)


@workflow.defn(name="SponsorshipWorkflow")
class SponsorshipWorkflow:
    @workflow.init
    def __init__(self, inp: SponsorshipInput) -> None:
        self.inp = inp
        self.state = rules.begin(inp, workflow.now())
        self.pending: list[rules.Notice] = []
        self.sending: set[asyncio.Task[None]] = set()
        self.changed = False
        self.late: list[Enrolment] = []  # enrolments that came after the end: they start the next run
        for e in inp.enrolments:
            self.enrol(e)

    @workflow.run
    async def run(self, inp: SponsorshipInput) -> SponsorshipState:
        while True:
            self.state, due = rules.on_time(self.state, workflow.now(), inp)
            self.pending += due
            self._send()
            if self.state.status == "ended":
                break
            if self._long() and workflow.all_handlers_finished() and not self.pending and not self.sending:
                # the enrolments this run started with are in the state now: not applied again
                workflow.continue_as_new(inp.model_copy(update={"state": self.state, "enrolments": []}))
            await self._wait()
        await workflow.wait_condition(lambda: workflow.all_handlers_finished() and not self.sending)
        if self.late:  # enrolled again while this one was ending: a new sponsorship, in a new run
            workflow.continue_as_new(inp.model_copy(update={"state": None, "enrolments": self.late}))
        return self.state

    def _long(self) -> bool:
        info = workflow.info()
        return info.is_continue_as_new_suggested() or info.get_current_history_length() > self.inp.events_per_run

    async def _wait(self) -> None:
        deadline = rules.next_deadline(self.state, self.inp)
        timeout = max(deadline - workflow.now(), timedelta(milliseconds=1)) if deadline else None
        with contextlib.suppress(asyncio.TimeoutError):
            await workflow.wait_condition(lambda: self.changed, timeout=timeout)
        self.changed = False

    def _send(self) -> None:
        for notice in self.pending:
            task = asyncio.create_task(self._notify(notice))
            self.sending.add(task)
            task.add_done_callback(self.sending.discard)
        self.pending = []

    async def _notify(self, n: rules.Notice) -> None:
        try:
            prepared = await shell.prepare(rules.prepare_input(self.state, n, workflow.now()))
        except ActivityError as exc:
            workflow.logger.warning("sponsorship %s: %s not prepared: %s", self.state.account_id, n.kind,
                                    shell.failure(exc))
            return
        await shell.deliver_all(prepared, lambda m, error: workflow.logger.warning(
            "sponsorship %s: %s to %s not delivered: %s", self.state.account_id, n.kind, m.recipient_id, error))

    def _changed(self, notices: list[rules.Notice]) -> None:
        self.pending += notices
        self.changed = True

    @workflow.signal(name="enrol")
    def enrol(self, e: Enrolment) -> None:
        if self.state.status == "ended":
            self.late.append(e)
            return
        self.state, notices = rules.enrol(self.state, e, workflow.now())
        self._changed(notices)

    @workflow.update(name="check_in")
    def check_in(self, c: CheckIn) -> SponsorshipState:
        self.state = rules.check_in(self.state, c, workflow.now(), self.inp)
        self._changed([])
        return self.state

    @check_in.validator
    def _v_check_in(self, c: CheckIn) -> None:
        self._check()

    @workflow.update(name="exit")
    def exit(self, x: ExitRequest) -> SponsorshipState:
        self.state, notices = rules.leave(self.state, x, workflow.now())
        self._changed(notices)
        return self.state

    @exit.validator
    def _v_exit(self, x: ExitRequest) -> None:
        self._check()

    def _check(self) -> None:
        try:
            rules.check_may_act(self.state)
        except Rejected as exc:
            raise rejection(exc) from None

    @workflow.query(name="state")
    def current_state(self) -> SponsorshipState:
        return self.state
