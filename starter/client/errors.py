"""The errors the client reports: the few our users tell apart, each with a machine-readable code.

The HTTP layer maps each code to a status, the CLI to an exit code; neither invents its own.
"""

from __future__ import annotations


class EscalationError(Exception):
    code = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class TicketNotFound(EscalationError):
    code = "not_found"


class ActionRejected(EscalationError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class IdConflict(EscalationError):
    code = "id_conflict"


class InvalidInput(EscalationError):
    code = "invalid_input"

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class TemporalUnavailable(EscalationError):
    code = "temporal_unavailable"


class Forbidden(EscalationError):
    """The principal's role does not allow the action (e.g. escalating into a tier only a person may enter)."""

    code = "forbidden"


class OutOfScope(EscalationError):
    """The ticket is outside the principal's tiers/departments."""

    code = "out_of_scope"


class Busy(EscalationError):
    """Temporal answered, but the ticket cannot answer yet (its workflow task is in flight, e.g. after a worker
    restart): try again after `retry_after` seconds. Not `temporal_unavailable`: Temporal was reachable."""

    code = "busy"

    def __init__(self, message: str, retry_after: int = 2) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class WorkflowTaskFailed(EscalationError):
    """The ticket's workflow task keeps failing (a bug in the code the worker runs): the message names the failure."""

    code = "workflow_task_failed"


class HistoryDiverged(EscalationError):
    """A recorded history no longer matches the code (non-determinism): the message names the event."""

    code = "history_diverged"


class DecisionsDiffer(EscalationError):
    """A history that replays, but records decisions the rules do not make from its recorded inputs (a timer, an
    answer, a notification changed): the message names the events."""

    code = "decisions_differ"


class LinkRejected(EscalationError):
    """A signed link (a survey's) that is forged (`link_forged`) or past its expiry (`link_expired`)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
