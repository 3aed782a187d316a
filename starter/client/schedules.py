"""The audit archive's daily Temporal Schedule (`audit-archive`): created or brought up to date, shown, run now.

`make run` and the compose file's `archive-schedule` service create it (through `escalation audit schedule`); the
ArchiveWorkflow it starts writes on a worker's host, under that worker's ESCALATION_ARCHIVE_DIR."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from pydantic import BaseModel
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.service import RPCError, RPCStatusCode

from starter.client.errors import InvalidInput, TemporalUnavailable, TicketNotFound
from workflows.archive import ARCHIVE_SCHEDULE_ID, ARCHIVE_WORKFLOW_ID, ArchiveRequest

DAY = timedelta(days=1)
DEFAULT_AT = timedelta(hours=2)  # 02:00 UTC: a quiet hour for most support desks
DEFAULT_LOOKBACK_DAYS = 7  # a missed run is covered by the next; the archive skips what it has


def _time_of_day(hh_mm: str) -> timedelta:
    hours, minutes = hh_mm.split(":")
    return timedelta(hours=int(hours), minutes=int(minutes))


class ArchiveSchedule(BaseModel):
    """What the operator sees of the schedule."""

    schedule_id: str
    at_utc: str  # HH:MM, each day
    lookback_days: int
    task_queue: str
    paused: bool
    next_runs: list[str]
    recent_runs: list[dict[str, Any]]


def schedule_of(request: ArchiveRequest, at: timedelta, task_queue: str) -> Schedule:
    if not timedelta(0) <= at < DAY:
        raise InvalidInput(f"at {at} is not a time of day (00:00 to 23:59 UTC)", field="at")
    return Schedule(
        action=ScheduleActionStartWorkflow("ArchiveWorkflow", request, id=ARCHIVE_WORKFLOW_ID, task_queue=task_queue,
                                           execution_timeout=timedelta(hours=12)),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=DAY, offset=at)]),
        # a run still going when the next falls due is enough (the next covers the same period); a day the server
        # was down is caught up once, not once per missed day
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=DAY),
        state=ScheduleState(note="audit archive: closed workflows' histories, before retention deletes them"),
    )


class ScheduleClient:
    def __init__(self, client: Client, task_queue: str, rpc_timeout: timedelta) -> None:
        self.temporal = client
        self.task_queue = task_queue
        self.rpc_timeout = rpc_timeout

    async def ensure_archive(self, at: timedelta | None = None, lookback_days: int | None = None, *,
                             keep_existing: bool = False) -> ArchiveSchedule:
        """Create the schedule (02:00 UTC, 7 days' look-back unless given), or bring an existing one to the settings
        given; a setting not given keeps its current value (`keep_existing`: leave it all as it is, as `make run`
        does at every start so that an operator's change survives a restart). Pausing is the operator's and is
        always kept."""
        wanted = schedule_of(ArchiveRequest(lookback_days=lookback_days or DEFAULT_LOOKBACK_DAYS),
                             DEFAULT_AT if at is None else at, self.task_queue)
        try:
            await self.temporal.create_schedule(ARCHIVE_SCHEDULE_ID, wanted, rpc_timeout=self.rpc_timeout)
        except ScheduleAlreadyRunningError:
            if keep_existing or (at is None and lookback_days is None):
                return await self.show_archive()
            current = await self.show_archive()
            wanted = schedule_of(ArchiveRequest(lookback_days=lookback_days or current.lookback_days),
                                 _time_of_day(current.at_utc) if at is None else at, self.task_queue)

            def update(existing: ScheduleUpdateInput) -> ScheduleUpdate:
                wanted.state.paused = existing.description.schedule.state.paused
                wanted.state.note = existing.description.schedule.state.note or wanted.state.note
                return ScheduleUpdate(schedule=wanted)
            await self._call(self.temporal.get_schedule_handle(ARCHIVE_SCHEDULE_ID).update(
                update, rpc_timeout=self.rpc_timeout))
        except RPCError as exc:
            raise TemporalUnavailable(f"Temporal refused the schedule {ARCHIVE_SCHEDULE_ID}: {exc.message}") from None
        return await self.show_archive()

    async def show_archive(self) -> ArchiveSchedule:
        d = await self._call(self.temporal.get_schedule_handle(ARCHIVE_SCHEDULE_ID).describe(
            rpc_timeout=self.rpc_timeout))
        action = d.schedule.action
        assert isinstance(action, ScheduleActionStartWorkflow)
        interval = d.schedule.spec.intervals[0] if d.schedule.spec.intervals else None
        offset = interval.offset if interval else timedelta(0)
        args = await self.temporal.data_converter.decode(action.args, [ArchiveRequest]) if action.args else []
        request = args[0] if args and isinstance(args[0], ArchiveRequest) else ArchiveRequest()
        return ArchiveSchedule(
            schedule_id=d.id, at_utc=f"{int(offset.total_seconds()) // 3600:02d}:"
                                     f"{int(offset.total_seconds()) % 3600 // 60:02d}",
            lookback_days=request.lookback_days, task_queue=action.task_queue, paused=d.schedule.state.paused,
            next_runs=[t.isoformat() for t in d.info.next_action_times[:3]],
            recent_runs=[{"scheduled_at": r.scheduled_at.isoformat(), "started_at": r.started_at.isoformat(),
                          "workflow_id": getattr(r.action, "workflow_id", None)} for r in d.info.recent_actions[-5:]])

    async def run_archive_now(self) -> str:
        """Start an archive run now (as if it fell due); its workflow id."""
        handle = self.temporal.get_schedule_handle(ARCHIVE_SCHEDULE_ID)
        before = {getattr(r.action, "workflow_id", None)
                  for r in (await self._call(handle.describe(rpc_timeout=self.rpc_timeout))).info.recent_actions}
        await self._call(handle.trigger(overlap=ScheduleOverlapPolicy.ALLOW_ALL, rpc_timeout=self.rpc_timeout))
        for _ in range(100):  # the schedule's run shows in its description a moment later
            d = await self._call(handle.describe(rpc_timeout=self.rpc_timeout))
            started = [w for r in d.info.recent_actions if (w := getattr(r.action, "workflow_id", None)) not in before]
            if started:
                return str(started[-1])
            await asyncio.sleep(0.1)
        raise TemporalUnavailable(f"the schedule {ARCHIVE_SCHEDULE_ID} was triggered but shows no new run")

    async def _call(self, awaitable: Any) -> Any:
        try:
            return await awaitable
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                raise TicketNotFound(f"there is no schedule {ARCHIVE_SCHEDULE_ID!r}: create it with "
                                     "`escalation audit schedule`") from None
            raise TemporalUnavailable(f"Temporal refused or failed the schedule call: {exc.message}") from None
