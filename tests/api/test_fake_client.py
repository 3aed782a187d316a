"""The in-memory client (tests/support/fake_client.py) answers as the real one: the same requests through the API,
once on the fake and once on the real dev server and worker, give the same statuses, codes and ticket fields.

The tests that run on the fake (routing, validation, roles, scopes) are only as good as this likeness."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support.api import Tokens, ticket_body, unique

pytestmark = pytest.mark.asyncio(loop_scope="session")

Answer = tuple[int, Any]


def seen(r: httpx.Response) -> Answer:
    """What is compared: the status and the error code, or the ticket's place and the actions in its timeline."""
    body = r.json()
    if "error" in body:
        return r.status_code, body["error"]["code"]
    if "timeline" in body and "status" in body:
        # who was told (`system:notify`) is the real worker's delivery: the in-memory client delivers nothing
        actions = [e["action"] for e in body["timeline"] if e["actor"] != "system:notify"]
        return r.status_code, (body["status"], body.get("tier"), body.get("department"), body.get("priority"), actions,
                               bool(body.get("linked_ticket_id")))
    return r.status_code, sorted(body)


async def life_of_a_ticket(http: httpx.AsyncClient, tokens: Tokens) -> list[Answer]:
    """Opening, idempotency, actions and their refusals, scope, the executive tier, replies and closing."""
    tid, answers = unique(), []

    async def send(method: str, path: str, who: str, body: dict[str, Any] | None = None) -> None:
        answers.append(seen(await http.request(method, path.format(t=tid), json=body, headers=tokens.header(who))))

    await send("POST", "/v1/tickets", "intake", ticket_body(tid))
    await send("POST", "/v1/tickets", "intake", ticket_body(tid))
    await send("POST", "/v1/tickets", "intake", ticket_body(tid, subject="Something else"))
    await send("GET", "/v1/tickets/{t}", "netagent")
    await send("POST", "/v1/tickets/{t}/acknowledge", "agent")
    await send("POST", "/v1/tickets/{t}/acknowledge", "agent")
    await send("POST", "/v1/tickets/{t}/transfer", "agent", {"department": "marketing"})
    await send("POST", "/v1/tickets/{t}/escalate", "agent", {"reason": "a bug", "to_tier": "tier3"})
    await send("POST", "/v1/tickets/{t}/escalate", "agent", {"reason": "they threaten to sue"})
    await send("POST", "/v1/tickets/{t}/escalate", "supervisor", {"reason": "x", "to_tier": "tier0"})
    await send("POST", "/v1/tickets/{t}/customer-reply", "intake", {"message": "any news?", "message_id": "m-1"})
    await send("POST", "/v1/tickets/{t}/customer-reply", "intake", {"message": "any news?", "message_id": "m-1"})
    await send("POST", "/v1/tickets/{t}/reopen", "agent", {"reason": "x"})
    await send("POST", "/v1/tickets/{t}/resolve", "agent", {"summary": "fixed"})
    await send("POST", "/v1/tickets/{t}/close", "agent")
    await send("POST", "/v1/tickets/{t}/note", "admin", {"text": "late"})
    await send("POST", "/v1/tickets/{t}/customer-reply", "intake", {"message": "broken again", "message_id": "m-2"})
    await send("GET", "/v1/tickets/{t}/timeline", "auditor")
    await send("GET", "/v1/tickets/no-such-ticket", "admin")
    return answers


async def test_the_fake_answers_a_tickets_life_as_the_real_server_does(
        http: httpx.AsyncClient, fake_http: httpx.AsyncClient, tokens: Tokens) -> None:
    real = await life_of_a_ticket(http, tokens)
    assert await life_of_a_ticket(fake_http, tokens) == real
    codes = [answer for status, answer in real if status >= 400]  # the scenario reaches the refusals it means to
    assert codes == ["id_conflict", "out_of_scope", "already_acknowledged", "unknown_department", "forbidden",
                     "not_above", "not_resolved", "ticket_closed", "not_found"]
