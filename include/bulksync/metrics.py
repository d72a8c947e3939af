"""Per-dataset metrics through Airflow's metrics layer (StatsD, Datadog or OpenTelemetry, as configured).

Names (under Airflow's ``[metrics] statsd_prefix``, ``airflow`` by default), one set per dataset:

==============================================================  =======  ===========================================
name                                                            type     value
==============================================================  =======  ===========================================
``bulksync.{tenant}.{pipeline}.{dataset}.rows_extracted``       counter  rows committed by the extract
``bulksync.{tenant}.{pipeline}.{dataset}.bytes_staged``         counter  Parquet bytes committed by the extract
``bulksync.{tenant}.{pipeline}.{dataset}.api_calls``            counter  source API calls (sources that count them)
``bulksync.{tenant}.{pipeline}.{dataset}.rows_quarantined``     counter  rows set aside by the quality gate
``bulksync.{tenant}.{pipeline}.{dataset}.rows_loaded``          counter  rows written to the target
``bulksync.{tenant}.{pipeline}.{dataset}.{stage}.duration``     timer    milliseconds of the stage's task
==============================================================  =======  ===========================================

Every metric also carries the tags ``tenant``, ``pipeline`` and ``dataset`` (used by OpenTelemetry,
Datadog and StatsD with InfluxDB tags). Metrics never fail a task: a backend error is logged.
"""

from __future__ import annotations

import logging
from typing import Any

from bulksync.spec.models import DatasetSpec, PipelineSpec

log = logging.getLogger(__name__)

PREFIX = "bulksync"
# result key of each stage → metric name
COUNTERS: dict[str, dict[str, str]] = {
    "extract": {"rows": "rows_extracted", "bytes": "bytes_staged", "api_calls": "api_calls"},
    "validate": {"rows_quarantined": "rows_quarantined"},
    "load": {"rows": "rows_loaded"},
}


def metric_name(spec: PipelineSpec, ds: DatasetSpec, metric: str) -> str:
    """``bulksync.{tenant}.{pipeline}.{dataset}.{metric}`` (tenant, pipeline and dataset are slugs)."""
    return f"{PREFIX}.{spec.tenant}.{spec.pipeline}.{ds.name}.{metric}"


def stage_metrics(stage: str, result: dict[str, Any], raw: Any = None) -> dict[str, int]:
    """The counters a stage's result reports, by metric suffix (only numbers present in it).

    Args:
        stage: the stage name.
        result: the stage's XCom result dict.
        raw: the stage's own result object; an extract manifest's ``extra.source_stats.api_calls``
            is read from it.
    """
    values = dict(result)
    source_stats = (getattr(raw, "extra", None) or {}).get("source_stats") or {}
    if isinstance(source_stats, dict) and "api_calls" in source_stats:
        values.setdefault("api_calls", source_stats["api_calls"])
    out: dict[str, int] = {}
    for key, metric in COUNTERS.get(stage, {}).items():
        value = values.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            out[metric] = value
    return out


def _stats() -> Any:
    """The task SDK's Stats module, initialised from ``[metrics]`` when nothing did it yet.

    Task processes started by a worker are initialised by Airflow's task runner; ``airflow dags test``
    and ``bulksync run`` are not, so the first metric initialises the same backend from the config.
    """
    from airflow.sdk._shared.observability.metrics import stats as shared
    from airflow.sdk.observability import stats

    if getattr(shared, "_factory", None) is None:
        from airflow.sdk.configuration import conf
        from airflow.sdk.observability.metrics import stats_utils

        stats.initialize(
            factory=stats_utils.get_stats_factory(),
            export_legacy_names=conf.getboolean("metrics", "legacy_names_on", fallback=True),
        )
    return stats


def record_stage(
    spec: PipelineSpec, ds: DatasetSpec, stage: str, result: dict[str, Any], seconds: float, raw: Any = None
) -> None:
    """Emit the counters of one finished stage and its duration; never raises.

    Args:
        spec: the pipeline spec.
        ds: the dataset.
        stage: ``extract``, ``validate``, ``transform``, ``load`` or ``reconcile``.
        result: the stage's XCom result (manifest summary, load result or gate summary).
        seconds: wall-clock duration of the stage.
        raw: the stage's own result object (see :func:`stage_metrics`).
    """
    try:
        stats = _stats()
        tags = {"tenant": spec.tenant, "pipeline": spec.pipeline, "dataset": ds.name}
        counters = stage_metrics(stage, result, raw)
        for metric, value in counters.items():
            stats.incr(metric_name(spec, ds, metric), count=value, tags=tags)
        stats.timing(metric_name(spec, ds, f"{stage}.duration"), seconds * 1000.0, tags=tags)
        log.info(
            "metrics of %s %s: %s, %.1f s",
            ds.name,
            stage,
            ", ".join(f"{k}={v}" for k, v in counters.items()) or "no counters",
            seconds,
        )
    except Exception as exc:  # noqa: BLE001 - metrics must never fail the data task
        log.warning("could not emit metrics of %s.%s %s: %s", spec.dag_id, ds.name, stage, exc)
