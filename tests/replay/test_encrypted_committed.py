"""Committed histories and the codec: the ones recorded before it are plaintext and replay as they are (decoding
passes through a payload that is not `binary/encrypted`); the ones recorded since are encrypted under the committed,
public fixture key (tests/replay/codec_fixture_keys.json), replay with it, and are unreadable without it."""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
from pathlib import Path

from temporalio.client import WorkflowHistory

from starter.runtime.codec import parse_keyring
from starter.runtime.temporal import replayer
from tests.support.codec import fixture_ring_json, key_ring_json

HISTORIES = Path(__file__).parent / "histories"
ENCRYPTED = HISTORIES / "encrypted_lifecycle.json"
PLAIN = HISTORIES / "full_lifecycle.json"  # the same scenario, recorded before the codec


def decoded_strings(path: Path) -> str:
    """The file's text and every base64 value in it decoded: what a reader without the key sees."""
    text = path.read_text(encoding="utf-8")
    parts = [text]

    def walk(v: object) -> None:
        if isinstance(v, dict):
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)
        elif isinstance(v, str):
            with contextlib.suppress(binascii.Error, ValueError):
                parts.append(base64.b64decode(v, validate=True).decode("utf-8", errors="replace"))

    walk(json.loads(text))
    return "\n".join(parts)


def test_the_history_recorded_with_the_codec_holds_no_plaintext_the_older_one_does() -> None:
    assert "invoice wrong, we may cancel" in decoded_strings(PLAIN), "the check can see plaintext"
    assert "invoice wrong, we may cancel" not in decoded_strings(ENCRYPTED)


async def test_an_encrypted_committed_history_replays_with_the_fixture_key_and_is_refused_without_it() -> None:
    history = WorkflowHistory.from_json(ENCRYPTED.stem, json.loads(ENCRYPTED.read_text(encoding="utf-8")))
    fixture = parse_keyring(fixture_ring_json(), "fixture")
    assert (await replayer(keys=fixture).replay_workflow(history, raise_on_replay_failure=False)).replay_failure is None
    stranger = parse_keyring(key_ring_json("someone-else"), "stranger")
    failure = (await replayer(keys=stranger).replay_workflow(history, raise_on_replay_failure=False)).replay_failure
    assert failure is not None and "key 'replay-fixture-1', which this process does not have" in str(failure)
