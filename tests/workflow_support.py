"""Shared helpers for workflow tests: the real servers from PyPI, never downloaded."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from starter.devserver import venv_bin
from starter.policy_file import load_policy
from worker import build_worker
from workflows import search_attributes as sa
from workflows.model import Ticket
from workflows.policy import Policy
from workflows.ticket import TicketInput, TicketWorkflow


async def time_skipping_env() -> WorkflowEnvironment:
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=venv_bin("temporal-test-server"), data_converter=pydantic_data_converter)
    await register_search_attributes(env.client)
    return env


async def register_search_attributes(client: Client) -> None:
    await client.operator_service.add_search_attributes(AddSearchAttributesRequest(
        namespace=client.namespace,
        search_attributes={k.name: IndexedValueType.ValueType(k.indexed_value_type.value) for k in sa.ALL}))


async def local_env(*extra_args: str) -> WorkflowEnvironment:
    return await WorkflowEnvironment.start_local(
        dev_server_existing_path=venv_bin("temporal"), data_converter=pydantic_data_converter,
        search_attributes=list(sa.ALL), dev_server_extra_args=list(extra_args))


@asynccontextmanager
async def running_worker(client: Client, **options: Any) -> AsyncIterator[str]:
    task_queue = f"tq-{uuid.uuid4().hex[:8]}"
    async with build_worker(client, task_queue, **options):
        yield task_queue


def policy_with(**priority_p1: Any) -> Policy:
    """The default policy with P1's SLA fields replaced (durations as strings or timedeltas)."""
    policy = load_policy()
    data = policy.model_dump(mode="json", by_alias=True)
    data["priorities"]["P1"].update(priority_p1)
    return Policy.model_validate(data)


def ticket(opened_at: datetime, **fields: Any) -> Ticket:
    base: dict[str, Any] = {"id": f"T-{uuid.uuid4().hex[:10]}", "subject": "Streaming app fails to start",
                            "description": "The app crashes on launch.", "customer_id": "cust-42",
                            "priority": "P1", "opened_at": opened_at}
    return Ticket(**{**base, **fields})


async def start_ticket(client: Client, task_queue: str, t: Ticket, policy: Policy | None = None) -> WorkflowHandle[Any, Any]:
    return await client.start_workflow(
        TicketWorkflow.run, TicketInput(ticket=t, policy=policy or load_policy()), id=f"ticket-{t.id}",
        task_queue=task_queue, id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE)


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)
