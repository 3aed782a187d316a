"""Back-pressure for the API: a bound on its calls to Temporal in flight at once, per API process.

When Temporal is saturated (the embedded dev server tops out at a few dozen starts per second on 2 cores), every
request that waits adds to a queue nobody drains faster: latency grows until callers time out, and a timed-out
write "may or may not be applied". Bounding what is in flight keeps the queue at Temporal short; a request beyond
the bound waits at most `wait_s` for a slot, then is shed (the API answers 503 `overloaded` with Retry-After) before
anything was sent to Temporal, so retrying it is always safe. The bound and its default are discussed in the
README ("Back-pressure").
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class Overloaded(Exception):
    """No slot within the wait: the call was not made."""

    def __init__(self, limit: int, wait_s: float) -> None:
        super().__init__(f"{limit} Temporal calls already in flight (waited {wait_s * 1000:g} ms)")
        self.limit = limit
        self.wait_s = wait_s


class InFlightLimit:
    """At most `limit` holders of `slot()` at once (0: no bound); a newcomer waits up to `wait_s`, else Overloaded.

    Waiters are served first come, first served (asyncio.Semaphore's FIFO), so a burst cannot starve an early
    request; `shed` counts the refusals for the logs and the bench."""

    def __init__(self, limit: int, wait_s: float = 0.0) -> None:
        if limit < 0 or wait_s < 0:
            raise ValueError(f"limit and wait_s must be >= 0 (limit 0: no bound); got {limit}, {wait_s}")
        self.limit = limit
        self.wait_s = wait_s
        self._sem = asyncio.Semaphore(limit) if limit else None
        self.in_flight = 0
        self.shed = 0

    @asynccontextmanager
    async def slot(self, wait_s: float | None = None) -> AsyncIterator[None]:
        """Hold a slot for the block; `wait_s` overrides the limit's own wait."""
        if self._sem is None:
            yield
            return
        wait = self.wait_s if wait_s is None else wait_s
        if not await self._acquire(wait):
            self.shed += 1
            raise Overloaded(self.limit, wait)
        self.in_flight += 1
        try:
            yield
        finally:
            self.in_flight -= 1
            self._sem.release()

    async def _acquire(self, wait_s: float) -> bool:
        assert self._sem is not None
        if not self._sem.locked():  # a free slot and nobody queued before us: no await, no timer
            await self._sem.acquire()
            return True
        if wait_s <= 0:
            return False
        try:
            await asyncio.wait_for(self._sem.acquire(), wait_s)
        except TimeoutError:
            return False
        return True
