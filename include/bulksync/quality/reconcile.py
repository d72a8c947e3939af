"""Reconciliation: the counts of one dataset in one run must add up.

``source count = staged`` (when the source reports a count) and
``staged = loaded + deletions + failed + unprocessed + quarantined + rejected``, where ``loaded``
is inserted + updated (a merge that updates a row still loaded it), ``deletions`` are staged rows
flagged as deleted that were applied rather than written, ``failed`` / ``unprocessed`` are records a
write-back target (Salesforce) refused or never processed (quarantined beside the partition with
its error; 0 for SQL targets), ``quarantined`` are rows the quality gate set aside and ``rejected``
are rows transforms dropped on purpose (filter, dedupe), as recorded in the transform manifest.
Labels: :data:`bulksync.quality.model.COUNT_LABELS`.
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
    loaded = int(load_report["inserted"]) + int(load_report["updated"])
    deletions = int(load_report.get("applied_deletes", 0))  # staged with a delete flag: applied, not written
    failed = int(load_report.get("failed", 0) or 0)
    unprocessed = int(load_report.get("unprocessed", 0) or 0)
    problems = []
    if extracted.source_count is not None and extracted.source_count != staged:
        problems.append(f"the source reported {extracted.source_count} rows but {staged} were staged")
    if staged != loaded + deletions + failed + unprocessed + quarantined + rejected:
        applied = f" + deletions {deletions}" if deletions else ""
        target = f" + failed {failed} + unprocessed {unprocessed}" if failed or unprocessed else ""
        problems.append(
            f"staged {staged} != loaded {loaded}{applied}{target} + quarantined {quarantined} "
            f"+ rejected by transforms {rejected}"
        )
    if rows_in != staged - quarantined:
        problems.append(f"the transform read {rows_in} rows but {staged - quarantined} passed the gate")
    return Reconciliation(
        source_count=extracted.source_count,
        staged=staged,
        quarantined=quarantined,
        rejected=rejected,
        loaded=loaded,
        deletions=deletions,
        failed=failed,
        unprocessed=unprocessed,
        ok=not problems,
        problems=problems,
    )
