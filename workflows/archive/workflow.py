"""ArchiveWorkflow: one scheduled archive run, a thin shell around one activity (the archive folder is an external
system; the activity writes it on the worker's host, under ESCALATION_ARCHIVE_DIR)."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from workflows.archive.rules import ARCHIVE_ACTIVITY, ArchiveRequest, ArchiveResult, period

# A rerun of the activity is cheap (what is in the folder is skipped), so a lost worker only costs the listing again.
ARCHIVE_RETRY = RetryPolicy(initial_interval=timedelta(seconds=10), maximum_interval=timedelta(minutes=10),
                            maximum_attempts=20)


@workflow.defn(name="ArchiveWorkflow")
class ArchiveWorkflow:
    @workflow.run
    async def run(self, request: ArchiveRequest) -> ArchiveResult:
        covered = period(request, workflow.now())
        result: ArchiveResult = await workflow.execute_activity(
            ARCHIVE_ACTIVITY, covered, start_to_close_timeout=timedelta(hours=2),
            heartbeat_timeout=timedelta(minutes=2), retry_policy=ARCHIVE_RETRY, result_type=ArchiveResult)
        workflow.logger.info("archived %d workflow(s) closed since %s (%d already there)", result.written,
                             covered.since.isoformat(), result.already_archived)
        return result
