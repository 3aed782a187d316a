"""The `notify` activity: tell people about escalations, warnings and breaches.

The default sink writes a structured log line and appends to a JSONL outbox
under var/. Each notification carries an idempotency key; a retried delivery
with a key already in the outbox is recognised and not written twice.
"""

from __future__ import annotations

import asyncio
import json
import os
from datetime import UTC, datetime
from pathlib import Path

import structlog
from pydantic import BaseModel
from temporalio import activity

from workflows.ticket import Notify

log = structlog.get_logger("escalation.notify")
OUTBOX_ENV = "ESCALATION_OUTBOX"


class Delivery(BaseModel):
    key: str
    duplicate: bool
    recorded_at: datetime


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

    async def deliver(self, n: Notify) -> Delivery:
        async with self._lock:
            if self._keys is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._keys = self._load_keys()
                self._end_torn_line()
            now = datetime.now(UTC)
            if n.key in self._keys:
                return Delivery(key=n.key, duplicate=True, recorded_at=now)
            record = {"recorded_at": now.isoformat(), **n.model_dump(mode="json")}
            with self.path.open("a", encoding="utf-8") as f:
                f.write(json.dumps(record, separators=(",", ":")) + "\n")
            self._keys.add(n.key)
            return Delivery(key=n.key, duplicate=False, recorded_at=now)


def default_outbox_path() -> Path:
    return Path(os.environ.get(OUTBOX_ENV, "var/outbox.jsonl"))


_outbox: Outbox | None = None


def outbox() -> Outbox:
    global _outbox
    path = default_outbox_path()
    if _outbox is None or _outbox.path != path:
        _outbox = Outbox(path)
    return _outbox


@activity.defn(name="notify")
async def notify(n: Notify) -> Delivery:
    delivery = await outbox().deliver(n)
    log.info(
        "notification",
        kind=n.kind,
        key=n.key,
        ticket_id=n.ticket_id,
        recipients=n.recipients,
        tier=n.tier,
        priority=n.priority,
        duplicate=delivery.duplicate,
        attempt=activity.info().attempt,
    )
    return delivery
