"""The ticket's wire contract: every Update, Signal and Query is named explicitly, and the names are today's.

Running tickets and committed histories are addressed by these names; renaming a Python method must never change
them, so each handler spells its name out (read from the source: the SDK keeps its registry private)."""

from __future__ import annotations

import ast
import inspect
import sys

import pytest

from starter.runtime.temporal import WORKFLOWS
from workflows.archive.workflow import ArchiveWorkflow
from workflows.incident.workflow import IncidentWorkflow
from workflows.postmortem.workflow import PostmortemWorkflow
from workflows.rotation.workflow import RotationWorkflow
from workflows.sponsorship.workflow import SponsorshipWorkflow
from workflows.survey.workflow import SurveyWorkflow
from workflows.ticket import ACTIONS
from workflows.ticket.workflow import TicketWorkflow

HANDLER_KINDS = ("update", "signal", "query")

# Updates that are not agent actions: the incident's resolution (its activity sends it), an admin's policy migration.
SYSTEM_UPDATES = {"incident_resolution", "migrate_policy", "publish_figures"}
# The contract. Changing a line here breaks running tickets and every client that sends the old name.
WIRE_NAMES: dict[str, set[str]] = {
    "update": {"acknowledge", "escalate", "transfer", "wait_on_customer", "resolve", "reopen", "close", "assign",
               "note", "change_priority", "customer_reply", "escalate_to_executive",
               "assign_manager", *SYSTEM_UPDATES},
    "signal": {"customer_replied", "incident"},
    "query": {"state", "view", "policy_snapshot", "breaches"},
}


# The other workflow types' contracts (clients and activities address them by these names too).
OTHER_WIRE_NAMES: dict[type, dict[str, set[str]]] = {
    RotationWorkflow: {"update": {"take"}, "signal": set(), "query": {"state"}},
    SurveyWorkflow: {"update": {"answer"}, "signal": set(), "query": {"state"}},
    SponsorshipWorkflow: {"update": {"check_in", "exit"}, "signal": {"enrol"}, "query": {"state"}},
    IncidentWorkflow: {"update": {"link", "unlink", "post_update", "resolve"}, "signal": set(), "query": {"state"}},
    PostmortemWorkflow: {"update": {"review", "root_cause", "add_action_item", "complete_action_item", "assign",
                                    "complete"},
                         "signal": set(), "query": {"state"}},
    ArchiveWorkflow: {"update": set(), "signal": set(), "query": set()},  # the Schedule starts it by type name
}


def handlers(source: str, class_name: str) -> list[tuple[str, str, str | None]]:
    """(kind, method, explicit wire name or None) of every `@workflow.update/signal/query` of the class."""
    tree = ast.parse(source)
    cls = next(n for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name == class_name)
    out = []
    for fn in (n for n in cls.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)):
        for d in fn.decorator_list:
            target = d.func if isinstance(d, ast.Call) else d
            if isinstance(target, ast.Attribute) and target.attr in HANDLER_KINDS:
                name = next((k.value for k in getattr(d, "keywords", []) if k.arg == "name"), None)
                wire = name.value if isinstance(name, ast.Constant) and isinstance(name.value, str) else None
                out.append((target.attr, fn.name, wire))
    return out


def declared_handlers(cls: type) -> list[tuple[str, str, str | None]]:
    return handlers(inspect.getsource(sys.modules[cls.__module__]), cls.__name__)


@pytest.mark.parametrize("cls", WORKFLOWS, ids=lambda c: c.__name__)
def test_every_handler_names_itself_on_the_wire(cls: type) -> None:
    unnamed = [f"{kind} {method}" for kind, method, name in declared_handlers(cls) if name is None]
    assert not unnamed, f"give these an explicit name=: {unnamed}"


def test_every_workflow_type_has_its_contract_here() -> None:
    assert set(WORKFLOWS) == {TicketWorkflow, *OTHER_WIRE_NAMES}


@pytest.mark.parametrize("cls", list(OTHER_WIRE_NAMES), ids=lambda c: c.__name__)
def test_the_other_workflows_wire_names_are_todays(cls: type) -> None:
    found: dict[str, set[str]] = {k: set() for k in HANDLER_KINDS}
    for kind, _, name in declared_handlers(cls):
        found[kind].add(name or "")
    assert found == OTHER_WIRE_NAMES[cls]


def test_the_wire_names_are_todays() -> None:
    found: dict[str, set[str]] = {k: set() for k in HANDLER_KINDS}
    for kind, _, name in declared_handlers(TicketWorkflow):
        found[kind].add(name or "")
    assert found == WIRE_NAMES


def test_each_action_is_the_update_of_its_name() -> None:
    """Clients dispatch an action to the Update of the same name."""
    assert WIRE_NAMES["update"] - SYSTEM_UPDATES == set(ACTIONS)
    updates = {method: name for kind, method, name in declared_handlers(TicketWorkflow) if kind == "update"}
    assert all(updates[a] == a for a in ACTIONS)


def test_the_scan_sees_an_unnamed_handler() -> None:
    source = (
        "class Probe:\n"
        "    @workflow.query\n    def unnamed(self) -> int: ...\n"
        "    @workflow.signal(name='poked')\n    def poke(self) -> None: ...\n"
    )
    assert handlers(source, "Probe") == [("query", "unnamed", None), ("signal", "poke", "poked")]
