"""A workflow with nothing of ours in it, shaped like a full-lifecycle ticket (bench.replay_floor). Its own module:
the sandbox imports it, so it holds nothing a workflow may not touch."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any

from temporalio import activity, workflow
from temporalio.common import SearchAttributeKey

STEP = SearchAttributeKey.for_keyword("CustomKeywordField")  # registered on the test server by default


@dataclass(frozen=True)
class Shape:
    """How a history's workflow tasks are made: one to start, then one per activity completed, per Update (an
    agent's action) and per Signal (a customer's message)."""

    activities: int
    actions: int
    signals: int

    @property
    def workflow_tasks(self) -> int:
        return 1 + self.activities + self.actions + self.signals

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def of(cls, workflow_tasks: int) -> Shape:
        """The full-lifecycle ticket's mix (19 tasks: 7 activities, 10 actions, 1 signal), scaled to a count."""
        signals = 1 if workflow_tasks >= 3 else 0
        activities = min(7, (workflow_tasks - 1 - signals) // 2)
        return cls(activities=activities, actions=workflow_tasks - 1 - signals - activities, signals=signals)


@activity.defn
async def bare_step(i: int) -> int:
    return i


@workflow.defn(name="BareTicketShape")
class BareTicketShape:
    """Activities with an upsert each, then waits for its Updates and Signals; each Update upserts too."""

    def __init__(self) -> None:
        self.actions = 0
        self.signals = 0
        self.ready = False

    @workflow.run
    async def run(self, shape: Shape) -> int:
        done = 0
        for i in range(shape.activities):
            workflow.upsert_search_attributes([STEP.value_set(f"step-{i}")])
            done += await workflow.execute_activity(bare_step, i, start_to_close_timeout=timedelta(seconds=10))
        self.ready = True
        await workflow.wait_condition(lambda: self.actions >= shape.actions and self.signals >= shape.signals)
        return done

    @workflow.update
    def act(self, n: int) -> int:
        self.actions += 1
        if self.actions <= 5:
            workflow.upsert_search_attributes([STEP.value_set(f"action-{n}")])
        return n

    @workflow.signal
    def message(self, text: str) -> None:
        self.signals += 1

    @workflow.query
    def is_ready(self) -> bool:
        return self.ready
