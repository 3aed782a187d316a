"""The audit archive: closed workflows' histories written to a folder before the server's retention deletes them,
one `<percent-encoded workflow id>.json.gz` per execution chain (every run, `ticket history`'s format; a later
execution of a reused id adds `~<its last run id>`), the folder's manifest signed over what was written.

One writer for both ways in: `escalation audit archive` (the operator, by hand) and the `archive_closed_workflows`
activity that the daily Schedule's ArchiveWorkflow runs on a worker. (An activity of starter.runtime, not of
activities/: it is the auditor's export, which reads histories through the client's functions.)"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import json
import urllib.parse
from collections.abc import Awaitable, Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from temporalio import activity

from starter.client.histories import closed_chains, every_run, export_runs
from starter.runtime import manifest
from workflows.archive import ARCHIVE_ACTIVITY, ArchivePeriod, ArchiveResult

log = structlog.get_logger("archive")
LOCK = ".archive.lock"


INDEX = ".archived-chains.json"  # {last run id: file name}: what is in the folder, without reading every file
FILES_LISTED = 1000  # an activity's result stays far below the server's payload limit


def archive_name(workflow_id: str, last_run_id: str | None = None) -> str:
    """The id, percent-encoded: a file name whatever the workflow type's id holds (the replay reads the id inside).
    A later execution of a reused id (incidents and sponsorships allow it) adds its last run id."""
    quoted = urllib.parse.quote(workflow_id, safe="")
    return f"{quoted}.json.gz" if last_run_id is None else f"{quoted}~{last_run_id}.json.gz"


@contextlib.contextmanager
def locked(folder: Path) -> Iterator[None]:
    """One writer at a time per folder (the scheduled run and an operator's): the manifest is read, extended and
    signed again, which two writers interleaved would lose entries of."""
    with (folder / LOCK).open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def archived_chains(folder: Path) -> dict[str, str]:
    """Last run id -> file, for every archive file in the folder. The index is rebuilt from the files it does not
    list (an archive written before it, a file copied in): each such file's last run id is read once."""
    index_file = folder / INDEX
    try:
        index: dict[str, str] = json.loads(index_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        index = {}
    listed = set(index.values())
    for path in sorted(folder.glob("*.json.gz")):
        if path.name not in listed:
            try:
                runs = json.loads(gzip.decompress(path.read_bytes()))["runs"]
                index[runs[-1]["run_id"]] = path.name
            except (OSError, ValueError, KeyError, IndexError, TypeError):
                log.warning("archive_file_unreadable", file=str(path))  # the replay reports it, naming the file
    return index


async def write_archive(folder: Path, chains: list[tuple[str, str]],
                        export: Callable[[str, str], Awaitable[dict[str, Any]]],
                        key: Ed25519PrivateKey | None, progress: Callable[[str], None] = lambda _: None,
                        ) -> ArchiveResult:
    """Each execution chain (workflow id, last run id) not yet in the folder: every run fetched, written compressed
    (atomically: a temporary file renamed), then the folder's manifest signed over the files written, also when a
    later workflow failed (a file written and never signed would read as tampered for good). Raises ValueError when
    the manifest cannot be signed (it does not verify with this key)."""
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    kept = runs = 0
    signed = None
    with locked(folder):
        index = archived_chains(folder)
        try:
            for wid, last_run_id in chains:
                if last_run_id in index and (folder / index[last_run_id]).exists():  # a deleted file is written again
                    kept += 1
                    continue
                path = folder / index.get(last_run_id, archive_name(wid))
                if path.exists() and last_run_id not in index:  # the plain name is another execution's
                    path = folder / archive_name(wid, last_run_id)
                exported = await export(wid, last_run_id)
                runs += len(exported["runs"])
                tmp = path.with_name(path.name + ".tmp")
                tmp.write_bytes(gzip.compress(json.dumps(exported).encode(), mtime=0))
                tmp.replace(path)
                written.append(path)
                index[last_run_id] = path.name
                progress(wid)
        finally:
            (folder / INDEX).write_text(json.dumps(index, sort_keys=True), encoding="utf-8")
            if written and key is not None:
                signed = str(manifest.sign_into_manifest(folder, written, key))
    return ArchiveResult(folder=str(folder), matched=len(chains), written=len(written), runs_written=runs,
                         already_archived=kept, manifest=signed, files=[p.name for p in written[:FILES_LISTED]],
                         files_not_listed=max(0, len(written) - FILES_LISTED))


class Archiver:
    """The scheduled archive's activity: the worker's folder and signing key (ESCALATION_ARCHIVE_DIR,
    ESCALATION_AUDIT_SIGNING_KEY; the key is made on first use, its public half beside it)."""

    def __init__(self, folder: Path, signing_key: Path | None, rpc_timeout: timedelta = timedelta(seconds=30)) -> None:
        self.folder = folder
        self.signing_key = signing_key
        self.rpc_timeout = rpc_timeout

    @activity.defn(name=ARCHIVE_ACTIVITY)
    async def archive(self, covered: ArchivePeriod) -> ArchiveResult:
        key = manifest.signing_key(self.signing_key) if self.signing_key else None  # before anything is written
        client = activity.client()
        chains = await closed_chains(client, covered.since, covered.until, covered.limit, self.rpc_timeout)

        async def export(wid: str, last_run_id: str) -> dict[str, Any]:
            return export_runs(wid, await every_run(client, wid, self.rpc_timeout, last_run_id))

        result = await write_archive(self.folder, chains, export, key, progress=lambda wid: activity.heartbeat(wid))
        log.info("archived", folder=str(self.folder), matched=result.matched, written=result.written,
                 already_archived=result.already_archived, since=covered.since.isoformat())
        return result
