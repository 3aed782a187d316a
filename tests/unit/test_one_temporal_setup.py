"""One home for the Temporal setup: connecting, the data converter, the sandbox, workers and replayers are built in
starter/runtime/temporal.py and nowhere else, so a payload codec or a new workflow type is added in one place."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HOME = ROOT / "starter" / "runtime" / "temporal.py"
SOURCES = ("workflows", "activities", "starter", "bench", "tests", "worker.py")

# What only the home may construct or name: the SDK's own wiring.
BUILT_ONLY_AT_HOME = {"Worker", "Replayer", "SandboxedWorkflowRunner", "UnsandboxedWorkflowRunner", "DataConverter"}
NAMED_ONLY_AT_HOME = {"pydantic_data_converter", "default_converter"}
# A test server started by the SDK gets the home's converter.
TEST_SERVERS = {"start_time_skipping", "start_local"}


def python_files() -> list[Path]:
    files: list[Path] = []
    for name in SOURCES:
        path = ROOT / name
        files += [path] if path.is_file() else sorted(path.rglob("*.py"))
    return [f for f in files if f != HOME]


def called_name(call: ast.Call) -> str:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""


def setup_outside_home(tree: ast.AST) -> list[str]:
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Call):
            name = called_name(node)
            if name in BUILT_ONLY_AT_HOME:
                found.append((line, f"{name}(...)"))
            elif (name == "connect" and isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name)
                  and node.func.value.id == "Client"):
                found.append((line, "Client.connect(...)"))
            elif name in TEST_SERVERS and not any(k.arg == "data_converter" for k in node.keywords):
                found.append((line, f"{name}(...) without the home's data_converter"))
        elif isinstance(node, ast.Name) and node.id in NAMED_ONLY_AT_HOME:
            found.append((line, node.id))
        elif isinstance(node, ast.alias) and node.name in NAMED_ONLY_AT_HOME:
            found.append((line, f"import of {node.name}"))
    return [f"{what} at line {line}" for line, what in sorted(found)]


def test_the_temporal_setup_is_built_only_in_starter_runtime_temporal() -> None:
    offenders = {str(f.relative_to(ROOT)): hits for f in python_files()
                 if (hits := setup_outside_home(ast.parse(f.read_text(encoding="utf-8"))))}
    assert offenders == {}, "use starter.runtime.temporal (connect, build_worker, replayer, data_converter)"


def test_the_check_sees_a_planted_worker_and_connection() -> None:
    planted = ast.parse("from temporalio.worker import Worker\nfrom temporalio.client import Client\n"
                        "async def f():\n    c = await Client.connect('x')\n    Worker(c, task_queue='q', workflows=[])\n"
                        "    await WorkflowEnvironment.start_local()\n")
    assert setup_outside_home(planted) == ["Client.connect(...) at line 4", "Worker(...) at line 5",
                                           "start_local(...) without the home's data_converter at line 6"]
