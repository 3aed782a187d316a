"""The audit report's HTML page as an auditor opens it: one self-contained file (no script, nothing fetched), in a
real headless browser (Debian's Chromium, driven by Playwright). From committed histories, no server: the report
reads the history alone."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Browser

from tests.support.browser import chromium

ROOT = Path(__file__).resolve().parents[2]
HISTORIES = ROOT / "tests" / "replay" / "histories"
SCRIPT = "<script>alert(1)</script>"
pytestmark = pytest.mark.timeout(180)


@pytest_asyncio.fixture(loop_scope="session")
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as b:
        yield b


def write_report(source: Path, html: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "starter.cli", "audit", "report", str(source), "--html", str(html)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)


def with_acknowledging_actor(actor: str, into: Path) -> Path:
    """people_told with its acknowledging agent's recorded name changed (as a forger, or a markup test, would)."""
    data: dict[str, Any] = json.loads((HISTORIES / "people_told.json").read_text(encoding="utf-8"))
    for e in data["events"]:
        a = e.get("workflowExecutionUpdateAcceptedEventAttributes")
        if a and a["acceptedRequest"]["input"]["name"] == "acknowledge":
            holder = a["acceptedRequest"]["input"]["args"]["payloads"][0]
            action = json.loads(base64.b64decode(holder["data"]))
            holder["data"] = base64.b64encode(json.dumps({**action, "actor": actor}).encode()).decode()
            break
    into.write_text(json.dumps(data), encoding="utf-8")
    return into


async def open_page(browser: Browser, html: Path) -> Any:
    page = await browser.new_page()
    dialogs: list[str] = []
    requests: list[str] = []
    page.on("dialog", lambda d: dialogs.append(d.message))
    page.on("request", lambda r: requests.append(r.url))
    await page.goto(html.as_uri())
    return page, dialogs, requests


async def test_the_report_page_shows_the_verdict_decisions_and_deliveries(browser: Browser, tmp_path: Path) -> None:
    html = tmp_path / "report.html"
    done = write_report(HISTORIES / "people_told.json", html)
    assert done.returncode == 0 and "PASSED" in done.stdout, done.stderr
    page, dialogs, requests = await open_page(browser, html)
    assert (await page.inner_text("#ticket")) == "H-people-told"
    assert (await page.inner_text("#verdict")).startswith("PASSED")
    rows = await page.locator("#decisions tr").all_inner_texts()
    breach = [r for r in rows if "clocks." in r and "after due" not in r]
    assert any("acknowledged" in r and "agent:history" in r for r in rows), rows[:5]
    assert breach or any("escalat" in r for r in rows), "a decision with its policy rule"
    notes = await page.locator("#notifications tr").all_inner_texts()
    assert any("delivered" in n or "outbox" in n or "prepared" in n for n in notes), notes[:3]
    assert requests == [html.as_uri()], "nothing fetched: the file is self-contained"
    assert not dialogs


async def test_markup_in_a_history_shows_as_text_and_changed_decisions_fail_loudly(browser: Browser,
                                                                                   tmp_path: Path) -> None:
    forged = with_acknowledging_actor(f"agent:{SCRIPT}", tmp_path / "forged.json")
    html = tmp_path / "forged.html"
    done = write_report(forged, html)
    assert done.returncode == 9, (done.returncode, done.stdout, done.stderr)  # decisions differ
    page, dialogs, _ = await open_page(browser, html)
    verdict = page.locator("#verdict")
    assert (await verdict.inner_text()).startswith("FAILED: decisions differ")
    assert "failed" in (await verdict.get_attribute("class") or "")
    assert SCRIPT in await page.inner_text("#decisions"), "the actor's markup is shown as text"
    assert "differs" in (await page.inner_text("#runs")) or "recorded" in (await page.inner_text("#runs"))
    assert not dialogs, "no script ran"
    await page.screenshot(path=str(tmp_path / "forged.png"), full_page=True)
