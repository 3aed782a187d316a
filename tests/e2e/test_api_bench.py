"""bench/api_bench.py: its arithmetic, and one short step against a live API, dev server and worker."""

from __future__ import annotations

import asyncio
import math
from typing import Any

from bench.api_bench import Step, _server_timing, quantile, run_api_bench, where_is_the_limit
from tests.support.api import live_api, make_tokens


def test_quantile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert quantile(values, 0.99) == 99 and quantile(values, 0.5) == 50 and quantile([7.0], 0.99) == 7
    assert math.isnan(quantile([], 0.5))


def test_server_timing_header() -> None:
    assert _server_timing("app;dur=12.5, temporal;dur=9.0") == {"app": 12.5, "temporal": 9.0}
    assert _server_timing(None) == {}


def step(**kw: Any) -> Step:
    base = {"rate_per_s": 30, "seconds": 10, "sent": 300, "ok": 300, "p99_ms": 20.0, "kept_up": True,
            "temporal_p99_ms": 10.0, "own_p99_ms": 3.0, "queued_p99_ms": 5.0,
            "cpu_cores": {"server": 0.7, "worker": 0.5, "api": 0.1, "bench client": 0.1}}
    return Step(**{**base, **kw})


def test_where_is_the_limit() -> None:
    assert step().passed
    lagging = where_is_the_limit(step(kept_up=False, not_processed=40,
                                      cpu_cores={"server": 0.3, "ticket worker": 0.95, "api": 0.1}))
    assert lagging["component"] == "worker" and "40 of 300" in lagging["reason"]
    slow_start = where_is_the_limit(step(p99_ms=80.0, temporal_p99_ms=60.0))
    assert slow_start["component"] == "server"
    slow_code = where_is_the_limit(step(p99_ms=80.0, own_p99_ms=70.0))
    assert slow_code["component"] == "api"
    queued = where_is_the_limit(step(p99_ms=80.0, queued_p99_ms=70.0, cpu_cores={"api": 0.2}))
    assert queued["component"] == "api"
    failures = where_is_the_limit(step(ok=290, errors={"503": 10}))
    assert failures["component"] == "api" and "10 of 300" in failures["reason"]


def test_a_short_run_against_the_live_api(temporal_stack: Any, tmp_path: Any) -> None:
    tokens = make_tokens()
    tokens_file = tmp_path / "tokens.yaml"
    tokens_file.write_text(tokens.yaml(), encoding="utf-8")
    with live_api(temporal_stack, tokens_file, log_file=tmp_path / "api.log") as base:
        result = asyncio.run(run_api_bench(base, tokens.by_name["admin"], rate_per_s=10, seconds=1, search_max=False))
    assert result["api_open_sent"] == 10 and result["api_open_ok"] == 10, result
    assert result["api_kept_up"] is True
    assert 0 < result["api_open_p50_ms"] <= result["api_open_p99_ms"]
    assert result["api_fixed_step"]["temporal_p99_ms"] > 0
