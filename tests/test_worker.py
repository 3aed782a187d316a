"""The worker's own set-up (no server needed)."""

from __future__ import annotations

import importlib.util
import inspect
from pathlib import Path

from worker import WORKFLOWS, cache_bytecode


def test_workflow_bytecode_is_cached_even_when_python_would_not_write_it() -> None:
    # The sandbox imports each workflow module afresh for every new run; PYTHONDONTWRITEBYTECODE (set on
    # this machine and in the image) would otherwise make that a compile from source each time.
    for wf in WORKFLOWS:
        cached = Path(importlib.util.cache_from_source(inspect.getsourcefile(wf) or ""))
        cached.unlink(missing_ok=True)
        cache_bytecode([wf])
        assert cached.is_file() and cached.stat().st_size > 0


def test_every_action_of_the_core_is_an_update_of_the_ticket_workflow() -> None:
    from temporalio import workflow

    from workflows import ticket_core as core
    from workflows.ticket import TicketWorkflow, update_names

    updates = workflow._Definition.must_from_class(TicketWorkflow).updates
    assert set(updates) == set(core.ACTIONS) == set(update_names())
    for name, cls in core.ACTIONS.items():
        assert updates[name].arg_types == [cls], name  # the Update takes that action's event
