"""Operators for the stages of one dataset: extract, transform, load.

Each is a few lines: it rebuilds the spec it was given at parse time, works out the run's window
from the data interval, calls the function of :mod:`bulksync.stages` named like its ``stage``
(imported when the task runs, so parsing a DAG file loads no pyarrow), and returns a small summary
for XCom.
Terminal bulksync errors fail the task at once (no retries); everything else is retried.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from bulksync.errors import BulksyncError
from bulksync.operators.observe import after_stage
from bulksync.operators.task_logs import quiet_third_party_loggers, task_process_age
from bulksync.spec.models import PipelineSpec

if TYPE_CHECKING:
    from bulksync.stages import RunContext

log = logging.getLogger(__name__)


def run_context(context: Any) -> RunContext:
    """The bulksync run context of an Airflow task: run id, data interval and try number."""
    start: dt.datetime | None = context.get("data_interval_start")
    end: dt.datetime | None = context.get("data_interval_end")
    ti = context.get("ti")
    from bulksync.stages import RunContext  # the engine (pyarrow) loads in tasks, not at DAG parsing
    from bulksync.staging.partition import Window

    return RunContext(
        run_id=str(context["run_id"]),
        window=Window(start, end),
        try_number=getattr(ti, "try_number", None),
        airflow=context,
    )


class BulksyncStageOperator(BaseOperator):
    """Run one bulksync stage of one dataset.

    Args:
        spec: the pipeline spec as JSON-able dict (``PipelineSpec.model_dump(mode="json")``).
        dataset: the dataset name.
    """

    stage: ClassVar[str]
    ui_color = "#e8f4fd"

    def __init__(self, *, spec: dict[str, Any], dataset: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.spec = spec
        self.dataset = dataset

    def execute(self, context: Any) -> Any:
        quiet_third_party_loggers()
        age = task_process_age()
        spec = PipelineSpec.model_validate(self.spec)
        started = time.monotonic()
        try:
            if self.checks_first:
                from bulksync.preflight import require

                require(spec, [spec.dataset(self.dataset)])
            from bulksync.staging.retention import in_use

            ctx = run_context(context)
            with in_use(spec, self.dataset, ctx.window.key, ctx.run_id):  # `bulksync staging prune` keeps it
                result = self.run_stage(spec, context)
        except BulksyncError as exc:
            if exc.terminal:
                raise AirflowFailException(f"{type(exc).__name__}: {exc}") from None
            raise
        if isinstance(result, dict | list):
            out = result
        else:
            out = result.summary() if hasattr(result, "summary") else result.to_json()
        seconds = time.monotonic() - started
        after_stage(self, spec, spec.dataset(self.dataset), context, result, out, seconds)
        log.info(
            "%s.%s: stage %.2f s; the task process had run %s before it (start, DAG parsing, imports)",
            self.dataset,
            self.stage,
            seconds,
            "n/a" if age is None else f"{age:.2f} s",
        )
        return out

    @property
    def checks_first(self) -> bool:
        """True for the first task of a dataset's group: it runs the preflight before reading anything."""
        return False

    def run_stage(self, spec: PipelineSpec, context: Any) -> Any:
        """Call the stage function for this task's dataset and run."""
        from bulksync import stages

        return getattr(stages, self.stage)(spec, spec.dataset(self.dataset), run_context(context))


class ExtractOperator(BulksyncStageOperator):
    """Extract a dataset's window from its source into a committed staging partition.

    For chunked datasets the factory maps it over the chunk plan (``.expand(chunk=...)``): each
    mapped task extracts the chunk of its map index.
    """

    stage = "extract"

    def __init__(self, *, chunk: dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.chunk = chunk

    @property
    def checks_first(self) -> bool:
        return self.chunk is None  # a chunk's plan_extract ran the preflight

    def run_stage(self, spec: PipelineSpec, context: Any) -> Any:
        index = getattr(context.get("ti"), "map_index", -1) if self.chunk is not None else -1
        chunk_index = index if index is not None and index >= 0 else None
        from bulksync import stages

        return stages.extract(spec, spec.dataset(self.dataset), run_context(context), chunk_index=chunk_index)


class PlanExtractOperator(BulksyncStageOperator):
    """Split a chunked dataset's extract into chunks; the chunk list (small) goes to XCom for mapping."""

    stage = "plan_extract"
    checks_first = True  # type: ignore[assignment]


class CommitExtractOperator(BulksyncStageOperator):
    """Assemble the committed chunks of a chunked extract into the partition's extract."""

    stage = "commit_extract"


class TransformOperator(BulksyncStageOperator):
    """Apply a dataset's transform steps to its committed extract."""

    stage = "transform"
    ui_color = "#fdf6e3"


class LoadOperator(BulksyncStageOperator):
    """Load a dataset's transformed partition into its target in one transaction."""

    stage = "load"
    ui_color = "#e6f5e6"


class ValidateOperator(BulksyncStageOperator):
    """Run the dataset's Great Expectations suite on its committed extract (the quality gate)."""

    stage = "validate"
    ui_color = "#fde8e8"


class ReconcileOperator(BulksyncStageOperator):
    """Check that source, staged, quarantined and loaded counts add up; record the run."""

    stage = "reconcile"
    ui_color = "#ede7f6"
