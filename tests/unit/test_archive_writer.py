"""The archive's one writer (starter.runtime.archive.write_archive), given chains and what each exports: an id
reused by a later execution is a second file, a rerun writes nothing, a folder archived before the index existed is
recognized from its files, and the manifest is signed over what was written."""

from __future__ import annotations

import asyncio
import gzip
import json
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from starter.runtime import archive, manifest


def export_of(wid: str, last_run_id: str) -> dict[str, Any]:
    return {"workflow_id": wid, "runs": [{"run_id": f"{last_run_id}-first", "events": []},
                                         {"run_id": last_run_id, "events": []}]}


async def exporting(wid: str, last_run_id: str) -> dict[str, Any]:
    return export_of(wid, last_run_id)


def write(folder: Path, chains: list[tuple[str, str]], key: Ed25519PrivateKey | None = None) -> Any:
    return asyncio.run(archive.write_archive(folder, chains, exporting, key))


def test_a_reused_id_is_one_file_per_execution_and_a_rerun_writes_nothing(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    first = write(tmp_path, [("incident-db", "run-a")], key)
    assert (first.written, first.files) == (1, ["incident-db.json.gz"])
    second = write(tmp_path, [("incident-db", "run-b"), ("incident-db", "run-a")], key)
    assert (second.written, second.already_archived, second.files) == (1, 1, ["incident-db~run-b.json.gz"])
    kept = json.loads(gzip.decompress((tmp_path / "incident-db~run-b.json.gz").read_bytes()))
    assert kept["runs"][-1]["run_id"] == "run-b", "the later execution's own runs"
    assert write(tmp_path, [("incident-db", "run-a"), ("incident-db", "run-b")], key).written == 0
    check = manifest.check_folder(tmp_path, key.public_key())
    assert check is not None and check.signature == "valid"
    assert set(check.files) == {"incident-db.json.gz", "incident-db~run-b.json.gz"}, "the index is not listed"


def test_a_folder_archived_before_the_index_is_recognized_from_its_files(tmp_path: Path) -> None:
    (tmp_path / "ticket-T-1.json.gz").write_bytes(gzip.compress(json.dumps(export_of("ticket-T-1", "r1")).encode()))
    again = write(tmp_path, [("ticket-T-1", "r1"), ("ticket-T-2", "r2")])
    assert (again.written, again.already_archived, again.files) == (1, 1, ["ticket-T-2.json.gz"])
    assert json.loads((tmp_path / archive.INDEX).read_text()) == {"r1": "ticket-T-1.json.gz",
                                                                  "r2": "ticket-T-2.json.gz"}


def test_the_result_lists_a_bounded_number_of_files(tmp_path: Path) -> None:
    chains = [(f"ticket-T-{i}", f"r{i}") for i in range(archive.FILES_LISTED + 5)]
    done = write(tmp_path, chains)
    assert done.written == len(chains)
    assert (len(done.files), done.files_not_listed) == (archive.FILES_LISTED, 5)


def test_a_file_deleted_from_the_folder_is_written_again(tmp_path: Path) -> None:
    write(tmp_path, [("ticket-T-1", "r1")])
    (tmp_path / "ticket-T-1.json.gz").unlink()
    again = write(tmp_path, [("ticket-T-1", "r1")])
    assert (again.written, again.files) == (1, ["ticket-T-1.json.gz"]), "a rerun adds what is missing"
