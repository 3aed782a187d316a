"""The payload codec's key ring and format (starter/runtime/codec.py), `make run`'s key and wiring, and the log
lines' redaction of addresses (starter/runtime/logs.py). No server."""

from __future__ import annotations

import json
import logging
import stat
from pathlib import Path

import pytest
from temporalio.api.common.v1 import Payload

from starter.devstack.stack import Stack, codec_env
from starter.runtime.codec import CodecKeyError, EncryptionCodec, Keyring, add_key, dev_key_file, parse_keyring
from starter.runtime.logs import RedactAddresses, redact_addresses
from starter.runtime.settings import Settings
from tests.support.codec import key_ring_json

PLAIN = Payload(metadata={"encoding": b"json/plain"}, data=b'{"contact": "ana@example.com"}')


async def test_a_payload_round_trips_and_the_ciphertext_names_only_the_key() -> None:
    codec = EncryptionCodec(parse_keyring(key_ring_json("k1"), "t"))
    [enc] = await codec.encode([PLAIN])
    assert enc.metadata["encoding"] == b"binary/encrypted" and enc.metadata["encryption-key-id"] == b"k1"
    assert b"ana@example.com" not in enc.SerializeToString()
    [again] = await codec.encode([PLAIN])
    assert again.data != enc.data, "a fresh nonce per payload"
    assert await codec.decode([enc]) == [PLAIN]
    assert await codec.decode([PLAIN]) == [PLAIN], "a payload from before the codec passes through"


async def test_an_altered_payload_or_a_swapped_key_id_is_refused_naming_the_key() -> None:
    ring = parse_keyring(key_ring_json("k1", "k2"), "t")  # k2 current
    codec = EncryptionCodec(ring)
    [enc] = await codec.encode([PLAIN])
    altered = Payload(metadata=enc.metadata, data=enc.data[:-1] + bytes([enc.data[-1] ^ 1]))
    with pytest.raises(CodecKeyError, match="key 'k2' does not decrypt"):
        await codec.decode([altered])
    swapped = Payload(metadata={**enc.metadata, "encryption-key-id": b"k1"}, data=enc.data)  # the id is authenticated
    with pytest.raises(CodecKeyError, match="key 'k1' does not decrypt"):
        await codec.decode([swapped])
    with pytest.raises(CodecKeyError, match=r"key 'k9', which this process does not have \(it has: k1, k2\)"):
        await codec.decode([Payload(metadata={**enc.metadata, "encryption-key-id": b"k9"}, data=enc.data)])


@pytest.mark.parametrize(("doc", "named"), [
    ("not json", "not JSON"),
    ('{"current": "a", "keys": {}}', "expected"),
    ('{"current": "a", "keys": {"a b": "AAAA"}}', "key id 'a b'"),
    ('{"current": "a", "keys": {"a": "!!"}}', "key 'a' is not base64"),
    ('{"current": "a", "keys": {"a": "AAAA"}}', "key 'a' is 3 bytes; allowed: 16, 24 or 32"),
    ('{"current": "b", "keys": {"a": "' + "A" * 43 + '="}}', "current='b' must name one of the keys: a"),
])
def test_a_bad_key_ring_is_named(doc: str, named: str) -> None:
    with pytest.raises(CodecKeyError, match="^ring: .*" + named.replace("(", r"\(").replace(")", r"\)")):
        parse_keyring(doc, "ring")


def test_rotation_adds_a_current_key_and_keeps_the_old_ones(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    first = add_key(path, "k1")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    old = parse_keyring(path.read_text(), "f").keys[first]
    add_key(path, "k2")
    ring = parse_keyring(path.read_text(), "f")
    assert ring.current == "k2" and ring.keys["k1"] == old
    with pytest.raises(CodecKeyError, match="exists already"):
        add_key(path, "k1")


def test_make_run_makes_a_key_once_and_wires_the_ui_to_the_codec_endpoint(tmp_path: Path) -> None:
    key_file = tmp_path / "var" / "codec-keys.json"
    env = codec_env(Settings(escalation_codec_keys=None, escalation_codec_key_file=str(key_file)), 8233)
    assert env["ESCALATION_CODEC_KEY_FILE"] == str(key_file) and key_file.exists()
    assert env["ESCALATION_CODEC_CORS_ORIGINS"] == "http://localhost:8233,http://127.0.0.1:8233"
    before = key_file.read_text()
    dev_key_file(key_file)
    assert key_file.read_text() == before, "kept: the histories in var/ are encrypted with it"
    inline = codec_env(Settings(escalation_codec_keys=key_ring_json("x")), 8233)
    assert "ESCALATION_CODEC_KEY_FILE" not in inline
    cmd = Stack(tmp_path, headless=False, ui_codec_endpoint="http://localhost:8000/codec").server.command()
    assert cmd[cmd.index("--ui-codec-endpoint") + 1] == "http://localhost:8000/codec"
    assert "--ui-codec-endpoint" not in Stack(tmp_path, headless=True, ui_codec_endpoint="x").server.command()


def test_log_lines_carry_no_address() -> None:
    event = redact_addresses(None, "warning", {"error": "SMTP 550 5.1.1 <ana.b@example.co.uk>: no such user",
                                               "recipients": ["ana@example.com", "role:csm"], "key": "n1:ana:email"})
    assert event == {"error": "SMTP 550 5.1.1 <<address>>: no such user", "recipients": ["<address>", "role:csm"],
                     "key": "n1:ana:email"}
    try:
        raise ValueError("refused: bob@example.com")
    except ValueError:
        import sys

        record = logging.LogRecord("x", logging.WARNING, __file__, 1, "to %s failed", ("bob@example.com",),
                                   sys.exc_info())
    RedactAddresses().filter(record)
    assert record.getMessage() == "to <address> failed"
    assert record.exc_text is not None and "bob@" not in record.exc_text and "<address>" in record.exc_text


def test_the_keyring_dataclass_refuses_a_current_key_it_lacks() -> None:
    with pytest.raises(CodecKeyError, match="current key 'b'"):
        Keyring("b", {"a": b"k" * 32})
    assert json.loads(key_ring_json("a", "b"))["current"] == "b"
