"""Test key rings for the payload codec (starter/runtime/codec.py): random, never a real key; and the committed,
public fixture key the encrypted histories in tests/replay/histories were recorded with."""

from __future__ import annotations

import base64
import json
import secrets
from pathlib import Path

FIXTURE_KEYS = Path(__file__).resolve().parents[1] / "replay" / "codec_fixture_keys.json"


def key_ring_json(*ids: str, current: str | None = None) -> str:
    """A key ring document with a random 256-bit key per id; the last id is current unless `current` says."""
    keys = {kid: base64.b64encode(secrets.token_bytes(32)).decode() for kid in ids}
    return json.dumps({"current": current or ids[-1], "keys": keys})


def fixture_ring_json() -> str:
    """The committed fixture ring (make_histories records new committed histories with it)."""
    return FIXTURE_KEYS.read_text(encoding="utf-8")


def session_ring_json() -> str:
    """The test session's ring: a random current key, and the fixture key kept for reading the committed histories
    (as production keeps an old key for the histories written with it)."""
    session = json.loads(key_ring_json("test-session"))
    session["keys"].update(json.loads(fixture_ring_json())["keys"])
    return json.dumps(session)
