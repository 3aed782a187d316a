"""Every endpoint of the HTTP API against a real Temporal dev server and worker (in-process ASGI client).

What the API answers without Temporal (validation, routing, roles and scopes) is tested on the in-memory client:
tests/api/test_api_requests.py, tests/api/test_api_roles.py."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from starter.devstack.devserver import free_port
from starter.http.app import create_app
from starter.intake.mapping import PAYLOADS, email_ticket_id
from starter.runtime.settings import Settings
from tests.support.api import Tokens, asgi_client, error, in_process_app, open_ticket, ticket_body, unique
from workflows.common.vocabulary import Channel

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def act(http: httpx.AsyncClient, tokens: Tokens, who: str, ticket_id: str, action: str,
              body: dict[str, Any] | None = None, status: int = 200) -> dict[str, Any]:
    r = await http.post(f"/v1/tickets/{ticket_id}/{action}", json=body, headers=tokens.header(who))
    assert r.status_code == status, r.text
    return r.json()


async def eventually(check: Any, timeout: float = 10.0) -> Any:
    """Visibility is eventually consistent: poll until `check()` returns something truthy."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await check()
        if result or asyncio.get_running_loop().time() > deadline:
            return result
        await asyncio.sleep(0.05)  # visibility trails by milliseconds on the dev server


# ----- health ------------------------------------------------------------------------------------


async def test_healthz_and_readyz(http: httpx.AsyncClient) -> None:
    r = await http.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok", "checks": {}}
    r = await http.get("/readyz")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "ready" and "1 heartbeating worker(s)" in r.json()["checks"]["worker"]


async def test_readyz_without_a_worker_is_503(temporal_stack: Any, tokens: Tokens) -> None:
    app = create_app(Settings(temporal_address=temporal_stack.address, escalation_task_queue="nobody-polls-this"),
                     tokens=tokens.store(), policy=temporal_stack.policy)
    async with asgi_client(app) as client:
        r = await client.get("/readyz")
    err = error(r, 503, "not_ready")
    assert r.headers["retry-after"] == "5"
    assert err["details"][0]["loc"] == ["worker"]


async def test_temporal_unreachable_is_503_with_retry_after(temporal_stack: Any, tokens: Tokens) -> None:
    app = create_app(Settings(temporal_address=f"127.0.0.1:{free_port()}", escalation_api_timeout_s=3),
                     tokens=tokens.store(), policy=temporal_stack.policy)
    async with asgi_client(app) as client:
        for method, path, body in (("GET", "/v1/tickets/T-1", None), ("POST", "/v1/tickets", ticket_body("T-1")),
                                   ("GET", "/v1/tickets", None), ("POST", "/v1/tickets/T-1/acknowledge", None)):
            r = await client.request(method, path, json=body, headers=tokens.header("admin"))
            err = error(r, 503, "temporal_unavailable")
            assert r.headers["retry-after"] == "5"
            assert "Traceback" not in r.text and "cannot reach Temporal" in err["message"]
        r = await client.get("/readyz")
        error(r, 503, "not_ready")
        r = await client.get("/healthz")
        assert r.status_code == 200


async def test_a_read_that_no_worker_answers_is_503_not_a_hang(temporal_stack: Any, tokens: Tokens) -> None:
    app = in_process_app(temporal_stack, tokens, escalation_api_timeout_s=1.0)
    app.state.api.connected.task_queue = "nobody-polls-this"  # tickets opened here are never picked up
    async with asgi_client(app) as client:
        r = await client.post("/v1/tickets", json=ticket_body(unique()), headers=tokens.header("admin"))
        assert r.status_code == 201, r.text  # the server accepted it; no worker needed to answer
        r = await client.get(f"/v1/tickets/{r.json()['id']}", headers=tokens.header("admin"))
        err = error(r, 503, "temporal_unavailable")
        assert "did not answer within 1s" in err["message"]
        assert r.headers["retry-after"] == "5"


# ----- opening ----------------------------------------------------------------------------------


async def test_open_is_idempotent_on_the_id(http: httpx.AsyncClient, tokens: Tokens) -> None:
    tid = unique("HD")
    r = await http.post("/v1/tickets", json=ticket_body(tid), headers=tokens.header("intake"))
    assert r.status_code == 201, r.text
    assert r.headers["location"] == f"/v1/tickets/{tid}"
    first = r.json()
    assert first["id"] == tid and first["status"] == "new"
    assert (first["tier"], first["department"], first["priority"]) == ("tier1", "general", "P3")
    assert first["timeline"][0]["action"] == "opened" and first["timeline"][0]["actor"] == "system:intake"
    ack = next(c for c in first["clocks"] if c["name"] == "acknowledge")
    assert ack["phase"] == "running" and ack["due_at"] and ack["remaining"]

    r = await http.post("/v1/tickets", json=ticket_body(tid), headers=tokens.header("intake"))
    assert r.status_code == 200, r.text  # a retried webhook: the existing ticket, not a second one
    assert r.json()["id"] == tid and r.json()["opened_at"] == first["opened_at"]

    r = await http.post("/v1/tickets", json=ticket_body(tid, subject="Something else"), headers=tokens.header("intake"))
    error(r, 409, "id_conflict")


async def test_open_with_an_explicit_opened_at(http: httpx.AsyncClient, tokens: Tokens) -> None:
    tid, when = unique(), (datetime.now(UTC) - timedelta(minutes=3)).replace(microsecond=0)
    body = ticket_body(tid, opened_at=when.isoformat(), priority="P1")
    r = await http.post("/v1/tickets", json=body, headers=tokens.header("admin"))
    assert r.status_code == 201 and r.json()["priority"] == "P1"
    assert datetime.fromisoformat(r.json()["opened_at"]) == when
    r = await http.post("/v1/tickets", json=body, headers=tokens.header("admin"))
    assert r.status_code == 200
    body["opened_at"] = (when - timedelta(minutes=1)).isoformat()
    error(await http.post("/v1/tickets", json=body, headers=tokens.header("admin")), 409, "id_conflict")


async def test_a_closed_tickets_id_returns_the_closed_ticket(http: httpx.AsyncClient, tokens: Tokens) -> None:
    tid = unique()
    assert (await http.post("/v1/tickets", json=ticket_body(tid), headers=tokens.header("admin"))).status_code == 201
    await act(http, tokens, "admin", tid, "resolve", {"summary": "cleared the cache"})
    closed = await act(http, tokens, "admin", tid, "close")
    assert closed["status"] == "closed"
    r = await http.post("/v1/tickets", json=ticket_body(tid), headers=tokens.header("admin"))
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "closed" and r.json()["closed_at"]


# ----- reading -----------------------------------------------------------------------------------


async def test_get_ticket_view_and_timeline(http: httpx.AsyncClient, tokens: Tokens) -> None:
    t = await open_ticket(http, tokens)
    r = await http.get(f"/v1/tickets/{t['id']}", headers=tokens.header("agent"))
    assert r.status_code == 200, r.text
    view = r.json()
    assert view["id"] == t["id"] and view["status"] == "new"
    assert {c["name"] for c in view["clocks"]} == {"acknowledge", "tier", "resolution", "customer_update"}
    assert datetime.fromisoformat(view["as_of"]) >= datetime.fromisoformat(t["as_of"])
    r = await http.get(f"/v1/tickets/{t['id']}/timeline", headers=tokens.header("auditor"))
    assert r.status_code == 200
    assert r.json()["id"] == t["id"] and r.json()["timeline"][0]["action"] == "opened"


async def test_unknown_ticket_is_404(http: httpx.AsyncClient, tokens: Tokens) -> None:
    """Temporal's own NOT_FOUND, for a query and an update (every route: tests/api/test_api_requests.py)."""
    error(await http.get("/v1/tickets/no-such-ticket", headers=tokens.header("admin")), 404, "not_found")
    error(await http.post("/v1/tickets/no-such-ticket/acknowledge", headers=tokens.header("admin")), 404, "not_found")


async def test_history_is_the_temporal_event_history(http: httpx.AsyncClient, tokens: Tokens) -> None:
    t = await open_ticket(http, tokens)
    await act(http, tokens, "agent", t["id"], "acknowledge")
    r = await http.get(f"/v1/tickets/{t['id']}/history", headers=tokens.header("auditor"))
    assert r.status_code == 200, r.text
    export = r.json()
    assert export["workflow_id"] == f"ticket-{t['id']}" and len(export["runs"]) == 1, "every run, here one"
    types = [e["eventType"] for e in export["runs"][0]["events"]]
    assert export["runs"][0]["run_id"] and types[0] == "EVENT_TYPE_WORKFLOW_EXECUTION_STARTED"
    assert "EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED" in types


# ----- actions -----------------------------------------------------------------------------------


async def test_every_agent_action_returns_the_new_view(http: httpx.AsyncClient, tokens: Tokens) -> None:
    tid = (await open_ticket(http, tokens))["id"]
    v = await act(http, tokens, "agent", tid, "acknowledge", {"note": "on it"})
    assert v["status"] == "open" and v["acknowledged_at"]
    v = await act(http, tokens, "agent", tid, "note", {"text": "checked the logs", "public": False})
    assert v["timeline"][-1]["action"] == "note"
    v = await act(http, tokens, "supervisor", tid, "assign", {"assignee": "bob"})
    assert v["assignee"] == "bob"
    v = await act(http, tokens, "agent", tid, "change-priority", {"priority": "P2", "reason": "enterprise customer"})
    assert v["priority"] == "P2"
    v = await act(http, tokens, "agent", tid, "transfer", {"department": "billing", "reason": "refund needed"})
    assert v["department"] == "billing" and v["tier"] == "tier1"
    v = await act(http, tokens, "agent", tid, "wait-on-customer", {"reason": "asked for the invoice number"})
    assert v["status"] == "waiting_on_customer"
    assert next(c for c in v["clocks"] if c["name"] == "resolution")["phase"] == "paused"
    v = await act(http, tokens, "agent", tid, "customer-reply", {"message": "INV-123", "message_id": "m-1"})
    assert v["status"] == "open" and v["timeline"][-1]["action"] == "customer_replied"
    v = await act(http, tokens, "agent", tid, "escalate", {"reason": "needs an expert"})
    assert v["tier"] == "tier2" and v["escalation_count"] == 1
    v = await act(http, tokens, "agent", tid, "escalate", {"reason": "a bug", "to_tier": "tier3"})
    assert v["tier"] == "tier3"
    v = await act(http, tokens, "agent", tid, "resolve", {"summary": "refunded", "resolution": "workaround"})
    assert v["status"] == "resolved" and v["resolved_at"]
    v = await act(http, tokens, "agent", tid, "reopen", {"reason": "refund bounced"})
    assert v["status"] == "open" and v["reopen_count"] == 1
    await act(http, tokens, "agent", tid, "resolve", {"summary": "refunded again"})
    v = await act(http, tokens, "agent", tid, "close", {"reason": "customer confirmed"})
    assert v["status"] == "closed"
    # the actor of every action is the token's principal, never a value from the body
    actors = {e["action"]: e["actor"] for e in v["timeline"]}
    assert actors["acknowledged"] == "agent:agent" and actors["assigned"] == "supervisor:supervisor"
    assert actors["escalated"] == "agent:agent" and actors["closed"] == "agent:agent"
    assert actors["customer_replied"] == "agent:agent"
    err = error(await http.post(f"/v1/tickets/{tid}/note", json={"text": "late"}, headers=tokens.header("admin")),
                409, "ticket_closed")
    assert tid in err["message"]


async def test_rejected_actions_are_409_with_the_workflows_reason(http: httpx.AsyncClient, tokens: Tokens) -> None:
    tid = (await open_ticket(http, tokens))["id"]
    await act(http, tokens, "supervisor", tid, "acknowledge")
    error(await http.post(f"/v1/tickets/{tid}/acknowledge", headers=tokens.header("supervisor")), 409,
          "already_acknowledged")
    err = error(await http.post(f"/v1/tickets/{tid}/transfer", json={"department": "marketing"},
                                headers=tokens.header("supervisor")), 409, "unknown_department")
    assert "billing" in err["message"]  # the allowed values
    error(await http.post(f"/v1/tickets/{tid}/escalate", json={"reason": "x", "to_tier": "tier0"},
                          headers=tokens.header("supervisor")), 409, "not_above")
    await act(http, tokens, "supervisor", tid, "escalate", {"reason": "threatens to cancel", "to_tier": "executive"})
    error(await http.post(f"/v1/tickets/{tid}/escalate", json={"reason": "more"}, headers=tokens.header("supervisor")),
          409, "top_tier")
    error(await http.post(f"/v1/tickets/{tid}/reopen", headers=tokens.header("supervisor")), 409, "not_resolved")


async def test_customer_reply_on_a_closed_ticket_opens_a_linked_one(http: httpx.AsyncClient, tokens: Tokens) -> None:
    tid = (await open_ticket(http, tokens))["id"]
    await act(http, tokens, "admin", tid, "resolve", {"summary": "done"})
    await act(http, tokens, "admin", tid, "close")
    r = await http.post(f"/v1/tickets/{tid}/customer-reply", json={"message": "it broke again", "message_id": "m-9"},
                        headers=tokens.header("intake"))
    assert r.status_code == 201, r.text
    follow = r.json()
    assert follow["id"] != tid and follow["linked_ticket_id"] == tid and follow["status"] == "new"
    assert r.headers["location"] == f"/v1/tickets/{follow['id']}"
    r = await http.post(f"/v1/tickets/{tid}/customer-reply", json={"message": "it broke again", "message_id": "m-9"},
                        headers=tokens.header("intake"))
    assert r.json()["id"] == follow["id"]  # the same message again: the same follow-up


async def test_customer_reply_fire_and_forget_is_a_signal(http: httpx.AsyncClient, tokens: Tokens) -> None:
    tid = (await open_ticket(http, tokens))["id"]
    r = await http.post(f"/v1/tickets/{tid}/customer-reply?wait=false", json={"message": "any news?", "message_id": "s-1"},
                        headers=tokens.header("intake"))
    assert r.status_code == 202, r.text
    assert r.json() == {"ticket_id": tid, "follow_up_ticket_id": None} and r.headers["location"] == f"/v1/tickets/{tid}"

    async def applied() -> bool:
        view = (await http.get(f"/v1/tickets/{tid}", headers=tokens.header("admin"))).json()
        return any(e["action"] == "customer_replied" and "(s-1)" in e["summary"] for e in view["timeline"])

    assert await eventually(applied), "the signal reaches the ticket"
    history = (await http.get(f"/v1/tickets/{tid}/history", headers=tokens.header("admin"))).json()
    assert any(e.get("eventType") in ("EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED", "WorkflowExecutionSignaled")
               for e in history["runs"][-1]["events"]), "it went as a Signal, not an Update"

    error(await http.post("/v1/tickets/no-such-ticket/customer-reply?wait=false", json={"message": "hi"},
                          headers=tokens.header("intake")), 404, "not_found")

    await act(http, tokens, "admin", tid, "resolve", {"summary": "done"})
    await act(http, tokens, "admin", tid, "close")
    r = await http.post(f"/v1/tickets/{tid}/customer-reply?wait=false", json={"message": "again", "message_id": "s-2"},
                        headers=tokens.header("intake"))
    assert r.status_code == 202, r.text
    follow = r.json()["follow_up_ticket_id"]
    assert follow and follow != tid and r.headers["location"] == f"/v1/tickets/{follow}"
    assert (await http.get(f"/v1/tickets/{follow}", headers=tokens.header("admin"))).json()["linked_ticket_id"] == tid


async def test_fire_and_forget_needs_no_worker(temporal_stack: Any, tokens: Tokens) -> None:
    # 1 s: the reply that waits runs into it (as in the read above); the server's own answers take milliseconds
    app = in_process_app(temporal_stack, tokens, escalation_api_timeout_s=1.0)
    app.state.api.connected.task_queue = "nobody-polls-this"
    async with asgi_client(app) as client:
        r = await client.post("/v1/tickets", json=ticket_body(unique()), headers=tokens.header("admin"))
        assert r.status_code == 201, r.text
        tid = r.json()["id"]
        r = await client.post(f"/v1/tickets/{tid}/customer-reply?wait=false", json={"message": "hello"},
                              headers=tokens.header("admin"))
        assert r.status_code == 202, r.text
        r = await client.post(f"/v1/tickets/{tid}/customer-reply", json={"message": "hello"},
                              headers=tokens.header("admin"))
        error(r, 503, "temporal_unavailable")  # waiting for the answer needs a worker


# ----- listing -----------------------------------------------------------------------------------


async def test_list_filters_and_cursor_pagination(http: httpx.AsyncClient, tokens: Tokens) -> None:
    customer = unique("cust")
    ids = {(await open_ticket(http, tokens, customer_id=customer))["id"] for _ in range(3)}
    outage = (await open_ticket(http, tokens, customer_id=customer, subject="Service down for everyone"))["id"]
    h = tokens.header("admin")

    async def all_visible() -> bool:
        r = await http.get("/v1/tickets", params={"customer": customer, "status": "new"}, headers=h)
        return len(r.json()["tickets"]) == 4

    assert await eventually(all_visible)
    r = await http.get("/v1/tickets", params={"customer": customer, "limit": 3}, headers=h)
    page1 = r.json()
    assert r.status_code == 200 and len(page1["tickets"]) == 3 and page1["next_cursor"]
    r = await http.get("/v1/tickets", params={"customer": customer, "limit": 3, "cursor": page1["next_cursor"]}, headers=h)
    page2 = r.json()
    assert len(page2["tickets"]) == 1 and page2["next_cursor"] is None
    assert {t["id"] for t in page1["tickets"] + page2["tickets"]} == ids | {outage}

    async def only(params: dict[str, Any]) -> set[str]:
        r = await http.get("/v1/tickets", params={"customer": customer, **params}, headers=h)
        assert r.status_code == 200, r.text
        return {t["id"] for t in r.json()["tickets"]}

    assert await only({"priority": "P1"}) == {outage}
    assert await only({"tier": "tier2", "department": "networking"}) == {outage}
    assert await only({"department": "general"}) == ids
    assert await only({"breached": "false"}) == ids | {outage}
    assert await only({"breached": "true"}) == set()
    assert await only({"status": "closed"}) == set()
    summary = next(t for t in page1["tickets"] + page2["tickets"] if t["id"] == outage)
    assert summary["priority"] == "P1" and summary["customer_id"] == customer and summary["status"] == "new"
    assert summary["subject"] == "Service down for everyone"


async def test_list_shows_the_tickets_own_opened_at_not_when_its_workflow_started(
        http: httpx.AsyncClient, tokens: Tokens) -> None:
    customer, when = unique("cust"), (datetime.now(UTC) - timedelta(days=2)).replace(microsecond=0)
    opened = await open_ticket(http, tokens, customer_id=customer, opened_at=when.isoformat())

    async def listed() -> list[dict[str, Any]]:
        r = await http.get("/v1/tickets", params={"customer": customer}, headers=tokens.header("admin"))
        return list(r.json()["tickets"])

    [summary] = await eventually(listed)
    assert summary["id"] == opened["id"]
    assert datetime.fromisoformat(summary["opened_at"]) == when == datetime.fromisoformat(opened["opened_at"])


# ----- intake ------------------------------------------------------------------------------------


async def test_intake_every_channel_opens_one_ticket_per_message(http: httpx.AsyncClient, tokens: Tokens) -> None:
    for channel, model in PAYLOADS.items():
        payload = dict(model.model_config["json_schema_extra"]["examples"][0])  # type: ignore[index,arg-type]
        key = next(k for k in ("message_id", "conversation_id", "call_id", "post_id", "submission_id") if k in payload)
        payload[key] = f"{payload[key]}-{unique()}" if key != "message_id" else f"<{unique()}@mail.example.com>"
        r = await http.post(f"/v1/intake/{channel.value}", json=payload, headers=tokens.header("intake"))
        assert r.status_code == 201, (channel, r.text)
        first = r.json()
        assert first["outcome"] == "opened" and first["ticket"]["channel"] == channel.value
        assert "@" not in first["ticket"]["customer_id"]
        r = await http.post(f"/v1/intake/{channel.value}", json=payload, headers=tokens.header("intake"))
        assert r.status_code == 200, (channel, r.text)  # a repeated delivery opens nothing new
        assert r.json()["outcome"] == "existing" and r.json()["ticket"]["id"] == first["ticket"]["id"]
    bot = await http.get(f"/v1/tickets/{first['ticket']['id']}", headers=tokens.header("admin"))
    assert bot.json()["tier"] == "tier1" and bot.json()["routing_rule"] == "bot-handoff"


async def test_intake_from_the_bot_records_its_hand_off_with_the_bot_and_its_reason(http: httpx.AsyncClient,
                                                                                   tokens: Tokens) -> None:
    payload = dict(PAYLOADS[Channel.bot].model_config["json_schema_extra"]["examples"][0])  # type: ignore[index,arg-type]
    payload["conversation_id"] = f"bot-{unique()}"
    opened = await http.post("/v1/intake/bot", json=payload, headers=tokens.header("intake"))
    assert opened.status_code == 201, opened.text
    tid = opened.json()["ticket"]["id"]
    timeline = (await http.get(f"/v1/tickets/{tid}/timeline", headers=tokens.header("admin"))).json()
    handed = [e for e in timeline["timeline"] if e["action"] == "handed_off"]
    assert [(e["actor"], e["reason"]) for e in handed] == [("bot:helpbot", "customer asked for a human")], timeline


async def test_email_replies_thread_onto_their_ticket(http: httpx.AsyncClient, tokens: Tokens) -> None:
    h, root = tokens.header("intake"), f"<{unique()}@mail.example.com>"
    first = {"from": "Ana <ana@example.com>", "subject": "My router keeps rebooting", "body": "Every 10 minutes.",
             "message_id": root}
    r = await http.post("/v1/intake/email", json=first, headers=h)
    assert r.status_code == 201
    tid = r.json()["ticket"]["id"]
    assert tid == email_ticket_id(root)
    # a reply to a reply: In-Reply-To names a message that opened nothing; References holds the root
    reply = {"from": "ana@example.com", "subject": "Re: My router keeps rebooting", "body": "Now every 5 minutes.",
             "message_id": f"<{unique()}@mail.example.com>", "in_reply_to": "<agent-answer-1@support.example.com>",
             "references": f"{root} <agent-answer-1@support.example.com>"}
    r = await http.post("/v1/intake/email", json=reply, headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["outcome"] == "customer_reply" and r.json()["replied_to"] == tid and r.json()["ticket"]["id"] == tid
    assert r.json()["ticket"]["timeline"][0]["action"] == "opened"  # the whole timeline, not just the new entry
    rules = [e["action"] for e in r.json()["ticket"]["timeline"] if e["actor"] != "system:notify"]
    assert rules[-1] == "customer_replied"  # (who was told of the opening may be recorded meanwhile)
    r = await http.post("/v1/intake/email", json=reply, headers=h)
    assert r.json()["outcome"] == "duplicate"
    state = (await http.get(f"/v1/tickets/{tid}", headers=tokens.header("admin"))).json()
    assert [e["action"] for e in state["timeline"]].count("customer_replied") == 1
    # after the ticket closed, a reply opens a linked follow-up, once
    await act(http, tokens, "admin", tid, "resolve", {"summary": "firmware update"})
    await act(http, tokens, "admin", tid, "close")
    late = {**reply, "message_id": f"<{unique()}@mail.example.com>", "in_reply_to": root, "references": []}
    r = await http.post("/v1/intake/email", json=late, headers=h)
    assert r.status_code == 201, r.text
    assert r.json()["outcome"] == "follow_up" and r.json()["ticket"]["linked_ticket_id"] == tid
    follow = r.json()["ticket"]["id"]
    r = await http.post("/v1/intake/email", json=late, headers=h)
    assert r.status_code == 200 and r.json()["outcome"] == "duplicate" and r.json()["ticket"]["id"] == follow


async def test_sensitive_data_on_a_public_post_is_flagged(http: httpx.AsyncClient, tokens: Tokens) -> None:
    h = tokens.header("intake")
    post = {"network": "twitter", "post_id": unique("p"), "handle": "@ana",
            "text": "@ExampleTV a double charge on my card 4111 1111 1111 1111!"}
    r = await http.post("/v1/intake/social", json=post, headers=h)
    assert r.status_code == 201, r.text
    assert r.json()["sensitive"] == ["billing", "payment_card"]
    view = (await http.get(f"/v1/tickets/{r.json()['ticket']['id']}", headers=tokens.header("admin"))).json()
    assert view["department"] == "billing"  # the billing route ran on the post's text
    dm = {**post, "post_id": unique("p"), "public": False}
    r = await http.post("/v1/intake/social", json=dm, headers=h)
    assert r.status_code == 201 and r.json()["sensitive"] == []
