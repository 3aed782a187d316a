"""The sponsorship program through the API on the real server: roles, idempotent enrolment, check-in, exit, list."""

from __future__ import annotations

import asyncio
import uuid

import httpx

from tests.support.api import Tokens, error


async def test_enrol_check_in_list_and_exit(http: httpx.AsyncClient, tokens: Tokens) -> None:
    account = f"acct-{uuid.uuid4().hex[:8]}"
    sup, key = tokens.header("supervisor"), {"Idempotency-Key": f"req-{account}"}
    body = {"account_id": account, "reason": "strategic renewal"}
    error(await http.post("/v1/sponsorships", json=body, headers=tokens.header("agent")), 403, "forbidden")
    first = await http.post("/v1/sponsorships", json=body, headers={**sup, **key})
    assert first.status_code == 200, first.text
    again = await http.post("/v1/sponsorships", json=body, headers={**sup, **key})
    assert again.json()["enrolment_count"] == 1, "a retried request (same Idempotency-Key) is recorded once"
    other = await http.post("/v1/sponsorships", json={**body, "reason": "CEO call"}, headers=sup)
    assert other.json()["enrolment_count"] == 2

    error(await http.get(f"/v1/sponsorships/{account}", headers=tokens.header("agent")), 403, "out_of_scope")
    checked = await http.post(f"/v1/sponsorships/{account}/check-ins", json={"notes": "QBR held"}, headers=sup)
    assert checked.status_code == 200 and checked.json()["check_in_count"] == 1
    bad = await http.post(f"/v1/sponsorships/{account}/check-ins", json={"notes": ""}, headers=sup)
    assert error(bad, 422, "invalid_request")["details"][0]["loc"] == ["body", "notes"]

    for _ in range(50):  # visibility trails the start by a moment
        listed = await http.get("/v1/sponsorships?status=active&limit=500", headers=tokens.header("auditor"))
        if account in [s["account_id"] for s in listed.json()["sponsorships"]]:
            break
        await asyncio.sleep(0.2)
    assert [s["account_id"] for s in listed.json()["sponsorships"]].count(account) == 1

    ended = await http.post(f"/v1/sponsorships/{account}/exit", json={"reason": "renewal signed"}, headers=sup)
    assert ended.status_code == 200 and ended.json()["status"] == "ended"
    late = await http.post(f"/v1/sponsorships/{account}/check-ins", json={"notes": "too late"}, headers=sup)
    error(late, 409, "sponsorship_ended")
    error(await http.get("/v1/sponsorships/acct-never", headers=sup), 404, "not_found")
