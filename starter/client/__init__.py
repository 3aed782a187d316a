"""The one client: the CLI, the HTTP API and the console reach Temporal only through it."""

from starter.client.tickets import (
    ActionRejected,
    EscalationClient,
    EscalationError,
    IdConflict,
    InvalidInput,
    OpenResult,
    ReplyAccepted,
    TemporalUnavailable,
    TicketNotFound,
    TicketPage,
    TicketSummary,
)
from workflows.ticket.state import workflow_id

__all__ = [
    "ActionRejected", "EscalationClient", "EscalationError", "IdConflict", "InvalidInput", "OpenResult",
    "ReplyAccepted", "TemporalUnavailable", "TicketNotFound", "TicketPage", "TicketSummary", "workflow_id",
]
