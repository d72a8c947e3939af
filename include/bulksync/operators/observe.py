"""What every stage task does after its stage succeeded: metrics, asset counts, empty-interval notices.

Kept out of the operators so they stay thin; each part never fails the task.
"""

from __future__ import annotations

import logging
from typing import Any

from bulksync.spec.models import DatasetSpec, PipelineSpec

log = logging.getLogger(__name__)


def after_stage(
    task: Any, spec: PipelineSpec, ds: DatasetSpec, context: Any, result: Any, out: Any, seconds: float
) -> None:
    """Emit the stage's metrics, put the counts into the task's asset events, say when nothing arrived.

    Args:
        task: the operator (its ``stage`` and ``outlets``).
        spec: the pipeline spec.
        ds: the dataset.
        context: the Airflow task context.
        result: what the stage function returned (manifest, load result or dict).
        out: the task's XCom value (a dict for single results).
        seconds: the stage's duration.
    """
    if not isinstance(out, dict):
        return
    from bulksync import metrics
    from bulksync.factory.assets import add_counts_to_events

    metrics.record_stage(spec, ds, task.stage, out, seconds, result)
    add_counts_to_events(task, context, out)
    empty_interval_notice(ds, task.stage, out)


def empty_interval_notice(ds: DatasetSpec, stage: str, out: dict[str, Any]) -> str | None:
    """Log (and return) a warning when an interval brought no rows: it loads nothing, and says so."""
    message = None
    whole_extract = stage in ("extract", "commit_extract") and out.get("stage") == "extract"  # not one chunk
    if whole_extract and out.get("rows") == 0:
        message = (
            f"{ds.name}: no source rows in interval {out.get('interval')} (before the source's first record, or "
            "nothing changed): this interval loads nothing"
        )
    elif stage == "reconcile" and out.get("staged") == 0:
        message = f"{ds.name}: interval had no source rows; nothing was loaded (reconciled: 0 staged, 0 loaded)"
    if message:
        log.warning(message)
    return message
