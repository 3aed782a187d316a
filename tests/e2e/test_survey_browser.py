"""The satisfaction survey as a customer meets it: a mail with a signed link, a small form in a real browser
(Debian's Chromium, driven by Playwright, never a downloaded browser), one answer, then the ticket shows it.

On the session's dev server and worker, through a live API process: the ticket is closed through the API, the
survey mail is read from the worker's outbox (the sink that keeps every delivered message), and the link in it is
opened in headless Chromium."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from playwright.async_api import Browser

from starter.runtime.settings import survey_secret
from tests.conftest import TemporalStack
from tests.support.api import error, live_api, make_tokens, ticket_body, unique
from tests.support.browser import chromium
from workflows.survey import sign, survey_workflow_id

TOKENS = make_tokens()
pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def api(temporal_stack: TemporalStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    var = tmp_path_factory.mktemp("survey")
    tokens_file = var / "tokens.yaml"
    tokens_file.write_text(TOKENS.yaml(), encoding="utf-8")
    with live_api(temporal_stack, tokens_file, log_file=var / "api.log") as base:
        yield base


@pytest_asyncio.fixture(loop_scope="session")
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as b:
        yield b


def survey_mail(outbox: Path, ticket_id: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if outbox.exists():
            for line in outbox.read_text().splitlines():
                record = json.loads(line)
                if record.get("ticket_id") == ticket_id and record.get("kind") == "survey":
                    return dict(record)
        time.sleep(0.2)
    raise AssertionError(f"no survey mail for {ticket_id} in {outbox} within {timeout:g}s")


async def closed_ticket(http: httpx.AsyncClient, subject: str = "Cannot log in to the dashboard") -> str:
    ticket_id = unique("CSAT")
    admin = TOKENS.header("admin")
    r = await http.post("/v1/tickets", json=ticket_body(ticket_id, subject=subject,
                                                        customer_contact="buyer@example.com"), headers=admin)
    assert r.status_code == 201, r.text
    for action, body in (("resolve", {"summary": "cleared the session cache"}), ("close", {"reason": "confirmed"})):
        for _ in range(50):  # the first task may still be running
            r = await http.post(f"/v1/tickets/{ticket_id}/{action}", json=body, headers=admin)
            if r.status_code != 503:
                break
            await asyncio.sleep(0.2)
        assert r.status_code == 200, r.text
    return ticket_id


async def survey_status(http: httpx.AsyncClient, ticket_id: str) -> dict[str, Any]:
    r = await http.get(f"/v1/tickets/{ticket_id}/survey", headers=TOKENS.header("supervisor"))
    assert r.status_code == 200, r.text
    return dict(r.json())


async def test_a_customer_answers_in_the_browser_once(temporal_stack: TemporalStack, api: str,
                                                      browser: Browser) -> None:
    async with httpx.AsyncClient(base_url=api, timeout=30) as http:
        ticket_id = await closed_ticket(http, subject="<script>document.title='owned'</script> login loop")
        mail = await asyncio.to_thread(survey_mail, temporal_stack.outbox, ticket_id)
        assert mail["recipient_id"] == "customer" and "buyer@example.com" not in json.dumps(mail), \
            "the outbox keeps no address"
        link = re.search(r"https?://\S+/v1/surveys/([A-Za-z0-9_.-]+)", mail["text"])
        assert link, mail["text"]
        token = link.group(1)
        page = await browser.new_page()

        opened = await page.goto(f"{api}/v1/surveys/{token}")
        assert opened is not None and opened.status == 200
        assert await page.title() == "How did we do?"
        assert "script-src" not in (opened.headers.get("content-security-policy") or "") and \
            "default-src 'none'" in (opened.headers.get("content-security-policy") or "")
        await page.reload()  # a mail scanner, a second look: reading records nothing
        assert (await survey_status(http, ticket_id))["status"] == "sent"

        await page.get_by_label("2").check()
        await page.get_by_label("Anything you want to tell us (optional)").fill("<b>took</b> a week")
        async with page.expect_navigation():
            await page.get_by_role("button", name="Send").click()
        assert await page.title() == "Thank you"
        assert "2 of 5" in await page.inner_text("main")

        again = await page.goto(f"{api}/v1/surveys/{token}")
        assert again is not None and again.status == 409, "a second visit shows it was answered"
        r = await http.post(f"/v1/surveys/{token}", json={"score": 5})
        error(r, 409, "survey_answered")

        forged = await page.goto(f"{api}/v1/surveys/{token[:-3]}abc")
        assert forged is not None and forged.status == 403
        assert await page.title() == "This link is not valid"
        await page.close()

        survey = await survey_status(http, ticket_id)
        assert survey["status"] == "answered" and survey["answer"]["score"] == 2
        assert survey["answer"]["comment"] == "<b>took</b> a week"
        r = await http.get(f"/v1/tickets/{ticket_id}", headers=TOKENS.header("supervisor"))
        assert r.status_code == 200 and r.json()["survey"]["answer"]["score"] == 2, "the ticket shows the answer"


async def test_expired_and_forged_links_get_a_clear_4xx_and_record_nothing(temporal_stack: TemporalStack,
                                                                           api: str) -> None:
    async with httpx.AsyncClient(base_url=api, timeout=30) as http:
        ticket_id = await closed_ticket(http)
        await asyncio.to_thread(survey_mail, temporal_stack.outbox, ticket_id)
        sid = survey_workflow_id(ticket_id)
        expired = sign(survey_secret(), sid, datetime.now(UTC) - timedelta(minutes=1))
        error(await http.post(f"/v1/surveys/{expired}", json={"score": 4}), 410, "link_expired")
        error(await http.get(f"/v1/surveys/{expired}"), 410, "link_expired")
        forged = sign("someone-elses-secret", sid, datetime.now(UTC) + timedelta(days=1))
        error(await http.post(f"/v1/surveys/{forged}", json={"score": 4}), 403, "link_forged")
        r = await http.post(f"/v1/surveys/{expired}", data={"score": "4"}, headers={"Accept": "text/html"})
        assert r.status_code == 410 and "This survey has closed" in r.text
        valid = sign(survey_secret(), sid, datetime.now(UTC) + timedelta(days=1))
        bad = await http.post(f"/v1/surveys/{valid}", json={"score": 9})
        assert error(bad, 422, "invalid_request")["details"][0]["loc"] == ["body", "score"]
        assert (await survey_status(http, ticket_id))["status"] == "sent", "nothing was recorded"
