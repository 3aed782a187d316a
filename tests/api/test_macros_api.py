"""Replying with a macro on the real server: the macro is rendered for the ticket and the agent, it is a public
reply (the customer is told) and it restarts the customer_update clock; an unknown macro is a 422 naming the known."""

from __future__ import annotations

import asyncio
from datetime import datetime

import httpx

from tests.support.api import Tokens, error, open_ticket


def update_due(view: dict) -> datetime:  # type: ignore[type-arg]
    clock = next(c for c in view["clocks"] if c["name"] == "customer_update")
    return datetime.fromisoformat(clock["due_at"])


async def test_a_macro_reply_is_public_and_restarts_the_customer_update_clock(http: httpx.AsyncClient,
                                                                              tokens: Tokens) -> None:
    view = await open_ticket(http, tokens, priority="P1", customer_contact="buyer@example.com")
    before = update_due(view)
    listed = await http.get("/v1/macros", headers=tokens.header("agent"))
    assert listed.status_code == 200 and "investigating" in listed.json()["macros"]
    await asyncio.sleep(1.1)  # so the restarted clock's due time is visibly later
    r = await http.post(f"/v1/tickets/{view['id']}/reply", json={"macro": "investigating"},
                        headers=tokens.header("agent"))
    assert r.status_code == 200, r.text
    after = r.json()
    reply = [e for e in after["timeline"] if e["action"] == "public_reply"][-1]
    assert f'"{view["subject"]}" ({view["id"]})' in reply["summary"] and "investigating it now" in reply["summary"]
    assert update_due(after) > before, "a customer-facing reply restarts the customer_update clock"

    wrong = await http.post(f"/v1/tickets/{view['id']}/reply", json={"macro": "nope"}, headers=tokens.header("agent"))
    assert "the macros are: investigating" in error(wrong, 422, "invalid_request")["message"]
    both = await http.post(f"/v1/tickets/{view['id']}/reply", json={"macro": "investigating", "text": "hi"},
                           headers=tokens.header("agent"))
    error(both, 422, "invalid_request")
    text = await http.post(f"/v1/tickets/{view['id']}/reply", json={"text": "Fixed on our side."},
                           headers=tokens.header("agent"))
    assert text.status_code == 200
    assert [e for e in text.json()["timeline"] if e["action"] == "public_reply"][-1]["summary"] == "Fixed on our side."
