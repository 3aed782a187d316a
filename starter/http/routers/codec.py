"""The codec endpoint: the Temporal Web UI (and `temporal --codec-endpoint`) shows decrypted payloads to auditors.

Temporal's codec-server protocol: `POST /codec/decode` and `/codec/encode`, body `{"payloads": [{"metadata": {k:
base64}, "data": base64}]}`, the same shape back; the UI sends `X-Namespace` (one key ring serves every namespace).
Auditors and admins only (Permission.decode_payloads), by bearer token, or by the session cookie that signing in
sets (`POST /v1/session` with the token; `GET /v1/session` is a sign-in page): the dev Web UI has no login of its
own, so the browser carries the cookie to the codec endpoint (the UI's "include cross-origin credentials").
Cross-origin requests are answered only for the Web UI's origins (ESCALATION_CODEC_CORS_ORIGINS).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import HTMLResponse
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel, ConfigDict, Field
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from starter.client.principal import Permission, Principal
from starter.http.deps import Api, ApiState, _limit, bearer
from starter.http.errors import ApiError, errors
from starter.runtime.codec import CodecKeyError, decode_json, encode_json

router = APIRouter(tags=["codec"])

COOKIE = "escalation_session"
SESSION_TTL = timedelta(hours=8)
MAX_SESSIONS = 10_000
CODEC_PATH = "/codec/"
MAX_PAYLOADS = 1000


# ----- sessions: in this API process's memory (a restart signs everyone out) -----------------------------------------


@dataclass(frozen=True)
class Session:
    principal: Principal
    expires: float  # time.monotonic()


def _sessions(api: ApiState) -> dict[str, Session]:
    store: dict[str, Session] | None = getattr(api, "codec_sessions", None)
    if store is None:
        store = {}
        api.codec_sessions = store  # type: ignore[attr-defined]  # one per app; ApiState is shared with other work
    return store


def _open_session(api: ApiState, who: Principal) -> str:
    store, now = _sessions(api), time.monotonic()
    for sid in [s for s, v in store.items() if v.expires <= now]:
        del store[sid]
    if len(store) >= MAX_SESSIONS:
        del store[min(store, key=lambda s: store[s].expires)]
    sid = secrets.token_urlsafe(32)
    store[sid] = Session(who, now + SESSION_TTL.total_seconds())
    return sid


def _session_principal(api: ApiState, sid: str | None) -> Principal | None:
    session = _sessions(api).get(sid or "")
    return session.principal if session and session.expires > time.monotonic() else None


async def decoder(request: Request, api: Api,
                  creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Principal:
    """The bearer token's principal, else the session cookie's; an auditor or admin (403 otherwise)."""
    who = (api.tokens.authenticate(creds.credentials) if creds else None) or _session_principal(
        api, request.cookies.get(COOKIE))
    if who is None:
        _limit(api, api.limiter.for_address(request.client.host if request.client else "?"), "this address")
        raise ApiError(401, "unauthorized", "a valid bearer token or a session (POST /v1/session) is required",
                       headers={"WWW-Authenticate": "Bearer"})
    request.state.principal = who.actor
    _limit(api, api.limiter.for_token(who.name), who.actor)
    if not who.can(Permission.decode_payloads):
        raise ApiError(403, "forbidden", f"role {who.role.value} may not decode payloads (auditors and admins may)")
    return who


Decoder = Annotated[Principal, Depends(decoder)]


# ----- the session: signing in from the browser that runs the Web UI --------------------------------------------------


class SessionOut(BaseModel):
    principal: str
    expires_at: datetime


@router.post("/v1/session", response_model=SessionOut, responses=errors(403))
async def sign_in(request: Request, response: Response, api: Api, who: Decoder) -> SessionOut:
    """Sign in with a bearer token (an auditor's or admin's): sets the HttpOnly, SameSite=Strict session cookie the
    browser then sends to the codec endpoint (the Temporal Web UI with "include cross-origin credentials" on)."""
    if request.headers.get("authorization") is None:
        raise ApiError(401, "unauthorized", "sign in with Authorization: Bearer <token>",
                       headers={"WWW-Authenticate": "Bearer"})
    sid = _open_session(api, who)
    response.set_cookie(COOKIE, sid, max_age=int(SESSION_TTL.total_seconds()), httponly=True, samesite="strict",
                        secure=request.url.scheme == "https", path="/")
    return SessionOut(principal=who.actor, expires_at=datetime.now(UTC) + SESSION_TTL)


@router.delete("/v1/session", status_code=204, response_class=Response)
async def sign_out(request: Request, api: Api) -> Response:
    """Ends this browser's session (no token needed: the cookie is the session)."""
    _sessions(api).pop(request.cookies.get(COOKIE, ""), None)
    response = Response(status_code=204)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response


SIGN_IN_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Sign in: decoded payloads</title>
</head><body><h1>Sign in to see decoded payloads in the Temporal Web UI</h1>
<p>An auditor's or admin's API token. The session (8 hours) lets the Web UI's codec requests through.</p>
<form id="f"><input id="token" type="password" size="60" placeholder="API token" autocomplete="off">
<button type="submit">Sign in</button></form><p id="status" role="status"></p>
<script>
document.getElementById("f").addEventListener("submit", async (e) => {
  e.preventDefault();
  const r = await fetch("/v1/session", {method: "POST", credentials: "same-origin",
    headers: {"Authorization": "Bearer " + document.getElementById("token").value}});
  const body = await r.json();
  document.getElementById("status").textContent = r.ok ? "Signed in as " + body.principal
    : "Refused: " + body.error.message;
});
</script></body></html>"""


@router.get("/v1/session", include_in_schema=False)
async def sign_in_page() -> HTMLResponse:
    return HTMLResponse(SIGN_IN_PAGE, headers={"Cache-Control": "no-store", "X-Frame-Options": "DENY"})


# ----- the codec-server protocol --------------------------------------------------------------------------------------


class Payloads(BaseModel):
    model_config = ConfigDict(extra="ignore")
    payloads: list[dict[str, Any]] = Field(max_length=MAX_PAYLOADS, description="Temporal payloads as protobuf JSON: "
                                                                                "{\"metadata\": {k: base64}, \"data\": base64}")


def _convert(convert: Any, body: Payloads) -> Payloads:
    try:
        return Payloads(payloads=convert(body.payloads))
    except CodecKeyError as exc:  # names the key id: the auditor's key ring lacks it, or holds another under its id
        raise ApiError(422, "codec_key", str(exc)) from None
    except ValueError as exc:
        raise ApiError(422, "invalid_request", str(exc)) from None


@router.post("/codec/decode", response_model=Payloads, responses=errors(403))
async def decode(body: Payloads, who: Decoder) -> Payloads:
    """Decrypts each `binary/encrypted` payload (others come back as they are)."""
    return _convert(decode_json, body)


@router.post("/codec/encode", response_model=Payloads, responses=errors(403))
async def encode(body: Payloads, who: Decoder) -> Payloads:
    """Encrypts each payload with the current key (what the Web UI sends when it signals or starts a workflow)."""
    return _convert(encode_json, body)


# ----- CORS for the codec endpoint only --------------------------------------------------------------------------------


def origins(setting: str) -> frozenset[str]:
    return frozenset(o.strip().rstrip("/") for o in setting.split(",") if o.strip())


class CodecCors:
    """Pure ASGI, for paths under /codec/ only: a preflight from an allowed origin (the Web UI's) gets 204 with the
    CORS headers (credentials allowed), any other origin 403 without them; answers to an allowed origin carry them.
    The rest of the API sends no CORS headers at all."""

    def __init__(self, app: ASGIApp, allowed: Iterable[str]) -> None:
        self.app = app
        self.allowed = frozenset(allowed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(CODEC_PATH):
            await self.app(scope, receive, send)
            return
        origin = Headers(scope=scope).get("origin")
        allowed = origin is not None and origin in self.allowed
        if scope["method"] == "OPTIONS" and origin is not None:
            status = 204 if allowed else 403
            response = Response(status_code=status, headers={**(self._headers(origin) if allowed else {}),
                                                             **self._preflight(allowed), "Vary": "Origin"})
            await response(scope, receive, send)
            return

        async def with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                h = MutableHeaders(scope=message)
                h.append("Vary", "Origin")
                if allowed and origin is not None:
                    for k, v in self._headers(origin).items():
                        h[k] = v
            await send(message)

        await self.app(scope, receive, with_cors)

    @staticmethod
    def _headers(origin: str) -> dict[str, str]:
        return {"Access-Control-Allow-Origin": origin, "Access-Control-Allow-Credentials": "true"}

    @staticmethod
    def _preflight(allowed: bool) -> dict[str, str]:
        if not allowed:
            return {}
        return {"Access-Control-Allow-Methods": "POST", "Access-Control-Max-Age": "600",
                "Access-Control-Allow-Headers": "Content-Type, X-Namespace, Authorization"}
