"""Writing a stream of record batches into a staging stage, committed atomically.

Locally, parts are written into a temporary sibling folder; the manifest is written last; the
folder is then renamed into place, replacing an earlier output of the same interval. A crash at
any point leaves either the old committed output or the new one, never a mix. A writer holds an
``flock`` on a file in its temporary folder while it lives, so the next writer of the same stage
can tell the folders of killed attempts (lock free) from a live one's and remove them; two commits
of one stage at once take turns on a lock of the parent folder.

A full disk is a transient :class:`StagingSpaceError` (the task retries once space is freed); a
read-only or unwritable staging root is a terminal :class:`StagingError`; both name the dataset and
the path.

On an object store (an Azure staging root), where folders cannot be renamed, parts are uploaded
under a prefix of their own attempt (``_parts/{attempt}/``) and the manifest, which lists them, is
the last object written: it replaces the earlier manifest in one request. Readers trust only the
manifest, so parts of an interrupted attempt are ignored; each commit then removes what its
manifest does not list (earlier attempts, and for an extract the later stages of the old data).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import hashlib
import logging
import os
import re
import shutil
import time
import uuid
from pathlib import Path
from types import TracebackType
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from bulksync.errors import DataError, StagingError, StagingSpaceError, TransientError
from bulksync.staging.manifest import FileEntry, Manifest
from bulksync.staging.partition import MANIFEST, Partition
from bulksync.staging.remote import RemoteStage
from bulksync.storage.location import Location

log = logging.getLogger(__name__)

ROW_GROUP_ROWS = 256 * 1024
ROWS_PER_FILE = 4 * 1024 * 1024
WRITER_LOCK = ".writer.lock"
UNLOCKED_GRACE_SECONDS = 3600
"""A temporary folder without a lock file (from before locks, or killed between mkdir and lock) is
removed only when this old."""

_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
_NOT_WRITABLE = (errno.EROFS, errno.EACCES, errno.EPERM)
_ERRNO_IN_TEXT = re.compile(r"errno (\d+)", re.IGNORECASE)


def describe_stage(partition: Partition, stage: str) -> str:
    """``staging the extract of acme/nightly/orders 20260101T000000Z_20260102T000000Z``, for messages."""
    return f"staging the {stage} of {partition.tenant}/{partition.pipeline}/{partition.dataset} {partition.window.key}"


def staging_os_error(exc: OSError, what: str, path: Path | str) -> Exception:
    """The bulksync error of an ``OSError`` raised while ``what`` (see :func:`describe_stage`) wrote
    ``path`` (pyarrow's errors too, whose errno is often only in the message)."""
    code = exc.errno
    if code is None:
        m = _ERRNO_IN_TEXT.search(str(exc))
        code = int(m.group(1)) if m else None
    reason = os.strerror(code) if code else str(exc)
    if code in _NO_SPACE:
        return StagingSpaceError(
            f"{what} failed: no space left on the staging volume at {path} ({reason}). Nothing was committed; "
            "free space (bulksync staging prune, or a larger volume) and the task will retry"
        )
    if code in _NOT_WRITABLE:
        return StagingError(
            f"{what} failed: the staging root is not writable at {path} ({reason}). Nothing was committed; make "
            "it writable for the worker's user (or point BULKSYNC_STAGING_ROOT / staging.root elsewhere) and rerun"
        )
    return TransientError(f"{what} failed writing {path}: {reason}; nothing was committed, the task will retry")


def clean_stale_attempts(final: Path) -> int:
    """Remove the temporary and replaced folders killed writers of ``final`` left beside it; returns how
    many. A folder whose writer still lives (its lock held) is left alone."""
    removed = 0
    parent = final.parent
    if not parent.is_dir():
        return 0
    for old in parent.glob(f".{final.name}.old-*"):
        shutil.rmtree(old, ignore_errors=True)
        removed += 1
    for tmp in parent.glob(f".{final.name}.tmp-*"):
        if _owner_alive(tmp):
            continue
        shutil.rmtree(tmp, ignore_errors=True)
        removed += 1
    if removed:
        log.info("removed %d folders of killed attempts beside %s", removed, final)
    return removed


def _owner_alive(tmp: Path) -> bool:
    try:
        fd = os.open(tmp / WRITER_LOCK, os.O_RDWR)
    except FileNotFoundError:
        try:
            return time.time() - tmp.stat().st_mtime < UNLOCKED_GRACE_SECONDS
        except FileNotFoundError:
            return True  # gone meanwhile
    except OSError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing releases the lock we may have taken
    return False


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 8 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(8 << 20):
            h.update(chunk)
    return h.hexdigest()


class PartitionWriter:
    """Write batches of one schema into a stage of a partition; :meth:`commit` makes them count.

    Use as a context manager: leaving it with an exception removes everything written.

    Args:
        partition: the staging partition.
        stage: ``extract`` or ``transform``.
        schema: the Arrow schema every batch must have (batches are cast to it when safe).
        run_id: Airflow run id (or a CLI run id), recorded in the manifest.
        try_number: the task try, recorded in the manifest.
    """

    def __init__(
        self,
        partition: Partition,
        stage: str,
        schema: pa.Schema,
        *,
        run_id: str | None = None,
        try_number: int | None = None,
        rows_per_file: int = ROWS_PER_FILE,
        row_group_rows: int = ROW_GROUP_ROWS,
    ) -> None:
        self.partition = partition
        self.stage = stage
        self.schema = schema
        self.run_id = run_id
        self.try_number = try_number
        self.rows_per_file = rows_per_file
        self.row_group_rows = row_group_rows
        self.remote = RemoteStage(partition.stage_location(stage)) if partition.is_remote else None
        self._lock_fd: int | None = None
        if self.remote is None:
            self.final = partition.stage_path(stage)
            self.tmp = self.final.parent / f".{self.final.name}.tmp-{uuid.uuid4().hex[:12]}"
            with self._os_errors(self.tmp):
                self.tmp.mkdir(parents=True)
                self._lock_fd = os.open(self.tmp / WRITER_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
                fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
                clean_stale_attempts(self.final)
        self._started = time.monotonic()
        self._files: list[FileEntry] = []
        self._writer: pq.ParquetWriter | None = None
        self._file_rows = 0
        self._buffer: list[pa.RecordBatch] = []
        self._buffered = 0
        self.rows = 0
        self.linked_files: list[FileEntry] = []

    def __enter__(self) -> PartitionWriter:
        return self

    @contextlib.contextmanager
    def _os_errors(self, path: Path | str) -> Any:
        """Turn an ``OSError`` of the block into a bulksync error naming the dataset and ``path``."""
        try:
            yield
        except OSError as exc:
            raise staging_os_error(exc, describe_stage(self.partition, self.stage), path) from None

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        if et is not None:
            self.abort()

    def write_batch(self, batch: pa.RecordBatch) -> None:
        """Append one batch (cast to the writer's schema; a lossy cast is a :class:`DataError`)."""
        if batch.num_rows == 0:
            return
        if batch.schema != self.schema:
            batch = self._conform(batch)
        self._buffer.append(batch)
        self._buffered += batch.num_rows
        self.rows += batch.num_rows
        if self._buffered >= self.row_group_rows:
            with self._os_errors(self.tmp if self.remote is None else self.partition.url):
                self._flush()

    def _conform(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        if batch.schema.names != self.schema.names:
            raise DataError(f"batch columns {batch.schema.names} differ from the staged schema {self.schema.names}")
        try:
            return batch.cast(self.schema, safe=True)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise DataError(f"cannot stage batch as {self.schema}: {exc}") from None

    def _flush(self) -> None:
        if not self._buffer:
            return
        table = pa.Table.from_batches(self._buffer, schema=self.schema)
        self._buffer, self._buffered = [], 0
        offset = 0
        while offset < table.num_rows:
            if self._writer is None:
                self._open()
            assert self._writer is not None
            take = min(table.num_rows - offset, self.rows_per_file - self._file_rows)
            self._writer.write_table(table.slice(offset, take), row_group_size=self.row_group_rows)
            self._file_rows += take
            offset += take
            if self._file_rows >= self.rows_per_file:
                self._close_file()

    def _open(self) -> None:
        name = f"part-{len(self._files):05d}.parquet"
        if self.remote is not None:
            name = self.remote.part_name(name)
            self._writer = pq.ParquetWriter(self.remote.open(name), self.schema, compression="zstd")
        else:
            self._writer = pq.ParquetWriter(self.tmp / name, self.schema, compression="zstd")
        self._current = name

    def _close_file(self) -> None:
        if self._writer is None:
            return
        self._writer.close()
        self._writer = None
        if self.remote is not None:
            size, digest = self.remote.close_part()
            self._files.append(FileEntry(path=self._current, rows=self._file_rows, bytes=size, sha256=digest))
        else:
            path = self.tmp / self._current
            self._files.append(
                FileEntry(path=self._current, rows=self._file_rows, bytes=path.stat().st_size, sha256=sha256_file(path))
            )
        self._file_rows = 0

    def link(self, entries: list[FileEntry], source_folder: Path | Location) -> None:
        """Reference files committed in ``source_folder`` instead of copying them (a stage that
        changes nothing). Paths are stored relative to this stage's folder."""
        for e in entries:
            if self.remote is not None:
                assert isinstance(source_folder, Location)
                rel = self.remote.relative(source_folder.child(e.path))
            else:
                rel = os.path.relpath(Path(_local(source_folder)) / e.path, self.final)
            self.linked_files.append(e.model_copy(update={"path": rel}))
            self.rows += e.rows

    def adopt(self, entries: list[FileEntry], source_folder: Path | Location) -> None:
        """Take committed files of another folder into this output as its own parts: hard links
        (no copy, and the source folder stays intact), or a copy where links are not possible
        (a server-side copy on object stores). The files keep their checksums; they are renamed
        ``part-NNNNN.parquet`` in order."""
        with self._os_errors(self.tmp if self.remote is None else self.partition.url):
            self._adopt(entries, source_folder)

    def _adopt(self, entries: list[FileEntry], source_folder: Path | Location) -> None:
        self._flush()
        self._close_file()
        if self.remote is not None:
            assert isinstance(source_folder, Location)
            for e in entries:
                name = self.remote.part_name(f"part-{len(self._files):05d}.parquet")
                self.remote.copy_in(source_folder.child(e.path), name, e.bytes)
                self._files.append(e.model_copy(update={"path": name}))
                self.rows += e.rows
            return
        source_folder = Path(_local(source_folder))
        for e in entries:
            name = f"part-{len(self._files):05d}.parquet"
            src, dst = source_folder / e.path, self.tmp / name
            try:
                os.link(src, dst)
            except OSError:
                shutil.copyfile(src, dst)
            if dst.stat().st_size != e.bytes:
                raise DataError(f"{src} has {dst.stat().st_size} bytes but its manifest says {e.bytes}")
            self._files.append(e.model_copy(update={"path": name}))
            self.rows += e.rows

    def commit(
        self, *, window: dict[str, str | None], source_count: int | None = None, extra: dict[str, Any] | None = None
    ) -> Manifest:
        """Close the parts, write the manifest last and move the output into place."""
        with self._os_errors(self.tmp if self.remote is None else self.partition.url):
            return self._commit(window=window, source_count=source_count, extra=extra)

    def _commit(
        self, *, window: dict[str, str | None], source_count: int | None = None, extra: dict[str, Any] | None = None
    ) -> Manifest:
        self._flush()
        self._close_file()
        if not self._files and not self.linked_files:
            # an empty stage still gets one (empty) part, so readers always see the schema in a file
            self._open()
            assert self._writer is not None
            self._writer.write_table(self.schema.empty_table())
            self._close_file()
        cols, ipc = Manifest.encode_schema(self.schema)
        manifest = Manifest(
            tenant=self.partition.tenant,
            pipeline=self.partition.pipeline,
            dataset=self.partition.dataset,
            stage=self.stage,
            interval=self.partition.window.key,
            window=window,
            rows=self.rows,
            files=self.linked_files + self._files,
            columns=cols,
            arrow_schema=ipc,
            source_count=source_count,
            run_id=self.run_id,
            try_number=self.try_number,
            created_at=dt.datetime.now(dt.UTC),
            duration_seconds=time.monotonic() - self._started,
            extra=extra or {},
        )
        if self.remote is not None:
            own = [f.path for f in self._files]
            self.remote.commit(manifest.model_dump_json(indent=2), own, replaces_all=self.stage == "extract")
        else:
            tmp_manifest = self.tmp / (MANIFEST + ".tmp")
            tmp_manifest.write_text(manifest.model_dump_json(indent=2), encoding="utf-8")
            os.replace(tmp_manifest, self.tmp / MANIFEST)
            self._swap_in()
        log.info(
            "committed %s stage of %s/%s/%s %s: %d rows in %d files",
            self.stage,
            self.partition.tenant,
            self.partition.pipeline,
            self.partition.dataset,
            self.partition.window.key,
            self.rows,
            len(manifest.files),
        )
        return manifest

    def _swap_in(self) -> None:
        # two commits of this stage at once (two runs of one interval) take turns on the parent folder
        parent_fd = os.open(self.final.parent, os.O_RDONLY)
        try:
            fcntl.flock(parent_fd, fcntl.LOCK_EX)
            old = None
            if self.final.exists():
                # a new extract replaces the whole folder, so the old transformed output goes with it
                old = self.final.parent / f".{self.final.name}.old-{uuid.uuid4().hex[:12]}"
                os.rename(self.final, old)
            os.rename(self.tmp, self.final)
        finally:
            os.close(parent_fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.final / WRITER_LOCK)
        self._release()
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)

    def _release(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def abort(self) -> None:
        """Remove everything written so far; the committed output (if any) stays as it was."""
        if self._writer is not None:
            with contextlib.suppress(Exception):  # best effort while failing anyway
                self._writer.close()
            self._writer = None
        if self.remote is not None:
            self.remote.abort()
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self._release()


def _local(folder: Path | Location) -> str:
    """The local path of a folder given as a ``Path`` or a local :class:`Location`."""
    if isinstance(folder, Location):
        return folder.path
    return str(folder)
