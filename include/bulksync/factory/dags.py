"""Build Airflow DAGs from pipeline specs.

Parse time stays cheap: this reads YAML and builds operators; it opens no connection, touches no
network or database and imports none of the engine (pandas, pyarrow, GX) beyond what specs need.
A broken spec raises :class:`~bulksync.errors.SpecError`, so the UI shows an import error naming
the spec file, field path and problem.

Each dataset is a TaskGroup ``extract >> [validate >>] transform >> load >> reconcile``; ``validate``
is there when the dataset names a quality suite, which is checked at parse time (without importing
Great Expectations) so a broken suite is an import error naming the suite file.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, TaskGroup

from bulksync.errors import SpecError
from bulksync.factory.assets import attach_assets
from bulksync.factory.callbacks import deadline_alert, on_task_failure, on_task_retry
from bulksync.operators.file_drop import wait_task
from bulksync.operators.stages import (
    BulksyncStageOperator,
    CommitExtractOperator,
    ExtractOperator,
    LoadOperator,
    PlanExtractOperator,
    ReconcileOperator,
    TransformOperator,
    ValidateOperator,
)
from bulksync.spec.loader import load_specs
from bulksync.spec.models import DatasetSpec, PipelineSpec
from bulksync.spec.sources import is_chunked, pool_of


def stage_chain(ds: DatasetSpec) -> list[type[BulksyncStageOperator]]:
    """The tasks of a dataset: extract [→ validate] → transform → load → reconcile.

    A chunked dataset extracts in three steps: plan_extract → extract (mapped over the chunks) →
    commit_extract.
    """
    chain: list[type[BulksyncStageOperator]] = (
        [PlanExtractOperator, ExtractOperator, CommitExtractOperator] if is_chunked(ds.source) else [ExtractOperator]
    )
    if ds.quality is not None:
        chain.append(ValidateOperator)
    return [*chain, TransformOperator, LoadOperator, ReconcileOperator]


PRESET_CRONS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@quarterly": "0 0 1 */3 *",
    "@yearly": "0 0 1 1 *",
}


def timetable(spec: PipelineSpec) -> Any:
    """A data-interval timetable: each run covers ``[previous tick, this tick)``.

    Airflow 3 turns a bare cron string into a trigger timetable whose data interval is empty;
    bulksync's windows *are* data intervals, so cron schedules always get
    ``CronDataIntervalTimetable``.
    """
    if spec.schedule is None or spec.schedule == "@once":
        return spec.schedule
    from airflow.sdk import CronDataIntervalTimetable

    return CronDataIntervalTimetable(PRESET_CRONS.get(spec.schedule, spec.schedule), timezone=spec.timezone)


def default_args(spec: PipelineSpec) -> dict[str, Any]:
    """Task defaults from the spec: owner, retries with exponential backoff, timeouts."""
    t = spec.tasks
    return {
        "owner": spec.owner,
        "retries": t.retries,
        "retry_delay": dt.timedelta(minutes=t.retry_delay_minutes),
        "retry_exponential_backoff": 2.0 if t.retry_exponential_backoff else 0,
        "max_retry_delay": dt.timedelta(minutes=t.max_retry_delay_minutes),
        "execution_timeout": dt.timedelta(minutes=t.execution_timeout_minutes),
        "on_failure_callback": on_task_failure,
        "on_retry_callback": on_task_retry,
    }


def _doc(spec: PipelineSpec) -> str:
    lines = [
        f"# {spec.tenant} / {spec.pipeline}",
        "",
        spec.description or "",
        "",
        "| dataset | source | target | mode |",
        "|---|---|---|---|",
    ]
    for ds in spec.datasets:
        tgt = ds.target
        lines.append(f"| {ds.name} | {ds.source.kind} | {tgt.kind}:{tgt.conn_id}/{tgt.table} | {tgt.mode} |")
    return "\n".join(lines)


def build_dag(spec: PipelineSpec) -> DAG:
    """The DAG of one pipeline spec."""
    spec_json = spec.model_dump(mode="json")
    dag = DAG(
        dag_id=spec.dag_id,
        schedule=timetable(spec),
        start_date=spec.start_datetime(),
        catchup=spec.catchup,
        max_active_runs=spec.max_active_runs,
        dagrun_timeout=dt.timedelta(minutes=spec.dagrun_timeout_minutes) if spec.dagrun_timeout_minutes else None,
        default_args=default_args(spec),
        tags=sorted({"bulksync", f"tenant:{spec.tenant}", *spec.tags}),
        description=(spec.description or f"bulksync pipeline {spec.pipeline} of {spec.tenant}")[:200],
        doc_md=_doc(spec),
        deadline=deadline_alert(spec),
    )
    with dag:
        for ds in spec.datasets:
            with TaskGroup(group_id=ds.name, tooltip=f"{ds.source.kind} → {ds.target.kind}:{ds.target.table}"):
                _dataset_tasks(spec_json, ds)
    attach_assets(dag, spec)
    return dag


def _dataset_tasks(spec_json: dict[str, Any], ds: DatasetSpec) -> None:
    """Chain the tasks of one dataset inside its TaskGroup (the extract maps over chunks when chunked)."""
    pool = pool_of(ds.source)
    source_pool: dict[str, Any] = {"pool": pool} if pool else {}
    previous: Any = wait_task(ds, spec_json)  # file drops: wait for complete files first
    for op in stage_chain(ds):
        kwargs: dict[str, Any] = {"task_id": op.stage, "spec": spec_json, "dataset": ds.name}
        if op in (PlanExtractOperator, ExtractOperator):
            kwargs.update(source_pool)
        if op is LoadOperator and pool_of(ds.target):  # a write-back: its jobs count against the org's pool
            kwargs.update(pool=pool_of(ds.target), pool_slots=int(getattr(ds.target, "max_parallel_jobs", 1)))
        if op is ExtractOperator and isinstance(previous, PlanExtractOperator):
            task: Any = ExtractOperator.partial(**kwargs).expand(chunk=previous.output)
        else:
            task = op(**kwargs)
        if previous is not None:
            previous >> task
        previous = task


def check_suites(specs: list[PipelineSpec]) -> None:
    """Refuse specs whose quality suites are missing or broken (one error listing all of them)."""
    from bulksync.quality.suites import validate_suite_file

    problems: list[tuple[str, str, str]] = []
    for name in sorted({ds.quality.suite for spec in specs for ds in spec.datasets if ds.quality}):
        try:
            validate_suite_file(name)
        except SpecError as exc:
            problems.extend(exc.problems)
    if problems:
        raise SpecError(problems)


def build_dags(folder: str | Path, namespace: dict[str, Any] | None = None) -> dict[str, DAG]:
    """Build one DAG per spec file of ``folder``; put them into ``namespace`` (a module's globals)."""
    specs = load_specs(folder)
    check_suites(specs)
    dags = {spec.dag_id: build_dag(spec) for spec in specs}
    if namespace is not None:
        namespace.update(dags)
    return dags
