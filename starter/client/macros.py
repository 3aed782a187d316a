"""What the client needs of macros (rendered by activities/macros.py, built by starter/runtime: the client imports
no activity): their names, and one rendered for a ticket and the replying agent."""

from __future__ import annotations

from typing import Protocol

from workflows.ticket.state import TicketState


class MacroRenderer(Protocol):
    def names(self) -> list[str]: ...

    def render(self, name: str, state: TicketState, agent: str, tier_name: str) -> str:
        """The reply's text; ValueError (naming the macro and the known ones) when it cannot be rendered."""
        ...
