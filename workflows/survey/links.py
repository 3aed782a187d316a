"""Signed survey links: the token is the credential (no bearer token: a customer follows a link from a mail).

token = base64url(JSON {s: survey workflow id, e: expiry as epoch seconds}) "." base64url(HMAC-SHA256(secret, payload)).
Pure functions of their arguments (the secret and the time are passed in): the preparing activity signs, the API
verifies. A forged token fails the signature (403); an expired one is refused before Temporal is asked (410); a
reused one is refused by the survey workflow, which alone knows it was answered (409).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import BaseModel

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class SurveyLink(BaseModel):
    survey_id: str
    expires_at: datetime


class TokenRejected(ValueError):
    def __init__(self, reason: Literal["forged", "expired"], message: str) -> None:
        super().__init__(message)
        self.reason = reason


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: str, payload: str) -> str:
    return _b64(hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest())


def sign(secret: str, survey_id: str, expires_at: datetime) -> str:
    payload = _b64(json.dumps({"s": survey_id, "e": int(expires_at.timestamp())}, separators=(",", ":")).encode())
    return f"{payload}.{_mac(secret, payload)}"


def verify(secret: str, token: str, now: datetime) -> SurveyLink:
    """The survey a token names; TokenRejected('forged') for anything not signed with `secret`, ('expired') after
    its expiry."""
    payload, _, mac = token.partition(".")
    if not payload or not mac or not hmac.compare_digest(mac, _mac(secret, payload)):
        raise TokenRejected("forged", "this survey link is not valid (its signature does not match)")
    try:
        body = json.loads(_unb64(payload))
        link = SurveyLink(survey_id=body["s"], expires_at=EPOCH + timedelta(seconds=int(body["e"])))
    except (ValueError, KeyError, TypeError):
        raise TokenRejected("forged", "this survey link is not valid (unreadable)") from None
    if now >= link.expires_at:
        raise TokenRejected("expired", f"this survey closed at {link.expires_at.isoformat()}")
    return link
