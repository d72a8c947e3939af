"""Committing a staging stage on an object store, where folders cannot be renamed.

Parts go under ``{stage folder}/_parts/{attempt}/``; the manifest that lists them is written last
(one request, replacing the earlier manifest at once); afterwards everything in the stage folder
the new manifest does not list is removed: earlier attempts' parts, parts of interrupted attempts
and, for an extract, the later stages (validated, transformed, reports) of the old data — whose
manifests are removed *before* the new extract manifest is written, so they never describe it.
"""

from __future__ import annotations

import hashlib
import logging
import posixpath
import time
import uuid
from typing import Any

from bulksync.errors import StagingError
from bulksync.staging.partition import MANIFEST
from bulksync.storage.location import Location

log = logging.getLogger(__name__)

PARTS = "_parts"
WRITE_BLOCK = 8 << 20  # bytes per uploaded block: what a part buffers beyond its row group
COPY_TIMEOUT_SECONDS = 600


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
        root = self.folder.path.rstrip("/")
        existing = self._files()
        manifest = f"{root}/{MANIFEST}"
        if replaces_all:
            # the later stages and reports describe the old extract: retire them before the new one counts
            for path in existing:
                name = posixpath.basename(path)
                if path != manifest and name.startswith("_") and name.endswith(".json"):
                    self.folder.fs.rm_file(path)
        self.folder.child(MANIFEST).write_text(manifest_json)
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
