"""Pins the Temporal SDK's private attributes that starter/runtime/sdk_private.py reads (and nothing else does).

An SDK upgrade that renames one fails here, with the name, instead of in a user's request."""

from __future__ import annotations

import ast
from pathlib import Path

from temporalio import workflow

from starter.runtime import sdk_private
from starter.runtime.temporal import WORKFLOWS

ROOT = Path(__file__).resolve().parents[2]


def test_the_workflow_type_name_is_the_name_histories_record() -> None:
    from workflows.ticket.workflow import TicketWorkflow

    assert sdk_private.workflow_type_name(TicketWorkflow) == "Ticket"
    assert all(sdk_private.workflow_type_name(wf) for wf in WORKFLOWS)


def test_an_undecorated_class_is_refused() -> None:
    class NotAWorkflow:
        pass

    try:
        sdk_private.workflow_type_name(NotAWorkflow)
    except ValueError:
        return
    raise AssertionError("a class without @workflow.defn must not get a type name")


def test_started_new_reads_the_start_response_the_sdk_keeps_on_the_handle() -> None:
    from temporalio.api.workflowservice.v1 import StartWorkflowExecutionResponse
    from temporalio.client import Client, WorkflowHandle

    client = Client.__new__(Client)  # never used: the handle only keeps it
    for started in (True, False):  # start_workflow builds its handle with the server's response, as here
        response = StartWorkflowExecutionResponse(started=started)
        handle: WorkflowHandle[object, object] = WorkflowHandle(client, "wf-id", start_workflow_response=response)
        assert sdk_private.started_new(handle) is started
    assert sdk_private.started_new(WorkflowHandle(client, "wf-id")) is False  # a handle from get_workflow_handle


def test_no_other_module_reads_a_private_sdk_attribute() -> None:
    private = {"_Definition", "_start_workflow_response", "_workflow_worker", "_running_workflows"}
    offenders = []
    for path in [*ROOT.glob("starter/**/*.py"), *ROOT.glob("workflows/**/*.py"), *ROOT.glob("activities/**/*.py"),
                 *ROOT.glob("bench/**/*.py"), *ROOT.glob("tests/**/*.py"), ROOT / "worker.py"]:
        if path.name in ("sdk_private.py", "test_sdk_private.py"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            name = node.attr if isinstance(node, ast.Attribute) else getattr(node, "name", None)
            if isinstance(node, ast.alias):
                name = node.name
            if name in private:
                offenders.append(f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', '?')} {name}")
    assert not offenders, f"private SDK attributes outside starter/runtime/sdk_private.py: {offenders}"


def test_workflow_definitions_are_still_found_where_the_helper_looks() -> None:
    assert hasattr(workflow, "_Definition") and hasattr(workflow._Definition, "must_from_class")


def test_activity_name_reads_the_registered_name_of_a_function_and_a_bound_method(tmp_path: Path) -> None:
    from activities.notify import Notifier, Outbox
    from activities.rotation import EscalationManagers

    assert sdk_private.activity_name(Notifier(Outbox(tmp_path / "o.jsonl")).notify) == "notify"
    assert sdk_private.activity_name(EscalationManagers(lambda e: []).assign) == "assign_escalation_manager"


def test_the_worker_still_catches_a_query_failure_in_its_query_task() -> None:
    """codec.HistoryFailureConverter leaves a query's failure readable by where the worker caught it."""
    import inspect

    from temporalio.worker import _workflow_instance

    module, function = sdk_private.QUERY_TASK
    assert _workflow_instance.__name__ == module
    source = inspect.getsource(_workflow_instance._WorkflowInstanceImpl._apply_query_workflow)
    assert f"async def {function}()" in source and "respond_to_query.failed" in source

    def caught_in_run_query() -> BaseException:
        def run_query() -> BaseException:  # a frame named as the worker's, in another module: not it
            try:
                raise ValueError("x")
            except ValueError as exc:
                return exc
        return run_query()

    assert not sdk_private.raised_in_query(caught_in_run_query())


def test_the_worker_still_keeps_its_cached_runs_where_the_memory_bench_counts_them() -> None:
    """bench/memory_per_ticket.py divides by how many runs the worker caches (cached_workflow_runs)."""
    import inspect

    from temporalio.worker import _worker, _workflow

    assert "self._workflow_worker = _WorkflowWorker(" in inspect.getsource(_worker.Worker)
    source = inspect.getsource(_workflow._WorkflowWorker)
    assert "self._running_workflows: dict[str, _RunningWorkflow] = {}" in source
    assert "self._running_workflows[act.run_id] = workflow" in source
    assert sdk_private.cached_workflow_runs(object()) == 0  # not a worker: nothing cached
