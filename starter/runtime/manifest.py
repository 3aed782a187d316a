"""Tamper-evident exports: a folder's MANIFEST.json lists each export's SHA-256 and is signed with the operator's
Ed25519 key. The auditor holds only the public key: verifying cannot forge.

The signature covers the canonical JSON (sorted keys, no spaces) of everything in the manifest but the signature
itself: its format, the key's id, when it was signed and the files with their digests."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel, Field, ValidationError

MANIFEST = "MANIFEST.json"
FORMAT: Literal["escalation-audit-manifest/1"] = "escalation-audit-manifest/1"


class Manifest(BaseModel):
    format: Literal["escalation-audit-manifest/1"] = FORMAT
    key_id: str = Field(description="the first 16 hex digits of the public key's SHA-256")
    signed_at: datetime
    files: dict[str, str] = Field(description="path relative to the manifest's folder -> SHA-256 (hex)")
    signature: str = Field("", description="Ed25519 over the canonical JSON of the other fields, base64")

    def signed_bytes(self) -> bytes:
        body = self.model_dump(mode="json", exclude={"signature"})
        return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


class FolderCheck(BaseModel):
    """What the manifest of one folder says: whether its signature holds, and each listed file's digest."""

    folder: str
    signature: Literal["valid", "invalid", "not checked: no public key given", "by another key"]
    key_id: str
    signed_at: datetime
    files: dict[str, str]

    def verdict(self, path: Path) -> tuple[str, bool]:
        """(what the manifest says of this file, whether that is a failure)."""
        if self.signature in ("invalid", "by another key"):
            what = "invalid" if self.signature == "invalid" else f"by another key ({self.key_id}) than the one given"
            return f"the folder's manifest is signed {what}", True
        if path.is_symlink():
            return "a symbolic link: the manifest lists files, not links", True
        rel = relative(path, Path(self.folder))
        expected = self.files.get(rel)
        if expected is None:
            return "not listed in the folder's signed manifest", True
        if expected != sha256_file(path):
            return "its SHA-256 differs from the signed manifest's: changed after export", True
        if self.signature != "valid":
            return f"SHA-256 as listed; {self.signature}", False
        return f"SHA-256 as listed in the manifest signed by key {self.key_id} at {self.signed_at:%Y-%m-%d %H:%M}Z", False


    def missing(self) -> list[str]:
        """Files the manifest lists that are no longer in the folder (deleted after export)."""
        return [rel for rel in self.files if not (Path(self.folder) / rel).is_file()]


def relative(path: Path, folder: Path) -> str:
    """The file's path within the folder, as the manifest names it (links not followed)."""
    return Path(os.path.relpath(path.absolute(), folder.absolute())).as_posix()


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def signing_key(path: Path) -> Ed25519PrivateKey:
    """The operator's signing key (PEM), made on first use with its public half next to it (`<path>.pub`), which is
    what auditors get."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
        public_key_path(path).write_bytes(key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(loaded, Ed25519PrivateKey):
        raise ValueError(f"{path}: not an Ed25519 private key")
    return loaded


def public_key_path(private_path: Path) -> Path:
    return private_path.with_name(private_path.name + ".pub")


def load_public_key(path: Path) -> Ed25519PublicKey:
    try:
        loaded = serialization.load_pem_public_key(path.read_bytes())
    except OSError as exc:
        raise ValueError(f"{path}: cannot read it: {exc.strerror}") from None
    except ValueError:
        raise ValueError(f"{path}: not a PEM public key (expected '-----BEGIN PUBLIC KEY-----'; the operator's "
                         "var/audit-signing.key.pub, not the private key)") from None
    if not isinstance(loaded, Ed25519PublicKey):
        raise ValueError(f"{path}: not an Ed25519 public key")
    return loaded


def sign_into_manifest(folder: Path, written: list[Path], key: Ed25519PrivateKey) -> Path:
    """Add (or update) the written files' digests in the folder's manifest and sign it again."""
    path = folder / MANIFEST
    files: dict[str, str] = {}
    if path.exists():  # its entries are kept only if it still verifies: re-signing must not launder a forgery
        check = check_folder(folder, key.public_key())
        if check is None or check.signature != "valid":
            raise ValueError(f"{path} does not verify with this key (signature "
                             f"{check.signature if check else 'missing'}): move it aside to start a new manifest")
        files = check.files
    for f in written:
        files[relative(f, folder)] = sha256_file(f)
    manifest = Manifest(key_id=key_id(key.public_key()), signed_at=datetime.now(UTC).replace(microsecond=0),
                        files=dict(sorted(files.items())))
    manifest.signature = base64.b64encode(key.sign(manifest.signed_bytes())).decode()
    tmp = path.with_suffix(".tmp")
    tmp.write_text(manifest.model_dump_json(indent=2), encoding="utf-8")
    tmp.replace(path)
    return path


def read_manifest(path: Path) -> Manifest:
    try:
        return Manifest.model_validate_json(path.read_text(encoding="utf-8"))
    except (OSError, ValidationError) as exc:
        raise ValueError(f"{path}: not a signed manifest ({FORMAT}): {exc}") from None


def check_folder(folder: Path, public: Ed25519PublicKey | None) -> FolderCheck | None:
    """The folder's manifest checked against the public key (None: no manifest there)."""
    path = folder / MANIFEST
    if not path.exists():
        return None
    m = read_manifest(path)
    state: Literal["valid", "invalid", "not checked: no public key given", "by another key"]
    if public is None:
        state = "not checked: no public key given"
    elif key_id(public) != m.key_id:
        state = "by another key"
    else:
        try:
            public.verify(base64.b64decode(m.signature), m.signed_bytes())
            state = "valid"
        except (InvalidSignature, ValueError):
            state = "invalid"
    return FolderCheck(folder=str(folder), signature=state, key_id=m.key_id, signed_at=m.signed_at, files=m.files)
