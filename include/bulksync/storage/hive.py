"""Hive-style partition folders (``region=EU/day=2026-01-01/``) and the ``_SUCCESS`` markers that
commit them.

A partition folder counts only while it holds ``_SUCCESS``; the marker is a small JSON document
listing the folder's data files (name, rows, bytes), the run and the intervals they came from.

To read a lake table with that guarantee, use :func:`committed_dataset` (a lazy, streaming
``pyarrow.dataset`` of exactly the files the markers list) or :func:`read_committed`; see
docs/azure.md, "Reading the lake", for what readers that ignore the markers see.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from bulksync.storage.location import Location

SUCCESS = "_SUCCESS"
NULL_VALUE = "__HIVE_DEFAULT_PARTITION__"
_SAFE = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-+ ")


def escape(value: str) -> str:
    """Percent-escape what Hive escapes in a folder name (``/``, ``=``, ``:``, ``%`` …)."""
    return "".join(c if c in _SAFE else "".join(f"%{b:02X}" for b in c.encode("utf-8")) for c in value)


def folder_name(columns: list[str], values: list[str | None]) -> str:
    """``col1=v1/col2=v2`` for one combination of partition values (``None`` is Hive's default partition)."""
    return "/".join(
        f"{escape(c)}={NULL_VALUE if v is None else escape(v)}" for c, v in zip(columns, values, strict=True)
    )


def split_by_partition(batch: pa.RecordBatch, columns: list[str]) -> Iterator[tuple[str, pa.RecordBatch]]:
    """Yield ``(folder, rows)`` for each partition present in ``batch``; the partition columns are
    dropped from the rows (their values live in the folder names, as Hive and Spark expect).

    Raises:
        KeyError: a partition column is not in the batch.
    """
    if not columns:
        yield "", batch
        return
    missing = [c for c in columns if c not in batch.schema.names]
    if missing:
        raise KeyError(", ".join(missing))
    keep = [i for i, name in enumerate(batch.schema.names) if name not in columns]
    text = {c: pc.cast(batch.column(c), pa.string()) for c in columns}
    combos = pa.table(text).group_by(columns, use_threads=False).aggregate([])
    if combos.num_rows == 1:
        values = [combos.column(c)[0].as_py() for c in columns]
        yield folder_name(columns, values), batch.select(keep)
        return
    for combo in combos.to_pylist():
        mask = None
        for c in columns:
            v = combo[c]
            m = pc.is_null(text[c]) if v is None else pc.fill_null(pc.equal(text[c], v), False)
            mask = m if mask is None else pc.and_(mask, m)
        yield folder_name(columns, [combo[c] for c in columns]), batch.filter(mask).select(keep)


def read_marker(folder: Location) -> dict[str, Any] | None:
    """The ``_SUCCESS`` marker of a partition folder, or ``None`` when it is not committed."""
    try:
        return dict(json.loads(folder.child(SUCCESS).read_text()))
    except FileNotFoundError:
        return None


def write_marker(folder: Location, files: list[dict[str, Any]], *, run_id: str, intervals: list[str]) -> None:
    """Commit a partition folder: write its ``_SUCCESS`` marker (one object, written last)."""
    folder.child(SUCCESS).write_text(
        json.dumps(
            {
                "rows": sum(int(f["rows"]) for f in files),
                "files": files,
                "run_id": run_id,
                "intervals": intervals,
                "committed_at": dt.datetime.now(dt.UTC).isoformat(),
            },
            indent=1,
        )
    )


def committed_partitions(table: Location) -> dict[str, dict[str, Any]]:
    """Every committed partition folder of a lake table (relative folder → marker); folders
    without ``_SUCCESS`` (being written, or left by a killed run) are not listed."""
    out: dict[str, dict[str, Any]] = {}
    fs = table.fs
    table.refresh()
    try:
        found = fs.find(table.path, withdirs=False)
    except FileNotFoundError:
        return out
    for path in found:
        p = str(path)
        if p.rsplit("/", 1)[-1] != SUCCESS:
            continue
        rel = p[len(table.path) :].strip("/").rsplit("/", 1)[0] if "/" in p[len(table.path) :].strip("/") else ""
        if rel.startswith("_"):
            continue
        marker = read_marker(table.child(rel) if rel else table)
        if marker is not None:
            out[rel] = marker
    return out


def committed_dataset(table: Location | str, conn_id: str | None = None) -> Any:
    """A ``pyarrow.dataset.Dataset`` of the committed files of a lake table, Hive partition columns included.

    Only the files the ``_SUCCESS`` markers list are in it: a folder being committed, or left by a
    killed commit, is absent. Nothing is read until the dataset is scanned, so filters and column
    selections push down and batches stream (``dataset.to_batches()``).

    Args:
        table: the lake table folder (``abfs://container/path/table`` with ``conn_id``, a local path, or a
            :class:`~bulksync.storage.location.Location`).
        conn_id: the Airflow ``wasb`` connection of an Azure URL.

    Returns:
        the dataset, or ``None`` when no partition is committed.
    """
    import pyarrow.dataset as ds

    from bulksync.storage.location import open_location

    loc = open_location(table, conn_id) if isinstance(table, str) else table
    files = [
        loc.child(rel, str(f["name"])).path
        for rel, marker in sorted(committed_partitions(loc).items())
        for f in marker["files"]
    ]
    if not files:
        return None
    fs = None if loc.is_local else loc.fs
    return ds.dataset(
        files,
        filesystem=fs,
        format="parquet",
        partitioning=ds.partitioning(flavor="hive"),
        partition_base_dir=loc.path,
    )


def read_committed(table: Location) -> pa.Table | None:
    """Every committed row of a lake table, the partition values added as string columns.

    For checks and small tables (it holds the result in memory); engines such as Spark or
    ``pyarrow.dataset`` read the files the markers list.
    """
    parts: list[pa.Table] = []
    for rel, marker in sorted(committed_partitions(table).items()):
        values = [kv.split("=", 1) for kv in rel.split("/")] if rel else []
        for f in marker["files"]:
            with table.fs.open(table.child(rel, str(f["name"])).path, "rb") as handle:
                t = pq.read_table(handle)
            for k, v in values:
                value = None if v == NULL_VALUE else unquote(v)
                t = t.append_column(unquote(k), pa.array([value] * t.num_rows, pa.string()))
            parts.append(t)
    return pa.concat_tables(parts, promote_options="default") if parts else None
