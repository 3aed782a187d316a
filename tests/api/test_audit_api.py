"""`POST /v1/audit/replays`: every run of the tickets named (or a query's workflows) replayed against the API's code,
on the real dev server and worker; bounded, for auditors and admins only."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support.api import Tokens, error, open_ticket

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def replays(http: httpx.AsyncClient, tokens: Tokens, body: dict[str, Any], who: str = "auditor") -> httpx.Response:
    return await http.post("/v1/audit/replays", json=body, headers=tokens.header(who))


async def test_an_auditor_replays_tickets_and_a_missing_one_is_reported(http: httpx.AsyncClient, tokens: Tokens) -> None:
    t = await open_ticket(http, tokens)
    r = await http.post(f"/v1/tickets/{t['id']}/acknowledge", headers=tokens.header("admin"))
    assert r.status_code == 200, r.text
    r = await replays(http, tokens, {"tickets": [t["id"]]})
    assert r.status_code == 200, r.text
    audit = r.json()
    assert (audit["histories"], audit["passed"], audit["ok"]) == (1, 1, True), audit
    verdict = audit["verdicts"][0]
    assert verdict["workflow_id"] == f"ticket-{t['id']}" and verdict["workflow_type"] == "Ticket"
    assert verdict["events"] > 5 and verdict["run_id"]

    r = await replays(http, tokens, {"tickets": [t["id"], "NOPE-404"]}, who="admin")
    assert r.status_code == 200, r.text
    audit = r.json()
    assert (audit["passed"], audit["unreadable"], audit["ok"]) == (1, 1, False), audit
    assert "ticket-NOPE-404" in audit["verdicts"][1]["unreadable"]


async def test_replays_are_bounded_and_for_auditors(http: httpx.AsyncClient, tokens: Tokens) -> None:
    t = await open_ticket(http, tokens)
    for who in ("agent", "supervisor", "intake"):
        r = await replays(http, tokens, {"tickets": [t["id"]]}, who=who)
        assert r.status_code == 403, (who, r.text)
    error(await replays(http, tokens, {}), 422, "invalid_request")
    assert "give tickets, a query" in (await replays(http, tokens, {})).text
    r = await replays(http, tokens, {"query": "TicketStatus = "})
    assert r.status_code == 422 and "not a visibility query" in r.text, r.text
    r = await replays(http, tokens, {"tickets": [t["id"]], "query": "WorkflowType = 'Ticket'", "limit": 1})
    assert r.status_code == 422 and "at most 1 in one call" in r.text, r.text
    r = await replays(http, tokens, {"tickets": [t["id"]] * 101})
    assert r.status_code == 422, "at most 100 ids"


SCRIPT = "<script>alert(1)</script>"


async def test_an_auditor_reads_a_tickets_report_as_json_and_as_a_page(http: httpx.AsyncClient, tokens: Tokens) -> None:
    t = await open_ticket(http, tokens)
    r = await http.post(f"/v1/tickets/{t['id']}/escalate", json={"reason": f"app bug {SCRIPT}"},
                        headers=tokens.header("admin"))
    assert r.status_code == 200, r.text
    r = await http.get(f"/v1/tickets/{t['id']}/report", headers=tokens.header("auditor"))
    assert r.status_code == 200, r.text
    report = r.json()
    assert (report["ticket_id"], report["verdict"]) == (t["id"], "passed"), report
    escalated = [d for d in report["decisions"] if SCRIPT in d["why"]]
    assert escalated and escalated[0]["who"].startswith("admin"), report
    assert report["policy_version"] and report["runs"][0]["decisions_verified"] > 0
    assert (r.headers["cache-control"], r.headers["referrer-policy"]) == ("no-store", "no-referrer"), "customer data"

    r = await http.get(f"/v1/tickets/{t['id']}/report", params={"format": "html"}, headers=tokens.header("admin"))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html"), r.headers
    assert "default-src 'none'" in r.headers["content-security-policy"]
    assert (r.headers["cache-control"], r.headers["referrer-policy"]) == ("no-store", "no-referrer")
    assert SCRIPT not in r.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in r.text, "escaped, shown as text"
    assert "<script" not in r.text.lower(), "the page has no script of its own either"


async def test_a_report_is_for_auditors_and_names_a_missing_ticket(http: httpx.AsyncClient, tokens: Tokens) -> None:
    t = await open_ticket(http, tokens)
    for who in ("agent", "supervisor", "intake"):
        r = await http.get(f"/v1/tickets/{t['id']}/report", headers=tokens.header(who))
        assert r.status_code == 403, (who, r.text)
    error(await http.get("/v1/tickets/NOPE-404/report", headers=tokens.header("auditor")), 404, "not_found")
    r = await http.get(f"/v1/tickets/{t['id']}/report", params={"format": "pdf"}, headers=tokens.header("auditor"))
    assert r.status_code == 422 and "html" in r.text, r.text
