"""Reading and validating the directory file (config/directory.yaml, or ESCALATION_DIRECTORY), in the policy's
error style: file, field path, value, allowed values."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import structlog

from starter.client.macros import MacroRenderer
from starter.runtime.policy_file import PolicyError, load_model
from starter.runtime.settings import Settings
from workflows.common.directory import Directory
from workflows.common.policy import Policy

DEFAULT_DIRECTORY = Path(__file__).resolve().parents[2] / "config" / "directory.yaml"
DEFAULT_TEMPLATES = Path(__file__).resolve().parents[2] / "config" / "templates"
DIRECTORY_ENV = "ESCALATION_DIRECTORY"
log = structlog.get_logger("escalation.directory")


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


def template_problems(folder: Path, policy: Policy) -> list[str]:
    """Every template and macro in `folder` rendered against a sample ticket (the preparing activity's renderer,
    the client's macro renderer); each problem names the template and the undefined variable (or syntax error)."""
    from activities.macros import Macros
    from activities.prepare import Templates, render_all, sample_input
    from workflows import ticket as core

    if not folder.is_dir():
        return [f"{folder}: no such templates folder (set ESCALATION_TEMPLATES or pass --templates)"]
    sample = sample_input()
    ticket = core.Ticket(id=sample.ticket_id, subject=sample.ticket_subject, customer_id=sample.customer_id,
                         priority="P1", opened_at=sample.at, customer_contact=sample.customer_contact)
    state = core.open_ticket(ticket, policy, sample.at).state
    return render_all(Templates(folder)) + Macros(folder, Directory, "http://localhost:8000").problems(state)


def directory_reader(s: Settings) -> Callable[[], Directory]:
    """The directory as it is on disk now (read again when the file changes; none: an empty directory)."""
    path = directory_path(s.escalation_directory)
    seen: list[tuple[float, Directory]] = []

    def read() -> Directory:
        if not path.exists():
            return Directory()
        mtime = path.stat().st_mtime
        if not seen or seen[0][0] != mtime:
            try:
                seen[:] = [(mtime, load_directory(path))]
            except PolicyError as exc:  # an edit being made: the last good one holds (`directory check` says why)
                if not seen:
                    raise
                log.warning("directory_not_reloaded", path=str(path), error=str(exc)[:500])
        return seen[0][1]
    return read


def macros(s: Settings) -> MacroRenderer:
    """The macros the client renders agents' replies with (the templates folder's `macros/`)."""
    from activities.macros import Macros

    return Macros(Path(s.escalation_templates or DEFAULT_TEMPLATES), directory_reader(s), s.escalation_public_url)
