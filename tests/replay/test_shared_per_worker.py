"""What every run of a worker shares instead of keeping its own copy (bench/memory_per_ticket.py measures the gain).

The sandbox runs the worker's own workflow class: the shells are passed through, not imported again per run (a run
used to get its own copy of its workflow module, about 100 KB per cached ticket). The committed histories still
replay on the shared shell (test_replay_histories.py); this checks that the class a replay really runs is the one
the worker registered and, as a control, that the old sandbox ran a copy. The payload converter (its pydantic
TypeAdapters) is one per process, and tickets with equal policy snapshots share one Policy object."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowHistory
from temporalio.worker import (
    ExecuteWorkflowInput,
    Interceptor,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)

from starter.runtime.temporal import SharedPayloadConverter, data_converter, replayer
from workflows.ticket.workflow import TicketWorkflow

HISTORY = Path(__file__).parent / "histories" / "full_lifecycle.json"
RAN: list[type] = []  # the workflow classes the sandbox ran (this module is outside the sandbox: one list)


class _Recorder(WorkflowInboundInterceptor):
    async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
        RAN.append(input.type)
        return await super().execute_workflow(input)


class _Record(Interceptor):
    def workflow_interceptor_class(self, input: WorkflowInterceptorClassInput) -> type[WorkflowInboundInterceptor]:
        return _Recorder


async def classes_run(*, reimport_shells: bool) -> list[type]:
    RAN.clear()
    history = WorkflowHistory.from_json(HISTORY.stem, json.loads(HISTORY.read_text(encoding="utf-8")))
    await replayer(interceptors=[_Record()], reimport_shells=reimport_shells).replay_workflow(history)
    return list(RAN)


async def test_a_replay_runs_the_registered_ticket_class() -> None:
    assert await classes_run(reimport_shells=False) == [TicketWorkflow]


async def test_the_old_sandbox_ran_a_copy_of_the_class() -> None:
    [ran] = await classes_run(reimport_shells=True)
    assert ran is not TicketWorkflow and ran.__qualname__ == TicketWorkflow.__qualname__


def test_every_run_shares_one_payload_converter() -> None:
    converter = data_converter()
    assert converter.payload_converter_class is SharedPayloadConverter
    assert converter.payload_converter_class() is converter.payload_converter_class()  # what the SDK builds per run


def test_tickets_decoded_with_equal_policies_share_one_policy_object() -> None:
    """Each ticket's input carries its policy snapshot; the worker decodes it per run, into one shared object."""
    from datetime import UTC, datetime

    from starter.runtime.policy_file import load_policy
    from workflows.ticket import Ticket, TicketInput

    converter = data_converter().payload_converter_class()  # what each run decodes its input with
    policy = load_policy()
    decoded = []
    for i in (1, 2):
        ticket = Ticket(id=f"T-{i}", subject="s", customer_id="c", priority="P2", opened_at=datetime(2026, 1, 5, tzinfo=UTC))
        [payload] = converter.to_payloads([TicketInput(ticket=ticket, policy=policy.model_copy(deep=True))])
        [inp] = converter.from_payloads([payload], [TicketInput])
        decoded.append(inp)
    assert decoded[0].ticket.id != decoded[1].ticket.id
    assert decoded[0].policy is decoded[1].policy
