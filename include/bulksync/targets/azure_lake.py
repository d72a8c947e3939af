"""The ``azure_lake`` target: Hive-partitioned Parquet in an Azure container (or a local folder).

Layout of ``{path}/{table}/``::

    region=EU/day=2026-01-01/part-{interval}-{attempt}-00000.parquet
    region=EU/day=2026-01-01/_SUCCESS      the commit marker: lists the folder's files, written last
    _intervals/{interval}.json             which partitions an interval wrote (for its reruns)
    _tmp/{interval}-{attempt}/...          files being written (readers ignore ``_`` folders)
    _locks/{interval}.lock, _commit.lock   one load per interval, one commit per table at a time

A load takes its interval's lock (a second load of the interval waits, then refuses), removes the
``_tmp/`` folders of killed attempts, streams the batches into per-partition Parquet files under
``_tmp/`` (at most one row group buffered per open partition file), then, holding the table's
commit lock, commits partition by partition **delete-then-copy**: remove the folder's marker,
delete the files the new ones replace (``append``: the same interval's files of earlier attempts;
``replace_partition``: every earlier file of the folder), copy the new files in, write the marker.

What readers get (docs/azure.md, "Reading the lake"):

* readers that honour the markers — :func:`bulksync.storage.hive.committed_dataset` (a
  ``pyarrow.dataset`` of the listed files), :func:`~bulksync.storage.hive.read_committed`, or any
  engine given the files ``_SUCCESS`` lists — see committed data only: a folder being committed,
  or left by a killed commit, is absent until its interval's rerun commits it;
* plain readers that ignore ``_SUCCESS`` (``pyarrow.dataset(partitioning="hive")``, Spark, DuckDB,
  Synapse) never see two versions of an interval's rows at once, so never duplicates; while a commit
  runs, and after a killed commit until the rerun, a folder may lack some or all of the interval's
  rows. Blob storage has no atomic multi-file switch a plain reader would honour.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from bulksync.errors import TargetSchemaError
from bulksync.staging.partition import Window
from bulksync.storage.hive import SUCCESS, read_marker, split_by_partition, write_marker
from bulksync.storage.location import Location, open_location, split_azure_url
from bulksync.storage.lock import StorageLock
from bulksync.targets.base import BatchSource, LoadResult, Target

log = logging.getLogger(__name__)

TMP = "_tmp"
INTERVALS = "_intervals"
LOCKS = "_locks"
WRITE_BLOCK = 4 << 20  # bytes per uploaded block: what one open file buffers besides its row group


@dataclass
class _OpenFile:
    name: str
    handle: Any
    writer: pq.ParquetWriter
    rows: int = 0
    buffer: list[pa.RecordBatch] = field(default_factory=list)
    buffered: int = 0


class _PartitionFiles:
    """Parquet files under a temporary folder, one open per partition (least recently used closed
    beyond ``max_open``), each buffering at most one row group."""

    def __init__(self, tmp: Location, schema: pa.Schema, prefix: str, spec: Any) -> None:
        self.tmp = tmp
        self.schema = schema
        self.prefix = prefix
        self.row_group_rows = int(spec.row_group_rows)
        self.max_open = int(spec.max_open_partitions)
        self.compression = None if spec.compression == "none" else spec.compression
        self.open: OrderedDict[str, _OpenFile] = OrderedDict()
        self.files: dict[str, list[dict[str, Any]]] = {}
        self.count = 0
        self.rows = 0

    def write(self, folder: str, rows: pa.RecordBatch) -> None:
        if rows.num_rows == 0:
            return
        f = self.open.get(folder)
        if f is None:
            f = self._open(folder)
        self.open.move_to_end(folder)
        f.buffer.append(rows)
        f.buffered += rows.num_rows
        self.rows += rows.num_rows
        if f.buffered >= self.row_group_rows:
            self._flush(f)

    def _open(self, folder: str) -> _OpenFile:
        while len(self.open) >= self.max_open:
            self._close(next(iter(self.open)))
        name = f"{self.prefix}-{self.count:05d}.parquet"
        self.count += 1
        loc = self.tmp.child(folder, name)
        loc.fs.makedirs(loc.path.rsplit("/", 1)[0], exist_ok=True)
        handle = loc.fs.open(loc.path, "wb", block_size=WRITE_BLOCK)
        writer = pq.ParquetWriter(handle, self.schema, compression=self.compression)
        f = _OpenFile(name, handle, writer)
        self.open[folder] = f
        return f

    def _flush(self, f: _OpenFile) -> None:
        if not f.buffer:
            return
        table = pa.Table.from_batches(f.buffer, schema=self.schema)
        f.buffer, f.buffered = [], 0
        f.writer.write_table(table, row_group_size=self.row_group_rows)
        f.rows += table.num_rows

    def _close(self, folder: str) -> None:
        f = self.open.pop(folder)
        self._flush(f)
        f.writer.close()
        f.handle.close()
        size = self.tmp.child(folder, f.name).size()
        self.files.setdefault(folder, []).append({"name": f.name, "rows": f.rows, "bytes": size})

    def close_all(self) -> dict[str, list[dict[str, Any]]]:
        for folder in list(self.open):
            self._close(folder)
        return self.files

    def abort(self) -> None:
        for f in self.open.values():
            for close in (f.writer.close, f.handle.close):
                try:
                    close()
                except Exception:  # noqa: BLE001 - best effort while failing anyway
                    log.debug("closing %s while aborting failed", f.name)
        self.open.clear()


class AzureLakeTarget(Target):
    """Write a dataset into a Hive-partitioned Parquet lake table, one partition folder at a time."""

    kind = "azure_lake"

    def root(self) -> Location:
        """The lake table folder ``{path}/{table}``, its container checked first (names account and
        connection when the credentials are refused)."""
        if "://" in self.spec.path:
            from bulksync.storage.azure import check_container

            container, _ = split_azure_url(self.spec.path)
            check_container(self.spec.conn_id, container)
        return open_location(self.spec.path, self.spec.conn_id).child(self.spec.table)

    def load(self, batches: BatchSource, schema: pa.Schema, *, window: Window, run_id: str) -> LoadResult:
        started = time.monotonic()
        cols = list(self.spec.partition_by)
        missing = [c for c in cols if c not in schema.names]
        if missing:
            raise TargetSchemaError(
                f"lake table {self.spec.table}: partition_by names {', '.join(missing)}, not in the data "
                f"(columns: {', '.join(schema.names)}); fix partition_by or the transforms"
            )
        if len(cols) == len(schema.names):
            raise TargetSchemaError(f"lake table {self.spec.table}: every column is a partition column; keep one out")
        table = self.root()
        interval, attempt = window.key, uuid.uuid4().hex[:8]
        with StorageLock(table.child(LOCKS, f"{interval}.lock"), f"the load of interval {interval} into {table.url}"):
            self._clean_tmp(table, interval)
            tmp = table.child(TMP, f"{interval}-{attempt}")
            data_schema = pa.schema([f for f in schema if f.name not in cols])
            files = _PartitionFiles(tmp, data_schema, f"part-{interval}-{attempt}", self.spec)
            try:
                for batch in batches():
                    for folder, rows in split_by_partition(batch, cols):
                        files.write(folder, rows)
                written = files.close_all()
                with StorageLock(table.child(LOCKS, "_commit.lock"), f"the commit of {table.url}"):
                    deleted = self._commit(table, tmp, written, interval, attempt, run_id)
            except BaseException:
                files.abort()
                tmp.remove()
                raise
            tmp.remove()
        log.info(
            "lake %s (%s): %d rows in %d files into %d partitions, %d rows replaced",
            table.url,
            self.spec.mode,
            files.rows,
            sum(len(v) for v in written.values()),
            len(written),
            deleted,
        )
        return LoadResult(
            table=table.url,
            mode=self.spec.mode,
            rows=files.rows,
            inserted=files.rows,
            updated=0,
            deleted=deleted,
            duration_seconds=time.monotonic() - started,
        )

    @staticmethod
    def _clean_tmp(table: Location, interval: str) -> None:
        """Remove ``_tmp/`` folders of killed attempts: this interval's (its lock is ours), and another
        interval's when nobody holds that interval's lock."""
        stale: dict[str, list[str]] = {}
        for name in table.child(TMP).list_names():
            other = name.rsplit("-", 1)[0]
            stale.setdefault(other, []).append(name)
        removed = 0
        for other, names in stale.items():
            lock = None
            if other != interval:
                lock = StorageLock(table.child(LOCKS, f"{other}.lock"), f"interval {other}")
                if not lock.acquire(wait=False):
                    continue  # a live load of that interval is writing them
            try:
                for name in names:
                    table.child(TMP, name).remove()
                    removed += 1
            finally:
                if lock is not None:
                    lock.release()
        if removed:
            log.info("lake %s: removed %d temporary folder(s) of killed loads under %s/", table.url, removed, TMP)

    # -- the commit ------------------------------------------------------------------------

    def _commit(
        self,
        table: Location,
        tmp: Location,
        written: dict[str, list[dict[str, Any]]],
        interval: str,
        attempt: str,
        run_id: str,
    ) -> int:
        """Commit every partition the interval writes now or wrote before; return rows replaced."""
        own = f"part-{interval}-"
        log_file = table.child(INTERVALS, f"{interval}.json")
        try:
            earlier: dict[str, Any] = json.loads(log_file.read_text())
        except FileNotFoundError:
            earlier = {"partitions": {}}
        # what each folder held before this interval came in: its marker (this interval's files
        # left out), or, when a killed attempt removed the marker, what that attempt recorded
        base: dict[str, list[dict[str, Any]]] = {}
        for folder in sorted(set(earlier["partitions"]) | set(written)):
            marker = read_marker(table.child(folder) if folder else table)
            if marker is not None:
                base[folder] = [f for f in marker["files"] if not str(f["name"]).startswith(own)]
            else:
                base[folder] = list(earlier["partitions"].get(folder) or [])
        log_file.write_text(json.dumps({"state": "committing", "attempt": attempt, "partitions": base}))
        replaced = 0
        for folder, before in base.items():
            replaced += self._commit_partition(table, tmp, folder, before, written.get(folder, []), own, run_id)
        log_file.write_text(
            json.dumps({"state": "committed", "attempt": attempt, "partitions": dict.fromkeys(written)})
        )
        return replaced

    def _commit_partition(
        self,
        table: Location,
        tmp: Location,
        folder: str,
        before: list[dict[str, Any]],
        new: list[dict[str, Any]],
        own: str,
        run_id: str,
    ) -> int:
        part = table.child(folder) if folder else table
        marker = read_marker(part)
        committed = {str(f["name"]): int(f["rows"]) for f in (marker or {}).get("files", [])}
        keep = [] if (self.spec.mode == "replace_partition" and new) else before
        final = keep + new
        final_names = {str(f["name"]) for f in final}
        if marker is not None:
            part.child(SUCCESS).remove()  # from here until the new marker, the folder does not count
        # delete-then-copy: what the new files replace goes first, so a reader ignoring the marker
        # never sees two versions of an interval's rows side by side
        replaced = 0
        known = {str(f["name"]) for f in before} | set(committed)
        for name in part.list_names():
            if not name.endswith(".parquet") or name in final_names:
                continue
            if name.startswith(own) or name in known:
                part.child(name).remove()
                replaced += committed.get(name, 0)
        for f in new:
            self._place(tmp.child(folder, f["name"]), part.child(f["name"]), int(f["bytes"]))
        if final:
            write_marker(part, final, run_id=run_id, intervals=sorted({_interval_of(str(f["name"])) for f in final}))
        log.info(
            "lake partition %s committed: %d files, %d rows", folder or "/", len(final), sum(f["rows"] for f in final)
        )
        return replaced

    @staticmethod
    def _place(src: Location, dst: Location, size: int) -> None:
        """Move a written file into its partition folder and check its size (server-side copy on Azure)."""
        if src.is_local:
            dst.makedirs_parent()
            src.fs.mv(src.path, dst.path)
        else:
            src.fs.copy(src.path, dst.path)
            deadline = time.monotonic() + 300
            while True:  # a copy inside one account is normally complete at once; wait for it if not
                try:
                    if dst.fs.info(dst.path, refresh=True)["size"] == size:
                        break
                except FileNotFoundError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"copying {src.url} to {dst.url} did not finish in 300 s; rerun the load")
                time.sleep(0.5)


def _interval_of(name: str) -> str:
    """The interval key in ``part-{interval}-{attempt}-{n}.parquet``."""
    return name.removeprefix("part-").rsplit("-", 2)[0]
