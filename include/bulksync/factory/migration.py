"""The ad-hoc migration DAG: triggered from the UI form, one mapped task per slice.

``check_params`` → ``prepare_targets`` → ``migrate`` (mapped over the slices) → ``summary``.
The form offers the pipelines and datasets of the valid specs as choices (``examples``, so a run
triggered through the API with a wrong name still starts and fails at ``check_params`` naming the
problem, before anything is extracted). Parse time reads specs only; an invalid spec is left out
of the choices (and listed in the DAG's docs) rather than taking the migration DAG down with it.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, Param, task

from bulksync.factory.dag_files import load_valid_specs
from bulksync.migration import SLICES, dataset_choices, pipeline_choices

DAG_ID = "bulksync__migration"


def params(choices: list[str], datasets: list[str]) -> dict[str, Param]:
    """The form: pipeline, datasets, dates or full history, slice, load mode, target override, dry run."""
    return {
        "pipeline": Param(
            choices[0] if choices else "",
            type="string",
            title="Pipeline",
            description="The pipeline (tenant__pipeline) whose datasets are migrated.",
            examples=choices,
        ),
        "datasets": Param(
            [],
            type="array",
            title="Datasets",
            description="Datasets of the pipeline to migrate; empty: all of them.",
            examples=datasets,
        ),
        "from_date": Param(
            None, type=["null", "string"], format="date", title="From", description="First day (inclusive)."
        ),
        "to_date": Param(None, type=["null", "string"], format="date", title="To", description="Last day (exclusive)."),
        "full_history": Param(
            False,
            type="boolean",
            title="Full history",
            description="Everything the source holds: before From (or the pipeline's start date) up to now.",
        ),
        "slice": Param("month", enum=list(SLICES), title="Slice", description="Length of each mapped task's interval."),
        "load_mode": Param(
            "merge",
            enum=["merge", "replace"],
            title="Load mode",
            description="merge: upsert on the keys. replace: empty the target, then load every slice.",
        ),
        "target_table": Param(
            None,
            type=["null", "string"],
            title="Target table",
            description="Load into this table instead (one dataset only).",
        ),
        "target_suffix": Param(
            None,
            type=["null", "string"],
            title="Target table suffix",
            description="Load into <table><suffix>, e.g. _migration.",
        ),
        "dry_run": Param(False, type="boolean", title="Dry run", description="Count the source rows; load nothing."),
    }


def build_migration_dag(folder: str | Path) -> DAG:
    """The ``bulksync__migration`` DAG over the specs of ``folder``."""
    folder = str(folder)
    specs, problems = load_valid_specs(folder)
    doc = __doc__ or ""
    if problems:
        doc += "\n\n**Specs left out (invalid; see the import errors):**\n\n" + "\n".join(
            f"- `{Path(file).name}`: {where + ': ' if where else ''}{msg}" for file, where, msg in problems
        )
    with DAG(
        dag_id=DAG_ID,
        schedule=None,
        start_date=dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
        catchup=False,
        params=params(pipeline_choices(specs), dataset_choices(specs)),
        tags=["bulksync", "migration"],
        description="Ad-hoc migration of a pipeline's datasets over a date range (trigger with the form).",
        doc_md=doc,
        default_args={
            "owner": "bulksync",
            "retries": 2,
            "retry_delay": dt.timedelta(minutes=1),
            "execution_timeout": dt.timedelta(hours=6),
        },
        max_active_tasks=4,
        render_template_as_native_obj=True,
    ) as dag:

        @task(retries=0)
        def check_params(**context: Any) -> list[dict[str, Any]]:
            return _run("plan", folder, context)

        @task
        def prepare_targets(slices: list[dict[str, Any]], **context: Any) -> list[str]:
            return _run("prepare", folder, context, slices)

        @task(map_index_template="{{ task.op_kwargs['piece']['dataset'] }} {{ task.op_kwargs['piece']['index'] }}")
        def migrate(piece: dict[str, Any], **context: Any) -> dict[str, Any]:
            return _run("slice", folder, context, piece)

        @task
        def summary(results: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
            from bulksync.migration import summarize

            return summarize(list(results))

        slices = check_params()
        prepared = prepare_targets(slices)  # type: ignore[arg-type]
        results = migrate.expand(piece=slices)
        prepared >> results
        summary(results)  # type: ignore[arg-type]
    return dag


def _run(step: str, folder: str, context: Any, arg: Any = None) -> Any:
    """Call :mod:`bulksync.migration`; terminal errors fail the task at once, naming the problem."""
    from airflow.sdk.exceptions import AirflowFailException

    from bulksync import migration
    from bulksync.errors import BulksyncError, SpecError
    from bulksync.operators.task_logs import quiet_third_party_loggers

    quiet_third_party_loggers()
    specs, problems = load_valid_specs(folder)
    req = migration.MigrationRequest.from_params(dict(context["params"]))
    try:
        broken = [p for p in problems if Path(p[0]).stem in (req.pipeline, req.pipeline.split("__")[-1])]
        if broken and not any(req.pipeline in (s.dag_id, s.pipeline) for s in specs):
            raise SpecError(broken)
        if step == "plan":
            slices = migration.plan(specs, req)
            if not req.dry_run:  # everything the slices will need, before any of them starts
                from bulksync.preflight import require

                spec = next(s for s in specs if req.pipeline in (s.dag_id, s.pipeline))
                require(spec, [spec.dataset(n) for n in sorted({str(p["dataset"]) for p in slices})])
            return slices
        if step == "prepare":
            return migration.prepare_targets(specs, req, list(arg))
        ti = context.get("ti")
        return migration.run_slice(specs, req, dict(arg), str(context["run_id"]), getattr(ti, "try_number", None))
    except BulksyncError as exc:
        if exc.terminal:
            raise AirflowFailException(f"{type(exc).__name__}: {exc}") from None
        raise
