"""Who may do what: the role matrix as a table, and the agents' scopes.

The roles and scopes are checked by the API (the token's role) and the client (scope, the executive tier): these
run on the in-memory client (`fake_http`: the real client's rules, no Temporal server). Listing within scope is a
visibility query, so it runs against the real dev server and worker (`http`)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.support.api import Tokens, ticket_body, unique

pytestmark = pytest.mark.asyncio(loop_scope="session")


Setup = Callable[[httpx.AsyncClient, Tokens], Awaitable[str]]


async def fresh(http: httpx.AsyncClient, tokens: Tokens, **overrides: Any) -> str:
    """A new ticket in the default route (tier1, general), opened by the admin."""
    r = await http.post("/v1/tickets", json=ticket_body(unique(), **overrides), headers=tokens.header("admin"))
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def resolved(http: httpx.AsyncClient, tokens: Tokens) -> str:
    tid = await fresh(http, tokens)
    r = await http.post(f"/v1/tickets/{tid}/resolve", json={"summary": "fixed"}, headers=tokens.header("admin"))
    assert r.status_code == 200, r.text
    return tid


@dataclass(frozen=True)
class Op:
    method: str
    path: str  # {t}: a ticket prepared by `setup`
    body: dict[str, Any] | Callable[[], dict[str, Any]] | None
    ok: int  # the status when allowed
    setup: Setup = fresh


OPS: dict[str, Op] = {
    "open": Op("POST", "/v1/tickets", lambda: ticket_body(unique()), 201),
    "intake": Op("POST", "/v1/intake/portal", lambda: {"submission_id": unique("sub"), "customer_id": "cust-9",
                                                      "subject": "Cannot change my plan"}, 201),
    "list": Op("GET", "/v1/tickets", None, 200),
    "read": Op("GET", "/v1/tickets/{t}", None, 200),
    "timeline": Op("GET", "/v1/tickets/{t}/timeline", None, 200),
    "history": Op("GET", "/v1/tickets/{t}/history", None, 200),
    "acknowledge": Op("POST", "/v1/tickets/{t}/acknowledge", None, 200),
    "escalate": Op("POST", "/v1/tickets/{t}/escalate", {"reason": "needs an expert"}, 200),
    "escalate_executive": Op("POST", "/v1/tickets/{t}/escalate", {"reason": "legal threat", "to_tier": "executive"}, 200),
    "transfer": Op("POST", "/v1/tickets/{t}/transfer", {"department": "billing"}, 200),
    "wait_on_customer": Op("POST", "/v1/tickets/{t}/wait-on-customer", {"reason": "need logs"}, 200),
    "resolve": Op("POST", "/v1/tickets/{t}/resolve", {"summary": "fixed"}, 200),
    "reopen": Op("POST", "/v1/tickets/{t}/reopen", {"reason": "still broken"}, 200, resolved),
    "close": Op("POST", "/v1/tickets/{t}/close", None, 200, resolved),
    "assign": Op("POST", "/v1/tickets/{t}/assign", {"assignee": "bob"}, 200),
    "note": Op("POST", "/v1/tickets/{t}/note", {"text": "checked"}, 200),
    "change_priority": Op("POST", "/v1/tickets/{t}/change-priority", {"priority": "P2"}, 200),
    "customer_reply": Op("POST", "/v1/tickets/{t}/customer-reply", {"message": "any news?"}, 200),
}

AGENT = {"list", "read", "timeline", "acknowledge", "escalate", "transfer", "wait_on_customer", "resolve", "reopen",
         "close", "note", "change_priority", "customer_reply"}
# The matrix: role -> what it may do. Everything else is 403.
ALLOWED: dict[str, set[str]] = {
    "intake": {"open", "intake", "customer_reply"},
    "agent": AGENT,  # scoped: tiers 1-3 and executive, departments general and billing (the tickets here are inside)
    "supervisor": AGENT | {"assign", "escalate_executive"},
    "auditor": {"list", "read", "timeline", "history"},
    "admin": set(OPS),
    "monitor": set(),  # a monitoring token: incidents only (test_a_monitoring_token_declares_for_its_services)
}
MATRIX = [(role, op, op in allowed) for role, allowed in ALLOWED.items() for op in OPS]


@pytest.mark.parametrize(("role", "op", "allowed"), MATRIX, ids=[f"{r}-{o}-{'ok' if a else 'no'}" for r, o, a in MATRIX])
async def test_role_matrix(fake_http: httpx.AsyncClient, tokens: Tokens, role: str, op: str, allowed: bool) -> None:
    spec = OPS[op]
    tid = await spec.setup(fake_http, tokens) if "{t}" in spec.path else ""
    body = spec.body() if callable(spec.body) else spec.body
    r = await fake_http.request(spec.method, spec.path.format(t=tid), json=body, headers=tokens.header(role))
    if allowed:
        assert r.status_code == spec.ok, r.text
    else:
        assert r.status_code == 403, r.text
        assert r.json()["error"]["code"] == "forbidden"
        if tid:  # a refused action changed nothing
            after = await fake_http.get(f"/v1/tickets/{tid}", headers=tokens.header("admin"))
            assert [e["action"] for e in after.json()["timeline"]][-1] in ("opened", "resolved")


def _routes() -> list[tuple[str, str]]:
    return sorted({(op.method, op.path) for op in OPS.values()})


@pytest.mark.parametrize(("method", "path"), _routes())
@pytest.mark.parametrize("auth", [None, "Bearer not-a-token", "Basic YWRtaW46YWRtaW4=", "Bearer "])
async def test_without_a_valid_token_every_endpoint_is_401(fake_http: httpx.AsyncClient, method: str, path: str,
                                                           auth: str | None) -> None:
    headers = {"Authorization": auth} if auth else {}
    r = await fake_http.request(method, path.format(t="T-1"), json={} if method == "POST" else None, headers=headers)
    assert r.status_code == 401, r.text
    assert r.json()["error"]["code"] == "unauthorized" and r.headers["www-authenticate"] == "Bearer"


async def test_health_and_docs_need_no_token(fake_http: httpx.AsyncClient) -> None:
    for path in ("/healthz", "/readyz", "/openapi.json", "/docs"):
        assert (await fake_http.get(path)).status_code == 200, path


# ----- agent scope --------------------------------------------------------------------------------


async def test_an_agent_outside_its_scope_is_403(fake_http: httpx.AsyncClient, tokens: Tokens) -> None:
    tid = await fresh(fake_http, tokens)  # tier1 / general: outside netagent's tier2 / networking
    for method, path, body in (("GET", f"/v1/tickets/{tid}", None), ("GET", f"/v1/tickets/{tid}/timeline", None),
                               ("POST", f"/v1/tickets/{tid}/acknowledge", None),
                               ("POST", f"/v1/tickets/{tid}/note", {"text": "x"}),
                               ("POST", f"/v1/tickets/{tid}/customer-reply", {"message": "x"})):
        r = await fake_http.request(method, path, json=body, headers=tokens.header("netagent"))
        assert r.status_code == 403, (path, r.text)
        assert r.json()["error"]["code"] == "out_of_scope"
    timeline = (await fake_http.get(f"/v1/tickets/{tid}/timeline", headers=tokens.header("admin"))).json()["timeline"]
    assert [e["action"] for e in timeline] == ["opened"]


async def test_an_unknown_ticket_is_404_for_a_scoped_agent_too(fake_http: httpx.AsyncClient, tokens: Tokens) -> None:
    r = await fake_http.get("/v1/tickets/does-not-exist", headers=tokens.header("netagent"))
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


async def test_a_ticket_leaves_an_agents_scope_when_it_moves(fake_http: httpx.AsyncClient, tokens: Tokens) -> None:
    tid = await fresh(fake_http, tokens)
    r = await fake_http.post(f"/v1/tickets/{tid}/transfer", json={"department": "networking"}, headers=tokens.header("agent"))
    assert r.status_code == 200  # inside its scope when it acted
    assert (await fake_http.get(f"/v1/tickets/{tid}", headers=tokens.header("agent"))).status_code == 403
    assert (await fake_http.get(f"/v1/tickets/{tid}", headers=tokens.header("netagent"))).status_code == 403  # still tier1
    r = await fake_http.post(f"/v1/tickets/{tid}/escalate", json={"reason": "router"}, headers=tokens.header("supervisor"))
    assert r.json()["tier"] == "tier2"
    assert (await fake_http.get(f"/v1/tickets/{tid}", headers=tokens.header("netagent"))).status_code == 200


async def test_agents_may_not_escalate_into_the_executive_tier(fake_http: httpx.AsyncClient, tokens: Tokens) -> None:
    tid = await fresh(fake_http, tokens)
    r = await fake_http.post(f"/v1/tickets/{tid}/escalate", json={"reason": "deep bug", "to_tier": "tier3"},
                             headers=tokens.header("agent"))
    assert r.status_code == 200 and r.json()["tier"] == "tier3"
    r = await fake_http.post(f"/v1/tickets/{tid}/escalate", json={"reason": "they threaten to sue"},
                             headers=tokens.header("agent"))  # the next tier up is executive
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    r = await fake_http.post(f"/v1/tickets/{tid}/escalate", json={"reason": "they threaten to sue"},
                             headers=tokens.header("supervisor"))
    assert r.status_code == 200 and r.json()["tier"] == "executive"


async def test_listing_returns_only_tickets_in_scope(http: httpx.AsyncClient, tokens: Tokens) -> None:
    customer = unique("cust")
    general = await fresh(http, tokens, customer_id=customer)
    outage = await fresh(http, tokens, customer_id=customer, subject="Service down for everyone")  # tier2 networking

    async def listed(who: str) -> set[str]:
        r = await http.get("/v1/tickets", params={"customer": customer}, headers=tokens.header(who))
        assert r.status_code == 200, r.text
        return {t["id"] for t in r.json()["tickets"]}

    for _ in range(200):
        if await listed("admin") == {general, outage}:
            break
        await asyncio.sleep(0.05)
    assert await listed("admin") == {general, outage}
    assert await listed("supervisor") == {general, outage}
    assert await listed("auditor") == {general, outage}
    assert await listed("agent") == {general}
    assert await listed("netagent") == {outage}
    # a filter cannot widen the scope
    r = await http.get("/v1/tickets", params={"customer": customer, "department": "networking"},
                       headers=tokens.header("agent"))
    assert r.json()["tickets"] == []


async def test_a_monitoring_token_declares_for_its_services_only(http: httpx.AsyncClient, tokens: Tokens) -> None:
    """The incident-scoped token a monitoring system holds: declare and read its services' incidents; nothing else."""
    mon = tokens.header("monitor")
    body = {"service": "checkout-eu", "title": "Checkout errors above 5%", "severity": "SEV2", "commander": "agent:mia"}
    r = await http.post("/v1/incidents", json=body, headers=mon)
    assert r.status_code in (200, 201), r.text
    assert r.json()["declared_by"] == "monitoring:monitor"
    assert (await http.post("/v1/incidents", json=body, headers=mon)).status_code == 200, "the open one answers"
    assert (await http.get("/v1/incidents/checkout-eu", headers=mon)).status_code == 200
    other = await http.post("/v1/incidents", json={**body, "service": unique("login").lower()}, headers=mon)
    assert other.status_code == 403 and "checkout" in other.json()["error"]["message"], other.text
    for method, path in (("POST", "/v1/incidents/checkout-eu/updates"), ("POST", "/v1/incidents/checkout-eu/resolve"),
                         ("POST", "/v1/incidents/checkout-eu/link"), ("GET", "/v1/tickets")):
        refused = await http.request(method, path, json={"text": "x", "summary": "x", "tickets": ["T-1"]}
                                     if method == "POST" else None, headers=mon)
        assert refused.status_code == 403, (path, refused.text)
    r = await http.post("/v1/incidents/checkout-eu/resolve", json={"summary": "error rate normal"},
                        headers=tokens.header("supervisor"))
    assert r.status_code == 200, r.text


async def test_the_commander_posts_updates_as_themselves(http: httpx.AsyncClient, tokens: Tokens) -> None:
    """The commander is named by their directory id (`mia`); their token's actor is `agent:mia`. A name outside the
    directory is refused, naming its people."""
    service = unique("svc").lower()
    body = {"service": service, "title": "Search is slow", "severity": "SEV3", "commander": "agent"}
    r = await http.post("/v1/incidents", json=body, headers=tokens.header("supervisor"))
    assert r.status_code == 422 and "not a person of the directory" in r.json()["error"]["message"], r.text
    assert "mia" in r.json()["error"]["message"], "the answer lists the directory's people"
    r = await http.post("/v1/incidents", json={**body, "commander": "mia"}, headers=tokens.header("supervisor"))
    assert r.status_code == 201, r.text
    r = await http.post(f"/v1/incidents/{service}/updates", json={"text": "Reindexing."}, headers=tokens.header("mia"))
    assert r.status_code == 200 and r.json()["by"] == "agent:mia", r.text
    for other in ("agent", "netagent"):
        r = await http.post(f"/v1/incidents/{service}/updates", json={"text": "x"}, headers=tokens.header(other))
        assert r.status_code == 403 and "commander" in r.json()["error"]["message"], r.text
    r = await http.post(f"/v1/incidents/{service}/resolve", json={"summary": "index rebuilt"},
                        headers=tokens.header("mia"))
    assert r.status_code == 200 and r.json()["status"] == "resolved", r.text


async def test_linking_a_ticket_that_does_not_exist_is_refused_and_links_nothing(http: httpx.AsyncClient,
                                                                                 tokens: Tokens) -> None:
    sup = tokens.header("supervisor")
    service = unique("svc").lower()
    r = await http.post("/v1/incidents", json={"service": service, "title": "Exports fail", "severity": "SEV3",
                                               "commander": "mia"}, headers=sup)
    assert r.status_code == 201, r.text
    real = await fresh(http, tokens)
    r = await http.post(f"/v1/incidents/{service}/link", json={"tickets": [real, "NOPE-404"]}, headers=sup)
    assert r.status_code == 404 and "'NOPE-404'" in r.json()["error"]["message"], r.text
    listed = (await http.get(f"/v1/incidents/{service}/tickets", headers=sup)).json()
    assert listed["total"] == 0, "nothing was linked"
    r = await http.post(f"/v1/incidents/{service}/link", json={"tickets": [real]}, headers=sup)
    assert r.status_code == 200 and r.json()["changed"] == [real], r.text
    await http.post(f"/v1/incidents/{service}/resolve", json={"summary": "done"}, headers=sup)
