"""The audit archive: a daily ArchiveWorkflow (started by the Temporal Schedule `audit-archive`) writes the histories
of the workflows that closed in its look-back period to the archive folder, before the server's retention deletes
them. `rules` is the pure part (the period), `workflow` the durable shell (not imported here)."""

from workflows.archive.rules import (
    ARCHIVE_ACTIVITY,
    ARCHIVE_SCHEDULE_ID,
    ARCHIVE_WORKFLOW_ID,
    ArchivePeriod,
    ArchiveRequest,
    ArchiveResult,
    period,
)

__all__ = ["ARCHIVE_ACTIVITY", "ARCHIVE_SCHEDULE_ID", "ARCHIVE_WORKFLOW_ID", "ArchivePeriod", "ArchiveRequest",
           "ArchiveResult", "period"]
