"""The stages of one dataset in one run: extract, transform, load.

Operators and the CLI call these functions; they hand over only through committed staging outputs,
so each stage can be retried alone. Every function logs its counts and returns a small result.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from bulksync.settings import staging_conn_id, staging_root
from bulksync.spec.models import DatasetSpec, PipelineSpec
from bulksync.staging.manifest import Manifest
from bulksync.staging.partition import Partition, Window
from bulksync.staging.reader import iter_batches, read_manifest
from bulksync.staging.writer import PartitionWriter
from bulksync.storage.location import Location
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
    airflow: Any = field(default=None, compare=False, repr=False)
    """The Airflow task context when running in a task (for log links in alerts)."""


def partition_for(spec: PipelineSpec, ds: DatasetSpec, window: Window) -> Partition:
    """The staging partition of a dataset for a window."""
    return Partition(
        staging_root(spec.staging.root),
        spec.tenant,
        spec.pipeline,
        ds.name,
        window,
        staging_conn_id(spec.staging.conn_id),
    )


class _Progress:
    """Row counts for the log and for an optional progress ``callback(rows)``; a callback with a
    ``start(total)`` method is told the total when it is known (source count, staged rows)."""

    def __init__(self, what: str, callback: Any = None, total: int | None = None) -> None:
        self.what, self.rows, self.callback, self.total = what, 0, callback, total
        self.started = self.last = time.monotonic()
        self.next_log = PROGRESS_EVERY_ROWS
        if callback is not None and hasattr(callback, "start"):
            callback.start(total)

    def add(self, n: int) -> None:
        self.rows += n
        if self.callback:
            self.callback(n)
        if self.rows >= self.next_log:
            elapsed = time.monotonic() - self.started
            rate = self.rows / max(elapsed, 1e-9)
            if self.total:
                left = max(self.total - self.rows, 0) / max(rate, 1e-9)
                log.info(
                    "%s: %d of %d rows (%.0f%%), %.0f rows/s, about %.0f s left",
                    self.what,
                    self.rows,
                    self.total,
                    100 * self.rows / self.total,
                    rate,
                    left,
                )
            else:
                log.info("%s: %d rows so far (%.0f rows/s)", self.what, self.rows, rate)
            self.next_log += PROGRESS_EVERY_ROWS


def extract(
    spec: PipelineSpec,
    ds: DatasetSpec,
    ctx: RunContext,
    progress: Any = None,
    *,
    chunk_index: int | None = None,
) -> Manifest:
    """Read the source for the window and commit the partition's extract (or one chunk of it).

    Args:
        spec: the pipeline spec.
        ds: the dataset to extract.
        ctx: run id, window and try number.
        progress: optional ``callback(rows)`` for progress bars.
        chunk_index: for chunked datasets, the chunk of the current plan (see :func:`plan_extract`)
            to extract; it is committed as ``chunk-NNNNN`` and :func:`commit_extract` assembles them.
    """
    from bulksync.sources.registry import make_source
    from bulksync.staging.chunks import planned_chunk
    from bulksync.staging.partition import chunk_stage

    part = partition_for(spec, ds, ctx.window)
    stage, extra, chunk = "extract", {}, None
    if chunk_index is not None:
        plan_id, chunk = planned_chunk(part, chunk_index)
        stage, extra = chunk_stage(chunk_index), {"plan_id": plan_id, "chunk": chunk}
    source = make_source(ds.source, ctx.window, chunk)
    source.bind(spec, ds, ctx.run_id)
    log.info(
        "extract %s.%s from %s source for window %s%s into %s",
        spec.dag_id,
        ds.name,
        ds.source.kind,
        ctx.window.key,
        "" if chunk is None else f", chunk {chunk_index} {chunk}",
        part.stage_location(stage).url,
    )
    try:
        count = source.source_count()
        schema = source.schema()
        bar = _Progress(f"extract {ds.name}", progress, count if chunk is None else None)
        with PartitionWriter(part, stage, schema, run_id=ctx.run_id, try_number=ctx.try_number) as writer:
            for batch in source.read():
                writer.write_batch(batch)
                bar.add(batch.num_rows)
            manifest = writer.commit(
                window=ctx.window.to_json(),
                source_count=count,
                extra={"source_kind": ds.source.kind, "source_stats": source.stats, **extra},
            )
        source.committed(manifest)
    finally:
        source.close()
    log.info(
        "extracted %s%s: %d rows (source says %s) in %.1fs",
        ds.name,
        "" if chunk_index is None else f" chunk {chunk_index}",
        manifest.rows,
        "n/a" if count is None else count,
        manifest.duration_seconds,
    )
    return manifest


def extract_all(spec: PipelineSpec, ds: DatasetSpec, ctx: RunContext, progress: Any = None) -> Manifest:
    """Extract a dataset in this process: in one read, or chunk by chunk when the spec asks for chunks
    (plan, every chunk in sequence, commit), as the CLI and tests run it outside the scheduler."""
    from bulksync.spec.sources import is_chunked

    if not is_chunked(ds.source):
        return extract(spec, ds, ctx, progress)
    chunks = plan_extract(spec, ds, ctx)
    for i in range(len(chunks)):
        extract(spec, ds, ctx, progress, chunk_index=i)
    return commit_extract(spec, ds, ctx)


def plan_extract(spec: PipelineSpec, ds: DatasetSpec, ctx: RunContext, progress: Any = None) -> list[dict[str, Any]]:
    """Split a chunked dataset's extract into chunks; write the plan; return the chunk descriptors.

    The mapped extract tasks each read one chunk (:func:`extract` with ``chunk_index``); a new plan
    drops the chunks of the previous one, so a rerun never mixes chunks of two plans.
    """
    from bulksync.sources.registry import make_source
    from bulksync.staging.chunks import write_plan

    part = partition_for(spec, ds, ctx.window)
    source = make_source(ds.source, ctx.window)
    try:
        chunks = source.plan_chunks()
    finally:
        source.close()
    if not chunks:
        chunks = [{}]
    write_plan(part, chunks, ctx.run_id)
    log.info("planned the extract of %s for window %s in %d chunks", ds.name, ctx.window.key, len(chunks))
    return chunks


def commit_extract(spec: PipelineSpec, ds: DatasetSpec, ctx: RunContext, progress: Any = None) -> Manifest:
    """Commit a chunked extract: every chunk of the current plan, hard-linked into the partition.

    Raises:
        StagingError: a chunk is missing (names the chunks to rerun) or the chunks disagree on the schema.
    """
    from bulksync.errors import StagingError
    from bulksync.staging.chunks import committed_chunks

    part = partition_for(spec, ds, ctx.window)
    plan, chunks = committed_chunks(part)
    schema = chunks[0].read_schema()
    for i, m in enumerate(chunks):
        if not m.read_schema().equals(schema):
            raise StagingError(f"chunk {i} of {ds.name} has schema {m.columns}, chunk 0 has {chunks[0].columns}")
    counts = [m.source_count for m in chunks]
    count = None if any(c is None for c in counts) else sum(c for c in counts if c is not None)
    calls = sum(int(m.extra.get("source_stats", {}).get("api_calls", 0) or 0) for m in chunks)
    with PartitionWriter(part, "extract", schema, run_id=ctx.run_id, try_number=ctx.try_number) as writer:
        for m in chunks:
            writer.adopt(m.files, part.stage_location(m.stage))
        manifest = writer.commit(
            window=ctx.window.to_json(),
            source_count=count,
            extra={
                "source_kind": ds.source.kind,
                "chunks": len(chunks),
                "plan_id": plan["plan_id"],
                "source_stats": {"api_calls": calls} if calls else {},
                "chunk_rows": [m.rows for m in chunks],
            },
        )
    log.info(
        "committed the extract of %s from %d chunks: %d rows (source says %s)",
        ds.name,
        len(chunks),
        manifest.rows,
        "n/a" if count is None else count,
    )
    return manifest


def transform(spec: PipelineSpec, ds: DatasetSpec, ctx: RunContext, progress: Any = None) -> Manifest:
    """Apply the dataset's transforms to the committed extract; commit ``transformed/``."""
    from bulksync.salts import get_salt
    from bulksync.transform.runner import TransformRunner, resolve_salts

    part = partition_for(spec, ds, ctx.window)
    upstream = "validate" if ds.quality else "extract"
    extracted = read_manifest(part, upstream)
    if not ds.transforms:
        with PartitionWriter(
            part, "transform", extracted.read_schema(), run_id=ctx.run_id, try_number=ctx.try_number
        ) as passthrough:
            passthrough.link(extracted.files, part.stage_location(upstream))
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

    bar = _Progress(f"transform {ds.name}", progress, extracted.rows)
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
    """Load the committed transform output into the target in one transaction, exactly once.

    The target records the partition it loaded (its manifest checksum) in its load ledger, in the
    load's own transaction: loading the same committed partition again (a task retried after its
    commit, a zombie beside its retry) is a no-op reported as ``already_loaded``; a new extract of
    the window replaces what the previous one wrote (see ``docs/loads.md``). A failed load is
    recorded in the audit tables and the run file before the error goes on to Airflow.
    """
    from bulksync.targets.registry import make_target

    part = partition_for(spec, ds, ctx.window)
    try:
        manifest = read_manifest(part, "transform")
        target = make_target(ds.target)
        bar = _Progress(f"load {ds.name}", progress, manifest.rows)

        def batches() -> Iterator[pa.RecordBatch]:
            for batch in iter_batches(part, manifest):
                bar.add(batch.num_rows)
                yield batch

        target.bind(part, manifest, ctx)
        try:
            result = target.load_partition(
                batches,
                manifest.read_schema(),
                window=ctx.window,
                run_id=ctx.run_id,
                ref=partition_ref(manifest, ctx, ds),
            )
        finally:
            target.close()
    except BaseException as exc:
        _record_failed_load(spec, ds, ctx, exc)
        raise
    if result.already_loaded:
        log.info(
            "load %s: nothing to do (%s): the ledger of %s says load %s wrote this partition (%d inserted, %d updated)",
            ds.name,
            result.noop_reason,
            result.table,
            result.load_id,
            result.inserted,
            result.updated,
        )
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


def partition_ref(manifest: Manifest, ctx: RunContext, ds: DatasetSpec | None = None) -> Any:
    """What the load ledger records of the committed output a load reads (its manifest checksum)."""
    import hashlib

    from bulksync.sources.registry import source_class
    from bulksync.targets.ledger import PartitionRef

    snapshot = True if ds is None else source_class(ds.source.kind).extract_is_window_snapshot

    return PartitionRef(
        tenant=manifest.tenant,
        pipeline=manifest.pipeline,
        dataset=manifest.dataset,
        interval=manifest.interval,
        manifest_sha256=hashlib.sha256(manifest.model_dump_json().encode("utf-8")).hexdigest(),
        committed_at=manifest.created_at,
        run_id=ctx.run_id,
        try_number=ctx.try_number,
        replaces_previous=snapshot,
    )


def _record_failed_load(spec: PipelineSpec, ds: DatasetSpec, ctx: RunContext, exc: BaseException) -> None:
    """Record a failed load in the audit tables, run file and report (never raises: the load's own
    error is what the task must fail with). A later successful try replaces the record."""
    if isinstance(exc, KeyboardInterrupt | SystemExit | GeneratorExit):
        return
    from bulksync.quality.publish import publish

    kind = "transient, will be retried" if getattr(exc, "terminal", True) is False else "terminal"
    error = f"load failed ({kind}): {type(exc).__name__}: {exc}"
    try:
        publish(spec, ds, run_record(spec, ds, ctx, "failed", error=error), event=None, context=ctx.airflow)
    except Exception as audit_exc:  # noqa: BLE001 - e.g. the target database is down: the log still says it
        log.warning("could not record the failed load of %s in the audit tables: %s", ds.name, audit_exc)


def validate(spec: PipelineSpec, ds: DatasetSpec, ctx: RunContext, progress: Any = None) -> dict[str, Any]:
    """Run the dataset's quality gate on the committed extract; commit ``validated/`` (+ ``quarantine/``).

    Raises:
        QualityGateError: error-severity expectations failed and the spec says ``on_failure: fail``
            (or aggregate ones failed under ``quarantine``): the load does not run.
    """
    from bulksync.quality.gate import QUALITY_FILE, QualityGateError, failure_message, run_gate, split_partition
    from bulksync.quality.publish import notify, publish

    if ds.quality is None:
        raise ValueError(f"dataset {ds.name} has no quality suite")
    part = partition_for(spec, ds, ctx.window)
    extracted = read_manifest(part, "extract")
    quality, quarantined, failing = run_gate(spec, ds, part, extracted, ctx.run_id)
    for outcome in quality.failed:
        log.warning("[%s] %s", outcome.severity, outcome.describe())
    _write_json(part.location().child(QUALITY_FILE), quality.model_dump(mode="json"))
    if quality.status == "failed":
        durations = {"extract": extracted.duration_seconds, "validate": quality.duration_seconds}
        record = run_record(
            spec, ds, ctx, "failed", quality=quality, error=failure_message(ds, quality), durations=durations
        )
        publish(spec, ds, record, event="failed", context=ctx.airflow)
        raise QualityGateError(failure_message(ds, quality))
    good, bad = split_partition(part, extracted, quarantined, failing, ctx.run_id, ctx.try_number)
    if quality.status in ("warn", "quarantined"):
        notify(spec, run_record(spec, ds, ctx, quality.status, quality=quality), quality.status, ctx.airflow)
    log.info(
        "quality %s for %s: %d rows checked, %d quarantined, %d passed on",
        quality.status,
        ds.name,
        quality.rows_checked,
        bad.rows if bad else 0,
        good.rows,
    )
    return {
        "dataset": ds.name,
        "status": quality.status,
        "rows_checked": quality.rows_checked,
        "rows_quarantined": bad.rows if bad else 0,
        "failed_expectations": len(quality.failed),
    }


def reconcile(spec: PipelineSpec, ds: DatasetSpec, ctx: RunContext, progress: Any = None) -> dict[str, Any]:
    """Check that the counts add up, record the run in the audit tables and the report.

    Raises:
        ReconciliationError: the counts do not add up (the message gives every number).
    """
    from bulksync.errors import TerminalError
    from bulksync.quality.gate import QUALITY_FILE
    from bulksync.quality.model import QualityResult
    from bulksync.quality.publish import publish
    from bulksync.quality.reconcile import reconcile as compare

    part = partition_for(spec, ds, ctx.window)
    extracted = read_manifest(part, "extract")
    quality = None
    quarantine = None
    if ds.quality is not None:
        quality = QualityResult.model_validate_json(part.location().child(QUALITY_FILE).read_text())
        if quality.rows_quarantined:
            quarantine = read_manifest(part, "quarantine")
    transformed = read_manifest(part, "transform")
    report = load_report(part)
    if report is None:
        from bulksync.errors import StagingError

        raise StagingError(f"no load report in {part.url}: the load task did not finish for this interval")
    rec = compare(extracted, quarantine, transformed, report)
    from bulksync.sources.registry import source_class

    checks = source_class(ds.source.kind).reconcile_problems(spec, ds, ctx.window, extracted)  # e.g. file ledger
    if checks:
        rec = rec.model_copy(update={"ok": False, "problems": [*rec.problems, *checks]})
    refused = int(report.get("failed", 0) or 0) + int(report.get("unprocessed", 0) or 0)
    status = (
        "failed"
        if not rec.ok
        else (
            "quarantined"
            if (quality and quality.status == "quarantined") or refused
            else "warn"
            if quality and quality.status == "warn"
            else "success"
        )
    )
    record = run_record(
        spec,
        ds,
        ctx,
        status,
        quality=quality,
        reconciliation=rec,
        inserted=int(report["inserted"]),
        updated=int(report["updated"]),
        deleted=int(report["deleted"]),
        failed=int(report.get("failed", 0) or 0),
        unprocessed=int(report.get("unprocessed", 0) or 0),
        writeback=(report.get("extra") or None) if ds.target.kind == "salesforce" else None,
        target=f"{ds.target.kind}:{ds.target.conn_id}/{report['table']}",
        durations={
            "extract": extracted.duration_seconds,
            "validate": quality.duration_seconds if quality else 0.0,
            "transform": transformed.duration_seconds,
            "load": float(report["duration_seconds"]),
        },
        error=None if rec.ok else "reconciliation mismatch: " + "; ".join(rec.problems),
    )
    publish(spec, ds, record, event=None if rec.ok else "mismatch", context=ctx.airflow)
    numbers = (
        f"source {rec.source_count if rec.source_count is not None else 'n/a'}, staged {rec.staged}, "
        f"loaded {rec.loaded}, quarantined {rec.quarantined}, rejected by transforms {rec.rejected}"
        + (f", deletions {rec.deletions}" if rec.deletions else "")
    )
    if rec.failed or rec.unprocessed:
        numbers += f", refused by the target {rec.failed}, unprocessed {rec.unprocessed}"
    if not rec.ok:
        raise TerminalError(
            f"reconciliation of {ds.name} failed: {'; '.join(rec.problems)} ({numbers}). "
            "Check the load report and the partition before rerunning"
        )
    log.info("reconciled %s: %s", ds.name, numbers)
    source_class(ds.source.kind).reconciled(spec, ds, ctx.window, ctx.run_id)  # e.g. file ledger: loaded
    return {"dataset": ds.name, "status": status, **rec.model_dump(exclude={"problems"})}


def run_record(spec: PipelineSpec, ds: DatasetSpec, ctx: RunContext, status: str, **fields: Any) -> Any:
    """A :class:`~bulksync.quality.model.RunRecord` of this dataset and run, finished now."""
    from bulksync.quality.model import RunRecord

    defaults = {"target": f"{ds.target.kind}:{ds.target.conn_id}/{ds.target.table}"}
    return RunRecord(
        tenant=spec.tenant,
        pipeline=spec.pipeline,
        dataset=ds.name,
        run_id=ctx.run_id,
        interval=ctx.window.key,
        window_start=ctx.window.start,
        window_end=ctx.window.end,
        status=status,
        finished_at=dt.datetime.now(dt.UTC),
        **{**defaults, **fields},
    )


def _write_json(path: Location, data: dict[str, Any]) -> None:
    """Write a small JSON file in one piece (temp file + rename locally, one upload on object stores).

    Raises:
        StagingSpaceError: the staging volume is full (transient); StagingError: it is not writable.
    """
    try:
        path.write_text(json.dumps(data, indent=2, default=str))
    except OSError as exc:
        from bulksync.staging.writer import staging_os_error

        raise staging_os_error(exc, f"writing {path.name}", path.url) from None


def _write_report(part: Partition, data: dict[str, Any]) -> None:
    """Record what the last load did beside the partition (read by ``bulksync`` summaries)."""
    _write_json(part.location().child(LOAD_REPORT), data)


def load_report(part: Partition) -> dict[str, Any] | None:
    """The last load's report of a partition, if any."""
    try:
        return dict(json.loads(part.location().child(LOAD_REPORT).read_text()))
    except FileNotFoundError:
        return None
