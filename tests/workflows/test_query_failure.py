"""A ticket whose query fails in the worker (a bug in the code it runs) is told as `workflow_task_failed`, naming the
failure, not as Temporal being unavailable: on the time-skipping server, with a stand-in "Ticket" workflow whose
`state` query raises."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from starter.client import EscalationClient, Principal, WorkflowTaskFailed
from starter.runtime.policy_file import load_policy
from starter.runtime.temporal import build_worker
from tests.support.broken_workflows import BrokenTicket
from tests.support.workflows import time_skipping_env


@pytest.mark.timeout(120)
async def test_a_failing_query_is_workflow_task_failed_naming_the_failure() -> None:
    env = await time_skipping_env()
    try:
        tq = f"broken-{uuid.uuid4().hex[:6]}"
        async with build_worker(env.client, tq, workflows=[BrokenTicket], activities=[]):
            await env.client.start_workflow("Ticket", {}, id="ticket-BROKEN-1", task_queue=tq)
            client = EscalationClient(env.client, load_policy(), tq, rpc_timeout=timedelta(seconds=10))
            with pytest.raises(WorkflowTaskFailed) as failed:
                await client.state("BROKEN-1", principal=Principal.operator("agent:test"))
        assert "BROKEN-1" in failed.value.message and "state cannot be built" in failed.value.message
    finally:
        await env.shutdown()
