"""Per-caller request rate limits for the API: a token bucket per API token, and per client address for
requests without a valid token (guessing tokens).

A runaway integration (a webhook loop, a retry storm) must not crowd out everyone else's
tickets; one caller gets `rate` requests per second on average and `burst` at once. The limit
is per API process: N replicas allow N times as much. Pure and clock-injected, so it is tested
without sleeping.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    """`for_token(name)` / `for_address(host)` return 0 when the request may go ahead, else the seconds to wait."""

    def __init__(self, rate_per_s: float, burst: int, clock: Callable[[], float] = time.monotonic,
                 max_addresses: int = 10_000) -> None:
        if rate_per_s < 0 or (rate_per_s > 0 and burst < 1):
            raise ValueError(f"rate_per_s must be >= 0 (0: no limit) and burst >= 1; got {rate_per_s}, {burst}")
        self.rate = rate_per_s
        self.burst = burst
        self._clock = clock
        # Tokens are few (the tokens file) and kept for good; addresses are many, so only the most recent are
        # remembered (a forgotten one starts with a full bucket). Separate, so that floods of addresses can
        # never evict a throttled token's bucket.
        self._tokens: dict[str, _Bucket] = {}
        self._addresses: OrderedDict[str, _Bucket] = OrderedDict()
        self._max_addresses = max_addresses

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def for_token(self, name: str) -> float:
        return self._take(self._tokens, name)

    def for_address(self, host: str) -> float:
        wait = self._take(self._addresses, address_key(host))
        while len(self._addresses) > self._max_addresses:
            self._addresses.popitem(last=False)
        return wait

    def _take(self, buckets: dict[str, _Bucket], key: str) -> float:
        if not self.enabled:
            return 0.0
        now = self._clock()
        bucket = buckets.pop(key, None) or _Bucket(tokens=float(self.burst), at=now)
        bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.at) * self.rate)
        bucket.at = now
        buckets[key] = bucket  # re-inserted: the most recently seen last
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) / self.rate

    @staticmethod
    def retry_after(wait_s: float) -> str:
        """The Retry-After header: whole seconds, at least 1."""
        return str(max(1, math.ceil(wait_s)))


def address_key(host: str) -> str:
    """An IPv4 address as is; an IPv6 address by its /64 (one host usually holds a whole /64)."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)
