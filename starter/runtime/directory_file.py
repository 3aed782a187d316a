"""Reading and validating the directory file (config/directory.yaml, or ESCALATION_DIRECTORY), in the policy's
error style: file, field path, value, allowed values."""

from __future__ import annotations

import os
from pathlib import Path

from starter.runtime.policy_file import load_model
from workflows.common.directory import Directory
from workflows.common.policy import Policy

DEFAULT_DIRECTORY = Path(__file__).resolve().parents[2] / "config" / "directory.yaml"
DEFAULT_TEMPLATES = Path(__file__).resolve().parents[2] / "config" / "templates"
DIRECTORY_ENV = "ESCALATION_DIRECTORY"


def directory_path(path: str | os.PathLike[str] | None = None) -> Path:
    return Path(path or os.environ.get(DIRECTORY_ENV) or DEFAULT_DIRECTORY)


def load_directory(path: str | os.PathLike[str] | None = None) -> Directory:
    return load_model(directory_path(path), Directory, "directory", DIRECTORY_ENV, "people, teams, accounts")


def unknown_roles(policy: Policy, directory: Directory) -> list[str]:
    """Every role name the policy notifies that the directory cannot resolve, with where the policy names it."""
    named: list[tuple[str, str]] = [(f"escalation_notify[{i}]", r) for i, r in enumerate(policy.escalation_notify)]
    named += [(f"breach_notify[{i}]", r) for i, r in enumerate(policy.breach_notify)]
    named += [(f"executive.notify[{i}]", r) for i, r in enumerate(policy.executive.notify)]
    for pid, sla in policy.priorities.items():
        named += [(f"priorities.{pid}.stakeholders[{i}]", r) for i, r in enumerate(sla.stakeholders)]
    for t in policy.tiers:
        named += [(f"tiers[{t.id}].notify[{i}]", r) for i, r in enumerate(t.notify)]
    named += [(f"surveys.notify_low_score[{i}]", r) for i, r in enumerate(policy.surveys.notify_low_score)]
    known = sorted(directory.teams)
    return [f"{where}: unknown role {role!r}; the directory has teams {', '.join(known) or 'none'} and the roles "
            f"csm, account_manager, executive_sponsor, customer, assignee, escalation_manager, team_lead, "
            f"tier:<id>, department:<id>, person:<id>" for where, role in named if not directory.knows_role(role)]


def template_problems(folder: Path) -> list[str]:
    """Every template in `folder` rendered against a sample ticket (the preparing activity's renderer); each problem
    names the template and the undefined variable (or syntax error)."""
    from activities.prepare import Templates, render_all

    if not folder.is_dir():
        return [f"{folder}: no such templates folder (set ESCALATION_TEMPLATES or pass --templates)"]
    return render_all(Templates(folder))
