"""A workflow with nothing of ours in it, shaped like a full-lifecycle ticket (bench.replay_floor). Its own module:
the sandbox re-imports it, so it holds nothing a workflow may not touch."""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow
from temporalio.common import SearchAttributeKey

STEP = SearchAttributeKey.for_keyword("CustomKeywordField")  # registered on the test server by default


@activity.defn
async def bare_step(i: int) -> int:
    return i


@workflow.defn(name="BareTicketShape")
class BareTicketShape:
    """As many workflow tasks as the ticket's history: seven after an activity, the rest after a timer; twelve
    upserts."""

    @workflow.run
    async def run(self, tasks: int) -> int:
        done = 0
        for i in range(tasks - 1):
            if i < 12:
                workflow.upsert_search_attributes([STEP.value_set(f"step-{i}")])
            if i < 7:  # an activity's completion starts the next workflow task, as a timer's firing does
                done += await workflow.execute_activity(bare_step, i, start_to_close_timeout=timedelta(seconds=10))
            else:
                await workflow.sleep(timedelta(minutes=1))
        return done
