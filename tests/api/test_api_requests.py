"""Requests the API answers before (or without) Temporal: validation (422), size (413), unknown routes and
methods (404, 405), request ids and the OpenAPI document, on the in-memory client (`fake_http`, no server).

The same routes run against a real dev server and worker in tests/api/test_api.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.support.api import Tokens, error, open_ticket, ticket_body, unique

pytestmark = pytest.mark.asyncio(loop_scope="session")


# ----- validation: 422 ----------------------------------------------------------------------------


@pytest.mark.parametrize(("override", "loc", "allowed"), [
    ({"id": "has space"}, ["body", "id"], None),
    ({"id": "x" * 101}, ["body", "id"], None),
    ({"subject": ""}, ["body", "subject"], None),
    ({"subject": "s" * 501}, ["body", "subject"], None),
    ({"description": "d" * 20_001}, ["body", "description"], None),
    ({"customer_id": "ana@example.com"}, ["body", "customer_id"], None),
    ({"channel": "fax"}, ["body", "channel"], ["email", "chat", "phone", "social", "portal", "bot", "api"]),
    ({"priority": "P9"}, ["body", "priority"], None),
    ({"tags": ["ok"] * 51}, ["body", "tags"], None),
    ({"tags": ["bad tag"]}, ["body", "tags", 0], None),
    ({"opened_at": "2026-11-25T09:00:00"}, ["body", "opened_at"], None),
    ({"actor": "someone"}, ["body", "actor"], None),
    ({"opened_at": "2001-01-01T00:00:00Z"}, ["body", "opened_at"], None),
    ({"opened_at": "2999-01-01T00:00:00Z"}, ["body", "opened_at"], None),
])
async def test_open_rejects_bad_fields_with_422(fake_http: httpx.AsyncClient, tokens: Tokens, override: dict[str, Any],
                                               loc: list[Any], allowed: list[str] | None) -> None:
    r = await fake_http.post("/v1/tickets", json=ticket_body(unique(), **override), headers=tokens.header("admin"))
    err = error(r, 422, "invalid_request")
    detail = next((d for d in err["details"] if d["loc"] == loc), None)
    assert detail is not None, err["details"]
    assert detail["message"]
    if allowed:
        assert detail["allowed"] == allowed


async def test_422_lists_every_bad_field(fake_http: httpx.AsyncClient, tokens: Tokens) -> None:
    r = await fake_http.post("/v1/tickets", json={"id": "ok-1", "channel": "fax", "priority": "urgent"},
                             headers=tokens.header("admin"))
    err = error(r, 422, "invalid_request")
    locs = {tuple(d["loc"]) for d in err["details"]}
    assert {("body", "subject"), ("body", "customer_id"), ("body", "channel"), ("body", "priority")} <= locs


async def test_malformed_json_and_wrong_types_are_422(fake_http: httpx.AsyncClient, tokens: Tokens) -> None:
    h = {**tokens.header("admin"), "content-type": "application/json"}
    error(await fake_http.post("/v1/tickets", content=b"{not json", headers=h), 422, "invalid_request")
    error(await fake_http.post("/v1/tickets", content=b"[]", headers=h), 422, "invalid_request")
    error(await fake_http.post("/v1/tickets", json={"id": 5, "subject": ["x"], "customer_id": None}, headers=h), 422,
          "invalid_request")


async def test_422_messages_say_which_value_was_wrong_and_how_to_fix_it(fake_http: httpx.AsyncClient,
                                                                               tokens: Tokens) -> None:
    h = tokens.header("admin")
    err = error(await fake_http.post("/v1/tickets", json=ticket_body(unique(), priority="P9"), headers=h), 422,
                "invalid_request")
    [detail] = err["details"]
    assert detail["loc"] == ["body", "priority"] and detail["allowed"] == ["P1", "P2", "P3", "P4"]
    assert detail["message"].endswith("(got 'P9')")
    assert err["message"].startswith("invalid input: body.priority: ") and "'P9'" in err["message"]

    err = error(await fake_http.post("/v1/tickets", json=ticket_body(unique(), opened_at="2026-11-25T09:00:00"), headers=h),
                422, "invalid_request")
    assert "has no time zone; add an offset such as +01:00 or Z (got '2026-11-25T09:00:00')" in err["details"][0]["message"]

    err = error(await fake_http.post("/v1/tickets", content=b'{"id": "x",', headers={**h, "content-type": "application/json"}),
                422, "invalid_request")
    assert err["details"][0]["loc"] == ["body"] and err["details"][0]["message"].startswith("the body is not valid JSON")

    err = error(await fake_http.get("/v1/tickets", params={"cursor": "zz"}, headers=h), 422, "invalid_request")
    assert "not a cursor this API returned" in err["details"][0]["message"] and "^" not in err["message"]


async def test_bad_ticket_id_in_the_path_is_422(fake_http: httpx.AsyncClient, tokens: Tokens) -> None:
    err = error(await fake_http.get("/v1/tickets/bad!id", headers=tokens.header("admin")), 422, "invalid_request")
    assert err["details"][0]["loc"] == ["path", "ticket_id"]


async def test_action_bodies_are_validated(fake_http: httpx.AsyncClient, tokens: Tokens) -> None:
    tid = (await open_ticket(fake_http, tokens))["id"]
    err = error(await fake_http.post(f"/v1/tickets/{tid}/escalate", json={}, headers=tokens.header("admin")), 422,
                "invalid_request")
    assert err["details"][0]["loc"] == ["body", "reason"]
    err = error(await fake_http.post(f"/v1/tickets/{tid}/resolve", json={"summary": "x", "resolution": "magic"},
                                     headers=tokens.header("admin")), 422, "invalid_request")
    assert err["details"][0]["allowed"] == ["fix", "workaround"]
    err = error(await fake_http.post(f"/v1/tickets/{tid}/acknowledge", json={"actor": "ceo"}, headers=tokens.header("admin")),
                422, "invalid_request")
    assert err["details"][0]["loc"] == ["body", "actor"]
    err = error(await fake_http.post(f"/v1/tickets/{tid}/transfer", json={"department": "d" * 201},
                                     headers=tokens.header("admin")), 422, "invalid_request")
    assert err["details"][0]["type"] == "string_too_long"
    error(await fake_http.post(f"/v1/tickets/{tid}/note", json={"text": "t" * 20_001}, headers=tokens.header("admin")), 422,
          "invalid_request")


async def test_list_rejects_bad_filters_with_allowed_values(fake_http: httpx.AsyncClient, tokens: Tokens) -> None:
    r = await fake_http.get("/v1/tickets", params={"status": "pending", "department": "marketing", "limit": 0},
                            headers=tokens.header("admin"))
    err = error(r, 422, "invalid_request")
    by_loc = {tuple(d["loc"]): d for d in err["details"]}
    assert by_loc[("query", "status")]["allowed"] == ["new", "open", "waiting_on_customer", "resolved", "closed"]
    assert "billing" in by_loc[("query", "department")]["allowed"]
    assert ("query", "limit") in by_loc


async def test_a_cursor_this_api_did_not_return_is_422(fake_http: httpx.AsyncClient, tokens: Tokens) -> None:
    for cursor in ("zz", "00ff", "00112233445566778899"):  # not hex; too short; hex without the API's check value
        err = error(await fake_http.get("/v1/tickets", params={"cursor": cursor}, headers=tokens.header("admin")), 422,
                    "invalid_request")
        assert err["details"][0]["loc"] == ["query", "cursor"], cursor


async def test_intake_rejects_bad_payloads(fake_http: httpx.AsyncClient, tokens: Tokens) -> None:
    h = tokens.header("intake")
    err = error(await fake_http.post("/v1/intake/email", json={"from": "not an address", "message_id": "<x@y>"}, headers=h),
                422, "invalid_request")
    assert ["body", "from"] in [d["loc"] for d in err["details"]]
    err = error(await fake_http.post("/v1/intake/social", json={"network": "myspace", "post_id": "1", "handle": "a",
                                                                "text": "hi"}, headers=h), 422, "invalid_request")
    assert "twitter" in err["details"][0]["allowed"]
    err = error(await fake_http.post("/v1/intake/phone", json={"call_id": "c-1", "summary": "x"}, headers=h), 422,
                "invalid_request")
    assert "customer_id or caller" in err["details"][0]["message"]
    error(await fake_http.post("/v1/intake/chat", json={"conversation_id": "c 1", "customer_id": "c", "messages": []},
                               headers=h), 422, "invalid_request")


async def test_an_unknown_intake_channel_is_404(fake_http: httpx.AsyncClient, tokens: Tokens) -> None:
    error(await fake_http.post("/v1/intake/fax", json={}, headers=tokens.header("intake")), 404, "not_found")


# ----- size, routes, request ids, the schema --------------------------------------------------------


async def test_request_size_limit_is_413(fake_http: httpx.AsyncClient, tokens: Tokens) -> None:
    h = {**tokens.header("intake"), "content-type": "application/json"}
    error(await fake_http.post("/v1/tickets", content=b"{" + b" " * 300_000 + b"}", headers=h), 413, "payload_too_large")

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it arrives
        for _ in range(40):
            yield b" " * 10_000

    error(await fake_http.post("/v1/intake/email", content=chunks(), headers=h), 413, "payload_too_large")


async def test_an_unknown_route_is_404_in_the_error_shape(fake_http: httpx.AsyncClient, tokens: Tokens) -> None:
    error(await fake_http.get("/v2/tickets", headers=tokens.header("admin")), 404, "not_found")


async def test_a_wrong_method_is_405_in_the_error_shape(fake_http: httpx.AsyncClient, tokens: Tokens) -> None:
    error(await fake_http.delete("/v1/tickets", headers=tokens.header("admin")), 405, "method_not_allowed")


async def test_an_unknown_ticket_is_404_on_every_ticket_route(fake_http: httpx.AsyncClient, tokens: Tokens) -> None:
    for path in ("/v1/tickets/no-such-ticket", "/v1/tickets/no-such-ticket/timeline", "/v1/tickets/no-such-ticket/history"):
        error(await fake_http.get(path, headers=tokens.header("admin")), 404, "not_found")
    error(await fake_http.post("/v1/tickets/no-such-ticket/acknowledge", headers=tokens.header("admin")), 404, "not_found")
    for wait in ("true", "false"):
        error(await fake_http.post(f"/v1/tickets/no-such-ticket/customer-reply?wait={wait}", json={"message": "hi"},
                                   headers=tokens.header("admin")), 404, "not_found")


async def test_request_id_is_echoed_and_generated(fake_http: httpx.AsyncClient, tokens: Tokens) -> None:
    r = await fake_http.get("/v1/tickets/nope", headers={**tokens.header("admin"), "X-Request-ID": "trace-42"})
    assert r.headers["x-request-id"] == "trace-42" and r.json()["error"]["request_id"] == "trace-42"
    r = await fake_http.get("/healthz", headers={"X-Request-ID": "bad id with spaces"})
    assert r.headers["x-request-id"] != "bad id with spaces" and len(r.headers["x-request-id"]) == 32


async def test_every_answer_says_how_long_the_app_took(fake_http: httpx.AsyncClient, tokens: Tokens) -> None:
    for r in (await fake_http.get("/healthz"), await fake_http.get("/v1/tickets/nope", headers=tokens.header("admin"))):
        assert "app;dur=" in r.headers["server-timing"], r.headers


async def test_openapi_schema_and_docs(fake_http: httpx.AsyncClient) -> None:
    schema = (await fake_http.get("/openapi.json")).json()
    assert schema["info"]["title"] == "Escalation engine API"
    for channel in ("email", "chat", "phone", "social", "portal", "bot"):
        op = schema["paths"][f"/v1/intake/{channel}"]["post"]
        ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
        assert schema["components"]["schemas"][ref]["examples"], channel
        assert {"200", "201", "401", "403", "422"} <= set(op["responses"])
    for action in ("acknowledge", "escalate", "transfer", "wait-on-customer", "resolve", "reopen", "assign", "note",
                        "customer-reply"):
        op = schema["paths"][f"/v1/tickets/{{ticket_id}}/{action}"]["post"]
        assert {"200", "404", "409", "422"} <= set(op["responses"]), action
    assert schema["components"]["schemas"]["ErrorBody"]
    assert (await fake_http.get("/docs")).status_code == 200

