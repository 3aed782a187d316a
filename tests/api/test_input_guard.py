"""The one rule for request bodies (starter/http/input_guard.py): nesting depth and control characters.

First the guard alone (bytes in, problems out), then through the real app (on the in-memory client: the guard
answers before any call to Temporal): the 422 in the API's error shape, and bodies within the rule still accepted."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from starter.http.input_guard import MAX_JSON_DEPTH, check_body
from tests.support.api import Tokens, ticket_body, unique


def nested(depth: int, leaf: object = 1) -> Any:
    """`depth` levels of arrays and objects, alternating, around `leaf`."""
    value = leaf
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


def body(document: object) -> bytes:
    return json.dumps(document).encode()


# ----- depth ------------------------------------------------------------------------------------------


def test_a_body_at_the_maximum_depth_passes() -> None:
    assert check_body(body(nested(MAX_JSON_DEPTH))) == []


def test_one_level_deeper_is_refused_naming_the_maximum_and_where() -> None:
    [problem] = check_body(body({"subject": "x", "extra": {"list": [nested(MAX_JSON_DEPTH - 1)]}}))
    assert problem.type == "json_too_deep"
    assert f"maximum of {MAX_JSON_DEPTH} levels" in problem.message
    assert problem.loc[:4] == ("body", "extra", "list", 0)
    assert len(problem.loc) == 1 + MAX_JSON_DEPTH  # "body" and the path to the container that opens level 33


def test_a_100_000_deep_body_is_refused_without_recursing() -> None:
    [problem] = check_body(b"[" * 100_000 + b"]" * 100_000)
    assert problem.type == "json_too_deep" and "at character 32" in problem.message
    [problem] = check_body(b'{"a":' * 100_000)  # unterminated too: the scan does not need valid JSON
    assert problem.type == "json_too_deep"


def test_brackets_inside_strings_do_not_count() -> None:
    text = "[{" * 100 + '\\"[' * 10
    assert check_body(body({"subject": text, "tags": [text]})) == []


def test_an_unterminated_string_does_not_make_the_scan_quadratic() -> None:
    import time

    started = time.perf_counter()
    assert check_body(b'{"a": "' + b'\\"[' * 80_000) == []  # not JSON: left to the parser's own message
    assert time.perf_counter() - started < 1.0


# ----- control characters -----------------------------------------------------------------------------


@pytest.mark.parametrize("char", ["\x00", "\x01", "\x07", "\x08", "\x0b", "\x0c", "\x1b", "\x1f", "\r"])
def test_c0_controls_other_than_tab_and_line_breaks_are_refused(char: str) -> None:
    [problem] = check_body(body({"subject": f"Login{char}fails"}))
    assert problem.type == "control_character" and problem.loc == ("body", "subject")
    assert f"U+{ord(char):04X}" in problem.message and "at position 5" in problem.message


def test_tab_lf_and_crlf_are_text() -> None:
    assert check_body(body({"description": "line 1\r\nline 2\n\tindented", "tags": ["a\tb"]})) == []


def test_a_cr_without_lf_is_refused_even_beside_a_crlf() -> None:
    [problem] = check_body(body({"description": "ok\r\nthen\rlone"}))
    assert "U+000D" in problem.message and "position 8" in problem.message


def test_escaped_and_raw_forms_are_the_same_rule() -> None:
    escaped = check_body(b'{"subject": "a\\u0000b"}')
    raw = check_body(b'{"subject": "a\x00b"}')  # not valid JSON, but the problem is the NUL: say so
    short_escape = check_body(b'{"subject": "a\\bb"}')  # \b is U+0008
    assert [p.loc for p in escaped] == [p.loc for p in raw] == [("body", "subject")]
    assert "U+0000" in escaped[0].message and "U+0000" in raw[0].message and "U+0008" in short_escape[0].message


def test_nested_fields_are_named_by_their_path() -> None:
    problems = check_body(body({"messages": [{"author": "customer", "text": "ok"},
                                             {"author": "customer", "text": "bad\x00"}]}))
    assert [p.loc for p in problems] == [("body", "messages", 1, "text")]


def test_keys_are_checked_and_named_printably() -> None:
    [problem] = check_body(body({"extra": {"na\x00me": "value"}}))
    assert problem.loc == ("body", "extra", "na\\u0000me")
    assert 'the key "na\\u0000me"' in problem.message and "\x00" not in problem.message


def test_every_bad_field_is_listed_in_document_order() -> None:
    problems = check_body(body({"subject": "a\x00", "description": "fine", "tags": ["b\x01", "c\x02"]}))
    assert [p.loc for p in problems] == [("body", "subject"), ("body", "tags", 0), ("body", "tags", 1)]


def test_the_list_is_capped() -> None:
    assert len(check_body(body({"tags": ["\x00"] * 500}))) == 10


def test_c1_controls_and_del_are_outside_the_rule() -> None:
    assert check_body(body({"subject": "a\x7fb\x85c"})) == []


# ----- through the app --------------------------------------------------------------------------------

def error(r: httpx.Response) -> dict[str, Any]:
    assert r.status_code == 422, r.text
    err: dict[str, Any] = r.json()["error"]
    assert err["code"] == "invalid_request" and err["request_id"] == r.headers["x-request-id"]
    return err


async def test_a_deep_body_is_a_422_that_says_so_not_invalid_json(fake_http: httpx.AsyncClient, tokens: Tokens) -> None:
    h = {**tokens.header("admin"), "content-type": "application/json"}
    err = error(await fake_http.post("/v1/tickets", content=b"[" * 100_000 + b"]" * 100_000, headers=h))
    assert err["details"][0]["type"] == "json_too_deep" and "not valid JSON" not in err["message"]
    assert f"maximum of {MAX_JSON_DEPTH} levels" in err["message"]


async def test_intake_accepts_the_maximum_depth_and_refuses_one_more(fake_http: httpx.AsyncClient, tokens: Tokens) -> None:
    """The intake payloads ignore fields they do not know: depth is the only thing that can refuse these."""
    h = tokens.header("intake")
    payload = {"conversation_id": unique("conv"), "customer_id": "cust-7",
               "messages": [{"author": "customer", "text": "hello"}]}
    ok = await fake_http.post("/v1/intake/chat", json={**payload, "vendor": nested(MAX_JSON_DEPTH - 1)}, headers=h)
    assert ok.status_code == 201, ok.text
    err = error(await fake_http.post("/v1/intake/chat", json={**payload, "vendor": nested(MAX_JSON_DEPTH)}, headers=h))
    assert err["details"][0]["loc"][:2] == ["body", "vendor"]


async def test_a_nul_in_any_field_is_a_422_naming_field_and_character(fake_http: httpx.AsyncClient, tokens: Tokens) -> None:
    err = error(await fake_http.post("/v1/tickets", json=ticket_body(unique(), subject="Login\x00fails", tags=["a\x1b"]),
                                     headers=tokens.header("admin")))
    assert [d["loc"] for d in err["details"]] == [["body", "subject"], ["body", "tags", 0]]
    assert "body.subject" in err["message"] and "U+0000" in err["message"]
    ticket_id = unique()
    r = await fake_http.post("/v1/tickets", json=ticket_body(ticket_id), headers=tokens.header("admin"))
    assert r.status_code == 201, r.text
    err = error(await fake_http.post(f"/v1/tickets/{ticket_id}/note", json={"text": "bell\x07"},
                                     headers=tokens.header("admin")))
    assert err["details"][0]["loc"] == ["body", "text"] and "U+0007" in err["details"][0]["message"]


async def test_tabs_and_crlf_line_breaks_reach_the_ticket(fake_http: httpx.AsyncClient, tokens: Tokens) -> None:
    subject, description = "Login\tfails", "Steps:\r\n\t1. open the app\n\t2. it spins"
    r = await fake_http.post("/v1/tickets", json=ticket_body(unique(), subject=subject, description=description),
                             headers=tokens.header("admin"))
    assert r.status_code == 201, r.text
    assert r.json()["subject"] == subject
