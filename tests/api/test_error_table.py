"""The documented error table (docs/API.md) against what the app answers. No Temporal needed: these answers come
from routing and the error handlers, before any call to Temporal."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest_asyncio

from starter.http.app import create_app
from starter.runtime.settings import Settings
from tests.support.api import ROOT, Tokens, asgi_client, make_tokens

DOC = ROOT / "docs" / "API.md"


def documented_codes() -> dict[int, str]:
    """status -> the codes cell of the table under "## Errors"."""
    errors = DOC.read_text(encoding="utf-8").split("## Errors", 1)[1]
    return {int(status): codes for status, codes in re.findall(r"^\| (\d{3}) \| (.*) \|$", errors, flags=re.M)}


@pytest_asyncio.fixture(scope="module")
async def app_alone() -> AsyncIterator[tuple[httpx.AsyncClient, Tokens]]:
    tokens = make_tokens()
    app = create_app(Settings(temporal_address="127.0.0.1:1"), tokens=tokens.store())  # never reached
    async with asgi_client(app) as client:
        yield client, tokens


async def test_a_wrong_method_is_405_in_the_error_shape(app_alone: tuple[httpx.AsyncClient, Tokens]) -> None:
    http, tokens = app_alone
    r = await http.delete("/v1/tickets", headers=tokens.header("admin"))
    assert r.status_code == 405, r.text
    assert r.json() == {"error": {"code": "method_not_allowed", "message": "Method Not Allowed", "details": [],
                                  "request_id": r.headers["x-request-id"]}}
    # Starlette names only the first matching route's methods (POST; GET is another route on the same path).
    assert "POST" in r.headers["allow"]


def test_405_is_in_the_documented_error_table() -> None:
    assert "`method_not_allowed`" in documented_codes()[405]


def test_the_input_guards_refusals_are_documented_under_422() -> None:
    assert "`json_too_deep`" in documented_codes()[422] and "`control_character`" in documented_codes()[422]
