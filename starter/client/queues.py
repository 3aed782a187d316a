"""A tier's or department's queue: the open tickets an agent works, the most urgent first.

Visibility lists tickets by their search attributes but knows neither a ticket's next deadline nor its tags (they are
in the state: the clocks, with the ticket's calendar), so a queue reads each listed ticket's state through the
client (the principal's scope checked on every read) and computes its clocks with the pure core at `now`. It scans at
most `QUEUE_SCAN` tickets per request (newest first), then sorts and pages them: narrow the filters beyond that.
A `TicketNextDue` search attribute would let visibility sort (ORDER BY needs Elasticsearch visibility, not the dev
server's SQLite); that is a workflow change (a patch and a backfill), not made here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Protocol

from pydantic import BaseModel

from starter.client.errors import Busy, OutOfScope, TicketNotFound
from starter.client.principal import Principal
from starter.client.tickets import TicketPage
from workflows import ticket as core
from workflows.common.calendar import BusinessCalendar
from workflows.common.vocabulary import Status
from workflows.ticket.views import ClockView, ticket_view

QUEUE_SCAN = 200  # tickets read per queue request at most (each one Query)
READS_IN_FLIGHT = 16
ALWAYS = timedelta(days=366)  # an always-open calendar's business time runs on: "until" a year ahead
QUEUE_STATUSES = (Status.new.value, Status.open.value, Status.waiting_on_customer.value)  # the work still to do


class QueueSource(Protocol):
    """What a queue needs of the client (EscalationClient has it): the same list and read the API's routes use."""

    async def list(self, *, principal: Principal, status: str | None = None, tier: str | None = None,
                   priority: str | None = None, department: str | None = None, customer_id: str | None = None,
                   breached: bool | None = None, assignee: str | None = None, page_size: int = 50,
                   cursor: str | None = None) -> TicketPage: ...
    async def state(self, ticket_id: str, *, principal: Principal) -> core.TicketState: ...


class Deadline(BaseModel):
    """A ticket's next deadline: its running clock due first (overdue ones included: `remaining` is negative)."""

    clock: str
    due_at: datetime
    remaining_s: int  # business seconds left at `as_of` (negative: overdue)
    ticks_until: datetime | None  # business time runs until then (None: the calendar is closed at `as_of`)


class QueueItem(BaseModel):
    id: str
    subject: str
    status: str
    tier: str
    department: str
    priority: str
    assignee: str | None
    customer_id: str
    tags: list[str]
    sla_breached: bool
    deadline: Deadline | None


class Queue(BaseModel):
    items: list[QueueItem]
    total: int  # after every filter, of the tickets scanned
    truncated: bool  # more tickets matched than QUEUE_SCAN: the queue shows the newest QUEUE_SCAN of them
    as_of: datetime
    busy: list[str] = []  # listed tickets that could not answer yet (not in `items`)


def open_until(calendar: BusinessCalendar, now: datetime) -> datetime | None:
    """When business time stops running (the end of the opening interval holding `now`, adjacent ones joined);
    None when the calendar is closed now."""
    if calendar.always_open:
        return now + ALWAYS
    if not calendar.is_open(now):
        return None
    end: datetime | None = None
    for lo, hi in calendar.open_intervals(now, days=8):
        if hi <= now:
            continue
        if end is None:
            if lo > now:
                return None
            end = hi
        elif lo <= end:
            end = max(end, hi)
        else:
            break
    return end


def next_deadline(clocks: Sequence[ClockView], calendar: BusinessCalendar, now: datetime) -> Deadline | None:
    running = [c for c in clocks if c.phase == "running" and c.due_at is not None and c.remaining is not None]
    if not running:
        return None
    first = min(running, key=lambda c: c.due_at or now)
    assert first.due_at is not None and first.remaining is not None
    return Deadline(clock=first.name, due_at=first.due_at, remaining_s=int(first.remaining.total_seconds()),
                    ticks_until=open_until(calendar, now))


def item(state: core.TicketState, now: datetime) -> QueueItem:
    view = ticket_view(state, now)
    return QueueItem(id=view.id, subject=view.subject, status=view.status.value, tier=view.tier,
                     department=view.department, priority=view.priority, assignee=view.assignee,
                     customer_id=view.customer_id, tags=list(state.ticket.tags), sla_breached=view.sla_breached,
                     deadline=next_deadline(view.clocks, state.calendar, now))


def urgency(i: QueueItem) -> tuple[bool, bool, float, str]:
    """Overdue now first, then the other breached tickets, then by the next due time (no running deadline last)."""
    overdue = i.deadline is not None and i.deadline.remaining_s < 0
    return (not overdue, not i.sla_breached, i.deadline.due_at.timestamp() if i.deadline else float("inf"), i.id)


async def queue(client: QueueSource, *, principal: Principal, now: datetime, tier: str | None = None,
                department: str | None = None, status: str | None = None, priority: str | None = None,
                assignee: str | None = None, customer_id: str | None = None, tag: str | None = None,
                offset: int = 0, limit: int = 25) -> tuple[Queue, list[QueueItem]]:
    """The queue (every matching ticket scanned, sorted) and the page of it at `offset`."""
    ids: dict[str, None] = {}  # in the order listed, once each
    truncated = False
    # Breached tickets are listed first (each status), then the rest: on a queue longer than the scan, the tickets
    # the scan leaves out are never the breached ones.
    for breached, st in [(b, st) for b in (True, None) for st in ([status] if status else QUEUE_STATUSES)]:
        cursor: str | None = None
        while not truncated:
            page = await client.list(principal=principal, status=st, tier=tier, department=department,
                                     priority=priority, assignee=assignee, customer_id=customer_id,
                                     breached=breached, page_size=min(100, QUEUE_SCAN), cursor=cursor)
            for t in page.tickets:
                if len(ids) == QUEUE_SCAN and t.id not in ids:
                    truncated = True
                    break
                ids.setdefault(t.id)
            cursor = page.next_cursor
            if cursor is None:
                break
    sem = asyncio.Semaphore(READS_IN_FLIGHT)

    busy: list[str] = []

    async def read(ticket_id: str) -> core.TicketState | None:
        async with sem:
            try:
                return await client.state(ticket_id, principal=principal)
            except (TicketNotFound, OutOfScope):  # gone, or moved out of scope since it was listed
                return None
            except Busy:  # e.g. its first workflow task is still running: named on the page, not a failed queue
                busy.append(ticket_id)
                return None
    states = [s for s in await asyncio.gather(*(read(i) for i in dict.fromkeys(ids))) if s is not None]
    items = [item(s, now) for s in states
             if (tier is None or s.tier == tier) and (department is None or s.department == department)  # listing lags
             and (status is None or s.status.value == status) and (status is not None or s.status.value in QUEUE_STATUSES)
             and (tag is None or tag in s.ticket.tags)]
    items.sort(key=urgency)
    q = Queue(items=items, total=len(items), truncated=truncated, as_of=now, busy=sorted(busy))
    return q, items[offset:offset + limit]


def remaining_text(seconds: int) -> str:
    """Business time left as people read it: `2h 05m`, `overdue 12m`."""
    sign, s = ("overdue " if seconds < 0 else ""), abs(seconds)
    d, rest = divmod(s, 86400)
    h, rest = divmod(rest, 3600)
    m, sec = divmod(rest, 60)
    if d:
        return f"{sign}{d}d {h}h {m:02d}m"
    if h:
        return f"{sign}{h}h {m:02d}m"
    return f"{sign}{m}m {sec:02d}s"


