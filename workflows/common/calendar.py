"""Business-hours arithmetic: pure functions over aware datetimes.

A calendar is a time zone, weekly opening hours and holidays. SLA clocks count
*business* seconds: only seconds that fall inside an open interval. All
instants in and out are timezone-aware; intervals are built in the calendar's
zone day by day, so DST shifts and holidays land on the right wall-clock hours.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from importlib import resources
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import tzdata
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# An SLA never needs to look further ahead than this; it also bounds the loops.
MAX_SEARCH_DAYS = 3 * 366
TZDATA_VERSION: str = tzdata.IANA_VERSION  # the time-zone rules every due time is computed with


class OpeningInterval(BaseModel):
    """One open stretch of a day, local wall time; end may be 24:00."""

    model_config = ConfigDict(frozen=True)
    start: str
    end: str

    @field_validator("start", "end")
    @classmethod
    def _hhmm(cls, v: str) -> str:
        parse_hhmm(v)
        return v

    @model_validator(mode="after")
    def _ordered(self) -> OpeningInterval:
        if parse_hhmm(self.start) >= parse_hhmm(self.end):
            raise ValueError(f"opening interval {self.start}-{self.end}: start must be before end")
        return self


def parse_hhmm(value: str) -> int:
    """'09:30' -> minutes since midnight; '24:00' allowed as an end."""
    parts = value.split(":")
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise ValueError(f"time {value!r} must be HH:MM (00:00 to 24:00)")
    h, m = int(parts[0]), int(parts[1])
    if not (0 <= h <= 24 and 0 <= m < 60) or (h == 24 and m != 0):
        raise ValueError(f"time {value!r} must be HH:MM (00:00 to 24:00)")
    return h * 60 + m


def _parse_interval(value: object) -> object:
    if isinstance(value, str):
        if "-" not in value:
            raise ValueError(f"opening interval {value!r} must look like '09:00-18:00'")
        start, end = value.split("-", 1)
        return {"start": start.strip(), "end": end.strip()}
    return value


class BusinessCalendar(BaseModel):
    """Weekly hours in a zone, minus holidays. `always_open` means 24x7."""

    model_config = ConfigDict(frozen=True)
    name: str = "always"
    timezone: str = "UTC"
    always_open: bool = False
    hours: dict[str, tuple[OpeningInterval, ...]] = Field(default_factory=dict)
    holidays: tuple[date, ...] = ()

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        try:
            _zone(v)
        except ZoneInfoNotFoundError as exc:
            raise ValueError(f"unknown time zone {v!r} (use an IANA name such as 'Europe/Berlin')") from exc
        return v

    @field_validator("hours", mode="before")
    @classmethod
    def _hours(cls, v: object) -> object:
        if not isinstance(v, dict):
            return v
        out: dict[str, object] = {}
        for day, intervals in v.items():
            key = str(day).lower()[:3]
            if key not in WEEKDAYS:
                raise ValueError(f"unknown weekday {day!r}; allowed: {', '.join(WEEKDAYS)}")
            if isinstance(intervals, str | dict):
                intervals = [intervals]
            out[key] = [_parse_interval(i) for i in (intervals or [])]
        return out

    @model_validator(mode="after")
    def _has_hours(self) -> BusinessCalendar:
        if not self.always_open and not any(self.hours.values()):
            raise ValueError(f"calendar {self.name!r} has no opening hours; set hours or always_open: true")
        for day, intervals in self.hours.items():
            spans = sorted(intervals, key=lambda i: (parse_hhmm(i.start), parse_hhmm(i.end)))
            for a, b in itertools.pairwise(spans):
                if parse_hhmm(b.start) < parse_hhmm(a.end):
                    raise ValueError(
                        f"hours.{day}: {a.start}-{a.end} overlaps {b.start}-{b.end} in calendar {self.name!r}; "
                        "intervals of one day must not overlap (adjacent ones such as 09:00-12:00, 12:00-18:00 may touch)"
                    )
        return self

    # ----- arithmetic -------------------------------------------------------

    @property
    def zone(self) -> ZoneInfo:
        return _zone(self.timezone)

    def open_intervals(self, start: datetime, days: int = MAX_SEARCH_DAYS) -> Iterator[tuple[datetime, datetime]]:
        """Open intervals (UTC, ordered) of `days` local days from the day containing `start` on."""
        day = _aware(start).astimezone(self.zone).date()
        holidays = set(self.holidays)
        for _ in range(days):
            if day not in holidays:
                for interval in sorted(self.hours.get(WEEKDAYS[day.weekday()], ()), key=lambda i: parse_hhmm(i.start)):
                    lo = self._local_instant(day, parse_hhmm(interval.start))
                    hi = self._local_instant(day, parse_hhmm(interval.end))
                    if hi > lo:
                        yield lo, hi
            day += timedelta(days=1)

    def _local_instant(self, day: date, minutes: int) -> datetime:
        if minutes == 24 * 60:
            day, minutes = day + timedelta(days=1), 0
        local = datetime.combine(day, time(minutes // 60, minutes % 60), tzinfo=self.zone)
        # Round-trip through UTC normalises wall times that fall in a DST gap.
        return local.astimezone(UTC)

    def add(self, start: datetime, business: timedelta) -> datetime:
        """The instant at which `business` time inside opening hours has passed since `start`."""
        start = _aware(start)
        if business <= timedelta(0):
            return start
        if self.always_open:
            return start + business
        remaining = business
        for lo, hi in self.open_intervals(start):
            if hi <= start:
                continue
            lo = max(lo, start)
            if hi - lo >= remaining:
                return lo + remaining
            remaining -= hi - lo
        raise ValueError(f"calendar {self.name!r}: no {business} of business time within {MAX_SEARCH_DAYS} days")

    def next_open(self, at: datetime) -> datetime:
        """`at` itself if the calendar is open then, otherwise the next opening instant."""
        at = _aware(at)
        if self.always_open:
            return at
        for lo, hi in self.open_intervals(at):
            if hi > at:
                return max(lo, at)
        raise ValueError(f"calendar {self.name!r}: never opens within {MAX_SEARCH_DAYS} days")

    def elapsed(self, start: datetime, end: datetime) -> timedelta:
        """Business time inside opening hours between two instants (zero if end <= start)."""
        start, end = _aware(start), _aware(end)
        if end <= start:
            return timedelta(0)
        if self.always_open:
            return end - start
        total = timedelta(0)
        # Bounded by `end` itself, not by MAX_SEARCH_DAYS: a long-running clock must not be undercounted.
        for lo, hi in self.open_intervals(start, days=(end - start).days + 3):
            if lo >= end:
                break
            lo, hi = max(lo, start), min(hi, end)
            if hi > lo:
                total += hi - lo
        return total

    def is_open(self, at: datetime) -> bool:
        at = _aware(at)  # rejects naive datetimes, also for always-open calendars
        return self.always_open or self.next_open(at) == at


@lru_cache(maxsize=1)
def _zone_names() -> frozenset[str]:
    return frozenset(resources.files("tzdata").joinpath("zones").read_text(encoding="ascii").split())


@lru_cache(maxsize=64)
def _zone(name: str) -> ZoneInfo:
    """The zone's rules from the pinned `tzdata` package, never the host's: due times must not depend on which
    machine computes them (a worker, the CLI, or an auditor replaying a history years later). Only the package's
    own list of zone names is accepted (exact case; no paths)."""
    if name not in _zone_names():
        raise ZoneInfoNotFoundError(f"no time zone {name!r} in tzdata {TZDATA_VERSION}")
    with resources.files("tzdata.zoneinfo").joinpath(*name.split("/")).open("rb") as f:
        return ZoneInfo.from_file(f, key=name)


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"datetime {value.isoformat()} has no time zone; give an offset such as +00:00")
    return value.astimezone(UTC)
