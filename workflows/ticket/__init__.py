"""The ticket: its pure core in one import (`from workflows import ticket as core`).

Split by concern: `events` (what can happen), `state` (what a ticket is), `effects` (what the rules ask for),
`clocks` (the SLA clocks under the policy), `rules` (the state machine), `routing`, `views` (what a person
sees). `workflow` is the durable shell and is deliberately not imported here: it runs in the sandbox.
"""

from workflows.ticket.clocks import Deadline, deadlines, next_due
from workflows.ticket.effects import Effect, Notify, NotifyResult, StepResult
from workflows.ticket.events import (
    ACTIONS,
    SYSTEM_SLA,
    Acknowledge,
    AddNote,
    Assign,
    ChangePriority,
    Close,
    CustomerReply,
    DeadlineReached,
    Escalate,
    Event,
    Rejected,
    Reopen,
    Resolve,
    Transfer,
    WaitOnCustomer,
)
from workflows.ticket.rules import (
    catch_up,
    check,
    follow_up_id,
    follow_up_opened,
    follow_up_ticket,
    notification_failed,
    open_ticket,
    step,
)
from workflows.ticket.state import (
    ACTIVE,
    TEXT_KEPT,
    TIMELINE_KEPT,
    Breach,
    Ticket,
    TicketInput,
    TicketState,
    TimelineEntry,
    list_memo,
    search_attributes,
    workflow_id,
)

__all__ = [
    "ACTIONS", "ACTIVE", "SYSTEM_SLA", "TEXT_KEPT", "TIMELINE_KEPT", "Acknowledge", "AddNote", "Assign", "Breach",
    "ChangePriority", "Close", "CustomerReply", "Deadline", "DeadlineReached", "Effect", "Escalate", "Event",
    "Notify", "NotifyResult", "Rejected", "Reopen", "Resolve", "StepResult", "Ticket", "TicketInput", "TicketState",
    "TimelineEntry", "Transfer", "WaitOnCustomer", "catch_up", "check", "deadlines", "follow_up_id",
    "follow_up_opened", "follow_up_ticket", "list_memo", "next_due", "notification_failed", "open_ticket",
    "search_attributes", "step", "workflow_id",
]
