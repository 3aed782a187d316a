"""The agents' console as a person uses it: a real headless browser (Debian's Chromium, driven by Playwright) on a live
API process over the session's dev server and worker.

A supervisor signs in with a token, sees the breached ticket first in the Tier 2 queue, escalates one with a reason,
sees a refused action's reason on the page, signs out; a ticket whose subject is a script tag shows it as text and
no dialog fires; an agent scoped to Tier 2 / networking cannot open a Tier 1 ticket. Screenshots of the main pages go
to var/screenshots/ (ignored by git) for review."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page

from tests.conftest import TemporalStack
from tests.support.api import live_api, make_tokens, ticket_body, unique
from tests.support.browser import chromium

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "var" / "screenshots"
TOKENS = make_tokens()
SCRIPT_SUBJECT = "<script>alert('owned')</script> outage in the lobby"
pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def api(temporal_stack: TemporalStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    var = tmp_path_factory.mktemp("console")
    tokens_file = var / "tokens.yaml"
    tokens_file.write_text(TOKENS.yaml(), encoding="utf-8")
    with live_api(temporal_stack, tokens_file, log_file=var / "api.log") as base:
        yield base


@pytest_asyncio.fixture(loop_scope="session")
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as b:
        yield b


async def opened(http: httpx.AsyncClient, **body: Any) -> str:
    """A ticket opened through the API, returned once its worker has run its first task (it answers a read)."""
    ticket_id = unique("CON")
    r = await http.post("/v1/tickets", json=ticket_body(ticket_id, **body), headers=TOKENS.header("admin"))
    assert r.status_code == 201, r.text
    for _ in range(100):
        r = await http.get(f"/v1/tickets/{ticket_id}", headers=TOKENS.header("admin"))
        if r.status_code == 200:
            return ticket_id
        await asyncio.sleep(0.1)
    raise AssertionError(f"{ticket_id} never answered: {r.text}")


async def sign_in(page: Page, api: str, who: str) -> None:
    await page.goto(f"{api}/console/")
    assert page.url.endswith("/console/sign-in"), "no session: the sign-in page"
    await page.get_by_label("API token").fill(TOKENS.by_name[who])
    async with page.expect_navigation():
        await page.get_by_role("button", name="Sign in").click()
    assert await page.inner_text("#principal") == ("supervisor:supervisor" if who == "supervisor" else f"agent:{who}")


async def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SHOTS / f"console-{name}.png"), full_page=True)


async def test_a_supervisor_works_the_tier2_queue_and_a_scoped_agent_sees_only_its_own(api: str,
                                                                                       browser: Browser) -> None:
    customer = unique("cust")
    now = datetime.now(UTC)
    async with httpx.AsyncClient(base_url=api, timeout=30) as http:
        # "outage" routes to Tier 2 / networking at P1 (config/policy.yaml); opened 90 minutes ago, its acknowledge
        # (60m) and customer-update (30m) clocks are breached at once, and it stays in Tier 2 (4h there).
        fresh = await opened(http, subject="Checkout outage for some users", customer_id=customer)
        breached = await opened(http, subject="Service down for everyone since this morning", customer_id=customer,
                                opened_at=(now - timedelta(minutes=90)).isoformat(), customer_contact="buyer@example.com")
        scripted = await opened(http, subject=SCRIPT_SUBJECT, customer_id=customer)
        tier1 = await opened(http, subject="Cannot change my avatar", customer_id=customer)  # the default: Tier 1

    page = await browser.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: dialogs.append(d.message))
    response = await page.goto(f"{api}/console/sign-in")
    assert response is not None
    csp = response.headers.get("content-security-policy", "")
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    await sign_in(page, api, "supervisor")
    cookie = next(c for c in await page.context.cookies() if c["name"] == "escalation_console")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/console"

    # The Tier 2 queue (its link on the queues page), narrowed to this test's customer (the shared stack holds many
    # other Tier 2 tickets, whose states the unfiltered queue would read first), then to P1 with the filter form.
    tier2 = await page.get_by_role("link", name="Tier 2 - Technical experts").get_attribute("href")
    assert tier2 == "/console/queue?tier=tier2", tier2
    await page.goto(f"{api}{tier2}&customer={customer}")
    assert await page.get_by_label("Customer", exact=True).input_value() == customer
    await page.get_by_label("Priority", exact=True).select_option("P1")
    async with page.expect_navigation():
        await page.get_by_role("button", name="Filter").click()
    assert "priority=P1" in page.url and f"customer={customer}" in page.url, page.url
    assert TOKENS.by_name["supervisor"] not in page.url and "buyer@example.com" not in page.url
    rows = page.locator("#queue tbody tr")
    ids = [await r.get_attribute("data-ticket") for r in await rows.all()]
    assert ids[0] == breached, f"the breached ticket first: {ids}"
    assert set(ids) == {breached, fresh, scripted}, "Tier 2 only: the Tier 1 ticket is not in this queue"
    first = await rows.first.inner_text()
    assert "breached" in first and "overdue" in first, first
    countdown = page.locator(f'#queue tr[data-ticket="{fresh}"] .countdown')
    shown = await countdown.inner_text()
    await page.wait_for_timeout(1500)
    assert await countdown.inner_text() != shown, "the vendored script ticks the countdown down (P1: around the clock)"
    subject = page.locator(f'#queue tr[data-ticket="{scripted}"] .subject')
    assert await subject.inner_text() == SCRIPT_SUBJECT, "the script tag is shown as text"
    await shot(page, "queue-tier2")

    # The breached ticket: clocks, timeline, the contact (a supervisor may see it); escalate with a reason.
    await page.get_by_role("link", name=breached).click()
    assert await page.inner_text("#subject") == "Service down for everyone since this morning"
    assert await page.inner_text("#contact") == "buyer@example.com"
    assert "overdue" in await page.inner_text("#clocks")
    assert "breach" in (await page.inner_text("#timeline")).lower()
    await page.get_by_label("Reason", exact=True).first.fill("needs the engineers: <b>packet loss</b> on the edge")
    async with page.expect_navigation():
        await page.get_by_role("button", name="Escalate", exact=True).click()
    assert await page.inner_text("#flash") == "Escalate: done."
    assert await page.inner_text("#tier") == "Tier 3 - Engineering"
    assert "needs the engineers: <b>packet loss</b> on the edge" in await page.inner_text("#timeline")
    assert page.url.endswith(f"/console/tickets/{breached}"), "POST-redirect-GET: the ticket's page"
    await shot(page, "ticket-escalated")

    # An action the ticket refuses: its reason on the page, not a stack trace.
    async with page.expect_navigation():
        await page.get_by_role("button", name="Reopen").click()
    flash = page.locator("#flash")
    assert await flash.get_attribute("role") == "alert"
    text = await flash.inner_text()
    assert text.startswith("Reopen refused: only a resolved ticket can be reopened"), text
    await shot(page, "ticket-refused")

    # The script-tag subject on its own page: text, no dialog.
    await page.goto(f"{api}/console/tickets/{scripted}")
    assert await page.inner_text("#subject") == SCRIPT_SUBJECT

    # The metrics dashboard (its nav link): the last day's figures count this test's four tickets and the escalation
    # above; the chart is the same-origin PNG of `escalation metrics --plot`, loaded under the page's CSP.
    await page.get_by_role("link", name="Metrics").click()
    await page.select_option("#f-days", "1")
    async with page.expect_navigation():
        await page.get_by_role("button", name="Show").click()
    assert int(await page.inner_text("#opened")) >= 4
    assert "of" in await page.inner_text("#escalation-rate")
    assert await page.locator("#chart").evaluate("img => img.complete && img.naturalWidth > 0"), "the chart loaded"
    assert await page.locator("table.panel caption").all_inner_texts() == [
        "Escalation rate", "SLA breach rate by clock and tier", "Time to acknowledge / resolve (hours)",
        "Share of escalations per tag"]
    await shot(page, "metrics")
    await page.get_by_role("button", name="Sign out").click()
    await page.wait_for_url("**/console/sign-in?signed_out=true")
    assert "signed out" in (await page.inner_text("main")).lower()
    gone = await page.goto(f"{api}/console/tickets/{breached}")
    assert gone is not None and page.url.endswith("/console/sign-in"), "the session ended with the sign-out"
    assert not dialogs, dialogs

    # An agent scoped to Tier 2 / networking: its queue holds only its tickets; a Tier 1 ticket is refused.
    await sign_in(page, api, "netagent")
    await page.goto(f"{api}/console/queue?customer={customer}")
    ids = [await r.get_attribute("data-ticket") for r in await page.locator("#queue tbody tr").all()]
    assert set(ids) == {fresh, scripted}, ids  # the escalated one went to Tier 3, the Tier 1 one was never in scope
    refused = await page.goto(f"{api}/console/tickets/{tier1}")
    assert refused is not None and refused.status == 403
    assert "outside the scope of agent:netagent" in await page.inner_text("#problem")
    await shot(page, "scoped-agent-refused")
    await page.goto(f"{api}/console/tickets/{fresh}")
    assert await page.locator("#contact").count() == 0, "an agent does not see the customer's contact"
    await page.close()
    assert not dialogs, dialogs


async def test_forms_need_the_csrf_token_and_the_session(api: str) -> None:
    async with httpx.AsyncClient(base_url=api, timeout=30, follow_redirects=False) as http:
        r = await http.post("/console/sign-in", data={"token": TOKENS.by_name["admin"]})
        assert r.status_code == 403 and "CSRF" in r.text, "signing in needs the form's token too"
        form = await http.get("/console/sign-in")
        csrf = form.text.split('name="csrf" value="')[1].split('"')[0]
        r = await http.post("/console/sign-in", data={"token": "not-a-token-at-all", "csrf": csrf})
        assert r.status_code == 401 and "not valid" in r.text
        form = await http.get("/console/sign-in")
        csrf = form.text.split('name="csrf" value="')[1].split('"')[0]
        r = await http.post("/console/sign-in", data={"token": TOKENS.by_name["supervisor"], "csrf": csrf})
        assert r.status_code == 303 and r.headers["location"] == "/console/queues", r.text
        assert "httponly" in r.headers["set-cookie"].lower() and "samesite=strict" in r.headers["set-cookie"].lower()
        r = await http.post("/console/tickets/NOPE-1/actions/acknowledge", data={"csrf": "forged"})
        assert r.status_code == 403 and "CSRF" in r.text, "a session's form without its token is refused"
        r = await http.get("/console/queue?priority=P9")
        assert r.status_code == 422 and "P9" in r.text

        # Incidents (list and detail) and the other lists render through the same client calls as the API's.
        service = unique("svc").lower()
        r = await http.post("/v1/incidents", json={"service": service, "title": "<i>Edge</i> down", "severity": "SEV2",
                                                   "commander": "mia"}, headers=TOKENS.header("supervisor"))
        assert r.status_code == 201, r.text
        r = await http.get("/console/incidents")
        assert r.status_code == 200 and f'href="/console/incidents/{service}"' in r.text, r.text[-2000:]
        assert "&lt;i&gt;Edge&lt;/i&gt; down" in r.text, "escaped"
        r = await http.get(f"/console/incidents/{service}")
        assert r.status_code == 200 and "mia" in r.text
        for path in ("/console/postmortems", "/console/sponsorships"):
            assert (await http.get(path)).status_code == 200, path
        r = await http.get("/console/sponsorships/no-such-account")
        assert r.status_code == 404 and "Not found" in r.text
    async with httpx.AsyncClient(base_url=api, timeout=30, follow_redirects=False) as anonymous:
        r = await anonymous.get("/console/queue")
        assert r.status_code == 303 and r.headers["location"] == "/console/sign-in"
