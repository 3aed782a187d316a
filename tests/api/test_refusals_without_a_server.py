"""How Temporal's refusals reach people, checked without a server: the client tells a busy ticket (a workflow task in
flight after a worker restart) from one whose task keeps failing (a bug) and from an unreachable Temporal; the API
answers each with its own status and code, against the client's interface (a stand-in client that raises them)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from temporalio.service import RPCError, RPCStatusCode

from starter.client import Busy, TemporalUnavailable, WorkflowTaskFailed
from starter.client.tickets import no_answer, not_ready
from starter.http.app import create_app
from starter.runtime.policy_file import load_policy
from starter.runtime.settings import Settings
from tests.support.api import asgi_client, make_tokens

IN_FLIGHT = "Workflow task not completed yet: workflow is busy"  # wording of the server's WorkflowNotReady


def test_a_task_in_flight_is_busy_with_a_retry_after() -> None:
    refused = not_ready("T-1", RPCError(IN_FLIGHT, RPCStatusCode.FAILED_PRECONDITION, b""))
    assert isinstance(refused, Busy) and refused.retry_after > 0 and "T-1" in refused.message


def test_a_task_that_keeps_failing_is_its_own_error_naming_the_failure() -> None:
    refused = not_ready("T-1", RPCError("query failed due to Workflow Task in failed state",
                                        RPCStatusCode.FAILED_PRECONDITION, b""))
    assert isinstance(refused, WorkflowTaskFailed) and "failed state" in refused.message


def test_other_refusals_are_not_told_as_busy() -> None:
    assert not_ready("T-1", RPCError("no such namespace", RPCStatusCode.NOT_FOUND, b"")) is None


def test_no_answer_names_the_timeout_really_used() -> None:
    assert "within 2.5s" in no_answer("T-1", "escalation", timedelta(seconds=2.5)).message


class _Refusing:
    """The client's interface as far as reading a ticket goes, refusing with a given error."""

    task_queue = "escalation"

    def __init__(self, error: Exception) -> None:
        self.error = error

    async def view(self, *args: Any, **kwargs: Any) -> Any:
        raise self.error

    state = timeline = view


async def _read_with(error: Exception) -> httpx.Response:
    tokens = make_tokens()
    app = create_app(Settings(), client=_Refusing(error), tokens=tokens.store(), policy=load_policy())  # type: ignore[arg-type]
    async with asgi_client(app) as http:
        return await http.get("/v1/tickets/T-1", headers=tokens.header("admin"))


@pytest.mark.parametrize(("error", "status", "code", "retry_after"), [
    (Busy("ticket T-1 is busy", retry_after=2), 503, "busy", "2"),
    (WorkflowTaskFailed("ticket T-1 cannot answer: its workflow task keeps failing"), 500, "workflow_task_failed", None),
    (TemporalUnavailable("Temporal did not answer"), 503, "temporal_unavailable", "5"),
])
async def test_each_refusal_has_its_own_status_and_code(error: Exception, status: int, code: str,
                                                        retry_after: str | None) -> None:
    r = await _read_with(error)
    assert (r.status_code, r.json()["error"]["code"]) == (status, code), r.text
    assert r.headers.get("Retry-After") == retry_after
    assert r.json()["error"]["message"] == error.args[0]
