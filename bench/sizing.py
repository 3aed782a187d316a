"""What one machine carries: breach lateness for tickets in the worker's cache and out of it, in one run; the
server's memory and SQLite bytes per open ticket (bench/run.py calls these; docs/SCALING.md reads the figures).

**In the cache or not.** The worker's cache (sdk-core) is an LRU of `max_cached_workflows` runs: a run stays in it
while fewer than that many other runs have been brought in since it last had work, and once that many have, it is
out (the cache never holds more). So the two cohorts are made, then checked, from the outbox alone:

- *cold*: tickets opened at the breach rate with a long acknowledge target (`cold_target_s`) and no warning, then
  `churn` (more than the cache holds) further long-lived tickets opened after them, before their deadline. Each open
  brings a new run into the cache, so by its deadline a cold ticket has been pushed out and its timer is served by
  a replay of its history. A cold ticket counts as *uncached* when at least `max_cached` other tickets wrote a line
  (each line is a run that had work) between its own last line and its due time;
- *hot*: the usual breach stream (acknowledge due 30 s after opening, one warning at 50 %), timed so its deadlines
  fall due in the same minute as the cold ones. A hot ticket counts as *cached* when fewer than `max_cached` other
  tickets wrote a line between its last line and its due time.

Tickets that pass neither check are counted (`unverified`) and left out of both columns. The outbox is written
by the worker's activities (one line per notification), so runs that have work without writing a line are not
counted: the check is exact for the bench's traffic, in which every run that wakes up writes a line.
"""

from __future__ import annotations

import bisect
import math
import sqlite3
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.stats import quantile


def churn_count(max_cached: int) -> int:
    """Tickets opened after the cold cohort: the cache's size and a margin (a fifth, at least 200 or the cache's
    size if smaller: 1,200 at the shipped 1,000)."""
    return max_cached + max(max_cached // 5, min(200, max_cached))


def cold_target_s(stream_s: float, churn: int, open_per_s: float, breach_after_s: float) -> int:
    """The cold cohort's acknowledge target: its own opening, 2.5x the churn's time at the open rate measured so far
    (a shared machine slows down), the hot stream's lead (`breach_after_s`: its deadlines then coincide with the
    cold ones) and 10 s to spare."""
    churn_s = churn / max(open_per_s, 1.0)
    return math.ceil(stream_s + 2.5 * churn_s + breach_after_s + 10)


class Touches:
    """Every outbox line as (recorded_at, ticket id), to count the distinct runs that had work in a window."""

    def __init__(self) -> None:
        self.at: list[datetime] = []
        self.ids: list[str] = []
        self._sorted = True

    def add(self, at: datetime, ticket_id: str) -> None:
        if self.at and at < self.at[-1]:
            self._sorted = False
        self.at.append(at)
        self.ids.append(ticket_id)

    def _sort(self) -> None:
        if not self._sorted:
            pairs = sorted(zip(self.at, self.ids, strict=True))
            self.at, self.ids = [a for a, _ in pairs], [i for _, i in pairs]
            self._sorted = True

    def last_before(self, ticket_id: str, before: datetime) -> datetime | None:
        self._sort()
        hi = bisect.bisect_left(self.at, before)
        return next((self.at[k] for k in range(hi - 1, -1, -1) if self.ids[k] == ticket_id), None)

    def others_between(self, ticket_id: str, after: datetime, before: datetime) -> int:
        """Distinct other tickets with a line in (after, before)."""
        self._sort()
        lo, hi = bisect.bisect_right(self.at, after), bisect.bisect_left(self.at, before)
        return len({t for t in self.ids[lo:hi] if t != ticket_id})


def classify(touches: Touches, escalations: dict[str, dict[str, Any]], ids: Iterable[str], max_cached: int,
             expect: str) -> dict[str, Any]:
    """Lateness of the tickets `ids` verified as `expect` ('cached' or 'uncached'), and how many were not."""
    lat: list[float] = []
    others: list[int] = []
    unverified = missing = 0
    for tid in ids:
        esc = escalations.get(tid)
        if esc is None:
            missing += 1
            continue
        last = touches.last_before(tid, esc["due_at"])
        n = touches.others_between(tid, last, esc["due_at"]) if last else 0
        others.append(n)
        if (n >= max_cached) == (expect == "uncached") and last is not None:
            lat.append(esc["latency_s"])
        else:
            unverified += 1
    return {"count": len(lat), "unverified": unverified, "missing": missing,
            "p50_s": round(quantile(lat, 0.5), 3), "p99_s": round(quantile(lat, 0.99), 3),
            "max_s": round(max(lat), 3) if lat else math.nan,
            "others_between_min": min(others) if others else None, "others_between_max": max(others) if others else None}


def sqlite_bytes(db: Path | None) -> dict[str, int]:
    """The dev server's SQLite data: bytes in use (pages minus free pages, as a reader sees the latest commit,
    write-ahead log included) and the files' sizes (the main file and its -wal)."""
    if db is None or not db.exists():
        return {}
    files = sum(p.stat().st_size for p in (db, db.with_name(db.name + "-wal")) if p.exists())
    out = {"file_bytes": files}
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as con:
            pages, free, size = (con.execute(f"PRAGMA {p}").fetchone()[0]
                                 for p in ("page_count", "freelist_count", "page_size"))
        out["used_bytes"] = (pages - free) * size
    except sqlite3.Error:
        pass
    return out


def per_ticket(before: dict[str, Any], after: dict[str, Any], tickets: int) -> dict[str, Any]:
    """Server memory (KB) and SQLite bytes per ticket opened between two snapshots."""
    n = max(tickets, 1)
    out: dict[str, Any] = {"tickets": tickets,
                           "server_kb_per_open_ticket": round((after["server_mb"] - before["server_mb"]) * 1024 / n, 2)}
    for key in ("used_bytes", "file_bytes"):
        if key in before.get("sqlite", {}) and key in after.get("sqlite", {}):
            out[f"sqlite_{key}_per_open_ticket"] = round((after["sqlite"][key] - before["sqlite"][key]) / n)
    return out
