"""The `notify` activity: tell people about escalations, warnings and breaches.

An activity class: the worker builds it once, with its delivery sink (chosen from the settings at start-up),
so a delivery reads no environment and keeps nothing in module globals. The default sink writes a
structured log line and appends to a JSONL outbox. Each notification carries an idempotency key; a retried
delivery with a key already in the outbox is recognised and not written twice.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import structlog
from temporalio import activity

from workflows.ticket import Notify, NotifyResult

log = structlog.get_logger("escalation.notify")


class Sink(Protocol):
    """Where notifications go (a real channel later: email, chat, paging)."""

    async def deliver(self, n: Notify) -> NotifyResult: ...


class Outbox:
    """Append-only JSONL file; remembers the keys it holds so redeliveries are dropped."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._keys: set[str] | None = None
        self._lock = asyncio.Lock()

    def _load_keys(self) -> set[str]:
        keys: set[str] = set()
        if self.path.exists():
            with self.path.open(encoding="utf-8") as f:
                for line in f:
                    try:
                        keys.add(json.loads(line)["key"])
                    except (ValueError, KeyError):
                        continue  # a torn last line after a crash
        return keys

    def _end_torn_line(self) -> None:
        if self.path.exists() and self.path.stat().st_size:
            with self.path.open("rb") as f:
                f.seek(-1, 2)
                torn = f.read(1) != b"\n"
            if torn:
                with self.path.open("a", encoding="utf-8") as f:
                    f.write("\n")

    async def deliver(self, n: Notify) -> NotifyResult:
        added = await self.append(n.key, n.model_dump(mode="json"))
        return NotifyResult(key=n.key, duplicate=not added, recorded_at=datetime.now(UTC))

    async def append(self, key: str, record: dict[str, object]) -> bool:
        """Append the record under its key, unless the outbox holds that key already (False: a redelivery)."""
        async with self._lock:
            if self._keys is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._keys = self._load_keys()
                self._end_torn_line()
            if key in self._keys:
                return False
            line = {"recorded_at": datetime.now(UTC).isoformat(), **record, "key": key}
            with self.path.open("a", encoding="utf-8") as f:
                f.write(json.dumps(line, separators=(",", ":")) + "\n")
            self._keys.add(key)
            return True


class Notifier:
    """The `notify` activity, bound to the sink it delivers to."""

    def __init__(self, sink: Sink) -> None:
        self.sink = sink

    @activity.defn(name="notify")
    async def notify(self, n: Notify) -> NotifyResult:
        delivery = await self.sink.deliver(n)
        log.info("notification", kind=n.kind, key=n.key, ticket_id=n.ticket_id, recipients=n.recipients,
                 tier=n.tier, priority=n.priority, duplicate=delivery.duplicate, attempt=activity.info().attempt)
        return delivery
