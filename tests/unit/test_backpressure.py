"""The API's in-flight bound (starter/security/backpressure.py): how many hold a slot, who waits, who is shed."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import ValidationError

from starter.runtime.settings import Settings
from starter.security.backpressure import InFlightLimit, Overloaded


async def _hold(limit: InFlightLimit, release: asyncio.Event, order: list[int], n: int,
                wait_s: float | None = None) -> None:
    async with limit.slot(wait_s):
        order.append(n)
        await release.wait()


@pytest.mark.asyncio
async def test_beyond_the_bound_is_refused_at_once_without_a_wait() -> None:
    limit, release, order = InFlightLimit(2), asyncio.Event(), list[int]()
    holders = [asyncio.create_task(_hold(limit, release, order, n)) for n in range(2)]
    await asyncio.sleep(0)
    assert limit.in_flight == 2
    with pytest.raises(Overloaded, match="2 Temporal calls already in flight"):
        async with limit.slot():
            pass
    assert limit.shed == 1
    release.set()
    await asyncio.gather(*holders)
    assert limit.in_flight == 0
    async with limit.slot():  # free again
        assert limit.in_flight == 1


@pytest.mark.asyncio
async def test_waiters_take_freed_slots_first_come_first_served_within_their_wait() -> None:
    limit, release, order = InFlightLimit(1, wait_s=5), asyncio.Event(), list[int]()
    tasks = [asyncio.create_task(_hold(limit, release, order, n)) for n in range(3)]
    await asyncio.sleep(0.01)
    assert order == [0]
    release.set()
    await asyncio.gather(*tasks)
    assert order == [0, 1, 2] and limit.shed == 0


@pytest.mark.asyncio
async def test_a_waiter_is_shed_when_its_wait_runs_out_and_leaves_no_slot_behind() -> None:
    limit, release, order = InFlightLimit(1, wait_s=0.05), asyncio.Event(), list[int]()
    holder = asyncio.create_task(_hold(limit, release, order, 0))
    await asyncio.sleep(0)
    with pytest.raises(Overloaded):
        async with limit.slot():
            pass
    release.set()
    await holder
    assert limit.in_flight == 0 and not limit._sem.locked()  # type: ignore[union-attr]


@pytest.mark.asyncio
async def test_zero_means_no_bound() -> None:
    limit, release, order = InFlightLimit(0), asyncio.Event(), list[int]()
    tasks = [asyncio.create_task(_hold(limit, release, order, n)) for n in range(50)]
    await asyncio.sleep(0.01)
    assert len(order) == 50
    release.set()
    await asyncio.gather(*tasks)


def test_negative_settings_are_refused_naming_the_field() -> None:
    with pytest.raises(ValueError, match="limit and wait_s must be >= 0"):
        InFlightLimit(-1)
    with pytest.raises(ValidationError, match="escalation_api_max_in_flight"):
        Settings(escalation_api_max_in_flight=-1)
    with pytest.raises(ValidationError, match="escalation_api_queue_wait_ms"):
        Settings(escalation_api_queue_wait_ms=-5)
