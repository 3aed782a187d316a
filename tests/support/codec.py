"""Test key rings for the payload codec (starter/runtime/codec.py): random, never a real key."""

from __future__ import annotations

import base64
import json
import secrets


def key_ring_json(*ids: str, current: str | None = None) -> str:
    """A key ring document with a random 256-bit key per id; the last id is current unless `current` says."""
    keys = {kid: base64.b64encode(secrets.token_bytes(32)).decode() for kid in ids}
    return json.dumps({"current": current or ids[-1], "keys": keys})
