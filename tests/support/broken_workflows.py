"""Stand-in workflows for tests of how failures reach people (imports only temporalio: it runs in the sandbox)."""

from __future__ import annotations

from temporalio import workflow


@workflow.defn(name="Ticket")
class BrokenTicket:
    """A "Ticket" whose `state` query raises: a bug in the code the worker runs."""

    @workflow.run
    async def run(self, inp: dict) -> None:  # type: ignore[type-arg]
        await workflow.wait_condition(lambda: False)

    @workflow.query(name="state")
    def state(self) -> dict:  # type: ignore[type-arg]
        raise RuntimeError("state cannot be built: a bug")
