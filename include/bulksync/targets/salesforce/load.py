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
