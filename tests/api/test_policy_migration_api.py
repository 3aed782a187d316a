"""`POST /v1/policy/migrations`: admins move open tickets to a new policy version (a dry run first), on the real dev
server and worker; every other role is refused; a policy lacking the ticket's tier is rejected and writes nothing."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from starter.runtime.policy_file import load_policy
from tests.support.api import Tokens, error, open_ticket

pytestmark = pytest.mark.asyncio(loop_scope="session")


def policy_doc(**p3: Any) -> dict[str, Any]:
    doc: dict[str, Any] = load_policy().model_dump(mode="json", by_alias=True)
    doc["priorities"]["P3"].update(p3)
    return doc


async def migrate(http: httpx.AsyncClient, tokens: Tokens, body: dict[str, Any], who: str = "admin") -> httpx.Response:
    return await http.post("/v1/policy/migrations", json=body, headers=tokens.header(who))


async def ticket(http: httpx.AsyncClient, tokens: Tokens, ticket_id: str) -> dict[str, Any]:
    r = await http.get(f"/v1/tickets/{ticket_id}", headers=tokens.header("admin"))
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def test_only_admins_move_tickets(http: httpx.AsyncClient, tokens: Tokens) -> None:
    t = await open_ticket(http, tokens)
    body = {"policy": policy_doc(resolution="36h"), "tickets": [t["id"]], "dry_run": True}
    for who in ("agent", "supervisor", "auditor", "intake"):
        err = error(await migrate(http, tokens, body, who), 403, "forbidden")
        assert "policy migrate" in err["message"], err
    r = await migrate(http, tokens, body)
    assert r.status_code == 200, r.text


async def test_dry_run_then_apply(http: httpx.AsyncClient, tokens: Tokens) -> None:
    t = await open_ticket(http, tokens)  # P3 at tier1, general (the default route)
    old_version = t["policy_version"]
    body = {"policy": policy_doc(resolution="36h"), "tickets": [t["id"]], "dry_run": True, "reason": "longer P3"}
    r = await migrate(http, tokens, body)
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["dry_run"] and report["ok"] and report["counts"]["would_apply"] == 1, report
    moved = report["tickets"][0]
    assert (moved["ticket_id"], moved["outcome"], moved["from_version"]) == (t["id"], "would_apply", old_version)
    res = next(c for c in moved["changes"] if c["clock"] == "resolution")
    assert (res["target_before"], res["target_after"]) == ("P1DT3H", "P1DT12H") and res["due_after"] > res["due_before"]
    assert (await ticket(http, tokens, t["id"]))["policy_version"] == old_version, "a dry run changes nothing"

    r = await migrate(http, tokens, {**body, "dry_run": False})
    assert r.status_code == 200, r.text
    applied = r.json()["tickets"][0]
    assert applied["outcome"] == "applied"
    applied_res = next(c for c in applied["changes"] if c["clock"] == "resolution")
    assert applied_res["target_after"] == "P1DT12H" and applied_res["accrued"] is not None
    after = await ticket(http, tokens, t["id"])
    assert after["policy_version"] == r.json()["to_version"] != old_version
    entry = next(e for e in after["timeline"] if e["action"] == "policy_migrated")
    assert entry["actor"] == "admin:admin" and entry["reason"] == "longer P3" and old_version in entry["summary"]
    clock = next(c for c in after["clocks"] if c["name"] == "resolution")
    assert clock["target"] == "P1DT12H" and clock["due_at"] == applied_res["due_after"]

    again = (await migrate(http, tokens, {**body, "dry_run": False})).json()
    assert again["tickets"][0]["code"] == "same_policy" and not again["ok"]


async def test_a_policy_lacking_the_tickets_tier_is_rejected(http: httpx.AsyncClient, tokens: Tokens) -> None:
    t = await open_ticket(http, tokens)
    lacking = json.loads(json.dumps(policy_doc()).replace('"tier1"', '"frontline"'))
    body = {"policy": lacking, "tickets": [t["id"], "NOPE-404"]}
    r = await migrate(http, tokens, body)
    assert r.status_code == 200, r.text
    report = r.json()
    assert not report["ok"] and report["counts"]["rejected"] == 1 and report["counts"]["not_found"] == 1, report
    rejected = report["tickets"][0]
    assert rejected["code"] == "unknown_tier" and "'tier1'" in rejected["message"] and "frontline" in rejected["message"]
    after = await ticket(http, tokens, t["id"])
    assert after["policy_version"] == t["policy_version"]
    assert not any(e["action"] == "policy_migrated" for e in after["timeline"])


async def test_bad_bodies_are_422(http: httpx.AsyncClient, tokens: Tokens) -> None:
    error(await migrate(http, tokens, {"policy": policy_doc(resolution="36h")}), 422, "invalid_request")
    broken = policy_doc(calendar="nowhere")
    r = await migrate(http, tokens, {"policy": broken, "tickets": ["T-1"]})
    assert r.status_code == 422 and "nowhere" in r.text, r.text
    r = await migrate(http, tokens, {"policy": policy_doc(resolution="36h"), "query": "TicketStatus = "})
    assert r.status_code == 422 and "not a visibility query" in r.text, r.text
