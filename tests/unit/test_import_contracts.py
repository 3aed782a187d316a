"""The import direction (docs/ARCHITECTURE.md) is enforced: `make lint` runs import-linter with the contracts in
pyproject.toml; these tests show it passes on the tree and fails on a planted violation, and check the one rule
import-linter cannot (worker.py is a module, not a package)."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("workflows", "activities", "starter", "bench", "tests")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _copy_tree(dest: Path) -> None:
    shutil.copy(ROOT / "pyproject.toml", dest / "pyproject.toml")
    for package in PACKAGES:
        for src in (ROOT / package).rglob("*.py"):
            target = dest / src.relative_to(ROOT)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(src, target)


def _lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=cwd, env={"PYTHONPATH": str(cwd)},
                          capture_output=True, text=True, timeout=120)


def test_the_tree_keeps_every_import_contract(tmp_path: Path) -> None:
    _copy_tree(tmp_path)
    run = _lint_imports(tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr


def test_a_workflow_importing_the_http_layer_breaks_a_contract(tmp_path: Path) -> None:
    _copy_tree(tmp_path)
    (tmp_path / "workflows" / "ticket" / "planted.py").write_text("from starter.http import app  # noqa\n")
    run = _lint_imports(tmp_path)
    assert run.returncode != 0
    assert "workflows.ticket.planted -> starter.http" in run.stdout, run.stdout


def test_the_http_layer_importing_temporal_breaks_a_contract(tmp_path: Path) -> None:
    _copy_tree(tmp_path)
    (tmp_path / "starter" / "http" / "planted.py").write_text("import temporalio.client  # noqa\n")
    run = _lint_imports(tmp_path)
    assert run.returncode != 0
    assert "starter.http.planted -> temporalio" in run.stdout, run.stdout


def test_nothing_imports_the_composition_root() -> None:
    offenders = []
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                         else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
                if any(n == "worker" or n.startswith("worker.") for n in names):
                    offenders.append(f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 0)}")
    assert not offenders, f"worker.py is the composition root; nothing imports it: {offenders}"
