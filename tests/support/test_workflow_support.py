"""The retry-on-wedge wrapper of the time-skipping tests: it retries a hang once, and nothing else."""

from __future__ import annotations

import asyncio

import pytest
from temporalio.client import WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.testing import WorkflowEnvironment

from tests.support import workflows as workflow_support


async def test_a_run_that_hangs_once_is_run_again_on_a_fresh_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(workflow_support, "WEDGE_TIMEOUT_S", 1.0)
    servers: list[WorkflowEnvironment] = []

    @workflow_support.on_time_skipping_server()
    async def hangs_the_first_time(env: WorkflowEnvironment, tq: str) -> None:
        servers.append(env)
        if len(servers) == 1:
            await asyncio.Event().wait()

    with pytest.warns(UserWarning, match="running it again on a fresh one"):
        await hangs_the_first_time()
    assert len(servers) == 2 and servers[0] is not servers[1]


async def test_a_hang_the_sdk_reports_as_its_own_error_is_a_wedge_too(monkeypatch: pytest.MonkeyPatch) -> None:
    """An Update waiting on a wedged server: the deadline's cancellation comes back as the SDK's
    WorkflowUpdateRPCTimeoutOrCancelledError, not TimeoutError (seen in the suite: it failed instead of retrying)."""
    monkeypatch.setattr(workflow_support, "WEDGE_TIMEOUT_S", 1.0)
    runs = 0

    @workflow_support.on_time_skipping_server()
    async def update_hangs_the_first_time(env: WorkflowEnvironment, tq: str) -> None:
        nonlocal runs
        runs += 1
        if runs == 1:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError as exc:
                raise WorkflowUpdateRPCTimeoutOrCancelledError() from exc

    with pytest.warns(UserWarning, match="running it again on a fresh one"):
        await update_hangs_the_first_time()
    assert runs == 2


async def test_a_run_that_hangs_twice_fails_and_a_failure_is_never_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(workflow_support, "WEDGE_TIMEOUT_S", 1.0)
    runs = 0

    @workflow_support.on_time_skipping_server()
    async def always_hangs(env: WorkflowEnvironment, tq: str) -> None:
        nonlocal runs
        runs += 1
        await asyncio.Event().wait()

    with pytest.warns(UserWarning), pytest.raises(AssertionError, match="twice"):
        await always_hangs()
    assert runs == 2

    @workflow_support.on_time_skipping_server()
    async def fails(env: WorkflowEnvironment, tq: str) -> None:
        nonlocal runs
        runs += 1
        raise AssertionError("a real failure")

    with pytest.raises(AssertionError, match="a real failure"):
        await fails()
    assert runs == 3

    @workflow_support.on_time_skipping_server()
    async def times_out_by_itself(env: WorkflowEnvironment, tq: str) -> None:
        nonlocal runs
        runs += 1
        await asyncio.wait_for(asyncio.Event().wait(), 0.1)  # the test's own timeout: not a wedge

    with pytest.raises(TimeoutError):
        await times_out_by_itself()
    assert runs == 4
