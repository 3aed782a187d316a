"""Back-pressure on the real dev server: with Temporal stalled (a TCP gate in front of it holds every byte), the API
keeps at most ESCALATION_API_MAX_IN_FLIGHT calls in flight, answers everything beyond 503 `overloaded` with
Retry-After at once, sends nothing of a shed request to Temporal, never sheds readiness, and serves again once the
calls in flight finish."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio

from starter.client import EscalationClient
from starter.http.app import create_app
from starter.runtime.directory_file import directory_reader, macros
from starter.runtime.settings import Settings
from starter.runtime.temporal import connect
from tests.conftest import TemporalStack
from tests.support.api import Tokens, asgi_client, error, ticket_body, unique
from tests.support.gate import Gate

pytestmark = pytest.mark.asyncio(loop_scope="session")
BOUND = 2


@pytest_asyncio.fixture(loop_scope="session")
async def gated(temporal_stack: TemporalStack, tokens: Tokens) -> AsyncIterator[tuple[Gate, Any, httpx.AsyncClient]]:
    """The API in process with a bound of 2 and no queue wait, its Temporal client connected through a gate."""
    async with Gate(temporal_stack.address) as gate:
        s = Settings(temporal_address=gate.address, escalation_task_queue=temporal_stack.task_queue,
                     escalation_api_max_in_flight=BOUND, escalation_api_queue_wait_ms=0)
        client = EscalationClient(await connect(gate.address, temporal_stack.stack.namespace), temporal_stack.policy,
                                  temporal_stack.task_queue, rpc_timeout=timedelta(seconds=s.escalation_api_timeout_s),
                                  macros=macros(s), directory=directory_reader(s))
        app = create_app(s, client=client, tokens=tokens.store(), policy=temporal_stack.policy)
        async with asgi_client(app) as http:
            yield gate, app, http


async def _until(condition: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


async def test_beyond_the_bound_is_shed_at_once_and_never_reaches_temporal(
        gated: tuple[Gate, Any, httpx.AsyncClient], http: httpx.AsyncClient, tokens: Tokens) -> None:
    gate, app, api = gated
    limit = app.state.api.in_flight
    admin = tokens.header("admin")
    r = await api.post("/v1/tickets", json=ticket_body(unique()), headers=admin)  # the path works, gate open
    assert r.status_code == 201, r.text

    gate.close()  # Temporal stalls: the next calls stay in flight
    held_ids = [unique("HELD") for _ in range(BOUND)]
    held = [asyncio.create_task(api.post("/v1/tickets", json=ticket_body(t), headers=admin)) for t in held_ids]
    await _until(lambda: limit.in_flight == BOUND)
    ready = asyncio.create_task(api.get("/readyz"))  # readiness takes no slot and is never shed

    shed_ids = [unique("SHED") for _ in range(5)]
    started = time.monotonic()
    answers = await asyncio.gather(
        *(api.post("/v1/tickets", json=ticket_body(t), headers=admin) for t in shed_ids),
        api.get(f"/v1/tickets/{held_ids[0]}", headers=admin),  # reads are bounded too
        api.post(f"/v1/tickets/{held_ids[0]}/acknowledge", json={}, headers=admin))
    elapsed = time.monotonic() - started
    assert elapsed < 1.0, f"shedding took {elapsed:.2f}s: requests were queued, not shed"
    for r in answers:
        err = error(r, 503, "overloaded")
        assert r.headers["retry-after"] == "1"
        assert "not sent to Temporal" in err["message"] and f"{BOUND} Temporal calls" in err["message"]
    assert (await api.get("/healthz")).status_code == 200  # liveness never touches Temporal
    assert limit.in_flight == BOUND and limit.shed >= len(answers)
    assert not ready.done()  # waiting on Temporal like the held calls, not refused

    gate.open()
    for task in held:
        assert (await task).status_code == 201
    r = await ready
    assert r.status_code == 200, r.text
    assert limit.in_flight == 0

    # Nothing of a shed open reached the server (read on the session's own, ungated API): no such ticket.
    for tid in shed_ids:
        error(await http.get(f"/v1/tickets/{tid}", headers=admin), 404, "not_found")
    for tid in held_ids:
        assert (await http.get(f"/v1/tickets/{tid}", headers=admin)).status_code == 200

    # Load gone: the same requests succeed when retried.
    for tid in shed_ids[:2]:
        r = await api.post("/v1/tickets", json=ticket_body(tid), headers=admin)
        assert r.status_code == 201, r.text
    r = await api.get(f"/v1/tickets/{shed_ids[0]}", headers=admin)
    assert r.status_code == 200 and r.json()["id"] == shed_ids[0]


async def test_a_request_waits_for_a_slot_within_the_queue_wait(temporal_stack: TemporalStack,
                                                                tokens: Tokens) -> None:
    """With a queue wait, a request beyond the bound takes the slot freed within the wait instead of being shed."""
    async with Gate(temporal_stack.address) as gate:
        s = Settings(temporal_address=gate.address, escalation_task_queue=temporal_stack.task_queue,
                     escalation_api_max_in_flight=1, escalation_api_queue_wait_ms=3000)
        client = EscalationClient(await connect(gate.address, temporal_stack.stack.namespace), temporal_stack.policy,
                                  temporal_stack.task_queue, rpc_timeout=timedelta(seconds=10), macros=macros(s),
                                  directory=directory_reader(s))
        app = create_app(s, client=client, tokens=tokens.store(), policy=temporal_stack.policy)
        limit = app.state.api.in_flight
        admin = tokens.header("admin")
        async with asgi_client(app) as api:
            gate.close()
            first = asyncio.create_task(api.post("/v1/tickets", json=ticket_body(unique()), headers=admin))
            await _until(lambda: limit.in_flight == 1)
            second = asyncio.create_task(api.post("/v1/tickets", json=ticket_body(unique()), headers=admin))
            await asyncio.sleep(0.3)
            assert not second.done()  # queued, within its wait
            gate.open()
            assert (await first).status_code == 201
            r = await second
            assert r.status_code == 201, r.text
            assert limit.shed == 0


async def test_an_applied_action_is_answered_even_when_its_follow_up_read_is_shed(
        gated: tuple[Gate, Any, httpx.AsyncClient], tokens: Tokens) -> None:
    """An action's answer reads the whole ticket after the Update: shedding that read must not turn an applied
    action into a 503 saying it was not sent (the Update's own view answers)."""
    gate, app, api = gated
    limit = app.state.api.in_flight
    admin = tokens.header("admin")
    r = await api.post("/v1/tickets", json=ticket_body(tid := unique()), headers=admin)
    assert r.status_code == 201, r.text
    release = asyncio.Event()

    async def another_request(wait_s: float) -> None:
        async with limit.slot(wait_s=wait_s):
            await release.wait()

    gate.close()
    action = asyncio.create_task(api.post(f"/v1/tickets/{tid}/acknowledge", json={}, headers=admin))
    await _until(lambda: limit.in_flight == 1)
    others = [asyncio.create_task(another_request(0))]
    await _until(lambda: limit.in_flight == BOUND)
    others.append(asyncio.create_task(another_request(30)))  # queued: takes the action's slot when it frees
    await asyncio.sleep(0.05)
    gate.open()
    r = await action
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["acknowledged_at"], answer
    assert limit.shed >= 1  # the follow-up read was shed
    release.set()
    await asyncio.gather(*others)
    full = (await api.get(f"/v1/tickets/{tid}", headers=admin)).json()
    # the answer is the Update's own view: only the entries the action added, not the whole timeline
    assert len(answer["timeline"]) < len(full["timeline"]) and full["acknowledged_at"] == answer["acknowledged_at"]
