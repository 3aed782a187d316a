"""What a scheduled archive run covers: the workflows that closed in the `lookback_days` before it started.

The look-back is longer than the schedule's interval on purpose: a run that was missed (the worker down, the
schedule paused) is covered by the next ones, and the archive is idempotent (a workflow already in the folder is
not written again), so the overlap costs a listing, never a duplicate. It must stay shorter than the namespace's
retention (30 days on the embedded default) or the oldest part of the period is already gone."""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel, Field

ARCHIVE_SCHEDULE_ID = "audit-archive"
ARCHIVE_WORKFLOW_ID = "audit-archive"  # the schedule appends each run's time to it
ARCHIVE_ACTIVITY = "archive_closed_workflows"


class ArchiveRequest(BaseModel):
    """The schedule's action input."""

    lookback_days: int = Field(7, ge=1, le=29, description="the period archived: the days before the run")
    limit: int = Field(100_000, ge=1, le=100_000, description="at most this many workflows in one run")


class ArchivePeriod(BaseModel):
    """The activity's input: workflows whose chain of runs closed in [since, until)."""

    since: datetime
    until: datetime
    limit: int


class ArchiveResult(BaseModel):
    folder: str
    matched: int
    written: int
    runs_written: int
    already_archived: int
    manifest: str | None = None
    files: list[str] = Field(default_factory=list, description="the files written (the first 1000)")
    files_not_listed: int = Field(0, description="files written beyond those listed")


def period(request: ArchiveRequest, now: datetime) -> ArchivePeriod:
    return ArchivePeriod(since=now - timedelta(days=request.lookback_days), until=now, limit=request.limit)
