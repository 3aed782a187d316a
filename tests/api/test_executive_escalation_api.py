"""POST /v1/tickets/{id}/escalate-to-executive and assign-manager through the API's roles (in-memory client)."""

from __future__ import annotations

import httpx
import pytest

from tests.support.api import Tokens, error, open_ticket

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_a_supervisor_escalates_to_the_executives(fake_http: httpx.AsyncClient, tokens: Tokens) -> None:
    t = await open_ticket(fake_http, tokens)
    r = await fake_http.post(f"/v1/tickets/{t['id']}/escalate-to-executive", json={"reason": "threatens to cancel"},
                             headers=tokens.header("supervisor"))
    assert r.status_code == 200, r.text
    view = r.json()
    assert view["tier"] == "executive" and view["executive_attention"]
    assert "executive_escalation" in [e["action"] for e in view["timeline"]]


async def test_an_agents_executive_escalation_is_a_request(fake_http: httpx.AsyncClient, tokens: Tokens) -> None:
    t = await open_ticket(fake_http, tokens)
    r = await fake_http.post(f"/v1/tickets/{t['id']}/escalate-to-executive", json={"reason": "threatens to leave"},
                             headers=tokens.header("agent"))
    assert r.status_code == 200, r.text
    view = r.json()
    assert view["tier"] == t["tier"] and not view["executive_attention"]
    assert view["timeline"][-1]["action"] == "executive_escalation_requested"
    assert view["timeline"][-1]["actor"] == "agent:agent"


async def test_the_reason_is_required(fake_http: httpx.AsyncClient, tokens: Tokens) -> None:
    t = await open_ticket(fake_http, tokens)
    r = await fake_http.post(f"/v1/tickets/{t['id']}/escalate-to-executive", json={},
                             headers=tokens.header("supervisor"))
    err = error(r, 422, "invalid_request")
    assert any(d["loc"] == ["body", "reason"] for d in err["details"])


async def test_twice_is_a_conflict_naming_why(fake_http: httpx.AsyncClient, tokens: Tokens) -> None:
    t = await open_ticket(fake_http, tokens)
    url, h = f"/v1/tickets/{t['id']}/escalate-to-executive", tokens.header("supervisor")
    assert (await fake_http.post(url, json={"reason": "churn"}, headers=h)).status_code == 200
    err = error(await fake_http.post(url, json={"reason": "again"}, headers=h), 409, "already_executive")
    assert "already with the executives" in err["message"]


async def test_only_supervisors_and_admins_choose_the_escalation_manager(fake_http: httpx.AsyncClient,
                                                                        tokens: Tokens) -> None:
    t = await open_ticket(fake_http, tokens)
    url = f"/v1/tickets/{t['id']}/assign-manager"
    error(await fake_http.post(url, json={"manager": "mia"}, headers=tokens.header("agent")), 403, "forbidden")
    r = await fake_http.post(url, json={"manager": "mia"}, headers=tokens.header("supervisor"))
    assert r.status_code == 200 and r.json()["escalation_manager"] == "mia"
