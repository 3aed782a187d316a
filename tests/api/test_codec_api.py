"""The codec endpoint (Temporal's codec-server protocol) for the Web UI: auditors and admins only, by token or by
the session cookie signing in sets; CORS only for the Web UI's origin. No Temporal needed."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest_asyncio
from temporalio.api.common.v1 import Payload

from starter.http.app import create_app
from starter.runtime.codec import EncryptionCodec, Keyring, keyring
from starter.runtime.settings import Settings
from tests.support.api import Tokens, asgi_client, make_tokens

UI = "http://localhost:8233"
SECRET = b'{"customer_contact": "dana.quill@example.com"}'


def b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def as_json(p: Payload) -> dict[str, Any]:
    return {"metadata": {k: b64(v) for k, v in p.metadata.items()}, "data": b64(p.data)}


def encrypted(ring: Keyring | None = None) -> dict[str, Any]:
    plain = Payload(metadata={"encoding": b"json/plain"}, data=SECRET)
    return as_json(EncryptionCodec(ring or keyring()).encode_one(plain))


@pytest_asyncio.fixture(scope="module")
async def api() -> AsyncIterator[tuple[httpx.AsyncClient, Tokens]]:
    tokens = make_tokens()
    app = create_app(Settings(temporal_address="127.0.0.1:1", escalation_codec_cors_origins=UI),  # never reached
                     tokens=tokens.store())
    async with asgi_client(app) as client:
        yield client, tokens


async def test_an_auditor_reads_a_payload_in_clear_an_agent_may_not(api: tuple[httpx.AsyncClient, Tokens]) -> None:
    http, tokens = api
    body = {"payloads": [encrypted()]}
    assert SECRET not in base64.b64decode(body["payloads"][0]["data"])
    for name in ("auditor", "admin"):
        r = await http.post("/codec/decode", json=body, headers={**tokens.header(name), "X-Namespace": "default"})
        assert r.status_code == 200, r.text
        [out] = r.json()["payloads"]
        assert base64.b64decode(out["data"]) == SECRET
        assert base64.b64decode(out["metadata"]["encoding"]) == b"json/plain"
    for name in ("agent", "supervisor", "intake", "monitor"):
        r = await http.post("/codec/decode", json=body, headers=tokens.header(name))
        assert r.status_code == 403, (name, r.text)
        assert r.json()["error"]["code"] == "forbidden"
    r = await http.post("/codec/decode", json=body)
    assert r.status_code == 401


async def test_encode_then_decode_and_an_unencrypted_payload_passes(api: tuple[httpx.AsyncClient, Tokens]) -> None:
    http, tokens = api
    plain = {"metadata": {"encoding": b64(b"json/plain")}, "data": b64(b'"hello"')}
    r = await http.post("/codec/encode", json={"payloads": [plain]}, headers=tokens.header("auditor"))
    assert r.status_code == 200, r.text
    [enc] = r.json()["payloads"]
    assert base64.b64decode(enc["metadata"]["encoding"]) == b"binary/encrypted"
    assert base64.b64decode(enc["metadata"]["encryption-key-id"]) == keyring().current.encode()
    r = await http.post("/codec/decode", json={"payloads": [enc, plain]}, headers=tokens.header("auditor"))
    assert r.json()["payloads"] == [plain, plain]


async def test_a_payload_under_an_unknown_key_is_an_error_naming_the_key(api: tuple[httpx.AsyncClient, Tokens]) -> None:
    http, tokens = api
    other = Keyring("retired-2025", {"retired-2025": b"k" * 32})
    r = await http.post("/codec/decode", json={"payloads": [encrypted(other)]}, headers=tokens.header("auditor"))
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "codec_key"
    assert "'retired-2025'" in r.json()["error"]["message"]
    # The same id, another key: the authentication tag fails; said so, not garbage.
    impostor = Keyring(keyring().current, {keyring().current: b"x" * 32})
    r = await http.post("/codec/decode", json={"payloads": [encrypted(impostor)]}, headers=tokens.header("auditor"))
    assert r.status_code == 422 and "does not decrypt" in r.json()["error"]["message"], r.text
    r = await http.post("/codec/decode", json={"payloads": [{"data": "not base64!"}]}, headers=tokens.header("auditor"))
    assert r.status_code == 422 and "payloads[0]" in r.json()["error"]["message"], r.text


async def test_cors_answers_the_web_ui_only_and_only_on_the_codec_paths(api: tuple[httpx.AsyncClient, Tokens]) -> None:
    http, _ = api
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type,x-namespace"}
    r = await http.options("/codec/decode", headers={"Origin": UI, **preflight})
    assert r.status_code == 204
    assert r.headers["access-control-allow-origin"] == UI
    assert r.headers["access-control-allow-credentials"] == "true"
    assert "x-namespace" in r.headers["access-control-allow-headers"].lower()
    r = await http.options("/codec/decode", headers={"Origin": "http://evil.example", **preflight})
    assert r.status_code == 403 and "access-control-allow-origin" not in r.headers
    r = await http.post("/codec/decode", json={"payloads": []}, headers={"Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in r.headers
    r = await http.post("/codec/decode", json={"payloads": []}, headers={"Origin": UI})
    assert r.status_code == 401 and r.headers["access-control-allow-origin"] == UI  # the UI can read the refusal
    r = await http.get("/v1/tickets", headers={"Origin": UI})
    assert "access-control-allow-origin" not in r.headers  # the rest of the API stays same-origin


async def test_signing_in_sets_a_session_cookie_the_codec_accepts(api: tuple[httpx.AsyncClient, Tokens]) -> None:
    http, tokens = api
    body = {"payloads": [encrypted()]}
    r = await http.post("/v1/session", headers=tokens.header("agent"))
    assert r.status_code == 403 and "set-cookie" not in r.headers
    r = await http.post("/v1/session", headers=tokens.header("auditor"))
    assert r.status_code == 200, r.text
    assert r.json()["principal"] == "auditor:auditor"
    cookie = r.headers["set-cookie"]
    assert "escalation_session=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie, cookie
    sid = r.cookies["escalation_session"]
    http.cookies.clear()
    r = await http.post("/codec/decode", json=body, headers={"Cookie": f"escalation_session={sid}", "Origin": UI})
    assert r.status_code == 200, r.text
    assert base64.b64decode(r.json()["payloads"][0]["data"]) == SECRET
    r = await http.post("/codec/decode", json=body, headers={"Cookie": "escalation_session=forged"})
    assert r.status_code == 401
    r = await http.delete("/v1/session", headers={"Cookie": f"escalation_session={sid}"})
    assert r.status_code == 204
    r = await http.post("/codec/decode", json=body, headers={"Cookie": f"escalation_session={sid}"})
    assert r.status_code == 401, "signed out: the session is gone"
    assert (await http.get("/v1/session")).status_code == 200  # the sign-in page
