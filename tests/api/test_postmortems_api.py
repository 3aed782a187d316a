"""Post-mortems through the API on the real server: a P1 resolved at Tier 3 names its post-mortem, whose steps are
taken over HTTP until completion publishes the knowledge-base article; a SEV1 incident's resolution starts one too."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import httpx

from tests.support.api import Tokens, error, open_ticket


async def eventually(http: httpx.AsyncClient, path: str, headers: dict[str, str], check: Any) -> dict[str, Any]:
    for _ in range(100):
        r = await http.get(path, headers=headers)
        if r.status_code == 200 and check(r.json()):
            return dict(r.json())
        await asyncio.sleep(0.1)
    raise AssertionError(f"{path}: {r.status_code} {r.text[:300]}")


async def test_a_p1_at_tier3_ends_in_a_postmortem_and_a_kb_article(http: httpx.AsyncClient, tokens: Tokens) -> None:
    sup = tokens.header("supervisor")
    view = await open_ticket(http, tokens, priority="P1")
    tid = view["id"]
    for action, body in (("acknowledge", {}), ("escalate", {"to_tier": "tier3", "reason": "engineering"}),
                         ("resolve", {"summary": "hotfix"})):
        r = await http.post(f"/v1/tickets/{tid}/{action}", json=body, headers=sup)
        assert r.status_code == 200, r.text
    ticket = await eventually(http, f"/v1/tickets/{tid}", sup, lambda v: v["postmortem_id"])
    pm_id = ticket["postmortem_id"]
    assert pm_id == f"postmortem-ticket-{tid}"
    pm = await eventually(http, f"/v1/postmortems/{pm_id}", sup, lambda p: p["status"] == "open")
    assert [s["name"] for s in pm["steps"]] == ["review", "root_cause", "complete"]
    # The ticket is at tier3 in general: in the agent's scope, not in netagent's (tier2 networking).
    assert (await http.get(f"/v1/postmortems/{pm_id}", headers=tokens.header("agent"))).status_code == 200
    error(await http.get(f"/v1/postmortems/{pm_id}", headers=tokens.header("netagent")), 403, "out_of_scope")

    base = f"/v1/postmortems/{pm_id}"
    error(await http.post(f"{base}/complete", json={"summary": "too soon"}, headers=sup), 409, "postmortem_incomplete")
    steps: list[tuple[str, dict[str, Any] | None]] = [
        ("review", {"notes": "held"}),
        ("root-cause", {"root_cause": "no canary", "contributing_factors": ["no alert"]}),
        ("action-items", {"text": "add a canary", "owner": "leo", "due_in_days": 5}),
        ("action-items/1/done", None),
        ("complete", {"summary": "canaries everywhere"})]
    for step, payload in steps:
        r = await http.post(f"{base}/{step}", json=payload, headers=sup)
        assert r.status_code == 200, (step, r.text)
    done = await eventually(http, base, sup, lambda p: p["kb_article"])
    text = Path(done["kb_article"]).read_text()
    assert "no canary" in text and "add a canary" in text and "canaries everywhere" in text
    error(await http.get("/v1/postmortems/postmortem-ticket-nope", headers=sup), 404, "not_found")
    error(await http.get("/v1/postmortems/not-a-postmortem", headers=sup), 422, "invalid_request")


async def test_a_sev1_incident_ends_in_a_postmortem(http: httpx.AsyncClient, tokens: Tokens) -> None:
    sup, service = tokens.header("supervisor"), f"svc-{uuid.uuid4().hex[:6]}"
    r = await http.post("/v1/incidents", json={"service": service, "title": "Outage", "severity": "SEV1",
                                               "commander": "mia"}, headers=sup)
    assert r.status_code == 201, r.text
    r = await http.post(f"/v1/incidents/{service}/resolve", json={"summary": "restored"}, headers=sup)
    assert r.status_code == 200, r.text
    incident = await eventually(http, f"/v1/incidents/{service}", sup, lambda i: i["postmortem_id"])
    pm = await eventually(http, f"/v1/postmortems/{incident['postmortem_id']}", sup, lambda p: True)
    assert pm["kind"] == "incident" and pm["owner"] == "mia"
    by_ticket_ref = await eventually(http, f"/v1/postmortems/incident:{service}", sup, lambda p: True)
    assert by_ticket_ref["id"] == incident["postmortem_id"], "incident:<service> names its latest post-mortem"

    # handed to another owner explicitly: a person of the directory, once; the commander no longer may act
    path = f"/v1/postmortems/incident:{service}/assign"
    r = await http.post(path, json={"owner": "nobody-here"}, headers=sup)
    assert r.status_code == 422 and "not a person of the directory" in r.text, r.text
    r = await http.post(path, json={"owner": "leo"}, headers=sup)
    assert r.status_code == 200, r.text
    assert r.json()["owner"] == "leo" and "leo" in r.json()["participants"]
    change = r.json()["owner_changes"][0]
    assert (change["from_owner"], change["to_owner"], change["by"]) == ("mia", "leo", "supervisor:supervisor")
    r = await http.post(path, json={"owner": "leo"}, headers=sup)
    assert r.status_code == 409 and r.json()["error"]["code"] == "same_owner", r.text
    r = await http.post(f"/v1/postmortems/incident:{service}/review", json={"notes": "x"},
                        headers=tokens.header("mia"))
    assert r.status_code == 403, "the owner it had may no longer act on it"


async def test_postmortems_by_what_they_follow(http: httpx.AsyncClient, tokens: Tokens) -> None:
    sup, service = tokens.header("supervisor"), f"svc-{uuid.uuid4().hex[:6]}"
    view = await open_ticket(http, tokens, priority="P1")
    r = await http.post(f"/v1/tickets/{view['id']}/resolve", json={"summary": "fixed"}, headers=sup)
    assert r.status_code == 200, r.text
    pm = await eventually(http, f"/v1/postmortems/ticket:{view['id']}", sup, lambda p: True)
    assert pm["id"] == f"postmortem-ticket-{view['id']}"
    r = await http.post(f"/v1/postmortems/ticket:{view['id']}/review", json={"notes": "held"}, headers=sup)
    assert r.status_code == 200 and r.json()["steps"][0]["done_at"], r.text

    r = await http.post("/v1/incidents", json={"service": service, "title": "Slow", "severity": "SEV3",
                                               "commander": "mia"}, headers=sup)
    assert r.status_code == 201, r.text
    err = error(await http.get(f"/v1/postmortems/incident:{service}", headers=sup), 404, "not_found")
    assert "open" in err["message"], err
    r = await http.post(f"/v1/incidents/{service}/resolve", json={"summary": "fast again"}, headers=sup)
    assert r.status_code == 200, r.text
    err = error(await http.get(f"/v1/postmortems/incident:{service}", headers=sup), 404, "not_found")
    assert "SEV3" in err["message"] and "severities" in err["message"], err
    error(await http.get("/v1/postmortems/incident:bad%20name", headers=sup), 422, "invalid_request")


async def test_a_commander_is_a_person_of_the_directory(http: httpx.AsyncClient, tokens: Tokens) -> None:
    sup, service = tokens.header("supervisor"), f"svc-{uuid.uuid4().hex[:6]}"
    r = await http.post("/v1/incidents", json={"service": service, "title": "Outage", "severity": "SEV2",
                                               "commander": "nobody-here"}, headers=sup)
    err = error(r, 422, "invalid_request")
    assert "nobody-here" in err["message"] and "mia" in err["message"], err
    error(await http.get(f"/v1/incidents/{service}", headers=sup), 404, "not_found")  # nothing was declared
    view = await open_ticket(http, tokens, priority="P2")
    err = error(await http.post(f"/v1/tickets/{view['id']}/assign-manager", json={"manager": "ghost"}, headers=sup),
                422, "invalid_request")
    assert "ghost" in err["message"], err
