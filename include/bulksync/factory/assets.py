"""Airflow Assets: each dataset's reconciled load emits ``bulksync://{tenant}/{pipeline}/{dataset}``.

The asset is an outlet of the dataset's ``reconcile`` task, the last one of its TaskGroup: the event
is emitted only once the load is in the target and its counts add up. The event's ``extra`` carries
the run's counts, so a downstream DAG scheduled on the asset can read what arrived::

    from airflow.sdk import DAG, Asset

    with DAG("acme_reporting", schedule=[Asset("bulksync://acme/nightly/orders")]):
        ...

and inside a task: ``context["triggering_asset_events"][asset][-1].extra["loaded"]``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from airflow.sdk import DAG, Asset

from bulksync.spec.models import DatasetSpec, PipelineSpec

log = logging.getLogger(__name__)

SCHEME = "bulksync"
EMITTING_STAGE = "reconcile"
# keys of the reconcile result copied into the asset event's extra: the counts of
# bulksync.quality.model.COUNT_LABELS (the names every surface uses) and the status
COUNT_KEYS = ("source_count", "staged", "quarantined", "rejected", "loaded", "deletions", "status")


def asset_uri(tenant: str, pipeline: str, dataset: str) -> str:
    """``bulksync://{tenant}/{pipeline}/{dataset}``."""
    return f"{SCHEME}://{tenant}/{pipeline}/{dataset}"


def dataset_asset(spec: PipelineSpec, ds: DatasetSpec) -> Asset:
    """The Asset a dataset's successful load emits (name = URI, group ``bulksync``)."""
    uri = asset_uri(spec.tenant, spec.pipeline, ds.name)
    return Asset(uri=uri, name=uri, group=SCHEME)


def attach_assets(dag: DAG, spec: PipelineSpec) -> None:
    """Make each dataset's ``reconcile`` task an outlet of the dataset's asset."""
    for ds in spec.datasets:
        task_id = f"{ds.name}.{EMITTING_STAGE}"
        if task_id in dag.task_dict:
            dag.task_dict[task_id].outlets = [dataset_asset(spec, ds)]


def event_extra(result: Mapping[str, Any], context: Mapping[str, Any]) -> dict[str, Any]:
    """The asset event's extra: the reconciled counts plus the run and its data interval."""
    extra: dict[str, Any] = {k: result[k] for k in COUNT_KEYS if k in result}
    extra["dataset"] = result.get("dataset")
    extra["run_id"] = str(context.get("run_id", ""))
    for key in ("data_interval_start", "data_interval_end"):
        value = context.get(key)
        extra[key] = value.isoformat() if value is not None else None
    return extra


def add_counts_to_events(task: Any, context: Mapping[str, Any], result: Mapping[str, Any]) -> None:
    """Put the run's counts into the extra of the task's outlet events (no-op without outlets)."""
    outlets = [o for o in (getattr(task, "outlets", None) or []) if isinstance(o, Asset)]
    events = context.get("outlet_events")
    if not outlets or events is None:
        return
    extra = event_extra(result, context)
    for asset in outlets:
        events[asset].extra.update(extra)
    log.info("asset %s: event with %s", ", ".join(a.uri for a in outlets), extra)
