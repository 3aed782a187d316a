"""Customer data encrypted in history: an AES-GCM payload codec with a key ring.

Every payload the worker, a client or the replayer sends to Temporal is encrypted here (the data converter in
starter/runtime/temporal.py installs the codec once), so the server, its database, `temporal workflow show` and
exported or archived histories hold only ciphertext. An encrypted payload is

    metadata: {"encoding": "binary/encrypted", "encryption-key-id": "<id>"}
    data:     12-byte nonce + AES-GCM(the original Payload, serialized; associated data: the key id)

The key ring holds several keys: payloads are encrypted with the current one and decrypted with whichever key
their id names (rotation: add a key, make it current, keep the old ones as long as any history or archive written
with them exists). A payload that is not `binary/encrypted` passes through decoding unchanged, so histories
recorded before the codec (tests/replay/histories) still replay.

Keys come from ESCALATION_CODEC_KEYS (inline) or else ESCALATION_CODEC_KEY_FILE, both the same JSON document:

    {"current": "2026-12", "keys": {"2026-12": "<base64 of 32 random bytes>", "2026-06": "<...>"}}

`python -m starter.runtime.codec new-key FILE [--id ID]` adds a random key to FILE and makes it current (the file
is created, mode 600, when missing: `make run` does that under var/ on first run).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import os
import re
import secrets
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from google.protobuf.json_format import MessageToDict, ParseDict
from temporalio.api.common.v1 import Payload
from temporalio.api.failure.v1 import Failure
from temporalio.converter import DefaultFailureConverter, PayloadCodec, PayloadConverter

from starter.runtime.sdk_private import raised_in_query
from starter.runtime.settings import Settings, SettingsError, settings

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
NONCE_BYTES = 12
KEY_ID_SHAPE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
KEY_BYTES = (16, 24, 32)  # AES-128/192/256; new keys are 256-bit
UNDECRYPTABLE = "payload encrypted with key"  # how every decryption error begins (the replay tells it from a divergence)


class CodecKeyError(SettingsError):
    """A payload that cannot be decrypted, or a key ring that cannot be used; the message names the key id. A setting
    error: the fix is in the keys this process is given (the CLI says so in one line, exit 2)."""


@dataclass(frozen=True)
class Keyring:
    """Keys by id; `current` encrypts, any of them decrypts."""

    current: str
    keys: dict[str, bytes] = field(repr=False)
    _aead: dict[str, AESGCM] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.current not in self.keys:
            raise CodecKeyError(f"the current key {self.current!r} is not among the keys ({', '.join(self.keys)})")
        object.__setattr__(self, "_aead", {kid: AESGCM(key) for kid, key in self.keys.items()})

    def encrypt(self, plaintext: bytes) -> tuple[str, bytes]:
        nonce = os.urandom(NONCE_BYTES)  # fresh per payload: a (key, nonce) pair is never reused
        return self.current, nonce + self._aead[self.current].encrypt(nonce, plaintext, self.current.encode())

    def decrypt(self, key_id: str, blob: bytes) -> bytes:
        aead = self._aead.get(key_id)
        if aead is None:
            raise CodecKeyError(
                f"{UNDECRYPTABLE} {key_id!r}, which this process does not have (it has: "
                f"{', '.join(sorted(self.keys))}); add that key to ESCALATION_CODEC_KEY_FILE / ESCALATION_CODEC_KEYS "
                "(old keys must be kept as long as histories or archives written with them exist)")
        try:
            return aead.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], key_id.encode())
        except InvalidTag:
            raise CodecKeyError(
                f"{UNDECRYPTABLE} {key_id!r} does not decrypt with this process's key {key_id!r} (the "
                "authentication tag does not match: a different key under the same id, or an altered payload)"
            ) from None


def parse_keyring(text: str, source: str) -> Keyring:
    """A key ring from its JSON document; CodecKeyError names the source and what is wrong."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CodecKeyError(f"{source}: not JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("keys"), dict) or not doc["keys"]:
        raise CodecKeyError(f"{source}: expected {{\"current\": ID, \"keys\": {{ID: base64 key, ...}}}}")
    keys: dict[str, bytes] = {}
    for kid, value in doc["keys"].items():
        if not KEY_ID_SHAPE.match(kid):
            raise CodecKeyError(f"{source}: key id {kid!r} is not 1-64 of A-Z a-z 0-9 . _ -")
        try:
            key = base64.b64decode(str(value).replace("-", "+").replace("_", "/"), validate=True)
        except (binascii.Error, ValueError):
            raise CodecKeyError(f"{source}: key {kid!r} is not base64") from None
        if len(key) not in KEY_BYTES:
            raise CodecKeyError(f"{source}: key {kid!r} is {len(key)} bytes; allowed: 16, 24 or 32 (AES-128/192/256)")
        keys[kid] = key
    current = doc.get("current")
    if not isinstance(current, str) or current not in keys:
        raise CodecKeyError(f"{source}: current={current!r} must name one of the keys: {', '.join(keys)}")
    return Keyring(current, keys)


def load_keyring(s: Settings) -> Keyring:
    """ESCALATION_CODEC_KEYS if set, else the file ESCALATION_CODEC_KEY_FILE; neither: a CodecKeyError saying how."""
    if s.escalation_codec_keys:
        return parse_keyring(s.escalation_codec_keys, "ESCALATION_CODEC_KEYS")
    path = Path(s.escalation_codec_key_file)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CodecKeyError(
            f"no payload encryption key: {path} does not exist and ESCALATION_CODEC_KEYS is not set (`make run` "
            f"creates a development key; elsewhere: python -m starter.runtime.codec new-key {path})") from None
    except OSError as exc:
        raise CodecKeyError(f"{path}: cannot read the codec key file: {exc.strerror}") from None
    return parse_keyring(text, str(path))


@cache
def keyring() -> Keyring:
    """This process's key ring (read once)."""
    return load_keyring(settings())


class EncryptionCodec(PayloadCodec):
    """AES-GCM over each whole payload (its metadata included), under the key ring's current key."""

    def __init__(self, ring: Keyring) -> None:
        self.ring = ring

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.encode_one(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decode_one(p) for p in payloads]

    def encode_one(self, payload: Payload) -> Payload:
        kid, blob = self.ring.encrypt(payload.SerializeToString())
        return Payload(metadata={"encoding": ENCODING, KEY_ID: kid.encode()}, data=blob)

    def decode_one(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            return payload  # written before the codec (or never encoded): as it is
        kid = payload.metadata.get(KEY_ID, b"").decode(errors="replace")
        if not kid:
            raise CodecKeyError(f"an encrypted payload without its {KEY_ID!r} metadata")
        return Payload.FromString(self.ring.decrypt(kid, payload.data))


class HistoryFailureConverter(DefaultFailureConverter):
    """Every failure's message and stack trace moved into its encoded (so encrypted) attributes, as the SDK's
    DefaultFailureConverterWithEncodedAttributes does, except a query's: a query writes nothing to history and its
    failure goes to its caller only, who may read the state anyway; encrypted, the client could not say what failed
    (neither server here passes the whole failure on, and the SDK does not log it)."""

    def __init__(self) -> None:
        super().__init__(encode_common_attributes=True)
        self._readable = DefaultFailureConverter()

    def to_failure(self, exception: BaseException, payload_converter: PayloadConverter, failure: Failure) -> None:
        if raised_in_query(exception):
            self._readable.to_failure(exception, payload_converter, failure)
        else:
            super().to_failure(exception, payload_converter, failure)


# ----- the codec-server protocol (the Web UI, `temporal --codec-endpoint`): payloads as protobuf JSON ---------------


def decode_json(payloads: list[dict[str, Any]], ring: Keyring | None = None) -> list[dict[str, Any]]:
    """`{"metadata": {k: base64}, "data": base64}` payloads decoded; ValueError names the payload that is malformed,
    CodecKeyError the key."""
    codec = EncryptionCodec(ring or keyring())
    return [MessageToDict(codec.decode_one(_payload(p, i))) for i, p in enumerate(payloads)]


def encode_json(payloads: list[dict[str, Any]], ring: Keyring | None = None) -> list[dict[str, Any]]:
    codec = EncryptionCodec(ring or keyring())
    return [MessageToDict(codec.encode_one(_payload(p, i))) for i, p in enumerate(payloads)]


def _payload(value: dict[str, Any], index: int) -> Payload:
    try:
        return ParseDict(value, Payload())
    except Exception as exc:  # ParseError, or a TypeError on a non-object
        raise ValueError(f"payloads[{index}]: not a payload ({{\"metadata\": {{...: base64}}, \"data\": base64}}): "
                         f"{exc}") from None


# ----- keys on disk -------------------------------------------------------------------------------------------------


def new_key_id(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).strftime("k%Y%m%d-") + secrets.token_hex(3)


def add_key(path: Path, key_id: str | None = None) -> str:
    """A new random 256-bit key in the file (created mode 600 when missing), made current; the old keys are kept.
    Returns its id."""
    kid = key_id or new_key_id()
    if not KEY_ID_SHAPE.match(kid):
        raise CodecKeyError(f"key id {kid!r} is not 1-64 of A-Z a-z 0-9 . _ -")
    doc: dict[str, Any] = {"current": kid, "keys": {}}
    if path.exists():
        parse_keyring(path.read_text(encoding="utf-8"), str(path))  # never rewrite a file we cannot read
        doc = json.loads(path.read_text(encoding="utf-8"))
        if kid in doc["keys"]:
            raise CodecKeyError(f"{path}: key {kid!r} exists already; choose another id")
        doc["current"] = kid
    doc["keys"][kid] = base64.b64encode(secrets.token_bytes(32)).decode()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)
    return kid


def ephemeral_keys() -> None:
    """A throwaway run (the bench): a random key ring in this process's environment, inherited by the processes it
    starts, unless keys are configured. Its histories are deleted with the run, so the key may die with it."""
    if os.environ.get("ESCALATION_CODEC_KEYS") or Path(Settings().escalation_codec_key_file).exists():
        return
    key = base64.b64encode(secrets.token_bytes(32)).decode()
    os.environ["ESCALATION_CODEC_KEYS"] = json.dumps({"current": "ephemeral", "keys": {"ephemeral": key}})
    settings.cache_clear()
    keyring.cache_clear()


def dev_key_file(path: Path) -> Path:
    """`make run`: a development key ring, made once (later runs keep it: histories written with it stay readable)."""
    if not path.exists():
        add_key(path)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m starter.runtime.codec", description="payload encryption keys")
    sub = parser.add_subparsers(dest="cmd", required=True)
    new = sub.add_parser("new-key", help="add a random key to FILE and make it current (rotation); old keys stay")
    new.add_argument("file", type=Path)
    new.add_argument("--id", help="the key id (default: k<date>-<random>)")
    show = sub.add_parser("show", help="the key ids in FILE and which one is current (never the keys)")
    show.add_argument("file", type=Path)
    args = parser.parse_args(argv)
    try:
        if args.cmd == "new-key":
            print(f"added key {add_key(args.file, args.id)} to {args.file}; it is now current")
        else:
            ring = parse_keyring(args.file.read_text(encoding="utf-8"), str(args.file))
            for kid in ring.keys:
                print(f"{kid}{'  (current)' if kid == ring.current else ''}")
    except (CodecKeyError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
