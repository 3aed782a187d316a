"""The signed manifest of an export folder (starter/runtime/manifest.py), without a server: what each change after
signing reads as, and that verifying needs only the public half."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from starter.runtime import manifest


def signed_folder(tmp_path: Path) -> tuple[Path, Path]:
    folder = tmp_path / "exports"
    folder.mkdir()
    key_file = tmp_path / "keys" / "audit-signing.key"
    key = manifest.signing_key(key_file)
    files = []
    for name in ("a.json", "b.json"):
        (folder / name).write_text(json.dumps({"events": [name]}))
        files.append(folder / name)
    manifest.sign_into_manifest(folder, files, key)
    return folder, key_file


def test_the_key_is_made_once_private_and_its_public_half_verifies(tmp_path: Path) -> None:
    folder, key_file = signed_folder(tmp_path)
    assert oct(key_file.stat().st_mode & 0o777) == "0o600", "the private key is the operator's alone"
    again = manifest.signing_key(key_file)
    public = manifest.load_public_key(manifest.public_key_path(key_file))
    assert manifest.key_id(again.public_key()) == manifest.key_id(public), "made on first use only"
    check = manifest.check_folder(folder, public)
    assert check is not None and check.signature == "valid"
    assert [check.verdict(folder / n)[1] for n in ("a.json", "b.json")] == [False, False]
    assert check.missing() == []


def test_every_change_after_signing_is_named(tmp_path: Path) -> None:
    folder, key_file = signed_folder(tmp_path)
    public = manifest.load_public_key(manifest.public_key_path(key_file))
    (folder / "a.json").write_text(json.dumps({"events": ["edited"]}))
    (folder / "c.json").write_text("{}")
    (folder / "b.json").unlink()
    check = manifest.check_folder(folder, public)
    assert check is not None
    assert check.verdict(folder / "a.json") == ("its SHA-256 differs from the signed manifest's: changed after "
                                                "export", True)
    assert check.verdict(folder / "c.json") == ("not listed in the folder's signed manifest", True)
    assert check.missing() == ["b.json"]


def test_a_forged_listing_fails_the_signature_and_cannot_be_laundered(tmp_path: Path) -> None:
    folder, key_file = signed_folder(tmp_path)
    public = manifest.load_public_key(manifest.public_key_path(key_file))
    path = folder / manifest.MANIFEST
    data = json.loads(path.read_text())
    (folder / "a.json").write_text("{}")
    data["files"]["a.json"] = manifest.sha256_file(folder / "a.json")  # the digest "fixed" to match the change
    path.write_text(json.dumps(data))
    check = manifest.check_folder(folder, public)
    assert check is not None and check.signature == "invalid"
    assert check.verdict(folder / "a.json")[1] is True
    with pytest.raises(ValueError, match="does not verify with this key"):
        manifest.sign_into_manifest(folder, [folder / "a.json"], manifest.signing_key(key_file))


def test_another_keys_signature_and_no_key_are_told_apart(tmp_path: Path) -> None:
    folder, _ = signed_folder(tmp_path)
    other = manifest.signing_key(tmp_path / "other.key").public_key()
    by_other = manifest.check_folder(folder, other)
    assert by_other is not None and by_other.signature == "by another key"
    assert by_other.verdict(folder / "a.json")[1] is True
    unchecked = manifest.check_folder(folder, None)
    assert unchecked is not None and unchecked.signature == "not checked: no public key given"
    assert unchecked.verdict(folder / "a.json") == ("SHA-256 as listed; not checked: no public key given", False)


def test_a_private_key_given_as_the_public_one_is_explained(tmp_path: Path) -> None:
    _, key_file = signed_folder(tmp_path)
    with pytest.raises(ValueError, match="not a PEM public key"):
        manifest.load_public_key(key_file)
    with pytest.raises(ValueError, match="cannot read it"):
        manifest.load_public_key(tmp_path / "nope.pub")
