"""The one client: the CLI, the HTTP API and the console reach Temporal only through it."""

from starter.client.errors import (
    ActionRejected,
    Busy,
    DecisionsDiffer,
    EscalationError,
    Forbidden,
    HistoryDiverged,
    IdConflict,
    InvalidInput,
    LinkRejected,
    OutOfScope,
    TemporalUnavailable,
    TicketNotFound,
    WorkflowTaskFailed,
)
from starter.client.principal import Permission, Principal, Role
from starter.client.tickets import (
    EscalationClient,
    OpenResult,
    ReplyAccepted,
    ReplyResult,
    TicketPage,
    TicketSummary,
)
from workflows.ticket.state import workflow_id

__all__ = [
    "ActionRejected", "Busy", "DecisionsDiffer", "EscalationClient", "EscalationError", "Forbidden", "HistoryDiverged",
    "IdConflict", "InvalidInput", "LinkRejected", "OpenResult", "OutOfScope", "Permission", "Principal", "ReplyAccepted",
    "ReplyResult", "Role", "TemporalUnavailable", "TicketNotFound", "TicketPage", "TicketSummary", "WorkflowTaskFailed",
    "workflow_id",
]
