"""Loading one committed partition into Salesforce outside the DAG (``bulksync sf load``), optionally forced.

The same steps as :func:`bulksync.stages.load` — read the committed transform output, bind the
target to the partition, load, write the load report — with ``force``: an insert runs even though
the interval's ledger says one started or committed before (the engineer checked the org).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pyarrow as pa

from bulksync import stages
from bulksync.staging.reader import iter_batches, read_manifest
from bulksync.targets.base import LoadResult


def load_partition(spec: Any, ds: Any, ctx: stages.RunContext, *, force: bool = False) -> LoadResult:
    """Load the dataset's committed transform output for ``ctx.window`` into its Salesforce target."""
    from bulksync.targets.salesforce.target import SalesforceTarget

    part = stages.partition_for(spec, ds, ctx.window)
    manifest = read_manifest(part, "transform")
    target = SalesforceTarget(ds.target)
    target.force = force
    target.bind(part, manifest, ctx)

    def batches() -> Iterator[pa.RecordBatch]:
        return iter_batches(part, manifest)

    try:
        result = target.load(batches, manifest.read_schema(), window=ctx.window, run_id=ctx.run_id)
    finally:
        target.close()
    stages._write_report(
        part,
        {
            "run_id": ctx.run_id,
            "try_number": ctx.try_number,
            "target_kind": ds.target.kind,
            "conn_id": ds.target.conn_id,
            "forced": force,
            **result.to_json(),
        },
    )
    return result


def dry_run(spec: Any, ds: Any, ctx: stages.RunContext) -> dict[str, Any]:
    """Stage the window and check it against the org without writing (the migration form's dry run).

    Bulk API 2.0 has no validate-only mode, so this is the full check against describe: the spec
    (fields, writability, keys, relationships, required fields), the limits, and every record
    (lengths, restricted picklists, required values, repeated keys, record size). Nothing is sent.

    Returns:
        ``source_rows``, ``extracted``, ``would_send``, ``invalid`` and the first ``problems``.
    """
    from bulksync.targets.salesforce.encode import Precheck, header_bytes
    from bulksync.targets.salesforce.target import SalesforceTarget

    extracted = stages.extract_all(spec, ds, ctx)
    if ds.quality is not None:
        stages.validate(spec, ds, ctx)
    stages.transform(spec, ds, ctx)
    part = stages.partition_for(spec, ds, ctx.window)
    manifest = read_manifest(part, "transform")
    target = SalesforceTarget(ds.target)
    try:
        plan = target.plan(manifest.read_schema())
        check = Precheck(plan, max_record_bytes=ds.target.max_bytes_per_job - len(header_bytes(plan)))
        for batch in iter_batches(part, manifest):
            check.add(batch)
        invalid = check.finish(lambda: target._keys(lambda: iter_batches(part, manifest), plan))
        target.check_limits(int(check.rows - invalid.sum()))
    finally:
        target.close()
    return {
        "source_rows": extracted.source_count if extracted.source_count is not None else extracted.rows,
        "extracted": extracted.rows,
        "would_send": int(check.rows - invalid.sum()),
        "invalid": int(invalid.sum()),
        "problems": [p.describe() for p in check.problems[:20]],
        "object": plan.object,
        "operation": plan.operation,
        "columns": plan.headers,
    }
