"""The baseline: a bare workflow with the ticket lifecycle's Temporal operations and no business logic.

It mirrors `workflows.ticket.TicketWorkflow` command for command over one lifecycle
(open, acknowledge, escalate, resolve, close with a 0 s reopen window):
- on start, the P2 ticket's `opened` and `stakeholders` notifications; each
  notification is one preparing activity, then one delivery activity per message (MESSAGES: what the default
  directory makes of them);
- the same main loop: apply what is due, upsert the ten search attributes when they change,
  start pending notifications as background tasks (never awaited by the loop, so a timer is
  started after every update, as the ticket does), then
  `wait_condition(changed or pending, timeout=next deadline)` (a durable timer, cancelled
  when an update arrives);
- three updates with validators (acknowledge: no effect; escalate: one activity;
  resolve: one activity, then closes at once);
- `wait_condition(handlers finished and no notification in flight)` before completing.
`SignalRoundTrip` is the incident fan-out's baseline (bench/incident_bench.py).
The client side (`run_baseline_lifecycle`) mirrors `EscalationClient.open` (start with the
same id policies and the search attributes, describe, query) and `act` (execute_update), then awaits the result.

Run as a worker (its own process, like `python worker.py`): `python -m bench.baseline`
with TEMPORAL_ADDRESS, ESCALATION_TASK_QUEUE and ESCALATION_MAX_CACHED_WORKFLOWS.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.common import RetryPolicy, TypedSearchAttributes, WorkflowIDConflictPolicy, WorkflowIDReusePolicy

with workflow.unsafe.imports_passed_through():
    from workflows.common import search_attributes as sa

STEPS = ("acknowledge", "escalate", "resolve")  # the lifecycle's three updates
RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1))
# Messages per notification of the lifecycle with the default directory (tests/e2e/test_bench_smoke.py checks that
# the baseline schedules as many activities as the ticket does).
MESSAGES = {"opened": 1, "stakeholders": 3, "escalation": 3, "resolved": 2}
FIRST_DEADLINE = timedelta(minutes=90)  # like the P2 ticket's nearest deadline (the 75 % warning of a 2 h clock)


@activity.defn(name="bench_noop")
async def noop(key: str) -> str:
    return key


def search_attribute_values(status: str, tier: int) -> dict[str, object]:
    return {
        "TicketStatus": status, "TicketTier": f"tier{tier}", "TicketPriority": "bench",
        "TicketDepartment": "bench", "TicketChannel": "api", "TicketCustomerId": "bench", "TicketAssignee": "",
        "TicketEscalationCount": tier - 1, "TicketSlaBreached": False, "TicketPolicyVersion": "bench",
    }


@workflow.defn(name="BenchBaseline")
class BaselineWorkflow:
    @workflow.init
    def __init__(self, ticket_id: str) -> None:
        self.ticket_id = ticket_id
        self.status = "new"
        self.tier = 1
        self.seq = 0
        self.pending: list[str] = ["opened", "stakeholders"]
        self.in_flight: set[asyncio.Task[None]] = set()
        started = workflow.info().typed_search_attributes  # set by the client at start, as for a ticket
        self.published: dict[str, object] = {k.name: v for k in sa.ALL if (v := started.get(k)) is not None}
        self.changed = False
        self.deadline = workflow.now() + FIRST_DEADLINE

    @workflow.run
    async def run(self, ticket_id: str) -> str:
        while True:
            self._apply_due()
            self._publish_search_attributes()
            self._send_notifications()
            if self.status == "closed":
                break
            await self._wait_for_news()
        await workflow.wait_condition(lambda: workflow.all_handlers_finished() and not self.in_flight)
        return self.status

    async def _wait_for_news(self) -> None:
        timeout = max(self.deadline - workflow.now(), timedelta(milliseconds=1))
        with contextlib.suppress(asyncio.TimeoutError):
            await workflow.wait_condition(lambda: self.changed or bool(self.pending), timeout=timeout)
        self.changed = False

    def _apply_due(self) -> None:
        if self.status == "resolved":  # reopen window 0 s: a resolved ticket closes at once
            self.status = "closed"

    def _send_notifications(self) -> None:
        for kind in self.pending:
            task = asyncio.create_task(self._notify(kind))
            self.in_flight.add(task)
            task.add_done_callback(self.in_flight.discard)
        self.pending = []

    async def _notify(self, kind: str) -> None:
        self.seq += 1
        key = f"{self.ticket_id}:{self.seq}:{kind}"
        await self._noop(key)  # the preparing step
        await asyncio.gather(*(self._noop(f"{key}:{i}") for i in range(MESSAGES.get(kind, 0))))

    async def _noop(self, key: str) -> None:
        await workflow.execute_activity("bench_noop", key, start_to_close_timeout=timedelta(seconds=30),
                                        schedule_to_close_timeout=timedelta(days=1), retry_policy=RETRY)

    def _publish_search_attributes(self) -> None:
        values = search_attribute_values(self.status, self.tier)
        changed = sa.updates(values, self.published)
        if changed:
            workflow.upsert_search_attributes(changed)
            self.published = values

    @workflow.update
    def step(self, name: str) -> str:
        self._apply_due()
        if name == "acknowledge":
            self.status = "open"
        elif name == "escalate":
            self.tier += 1
            self.pending.append("escalation")
        elif name == "resolve":
            self.status = "resolved"
            self.pending.append("resolved")
        self.changed = True
        return self.status

    @step.validator
    def _v_step(self, name: str) -> None:
        if name not in STEPS or self.status in ("resolved", "closed"):
            raise ValueError(f"{name} not allowed in {self.status}")

    @workflow.query(name="state")
    def current_state(self) -> str:
        return self.status


BASELINE_SIGNAL = "incident"


@workflow.defn(name="BenchSignalRoundTrip")
class SignalRoundTrip:
    """The incident fan-out's baseline: wait for one Signal, run one no-op activity, complete (a linked ticket
    told of an update: one Signal, then its preparing and delivering activities)."""

    def __init__(self) -> None:
        self.told = False

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: self.told)
        await workflow.execute_activity("bench_noop", workflow.info().workflow_id,
                                        start_to_close_timeout=timedelta(seconds=30), retry_policy=RETRY)

    @workflow.signal(name=BASELINE_SIGNAL)
    def incident(self, _notice: str) -> None:
        self.told = True


async def run_baseline_lifecycle(client: Client, task_queue: str, ticket_id: str) -> None:
    """One baseline lifecycle, with the same client calls as EscalationClient.open + 3 x act + result."""
    handle = await client.start_workflow(
        BaselineWorkflow.run, ticket_id, id=f"baseline-{ticket_id}", task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING, id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        search_attributes=TypedSearchAttributes(sa.pairs(search_attribute_values("new", 1))),
    )
    await handle.describe()
    await handle.query(BaselineWorkflow.current_state)
    for name in STEPS:
        await handle.execute_update(BaselineWorkflow.step, name)
    await handle.result()


async def _serve() -> None:
    """A worker like worker.py's (starter.runtime.temporal.build_worker: the same sandbox, converter and cache),
    running only the baseline workflow and its no-op activity."""
    import signal

    from starter.runtime.settings import settings
    from starter.runtime.temporal import build_worker, connect, tune_gc, workflow_runner

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    # Its workflows passed through the sandbox, as the shells are; from the module under its own name (run as
    # __main__, the sandbox would load a copy of this file for every run).
    from bench import baseline

    worker = build_worker(await connect(), workflows=[baseline.BaselineWorkflow, baseline.SignalRoundTrip],
                          activities=[baseline.noop], workflow_runner=workflow_runner(also=[baseline.__name__]))
    tune_gc(settings().escalation_gc_young_objects)  # as worker.py does
    async with worker:
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(_serve())
