"""The console's sessions: signed in with an API token, kept in this process's memory (a restart signs everyone
out), referenced by an HttpOnly, SameSite=Strict cookie (Secure over https) scoped to /console.

The token is never kept: the session holds the token's principal, a CSRF token that every form carries and every
POST must present, and a one-shot flash (the outcome of the last action, shown after the redirect: never in a URL).
"""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import dataclass, field
from datetime import timedelta

from fastapi import Request
from fastapi.responses import Response

from starter.client.principal import Principal
from starter.http.deps import ApiState

COOKIE = "escalation_console"
PRE_COOKIE = "escalation_console_signin"  # the sign-in form's CSRF token (double submit: no session exists yet)
PATH = "/console"
TTL = timedelta(hours=8)
MAX_SESSIONS = 10_000


@dataclass
class Session:
    principal: Principal
    csrf: str
    expires: float  # time.monotonic()
    flash: tuple[str, str] | None = field(default=None)  # (kind: ok | error, message)

    def pop_flash(self) -> tuple[str, str] | None:
        flash, self.flash = self.flash, None
        return flash


def _store(api: ApiState) -> dict[str, Session]:
    store: dict[str, Session] | None = getattr(api, "console_sessions", None)
    if store is None:
        store = {}
        api.console_sessions = store  # type: ignore[attr-defined]  # one per app, next to the codec's sessions
    return store


def open_session(api: ApiState, who: Principal) -> str:
    store, now = _store(api), time.monotonic()
    for sid in [s for s, v in store.items() if v.expires <= now]:
        del store[sid]
    if len(store) >= MAX_SESSIONS:
        del store[min(store, key=lambda s: store[s].expires)]
    sid = secrets.token_urlsafe(32)
    store[sid] = Session(who, secrets.token_urlsafe(32), now + TTL.total_seconds())
    return sid


def current(api: ApiState, request: Request) -> Session | None:
    session = _store(api).get(request.cookies.get(COOKIE, ""))
    return session if session is not None and session.expires > time.monotonic() else None


def close(api: ApiState, request: Request) -> None:
    _store(api).pop(request.cookies.get(COOKIE, ""), None)


def same(a: str | None, b: str | None) -> bool:
    return bool(a) and bool(b) and hmac.compare_digest(str(a), str(b))


def set_cookie(response: Response, request: Request, name: str, value: str, max_age: int) -> None:
    response.set_cookie(name, value, max_age=max_age, httponly=True, samesite="strict",
                        secure=request.url.scheme == "https", path=PATH)


def clear_cookie(response: Response, request: Request, name: str) -> None:
    response.delete_cookie(name, path=PATH, httponly=True, samesite="strict", secure=request.url.scheme == "https")
