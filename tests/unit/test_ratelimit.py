"""The API's per-caller token buckets (pure, with a fake clock) and the 429 they produce."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from starter.security.ratelimit import RateLimiter, address_key
from tests.support.api import Tokens, asgi_client, fake_app


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_then_the_rate() -> None:
    clock = Clock()
    limiter = RateLimiter(rate_per_s=2, burst=3, clock=clock)
    assert [limiter.for_token("a") for _ in range(3)] == [0, 0, 0]
    assert limiter.for_token("a") == pytest.approx(0.5)  # empty: the next token comes in 1/rate
    assert limiter.for_token("b") == 0  # another caller has its own bucket
    clock.now += 0.5
    assert limiter.for_token("a") == 0
    assert limiter.for_token("a") > 0
    clock.now += 60  # refills up to the burst, never beyond
    assert [limiter.for_token("a") for _ in range(4)][-1] > 0


def test_zero_rate_means_no_limit_and_bad_settings_are_refused() -> None:
    limiter = RateLimiter(rate_per_s=0, burst=1)
    assert not limiter.enabled and all(limiter.for_token("a") == 0 for _ in range(1000))
    with pytest.raises(ValueError, match="burst >= 1"):
        RateLimiter(rate_per_s=1, burst=0)
    with pytest.raises(ValueError, match="rate_per_s must be >= 0"):
        RateLimiter(rate_per_s=-1, burst=1)


def test_memory_is_bounded_by_forgetting_the_least_recent_addresses_never_a_token() -> None:
    limiter = RateLimiter(rate_per_s=1, burst=1, clock=Clock(), max_addresses=2)
    limiter.for_token("intake")
    assert limiter.for_token("intake") > 0  # throttled
    for i in range(1000):  # a flood of addresses guessing tokens
        limiter.for_address(f"10.0.{i // 256}.{i % 256}")
    assert limiter.for_token("intake") > 0, "a flood of addresses must not reset a token's bucket"
    limiter.for_address("192.0.2.1")
    limiter.for_address("192.0.2.2")
    limiter.for_address("192.0.2.3")  # 192.0.2.1 is forgotten: it starts again with a full bucket
    assert limiter.for_address("192.0.2.1") == 0 and limiter.for_address("192.0.2.3") > 0


def test_ipv6_callers_are_counted_by_their_64_block() -> None:
    limiter = RateLimiter(rate_per_s=1, burst=1, clock=Clock())
    assert limiter.for_address("2001:db8:1:2::1") == 0
    assert limiter.for_address("2001:db8:1:2:ffff::9") > 0  # same /64
    assert limiter.for_address("2001:db8:1:3::1") == 0  # another /64
    assert address_key("198.51.100.7") == "198.51.100.7" and address_key("testclient") == "testclient"


def test_settings_refuse_a_negative_rate_or_an_empty_burst_by_name() -> None:
    from pydantic import ValidationError

    from starter.runtime.settings import Settings

    with pytest.raises(ValidationError, match="escalation_api_rate_per_s"):
        Settings(escalation_api_rate_per_s=-1)
    with pytest.raises(ValidationError, match="escalation_api_burst"):
        Settings(escalation_api_burst=0)


@given(st.lists(st.floats(min_value=0, max_value=5), min_size=1, max_size=60))
def test_never_more_than_burst_plus_rate_times_elapsed(gaps: list[float]) -> None:
    clock = Clock()
    limiter = RateLimiter(rate_per_s=3, burst=4, clock=clock)
    start, allowed = clock.now, 0
    for gap in gaps:
        clock.now += gap
        allowed += limiter.for_token("k") == 0
    assert allowed <= 4 + 3 * (clock.now - start) + 1e-9


def test_retry_after_is_whole_seconds_at_least_one() -> None:
    assert RateLimiter.retry_after(0.01) == "1" and RateLimiter.retry_after(2.2) == "3"


@pytest.mark.asyncio(loop_scope="session")
async def test_the_api_answers_429_per_token_and_per_address_for_bad_tokens(tokens: Tokens) -> None:
    app = fake_app(tokens, escalation_api_rate_per_s=0.01, escalation_api_burst=2)  # the limit answers before Temporal
    async with asgi_client(app) as http:
        for _ in range(2):
            r = await http.get("/v1/tickets?limit=1", headers=tokens.header("auditor"))
            assert r.status_code == 200, r.text
        r = await http.get("/v1/tickets?limit=1", headers=tokens.header("auditor"))
        assert r.status_code == 429, r.text
        err = r.json()["error"]
        assert err["code"] == "rate_limited" and "auditor" in err["message"] and "burst 2" in err["message"]
        assert int(r.headers["retry-after"]) >= 1 and err["request_id"] == r.headers["x-request-id"]
        r = await http.get("/v1/tickets?limit=1", headers=tokens.header("admin"))
        assert r.status_code == 200, "another token has its own bucket"

        bad = {"Authorization": "Bearer not-a-token"}
        assert [(await http.get("/v1/tickets", headers=bad)).status_code for _ in range(3)] == [401, 401, 429]
        assert (await http.get("/healthz")).status_code == 200  # health checks are never limited
