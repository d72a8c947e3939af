"""Reconciliation: the counts of one dataset in one run must add up.

``source count = staged`` (when the source reports a count) and
``staged = loaded + failed + unprocessed + quarantined + rejected``, where ``loaded`` is inserted +
updated (a merge that updates a row still loaded it), ``failed`` / ``unprocessed`` are records a
write-back target (Salesforce) refused or never processed (quarantined beside the partition with
its error; 0 for SQL targets), ``quarantined`` are rows the quality gate set aside and ``rejected``
are rows transforms dropped on purpose (filter, dedupe), as recorded in the transform manifest.
"""

from __future__ import annotations

from typing import Any

from bulksync.quality.model import Reconciliation
from bulksync.staging.manifest import Manifest


def reconcile(
    extracted: Manifest, quarantine: Manifest | None, transformed: Manifest, load_report: dict[str, Any]
) -> Reconciliation:
    """Compare the counts every stage recorded."""
    staged = extracted.rows
    quarantined = quarantine.rows if quarantine else 0
    rows_in = int(transformed.extra.get("rows_in", transformed.rows))
    rejected = rows_in - transformed.rows
    # deletions staged with a delete flag were applied, not inserted: they count as loaded
    loaded = int(load_report["inserted"]) + int(load_report["updated"]) + int(load_report.get("applied_deletes", 0))
    failed = int(load_report.get("failed", 0) or 0)
    unprocessed = int(load_report.get("unprocessed", 0) or 0)
    problems = []
    if extracted.source_count is not None and extracted.source_count != staged:
        problems.append(f"the source reported {extracted.source_count} rows but {staged} were staged")
    if staged != loaded + failed + unprocessed + quarantined + rejected:
        target = f" + failed {failed} + unprocessed {unprocessed}" if failed or unprocessed else ""
        problems.append(
            f"staged {staged} != loaded {loaded}{target} + quarantined {quarantined} + rejected by transforms "
            f"{rejected}"
        )
    if rows_in != staged - quarantined:
        problems.append(f"the transform read {rows_in} rows but {staged - quarantined} passed the gate")
    return Reconciliation(
        source_count=extracted.source_count,
        staged=staged,
        quarantined=quarantined,
        rejected=rejected,
        loaded=loaded,
        failed=failed,
        unprocessed=unprocessed,
        ok=not problems,
        problems=problems,
    )
