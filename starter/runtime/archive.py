"""The audit archive: closed workflows' histories written to a folder before the server's retention deletes them,
one `<percent-encoded workflow id>.json.gz` per workflow (every run, `ticket history`'s format), the folder's
manifest signed over what was written.

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

from starter.client.histories import closed_query, every_run, export_runs, matching_workflow_ids
from starter.runtime import manifest
from workflows.archive import ARCHIVE_ACTIVITY, ArchivePeriod, ArchiveResult

log = structlog.get_logger("archive")
LOCK = ".archive.lock"


def archive_name(workflow_id: str) -> str:
    """The id, percent-encoded: a file name whatever the workflow type's id holds (the replay reads the id inside)."""
    return f"{urllib.parse.quote(workflow_id, safe='')}.json.gz"


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


async def write_archive(folder: Path, workflow_ids: list[str], export: Callable[[str], Awaitable[dict[str, Any]]],
                        key: Ed25519PrivateKey | None, progress: Callable[[str], None] = lambda _: None,
                        ) -> ArchiveResult:
    """Each workflow not yet in the folder: every run fetched, written compressed (atomically: a temporary file
    renamed), then the folder's manifest signed over the files written, also when a later workflow failed (a file
    written and never signed would read as tampered for good). Raises ValueError when the manifest cannot be
    signed (it does not verify with this key)."""
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    kept = runs = 0
    signed = None
    with locked(folder):
        try:
            for wid in workflow_ids:
                path = folder / archive_name(wid)
                if path.exists():
                    kept += 1
                    continue
                exported = await export(wid)
                runs += len(exported["runs"])
                tmp = path.with_name(path.name + ".tmp")
                tmp.write_bytes(gzip.compress(json.dumps(exported).encode(), mtime=0))
                tmp.replace(path)
                written.append(path)
                progress(wid)
        finally:
            if written and key is not None:
                signed = str(manifest.sign_into_manifest(folder, written, key))
    return ArchiveResult(folder=str(folder), matched=len(workflow_ids), written=len(written), runs_written=runs,
                         already_archived=kept, manifest=signed, files=[p.name for p in written])


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
        ids = await matching_workflow_ids(client, closed_query(covered.since, covered.until), covered.limit,
                                          self.rpc_timeout)

        async def export(wid: str) -> dict[str, Any]:
            return export_runs(wid, await every_run(client, wid, self.rpc_timeout))

        result = await write_archive(self.folder, ids, export, key, progress=lambda wid: activity.heartbeat(wid))
        log.info("archived", folder=str(self.folder), matched=result.matched, written=result.written,
                 already_archived=result.already_archived, since=covered.since.isoformat())
        return result
