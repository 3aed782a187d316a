"""The worker's own set-up (no server needed)."""

from __future__ import annotations

import importlib.util
import inspect
from pathlib import Path

from starter.runtime.temporal import WORKFLOWS, cache_bytecode


def test_workflow_bytecode_is_cached_even_when_python_would_not_write_it() -> None:
    # The sandbox imports each workflow module afresh for every new run; PYTHONDONTWRITEBYTECODE (set on
    # this machine and in the image) would otherwise make that a compile from source each time.
    for wf in WORKFLOWS:
        cached = Path(importlib.util.cache_from_source(inspect.getsourcefile(wf) or ""))
        cached.unlink(missing_ok=True)
        cache_bytecode([wf])
        assert cached.is_file() and cached.stat().st_size > 0
        written = cached.stat().st_mtime_ns
        cache_bytecode([wf])  # up to date: not written again (an image's read-only app dir never sees a write)
        assert cached.stat().st_mtime_ns == written


def test_every_action_of_the_core_is_an_update_of_the_ticket_workflow() -> None:
    from starter.runtime.sdk_private import update_arg_types
    from workflows import ticket as core
    from workflows.ticket.workflow import TicketWorkflow, update_names

    updates = update_arg_types(TicketWorkflow)
    system = {"incident_resolution": [core.IncidentNotice],  # sent by the incident's fan-out, not an agent action
              "migrate_policy": [core.MigratePolicy],  # an admin's move to another policy version
              "publish_figures": [str]}  # the metrics' backfill (its actor): a ticket of before publishes its figures
    assert set(updates) - set(system) == set(core.ACTIONS) == set(update_names())
    assert {name: updates[name] for name in system} == system
    for name, cls in core.ACTIONS.items():
        assert updates[name] == [cls], name  # the Update takes that action's event


def test_a_bad_setting_is_a_one_line_error_naming_the_variable() -> None:
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    for cmd, var, value in (([sys.executable, "worker.py"], "ESCALATION_MAX_CACHED_WORKFLOWS", "lots"),
                            ([sys.executable, "-m", "starter.http"], "ESCALATION_API_BURST", "0")):
        run = subprocess.run(cmd, cwd=root, env={**os.environ, var: value}, capture_output=True, text=True, timeout=60)
        assert run.returncode == 2, run.stderr
        assert run.stderr.startswith(f"error: {var}={value!r}: ") and "Traceback" not in run.stderr, run.stderr
