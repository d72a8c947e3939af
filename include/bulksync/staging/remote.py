"""Committing a staging stage on an object store, where folders cannot be renamed.

Parts go under ``{stage folder}/_parts/{attempt}/``; the manifest that lists them is written last
(one request, replacing the earlier manifest at once); afterwards everything in the stage folder
the new manifest does not list is removed: earlier attempts' parts, parts of interrupted attempts
and, for an extract, the later stages (validated, transformed, reports) of the old data — whose
manifests are removed *before* the new extract manifest is written, so they never describe it.

**No commit replaces what another run committed meanwhile.** An attempt remembers the ETag of the
stage's manifest when it starts (or that there was none) and writes its own manifest only on that
condition (``If-Match`` / ``If-None-Match: *``): when another run committed the stage while this
attempt was writing, this attempt refuses (:class:`StagingConflictError`, transient) and removes its
parts, leaving the other run's partition whole. Its retry starts a new attempt, which may replace it.
"""

from __future__ import annotations

import hashlib
import logging
import posixpath
import time
import uuid
from typing import Any

from bulksync.errors import StagingError, TransientError
from bulksync.staging.partition import MANIFEST
from bulksync.storage.location import Location

log = logging.getLogger(__name__)

PARTS = "_parts"
WRITE_BLOCK = 8 << 20  # bytes per uploaded block: what a part buffers beyond its row group
COPY_TIMEOUT_SECONDS = 600


class StagingConflictError(TransientError):
    """Another run committed the stage while this attempt was writing it; this attempt did not commit."""


class _HashingFile:
    """A write-only file that forwards to an fsspec file and keeps a sha256 and byte count."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw
        self.hash = hashlib.sha256()
        self.bytes = 0
        self.closed = False

    def write(self, data: bytes) -> int:
        self.hash.update(data)
        self.raw.write(data)
        self.bytes += len(data)
        return len(data)

    def tell(self) -> int:
        return self.bytes

    def flush(self) -> None:
        """Nothing to do: fsspec uploads full blocks as they fill and the rest on close."""

    def writable(self) -> bool:
        return True

    def close(self) -> None:
        if not self.closed:
            self.raw.close()  # uploads the last block and commits the blob
            self.closed = True


class RemoteStage:
    """The object-store side of a :class:`~bulksync.staging.writer.PartitionWriter`."""

    def __init__(self, folder: Location) -> None:
        from bulksync.storage.azure import check_container_once

        check_container_once(str(folder.conn_id), folder.path.split("/", 1)[0])
        self.folder = folder
        self.attempt = uuid.uuid4().hex[:12]
        self.prefix = f"{PARTS}/{self.attempt}"
        self._part: _HashingFile | None = None
        self._client: Any = None
        self.base_etag = self._manifest_etag()

    def _manifest_blob(self) -> Any:
        """The SDK's client of the stage's manifest blob (conditional writes need it; adlfs has none)."""
        if self._client is None:
            from airflow.providers.microsoft.azure.hooks.wasb import WasbHook

            container, _, blob = self.folder.child(MANIFEST).path.partition("/")
            service = WasbHook(wasb_conn_id=str(self.folder.conn_id)).get_conn()
            self._client = service.get_blob_client(container, blob)
        return self._client

    def _manifest_etag(self) -> str | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return str(self._manifest_blob().get_blob_properties().etag)
        except ResourceNotFoundError:
            return None

    def _conflict(self) -> StagingConflictError:
        committed = "another run"
        try:
            import json

            data = json.loads(self.folder.child(MANIFEST).read_text())
            committed = f"run {data.get('run_id')} (try {data.get('try_number')}, at {data.get('created_at')})"
        except (FileNotFoundError, ValueError):
            pass
        return StagingConflictError(
            f"{self.folder.url} was committed by {committed} while this attempt was writing it; this attempt did "
            "not replace it and removed its own parts. Two runs of one interval ran at once: the retry of this "
            "task commits afresh"
        )

    def part_name(self, name: str) -> str:
        """The path of a part of this attempt, relative to the stage folder."""
        return f"{self.prefix}/{name}"

    def open(self, name: str) -> _HashingFile:
        """Start uploading part ``name`` (relative to the stage folder)."""
        loc = self.folder.child(name)
        self._part = _HashingFile(loc.fs.open(loc.path, "wb", block_size=WRITE_BLOCK))
        return self._part

    def close_part(self) -> tuple[int, str]:
        """Finish the current part's upload; its size and sha256."""
        part, self._part = self._part, None
        assert part is not None
        part.close()
        return part.bytes, part.hash.hexdigest()

    def relative(self, target: Location) -> str:
        """``target`` relative to the stage folder (for linked files of another stage)."""
        return posixpath.relpath(target.path, self.folder.path)

    def copy_in(self, source: Location, name: str, size: int) -> None:
        """Server-side copy of a committed file into this attempt's parts; checks its size."""
        dst = self.folder.child(name)
        source.fs.copy(source.path, dst.path)
        deadline = time.monotonic() + COPY_TIMEOUT_SECONDS
        while True:  # copies inside one account normally finish at once; wait when they do not
            try:
                got = int(dst.fs.info(dst.path, refresh=True)["size"])
            except FileNotFoundError:
                got = -1
            if got == size:
                return
            if time.monotonic() > deadline:
                raise StagingError(f"copying {source.url} to {dst.url} did not finish: {got} of {size} bytes; rerun")
            time.sleep(0.5)

    def commit(self, manifest_json: str, own_files: list[str], *, replaces_all: bool) -> None:
        """Write the manifest (the commit point), then remove what it does not list."""
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceExistsError, ResourceModifiedError

        root = self.folder.path.rstrip("/")
        if self._manifest_etag() != self.base_etag:  # checked before anything of the other run's is touched
            self.abort()
            raise self._conflict()
        existing = self._files()
        manifest = f"{root}/{MANIFEST}"
        if replaces_all:
            # the later stages and reports describe the old extract: retire them before the new one counts
            for path in existing:
                name = posixpath.basename(path)
                if path != manifest and name.startswith("_") and name.endswith(".json"):
                    self.folder.fs.rm_file(path)
        condition: dict[str, Any] = (
            {"etag": self.base_etag, "match_condition": MatchConditions.IfNotModified}
            if self.base_etag
            else {"overwrite": False}
        )
        if self.base_etag:
            condition["overwrite"] = True
        try:  # the commit point: one request, on condition nobody committed since this attempt began
            self._manifest_blob().upload_blob(manifest_json.encode("utf-8"), **condition)
        except (ResourceModifiedError, ResourceExistsError):
            self.abort()
            raise self._conflict() from None
        finally:
            self.folder.refresh()
        keep = {manifest} | {f"{root}/{f}" for f in own_files}
        stale = [p for p in existing if p not in keep and (replaces_all or not _in_substage(p, root))]
        if stale:
            self.folder.fs.rm(stale)
        log.debug("committed %s: %d stale objects removed", self.folder.url, len(stale))

    def _files(self) -> list[str]:
        self.folder.refresh()
        try:
            return [str(p) for p in self.folder.fs.find(self.folder.path)]
        except FileNotFoundError:
            return []

    def abort(self) -> None:
        """Remove this attempt's parts (a failure in the task; a killed process leaves them to the next commit)."""
        self._part = None
        self.folder.child(self.prefix).remove()


def _in_substage(path: str, root: str) -> bool:
    """True for files of another stage nested in this stage's folder (none today; kept safe)."""
    rel = path[len(root) + 1 :]
    return "/" in rel and not rel.startswith(f"{PARTS}/")
