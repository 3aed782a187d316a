"""The notify activity's outbox: one line per notification key, even when Temporal retries a delivery."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from temporalio.testing import ActivityEnvironment

from activities import notify as notify_module
from workflows.ticket import Notify


def notification(key: str) -> Notify:
    return Notify(kind="escalation", key=key, ticket_id="T-1", recipients=["escalation_manager"], subject="s",
                  body="b", priority="P1", tier="tier2", department="general",
                  due_at=datetime(2026, 11, 25, 10, tzinfo=UTC))


async def test_redelivery_is_recognised(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    outbox = tmp_path / "outbox.jsonl"
    monkeypatch.setenv(notify_module.OUTBOX_ENV, str(outbox))
    env = ActivityEnvironment()
    first = await env.run(notify_module.notify, notification("ticket-T-1:5:escalation"))
    again = await env.run(notify_module.notify, notification("ticket-T-1:5:escalation"))
    other = await env.run(notify_module.notify, notification("ticket-T-1:6:escalation"))
    assert (first.duplicate, again.duplicate, other.duplicate) == (False, True, False)
    lines = [json.loads(line) for line in outbox.read_text().splitlines()]
    assert [line["key"] for line in lines] == ["ticket-T-1:5:escalation", "ticket-T-1:6:escalation"]
    assert lines[0]["due_at"] == "2026-11-25T10:00:00Z" and lines[0]["recorded_at"]


async def test_keys_survive_a_worker_restart(tmp_path: Path) -> None:
    path = tmp_path / "outbox.jsonl"
    await notify_module.Outbox(path).deliver(notification("k-1"))
    path.write_text(path.read_text() + '{"torn line')  # a crash mid-write leaves a partial line
    restarted = notify_module.Outbox(path)
    assert (await restarted.deliver(notification("k-1"))).duplicate is True
    assert (await restarted.deliver(notification("k-2"))).duplicate is False
    keys = []
    for line in path.read_text().splitlines():
        try:
            keys.append(json.loads(line)["key"])
        except ValueError:
            assert line == '{"torn line'
    assert keys == ["k-1", "k-2"], "the line after a torn one is whole"
