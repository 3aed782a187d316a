"""When the server refuses an Update for now (one rule for every sender: the client, and activities that send
Updates to shared workflows such as the rotation). Not workflow code: no workflow imports it."""

from __future__ import annotations

from temporalio.service import RPCError, RPCStatusCode


def crowded(exc: RPCError) -> bool:
    """Refused for now, to be sent again: the server admits a bounded number of Updates in flight per workflow
    (history.maxInFlightUpdates, 10 by default), and aborts those in flight when the workflow's task times out (its
    worker went away: "workflow update was aborted", UNAVAILABLE; only Updates not yet accepted are aborted so, the
    accepted ones are in the history)."""
    message = exc.message or ""
    return ((exc.status == RPCStatusCode.RESOURCE_EXHAUSTED and "in-flight updates" in message)
            or (exc.status == RPCStatusCode.UNAVAILABLE and "update was aborted" in message))
