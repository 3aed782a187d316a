"""bench/soak.py: its tally (which statuses fail a soak), and a few seconds of mixed traffic against a live API, dev
server and worker (the 10-minute soak is `make soak`)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from bench.run import OutboxTail
from bench.soak import Tally, soak
from tests.support.api import live_api, make_tokens


def test_only_429_and_503_are_allowed_errors() -> None:
    tally = Tally()
    for kind, status in (("open", 201), ("read", 200), ("open", 429), ("acknowledge", 202)):
        tally.add(kind, status, 10.0)
    tally.add("open", 503, 5.0, "overloaded", app_ms=1.5)
    assert tally.unexpected == 0
    assert tally.summary()["shed_latency_ms"] == {"n": 1, "p50": 5.0, "p99": 5.0, "in_api_p50": 1.5, "in_api_p99": 1.5}
    tally.add("acknowledge", 409, 1.0)
    tally.add("read", 500, 1.0)
    tally.add("open", "ReadTimeout", 0.0)
    assert tally.unexpected == 3


def test_a_few_seconds_of_mixed_traffic(temporal_stack: Any, tmp_path: Path) -> None:
    tokens = make_tokens()
    tokens_file = tmp_path / "tokens.yaml"
    tokens_file.write_text(tokens.yaml(), encoding="utf-8")
    with live_api(temporal_stack, tokens_file, log_file=tmp_path / "api.log") as base:
        result = asyncio.run(soak(base, tokens.by_name["admin"], rate=5, seconds=3, breach_share=0, breach_after=0,
                                  tail=OutboxTail(temporal_stack.outbox),
                                  pids={"worker": temporal_stack.stack.children[0].pid}))
    assert result["unexpected"] == 0 and result["passed"], result
    statuses = result["by_status"]
    assert statuses.get("open 201", 0) >= 10 and statuses.get("read 200", 0) > 0, statuses
    assert statuses.get("acknowledge 200", 0) > 0 and statuses.get("list 200", 0) > 0, statuses
    assert result["memory"]["worker"]["first_mb"] > 0
