"""The notify activity and its outbox: one line per notification key, even when Temporal retries a delivery."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from temporalio.testing import ActivityEnvironment

from activities.notify import Notifier, Outbox
from starter.runtime.settings import Settings
from starter.runtime.temporal import activities
from workflows.ticket import Notify, NotifyResult


def notification(key: str) -> Notify:
    return Notify(kind="escalation", key=key, ticket_id="T-1", recipients=["escalation_manager"], subject="s",
                  body="b", priority="P1", tier="tier2", department="general",
                  due_at=datetime(2026, 11, 25, 10, tzinfo=UTC))


async def test_redelivery_is_recognised(tmp_path: Path) -> None:
    outbox = tmp_path / "outbox.jsonl"
    notify = Notifier(Outbox(outbox)).notify
    env = ActivityEnvironment()
    first = await env.run(notify, notification("ticket-T-1:5:escalation"))
    again = await env.run(notify, notification("ticket-T-1:5:escalation"))
    other = await env.run(notify, notification("ticket-T-1:6:escalation"))
    assert (first.duplicate, again.duplicate, other.duplicate) == (False, True, False)
    assert isinstance(first, NotifyResult) and first.key == "ticket-T-1:5:escalation"
    lines = [json.loads(line) for line in outbox.read_text().splitlines()]
    assert [line["key"] for line in lines] == ["ticket-T-1:5:escalation", "ticket-T-1:6:escalation"]
    assert lines[0]["due_at"] == "2026-11-25T10:00:00Z" and lines[0]["recorded_at"]


async def test_keys_survive_a_worker_restart(tmp_path: Path) -> None:
    path = tmp_path / "outbox.jsonl"
    await Outbox(path).deliver(notification("k-1"))
    path.write_text(path.read_text() + '{"torn line')  # a crash mid-write leaves a partial line
    restarted = Outbox(path)
    assert (await restarted.deliver(notification("k-1"))).duplicate is True
    assert (await restarted.deliver(notification("k-2"))).duplicate is False
    keys = []
    for line in path.read_text().splitlines():
        try:
            keys.append(json.loads(line)["key"])
        except ValueError:
            assert line == '{"torn line'
    assert keys == ["k-1", "k-2"], "the line after a torn one is whole"


async def test_the_registered_activity_delivers_to_the_outbox_the_settings_name(tmp_path: Path) -> None:
    """The sink is chosen once, from the settings the worker starts with; a delivery reads no environment."""
    chosen = tmp_path / "chosen.jsonl"
    [notify] = [a for a in activities(Settings(escalation_outbox=str(chosen))) if a.__name__ == "notify"]
    await ActivityEnvironment().run(notify, notification("k-1"))
    assert [json.loads(line)["key"] for line in chosen.read_text().splitlines()] == ["k-1"]


async def test_the_activity_hands_each_notification_to_its_sink() -> None:
    class Recorder:
        def __init__(self) -> None:
            self.seen: list[str] = []

        async def deliver(self, n: Notify) -> NotifyResult:
            self.seen.append(n.key)
            return NotifyResult(key=n.key, duplicate=False, recorded_at=datetime(2026, 1, 1, tzinfo=UTC))

    sink = Recorder()
    result = await ActivityEnvironment().run(Notifier(sink).notify, notification("k-9"))
    assert (sink.seen, result.key) == (["k-9"], "k-9")


async def test_two_processes_sharing_an_outbox_record_a_key_once(tmp_path: Path) -> None:
    """Two workers (two Outbox objects, as in two processes) append to one file: each sees the other's keys."""
    path = tmp_path / "outbox.jsonl"
    first, second = Outbox(path), Outbox(path)
    assert (await second.deliver(notification("k-0"))).duplicate is False  # `second` has read the file once
    assert (await first.deliver(notification("k-1"))).duplicate is False
    assert (await second.deliver(notification("k-1"))).duplicate is True, "the other process's key is seen"
    path.write_text(path.read_text() + '{"torn')  # the other process killed mid-write
    assert (await first.deliver(notification("k-2"))).duplicate is False
    assert [json.loads(x)["key"] for x in path.read_text().splitlines() if x != '{"torn'] == ["k-0", "k-1", "k-2"]
