"""Macros: an agent's canned public replies (the help desks' macros), rendered for one ticket.

`config/templates/macros/<name>.txt`, in the same sandboxed Jinja as the notification templates (an undefined
variable is an error; `policy check` renders every macro against a sample ticket). Not an activity: the client
renders a macro when an agent replies with it, and the reply goes to the ticket as the rendered text (a public
reply, recorded like any other), so the history holds what the customer was sent."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from activities.prepare import Templates
from workflows.common.directory import Directory
from workflows.ticket.state import TicketState

MACROS = "macros"


class UnknownMacro(ValueError):
    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(f"no macro {name!r}; the macros are: {', '.join(known) or 'none'} (files in the templates "
                         f"folder's {MACROS}/)")


class MacroFailed(ValueError):
    pass


def macro_variables(state: TicketState, agent_id: str, agent_name: str, zone: str, link: str,
                    tier_name: str) -> dict[str, Any]:
    """What a macro may use: the ticket (as the customer may see it), the replying agent, the next due time."""
    running = [c.due_at for c in state.clocks.values() if c.phase == "running" and c.due_at is not None]
    due = min(running).astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M %Z") if running else None
    t = state.ticket
    return {"ticket": {"id": t.id, "subject": t.subject, "tier": state.tier, "tier_name": tier_name,
                       "department": state.department, "priority": state.priority, "status": state.status.value,
                       "customer_id": t.customer_id, "link": link},
            "agent": {"id": agent_id, "name": agent_name}, "due": due}


class Macros:
    def __init__(self, templates_dir: Path, directory: Callable[[], Directory], public_url: str) -> None:
        self.folder = templates_dir / MACROS
        self.templates = Templates(templates_dir)
        self.directory = directory
        self.public_url = public_url.rstrip("/")

    def names(self) -> list[str]:
        return sorted(p.stem for p in self.folder.glob("*.txt")) if self.folder.is_dir() else []

    def render(self, name: str, state: TicketState, agent: str, tier_name: str) -> str:
        known = self.names()
        if name not in known:
            raise UnknownMacro(name, known)
        d = self.directory()
        account = d.accounts.get(state.ticket.customer_id)
        agent_id = agent.split(":", 1)[-1]
        person = d.person(agent_id)
        v = macro_variables(state, agent_id, person.name if person else agent_id,
                            (account.time_zone if account else None) or "UTC",
                            f"{self.public_url}/v1/tickets/{state.ticket.id}", tier_name)
        try:
            text = self.templates.render([f"{MACROS}/{name}.txt"], v)
        except Exception as exc:  # an undefined variable, a syntax error, a sandbox refusal
            raise MacroFailed(f"macro {name!r} could not be rendered: {type(exc).__name__}: {exc}") from None
        return text or ""

    def problems(self, sample: TicketState) -> list[str]:
        """Every macro rendered against a sample ticket (`policy check`): the ones that fail, with why."""
        out = []
        for name in self.names():
            try:
                self.render(name, sample, "agent:mia", "Tier 2")
            except MacroFailed as exc:
                out.append(f"{self.folder / (name + '.txt')}: {exc}")
        return out
