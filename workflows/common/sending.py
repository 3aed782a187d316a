"""What the workflow shells share for telling people: a notification prepared (one recorded step), then each message
delivered on its own. Deterministic and stateless, so the sandbox passes it through like the pure core (loaded once
per worker, not once per workflow run); it only calls `temporalio.workflow`, which works from any module."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

from workflows.common.delivery import DeliveryResult, Message, Prepared, PrepareInput

NOTIFY_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1))


def failure(exc: ActivityError) -> str:
    return str(exc.cause or exc)


async def prepare(inp: PrepareInput) -> Prepared:
    """Who and what, decided once: the activity's result is in the history (raises ActivityError after a day)."""
    prepared: Prepared = await workflow.execute_activity(
        "prepare_notification", inp, start_to_close_timeout=timedelta(seconds=30),
        schedule_to_close_timeout=timedelta(days=1), retry_policy=NOTIFY_RETRY, result_type=Prepared)
    return prepared


async def deliver(m: Message) -> str | None:
    """One message on its channel; the reason when it was refused (final) or still failed after a day."""
    try:
        await workflow.execute_activity(
            # an attempt lost with its worker is retried after start_to_close (the adapters time out at 15 s)
            "deliver", m, start_to_close_timeout=timedelta(seconds=30), schedule_to_close_timeout=timedelta(days=1),
            retry_policy=NOTIFY_RETRY, result_type=DeliveryResult)
    except ActivityError as exc:
        return failure(exc)
    return None


async def deliver_all(prepared: Prepared, on_failure: Callable[[Message, str], None]) -> None:
    async def one(m: Message) -> None:
        error = await deliver(m)
        if error is not None:
            on_failure(m, error)

    await asyncio.gather(*(one(m) for m in prepared.messages))
