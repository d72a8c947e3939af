"""Re-send only the records a write-back quarantined (``bulksync sf retry``), after the cause was fixed.

Reads the partition's ``quarantine/target/`` (failed, unprocessed and describe-refused records),
sends them through the same target (same spec, checks, jobs and accounting), and replaces the
quarantine with what still fails. The load report adds the retry's successes to the original
load's counts, and the dataset is reconciled again, so the audit tables, the run record and the
data-quality report show the interval as it now stands.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from bulksync import stages
from bulksync.errors import StagingError, TerminalError
from bulksync.staging.partition import Window
from bulksync.staging.reader import iter_batches, read_manifest
from bulksync.targets.salesforce import accounting as acc

log = logging.getLogger(__name__)


def window_from_key(key: str) -> Window:
    """A window from a partition key (``20260101T000000Z_20260102T000000Z``, ``full``, ``open`` bounds)
    or from ``START/END`` ISO dates (``2026-01-01/2026-01-02``, UTC)."""

    def parse(value: str) -> dt.datetime | None:
        if value in ("", "open"):
            return None
        for fmt in ("%Y%m%dT%H%M%SZ", "%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%d"):
            try:
                parsed = dt.datetime.strptime(value, fmt)
            except ValueError:
                continue
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
        raise ValueError(value)

    if key == "full":
        return Window()
    start, sep, end = key.partition("/") if "/" in key else key.partition("_")
    try:
        if not sep:
            raise ValueError(key)
        return Window(parse(start), parse(end))
    except ValueError:
        raise TerminalError(
            f"--window {key!r} is not a window: give the partition key (e.g. 20260101T000000Z_20260102T000000Z, or "
            "full) as `bulksync summary` shows it, or START/END dates (2026-01-01/2026-01-02)"
        ) from None


@dataclass
class RetryOutcome:
    """What a retry did."""

    resent: int
    succeeded: int
    failed: int
    unprocessed: int
    errors_by_code: list[dict[str, Any]]
    reconciliation: dict[str, Any]


def retry_quarantined(spec: Any, ds: Any, window: Window) -> RetryOutcome:
    """Re-send the quarantined records of one interval; return the counts.

    Raises:
        StagingError: the interval has no write-back quarantine (nothing was loaded, or not into Salesforce).
    """
    from bulksync.targets.salesforce.target import SalesforceTarget

    if ds.target.kind != "salesforce":
        raise TerminalError(f"dataset {ds.name} loads into a {ds.target.kind} target, not Salesforce: nothing to retry")
    part = stages.partition_for(spec, ds, window)
    report = stages.load_report(part)
    if report is None:
        raise StagingError(f"no load report in {part.url}: the interval was never loaded, so there is nothing to retry")
    quarantine = read_manifest(part, acc.QUARANTINE_STAGE)
    staged = read_manifest(part, "transform").read_schema()
    if quarantine.rows == 0:
        log.info("retry %s %s: nothing quarantined, nothing to send", ds.name, window.key)
    rows = np.fromiter(_rows(part, quarantine), dtype=np.int64)

    def batches() -> Iterator[pa.RecordBatch]:
        for batch in iter_batches(part, quarantine):
            yield pa.RecordBatch.from_arrays([batch.column(n) for n in staged.names], schema=staged)

    target = SalesforceTarget(ds.target)
    target.retrying = True
    target.row_map = rows
    target.bind(part, None, None)
    run_id = str(report.get("run_id") or f"retry__{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}")
    try:
        result = target.load(batches, staged, window=window, run_id=run_id)
    finally:
        target.close()
    extra = dict(report.get("extra") or {})
    succeeded = result.inserted + result.updated + result.applied_deletes
    retry = {"at": dt.datetime.now(dt.UTC).isoformat(), "resent": quarantine.rows, "succeeded": succeeded}
    retries = [*extra.get("retries", []), retry]
    merged = {
        **report,
        "inserted": int(report["inserted"]) + result.inserted,
        "updated": int(report["updated"]) + result.updated,
        "deleted": int(report.get("deleted", 0)) + result.deleted,
        "applied_deletes": int(report.get("applied_deletes", 0)) + result.applied_deletes,
        "failed": result.failed,
        "unprocessed": result.unprocessed,
        "extra": {
            **extra,
            "jobs": [*extra.get("jobs", []), *result.extra.get("jobs", [])],
            "succeeded": int(extra.get("succeeded", 0)) + int(result.extra.get("succeeded", 0)),
            "failed": result.failed,
            "unprocessed": result.unprocessed,
            "errors_by_code": result.extra.get("errors_by_code", []),
            "retries": retries,
        },
    }
    stages._write_report(part, merged)
    ctx = stages.RunContext(run_id=run_id, window=window)
    rec = stages.reconcile(spec, ds, ctx)
    log.info(
        "retry of %s %s: %d records re-sent, %d succeeded, %d still failed, %d unprocessed",
        ds.name,
        window.key,
        quarantine.rows,
        result.inserted + result.updated + result.applied_deletes,
        result.failed,
        result.unprocessed,
    )
    return RetryOutcome(
        quarantine.rows,
        result.inserted + result.updated + result.applied_deletes,
        result.failed,
        result.unprocessed,
        list(result.extra.get("errors_by_code", [])),
        rec,
    )


def _rows(part: Any, manifest: Any) -> Iterator[int]:
    for batch in iter_batches(part, manifest, columns=[acc.ROW]):
        yield from (int(v) for v in batch.column(0).to_pylist())
