"""RotationWorkflow: one per pool and task queue (id `rotation-<task queue>-<pool>`); each `take` Update answers whose turn it is.

Started on first use by update-with-start (an activity's, never workflow code's); it continues as new every
`turns_per_run` turns so its history stays short however long it lives."""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from workflows.rotation.rules import RotationInput, RotationState, take_turn

@workflow.defn(name="RotationWorkflow")
class RotationWorkflow:
    @workflow.init
    def __init__(self, inp: RotationInput) -> None:
        self.state = inp.state or RotationState(pool=inp.pool)
        self.turns_this_run = 0

    @workflow.run
    async def run(self, inp: RotationInput) -> None:
        await workflow.wait_condition(
            lambda: self.turns_this_run >= inp.turns_per_run and workflow.all_handlers_finished())
        workflow.continue_as_new(RotationInput(pool=self.state.pool, state=self.state, turns_per_run=inp.turns_per_run))

    @workflow.update(name="take")
    def take(self, candidates: list[str]) -> str:
        # the Update's id is the asking ticket's effect key: a retry after a continue-as-new gets its first answer
        info = workflow.current_update_info()
        chosen, self.state = take_turn(self.state, candidates, info.id if info else None)
        self.turns_this_run += 1
        return chosen

    @take.validator
    def _v_take(self, candidates: list[str]) -> None:
        if not candidates:
            raise ApplicationError("no candidate on duty to take the turn", type="nobody_on_duty")

    @workflow.query(name="state")
    def current_state(self) -> RotationState:
        return self.state
