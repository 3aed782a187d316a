"""Workflow code is deterministic: a scan of the source of every module the sandbox runs or passes through.

A workflow replays its history on any worker, at any time: what it computes must depend only on its input and
on what the history recorded. So the pure core and the workflow shells read no clock (`workflow.now()` is the
replayable one), draw no random numbers or uuids, touch no environment, file or network, and keep no
module-level state that one run could leave behind for the next (a cache whose answer depends on which tickets
ran before on this worker). The scan is of the syntax tree: it finds the ways such code is written, not every
way it could be written, and each finding names the module and line.
"""

from __future__ import annotations

import ast
import importlib.util
import pkgutil
from dataclasses import dataclass
from pathlib import Path

import pytest

import workflows
from starter.runtime.temporal import pure_modules

# Modules whose import alone is a way out of determinism (or into I/O).
FORBIDDEN_MODULES = frozenset({
    "time", "random", "secrets", "uuid", "os", "sys", "subprocess", "shutil", "tempfile", "socket", "ssl",
    "select", "selectors", "http", "urllib", "requests", "httpx", "aiohttp", "threading", "multiprocessing",
})
# `datetime.now()`, `date.today()`, ...: the machine's clock.
CLOCK_READS = frozenset({"now", "utcnow", "today", "fromtimestamp", "utcfromtimestamp"})
FORBIDDEN_CALLS = frozenset({"open", "input", "uuid1", "uuid4", "getenv"})
MUTABLE_FACTORIES = frozenset({"dict", "list", "set", "defaultdict", "OrderedDict", "Counter", "deque"})
MUTATORS = frozenset({"append", "extend", "insert", "add", "update", "setdefault", "pop", "popitem", "remove",
                      "discard", "clear", "__setitem__"})
MEMOIZERS = frozenset({"cache", "lru_cache"})

# Module-level state that is allowed, each with the reason it cannot differ between runs. A new entry needs the
# same argument: the cached value is a pure function of its key, so a hit and a miss give equal answers.
ALLOWED: dict[tuple[str, str], str] = {
    ("workflows.common.policy", "_INTERNED"):
        "policy version (a hash of the content) -> an equal immutable Policy: sharing, not remembering",
    ("workflows.common.policy", "_BY_CONTENT"):
        "canonical JSON of a policy -> the Policy validated from it: a memo of a pure function",
    ("workflows.common.calendar", "_zone"):
        "zone name -> its rules from the pinned tzdata package (never the host's): a memo of a pure function",
}


@dataclass(frozen=True)
class Finding:
    module: str
    line: int
    what: str
    name: str = ""  # the module-level name a state finding is about (what ALLOWED is keyed by)

    def __str__(self) -> str:
        return f"{self.module}:{self.line}: {self.what}"


def _top(module: str | None) -> str:
    return (module or "").split(".")[0]


def _called_name(func: ast.expr) -> str:
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""


def _owner_name(node: ast.expr) -> str:
    """`datetime` for `datetime.now` and for `datetime.datetime.now`."""
    return node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else ""


def _import_findings(module: str, tree: ast.Module) -> list[Finding]:
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names = [node.module or ""]
        else:
            continue
        out += [Finding(module, node.lineno, f"imports {n}") for n in names if _top(n) in FORBIDDEN_MODULES]
    return out


def _call_findings(module: str, tree: ast.Module) -> list[Finding]:
    out = []
    for node in ast.walk(tree):
        # A clock read by any name (`D.now` after `from datetime import datetime as D`, or kept as `tick = D.now`):
        # the shells are passed through the sandbox, so nothing catches it at run time. Only workflow.now is replayable.
        if isinstance(node, ast.Attribute) and node.attr in CLOCK_READS and _owner_name(node.value) != "workflow":
            out.append(Finding(module, node.lineno, f"reads the machine's clock ({_owner_name(node.value)}.{node.attr})"))
        if isinstance(node, ast.Call) and _called_name(node.func) == "getattr" and any(
                isinstance(a, ast.Constant) and a.value in CLOCK_READS for a in node.args):
            out.append(Finding(module, node.lineno, "reads the machine's clock (getattr)"))
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        if isinstance(f, ast.Name) and f.id in FORBIDDEN_CALLS:
            out.append(Finding(module, node.lineno, f"calls {f.id}()"))
        elif isinstance(f, ast.Attribute) and f.attr in FORBIDDEN_CALLS - {"open"}:
            out.append(Finding(module, node.lineno, f"calls {f.attr}()"))
    return out


def _is_mutable(value: ast.expr | None) -> bool:
    if isinstance(value, ast.Dict | ast.List | ast.Set | ast.DictComp | ast.ListComp | ast.SetComp):
        return True
    return isinstance(value, ast.Call) and _called_name(value.func) in MUTABLE_FACTORIES


def _module_level_mutables(tree: ast.Module) -> dict[str, int]:
    """Names bound at module level to a mutable container, with their line."""
    out: dict[str, int] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and _is_mutable(node.value):
            out.update({t.id: node.lineno for t in node.targets if isinstance(t, ast.Name)})
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and _is_mutable(node.value):
            out[node.target.id] = node.lineno
    return out


def _mutated_names(tree: ast.Module) -> set[str]:
    """Names written through: `X[k] = v`, `del X[k]`, `X += ...`, `X.append(...)`, `global X`."""
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Global):
            out.update(node.names)
        elif isinstance(node, ast.Assign | ast.AugAssign | ast.Delete):
            targets = node.targets if isinstance(node, ast.Assign | ast.Delete) else [node.target]
            for t in targets:
                base = t.value if isinstance(t, ast.Subscript) else t if isinstance(node, ast.AugAssign) else None
                if isinstance(base, ast.Name):
                    out.add(base.id)
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in MUTATORS
              and isinstance(node.func.value, ast.Name)):
            out.add(node.func.value.id)
    return out


def _state_findings(module: str, tree: ast.Module) -> list[Finding]:
    mutated = _mutated_names(tree)
    out = [Finding(module, line, f"module-level {name} is mutated (state shared between runs)", name)
           for name, line in _module_level_mutables(tree).items() if name in mutated]
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        takes_input = bool(node.args.args or node.args.kwonlyargs or node.args.vararg or node.args.kwarg)
        memoized = any(_called_name(d.func if isinstance(d, ast.Call) else d) in MEMOIZERS for d in node.decorator_list)
        if memoized and takes_input:
            out.append(Finding(module, node.lineno, f"{node.name}() memoizes varying input at module level",
                               node.name))
    return out


def impurities(module: str, source: str) -> list[Finding]:
    """Everything in `source` that could make a workflow decide differently on another run or machine."""
    tree = ast.parse(source)
    found = _import_findings(module, tree) + _call_findings(module, tree) + _state_findings(module, tree)
    return [f for f in found if (module, f.name) not in ALLOWED or not f.name]


# ----- what is scanned ---------------------------------------------------------------


def scanned_modules() -> list[str]:
    """The modules the sandbox passes through (the pure core) and every workflow shell: all of workflows/."""
    shells = [m.name for m in pkgutil.walk_packages(workflows.__path__, prefix="workflows.") if not m.ispkg]
    return sorted(set(pure_modules()) | set(shells) | {"workflows.ticket", "workflows.common"})


def source_of(module: str) -> str:
    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.origin is not None, module
    return Path(spec.origin).read_text(encoding="utf-8")


def test_the_scan_covers_the_passed_through_modules_and_the_workflow_shells() -> None:
    scanned = scanned_modules()
    assert set(pure_modules()) <= set(scanned)
    assert "workflows.ticket.workflow" in scanned
    assert "workflows.ticket.rules" in scanned


@pytest.mark.parametrize("module", scanned_modules())
def test_workflow_code_is_deterministic(module: str) -> None:
    found = impurities(module, source_of(module))
    assert not found, "\n".join(map(str, found))


def test_every_allowed_exception_still_exists() -> None:
    """An entry whose code is gone would silently allow the next thing given that name."""
    for module, name in ALLOWED:
        tree = ast.parse(source_of(module))
        found = [f for f in _state_findings(module, tree) if f.name == name]
        assert found, f"ALLOWED lists {module}.{name}, which is no longer module-level state: remove the entry"


# ----- the scan finds what it must (each rule on a snippet) ----------------------------

IMPURE_SNIPPETS = {
    "clock": "from datetime import datetime\ndef f():\n    return datetime.now()\n",
    "qualified clock": "import datetime\ndef f():\n    return datetime.datetime.utcnow()\n",
    "today": "from datetime import date\nx = date.today()\n",
    "aliased clock": "from datetime import datetime as D\ndef f():\n    return D.now()\n",
    "clock kept for later": "from datetime import datetime\ntick = datetime.now\n",
    "clock by getattr": "from datetime import datetime\ndef f():\n    return getattr(datetime, 'now')()\n",
    "time": "import time\n",
    "random": "from random import choice\n",
    "uuid": "import uuid\n",
    "uuid call": "def f(uuid4):\n    return uuid4()\n",
    "os": "import os.path\n",
    "environment": "def f(env):\n    return env.getenv('X')\n",
    "open": "def f():\n    return open('x').read()\n",
    "network": "import urllib.request\n",
    "socket": "from socket import create_connection\n",
    "dict cache": "_SEEN = {}\ndef f(k):\n    _SEEN[k] = 1\n",
    "list cache": "_LOG: list[str] = []\ndef f(k):\n    _LOG.append(k)\n",
    "set cache": "_KEYS = set()\ndef f(k):\n    _KEYS.add(k)\n",
    "global": "_COUNT = []\ndef f():\n    global _COUNT\n    _COUNT = [1]\n",
    "memoized": "import functools\n@functools.cache\ndef f(k):\n    return k\n",
    "lru memoized": "from functools import lru_cache\n@lru_cache(maxsize=8)\ndef f(k):\n    return k\n",
}

PURE_SNIPPETS = {
    "workflow time": "from temporalio import workflow\ndef f():\n    return workflow.now()\n",
    "datetime.time type": "from datetime import time\nNOON = time(12)\n",
    "constant table": "LIMITS = {'P1': 1}\ndef f(p):\n    return LIMITS[p]\n",
    "local list": "def f():\n    out = []\n    out.append(1)\n    return out\n",
    "memo of a constant": "import functools\n@functools.cache\ndef f():\n    return 1\n",
    "a package resource": "def f(res):\n    return res.open('rb')\n",
}


@pytest.mark.parametrize("snippet", IMPURE_SNIPPETS.values(), ids=IMPURE_SNIPPETS.keys())
def test_the_scan_finds_an_impurity(snippet: str) -> None:
    assert impurities("snippet", snippet)


@pytest.mark.parametrize("snippet", PURE_SNIPPETS.values(), ids=PURE_SNIPPETS.keys())
def test_the_scan_passes_pure_code(snippet: str) -> None:
    assert impurities("snippet", snippet) == []


def test_an_allowed_cache_is_allowed_only_in_its_own_module() -> None:
    snippet = "_INTERNED = {}\ndef f(k, v):\n    _INTERNED[k] = v\n"
    assert impurities("workflows.common.policy", snippet) == []
    assert impurities("workflows.ticket.rules", snippet)
