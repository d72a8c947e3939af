"""The stages of one dataset in one run: extract, transform, load.

Operators and the CLI call these functions; they hand over only through committed staging outputs,
so each stage can be retried alone. Every function logs its counts and returns a small result.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from bulksync.settings import staging_root
from bulksync.spec.models import DatasetSpec, PipelineSpec
from bulksync.staging.manifest import Manifest
from bulksync.staging.partition import Partition, Window
from bulksync.staging.reader import iter_batches, read_manifest
from bulksync.staging.writer import PartitionWriter
from bulksync.targets.base import LoadResult

log = logging.getLogger(__name__)

LOAD_REPORT = "_load.json"
PROGRESS_EVERY_ROWS = 1_000_000


@dataclass(frozen=True)
class RunContext:
    """What a stage needs to know about the run it belongs to."""

    run_id: str
    window: Window
    try_number: int | None = None


def partition_for(spec: PipelineSpec, ds: DatasetSpec, window: Window) -> Partition:
    """The staging partition of a dataset for a window."""
    return Partition(staging_root(spec.staging.root), spec.tenant, spec.pipeline, ds.name, window)


class _Progress:
    def __init__(self, what: str, callback: Any = None) -> None:
        self.what, self.rows, self.callback = what, 0, callback
        self.started = self.last = time.monotonic()
        self.next_log = PROGRESS_EVERY_ROWS

    def add(self, n: int) -> None:
        self.rows += n
        if self.callback:
            self.callback(n)
        if self.rows >= self.next_log:
            elapsed = time.monotonic() - self.started
            log.info("%s: %d rows so far (%.0f rows/s)", self.what, self.rows, self.rows / max(elapsed, 1e-9))
            self.next_log += PROGRESS_EVERY_ROWS


def extract(spec: PipelineSpec, ds: DatasetSpec, ctx: RunContext, progress: Any = None) -> Manifest:
    """Read the source for the window and commit the partition's extract.

    Args:
        spec: the pipeline spec.
        ds: the dataset to extract.
        ctx: run id, window and try number.
        progress: optional ``callback(rows)`` for progress bars.
    """
    from bulksync.sources.registry import make_source

    part = partition_for(spec, ds, ctx.window)
    source = make_source(ds.source, ctx.window)
    log.info(
        "extract %s.%s from %s source for window %s into %s",
        spec.dag_id,
        ds.name,
        ds.source.kind,
        ctx.window.key,
        part.path,
    )
    try:
        count = source.source_count()
        schema = source.schema()
        bar = _Progress(f"extract {ds.name}", progress)
        with PartitionWriter(part, "extract", schema, run_id=ctx.run_id, try_number=ctx.try_number) as writer:
            for batch in source.read():
                writer.write_batch(batch)
                bar.add(batch.num_rows)
            manifest = writer.commit(
                window=ctx.window.to_json(),
                source_count=count,
                extra={"source_kind": ds.source.kind, "source_stats": source.stats},
            )
    finally:
        source.close()
    log.info(
        "extracted %s: %d rows (source says %s) in %.1fs",
        ds.name,
        manifest.rows,
        "n/a" if count is None else count,
        manifest.duration_seconds,
    )
    return manifest


def transform(spec: PipelineSpec, ds: DatasetSpec, ctx: RunContext, progress: Any = None) -> Manifest:
    """Apply the dataset's transforms to the committed extract; commit ``transformed/``."""
    from bulksync.salts import get_salt
    from bulksync.transform.runner import TransformRunner, resolve_salts

    part = partition_for(spec, ds, ctx.window)
    extracted = read_manifest(part, "extract")
    if not ds.transforms:
        with PartitionWriter(
            part, "transform", extracted.read_schema(), run_id=ctx.run_id, try_number=ctx.try_number
        ) as passthrough:
            passthrough.link(extracted.files, "../")
            manifest = passthrough.commit(
                window=extracted.window,
                source_count=extracted.source_count,
                extra={"steps": 0, "rows_in": extracted.rows},
            )
        log.info("transform %s: no steps, %d rows passed through", ds.name, manifest.rows)
        return manifest

    runner = TransformRunner(list(ds.transforms), resolve_salts(list(ds.transforms), get_salt))

    def batches() -> Iterator[pa.RecordBatch]:
        return iter_batches(part, extracted)

    bar = _Progress(f"transform {ds.name}", progress)
    writer: PartitionWriter | None = None
    try:
        for table in runner.run(batches, extracted.read_schema()):
            if writer is None:
                writer = PartitionWriter(part, "transform", table.schema, run_id=ctx.run_id, try_number=ctx.try_number)
            for batch in table.to_batches():
                writer.write_batch(batch)
            bar.add(table.num_rows)
        if writer is None:
            writer = PartitionWriter(
                part,
                "transform",
                runner.output_schema(extracted.read_schema()),
                run_id=ctx.run_id,
                try_number=ctx.try_number,
            )
        manifest = writer.commit(
            window=extracted.window,
            source_count=extracted.source_count,
            extra={"steps": len(ds.transforms), "rows_in": extracted.rows},
        )
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    log.info(
        "transformed %s: %d rows in, %d rows out in %.1fs",
        ds.name,
        extracted.rows,
        manifest.rows,
        manifest.duration_seconds,
    )
    return manifest


def load(spec: PipelineSpec, ds: DatasetSpec, ctx: RunContext, progress: Any = None) -> LoadResult:
    """Load the committed transform output into the target in one transaction."""
    from bulksync.targets.registry import make_target

    part = partition_for(spec, ds, ctx.window)
    manifest = read_manifest(part, "transform")
    target = make_target(ds.target)
    bar = _Progress(f"load {ds.name}", progress)

    def batches() -> Iterator[pa.RecordBatch]:
        for batch in iter_batches(part, manifest):
            bar.add(batch.num_rows)
            yield batch

    try:
        result = target.load(batches, manifest.read_schema(), window=ctx.window, run_id=ctx.run_id)
    finally:
        target.close()
    _write_report(
        part,
        {
            "run_id": ctx.run_id,
            "try_number": ctx.try_number,
            "target_kind": ds.target.kind,
            "conn_id": ds.target.conn_id,
            **result.to_json(),
        },
    )
    return result


def _write_report(part: Partition, data: dict[str, Any]) -> None:
    """Record what the last load did beside the partition (read by ``bulksync`` summaries)."""
    path = part.path / LOAD_REPORT
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")
    os.replace(tmp, path)


def load_report(part: Partition) -> dict[str, Any] | None:
    """The last load's report of a partition, if any."""
    try:
        return dict(json.loads((part.path / LOAD_REPORT).read_text(encoding="utf-8")))
    except FileNotFoundError:
        return None
