"""The only place that reads the Temporal SDK's private attributes, each pinned by tests/unit/test_sdk_private.py
(an SDK upgrade that moves one fails that test, not a user's request)."""

from __future__ import annotations

from typing import Any


def workflow_type_name(workflow_class: type) -> str:
    """The type name a `@workflow.defn` class is registered under (what a history's start event names)."""
    from temporalio.workflow import _Definition

    return _Definition.must_from_class(workflow_class).name or workflow_class.__name__


def update_arg_types(workflow_class: type) -> dict[str, list[Any]]:
    """Each Update a `@workflow.defn` class declares, by wire name, with the argument types it takes."""
    from temporalio.workflow import _Definition

    updates = _Definition.must_from_class(workflow_class).updates
    return {str(name): list(defn.arg_types or []) for name, defn in updates.items()}


def activity_name(fn: Any) -> str:
    """The name an `@activity.defn` callable (function or bound method) is registered under."""
    from temporalio.activity import _Definition

    return _Definition.must_from_callable(fn).name or fn.__name__


def started_new(handle: Any) -> bool:
    """Whether `start_workflow` with USE_EXISTING started a new run (False: it returned the running one).

    The SDK keeps the server's answer on the handle but does not expose it."""
    response = getattr(handle, "_start_workflow_response", None)
    return bool(getattr(response, "started", False))


QUERY_TASK = ("temporalio.worker._workflow_instance", "run_query")  # where the worker catches a query's failure


def raised_in_query(exc: BaseException) -> bool:
    """Whether the worker caught `exc` answering a query: its traceback begins in the worker's query task."""
    tb = exc.__traceback__
    return tb is not None and (tb.tb_frame.f_globals.get("__name__"), tb.tb_frame.f_code.co_name) == QUERY_TASK


def cached_workflow_runs(worker: Any) -> int:
    """How many workflow runs a worker holds in its cache (the memory bench divides by it)."""
    workflow_worker = getattr(worker, "_workflow_worker", None)
    return len(getattr(workflow_worker, "_running_workflows", {}))
