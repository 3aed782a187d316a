"""The `notify` activity: tell people about escalations, warnings and breaches.

An activity class: the worker builds it once, with its delivery sink (chosen from the settings at start-up),
so a delivery reads no environment and keeps nothing in module globals. The default sink writes a
structured log line and appends to a JSONL outbox. Each notification carries an idempotency key; a retried
delivery with a key already in the outbox is recognised and not written twice.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, Protocol

import structlog
from temporalio import activity

from workflows.ticket import Notify, NotifyResult

log = structlog.get_logger("escalation.notify")


class Sink(Protocol):
    """Where notifications go (a real channel later: email, chat, paging)."""

    async def deliver(self, n: Notify) -> NotifyResult: ...


class Outbox:
    """Append-only JSONL file; remembers the keys it holds so redeliveries are dropped, also across processes: every
    worker sharing the file (two on one machine; a restarted one) appends under an exclusive file lock, after
    reading what the others appended since its last look."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._keys: set[str] = set()
        self._offset = 0  # how far this process has read the file
        self._lock = asyncio.Lock()

    def _catch_up(self, f: BinaryIO) -> None:
        """Read the lines appended since our last look (by us or another process); end a torn last line (a writer
        killed mid-write: nobody else writes while we hold the lock)."""
        size = f.seek(0, 2)
        if size < self._offset:  # truncated or replaced: read it afresh
            self._keys, self._offset = set(), 0
        f.seek(self._offset)
        data = f.read()
        if data and not data.endswith(b"\n"):
            f.write(b"\n")
        for line in data.splitlines():
            try:
                self._keys.add(json.loads(line)["key"])
            except (ValueError, KeyError, TypeError):
                continue  # a torn line
        self._offset = f.seek(0, 2)

    async def deliver(self, n: Notify) -> NotifyResult:
        added = await self.append(n.key, n.model_dump(mode="json"))
        return NotifyResult(key=n.key, duplicate=not added, recorded_at=datetime.now(UTC))

    async def append(self, key: str, record: dict[str, object]) -> bool:
        """Append the record under its key, unless the outbox holds that key already (False: a redelivery)."""
        async with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a+b") as f:
                fcntl.flock(f, fcntl.LOCK_EX)  # released when the file closes (also if this process dies)
                self._catch_up(f)
                if key in self._keys:
                    return False
                line = {"recorded_at": datetime.now(UTC).isoformat(), **record, "key": key}
                f.write((json.dumps(line, separators=(",", ":")) + "\n").encode())
                f.flush()
                self._offset = f.tell()
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
