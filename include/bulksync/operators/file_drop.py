"""Operators for file drops: wait for complete files (``FileDropSensor``), and one-task ingestion.

Both are thin: the logic lives in :mod:`bulksync.sources.file_drop`. Spec-built DAGs get a
``wait`` task before ``extract`` from :func:`wait_task` when the dataset's ``wait.enabled`` is set.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

from airflow.sdk import BaseOperator, BaseSensorOperator
from airflow.sdk.exceptions import AirflowFailException
from airflow.triggers.base import BaseTrigger, TriggerEvent

from bulksync.errors import BulksyncError
from bulksync.spec.file_drop import FileDropOptions


def _options(options: dict[str, Any], landing: str | None, pattern: Any) -> FileDropOptions:
    data = {**options, **({"landing": landing} if landing else {}), **({"pattern": pattern} if pattern else {})}
    return FileDropOptions.model_validate(data)


class FileDropSensor(BaseSensorOperator):
    """Wait until complete files matching the pattern are in the landing folder, or fail at the deadline.

    Args:
        options: the dataset's ``file_drop`` options (JSON-able dict).
        landing: overrides ``options.landing`` (templated).
        pattern: overrides ``options.pattern`` (templated).
        deferrable: wait in the triggerer instead of holding a worker slot.
        conn_id: the ``wasb`` connection of an ``abfs://`` landing (the source's ``conn_id``).
    """

    template_fields = ("landing", "pattern")
    ui_color = "#fff4d6"

    def __init__(
        self,
        *,
        options: dict[str, Any],
        landing: str | None = None,
        pattern: Any = None,
        deferrable: bool = False,
        conn_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        opts = FileDropOptions.model_validate(options)
        kwargs.setdefault("poke_interval", opts.wait.poke_interval_seconds)
        kwargs.setdefault("mode", "reschedule")
        # the deadline fails the task with a clear message; this timeout is only a backstop
        kwargs.setdefault("timeout", dt.timedelta(minutes=opts.wait.deadline_minutes + 24 * 60))
        super().__init__(**kwargs)
        self.options, self.landing, self.pattern, self.deferrable = options, landing, pattern, deferrable
        self.conn_id = conn_id

    def _limit(self, context: Any) -> dt.datetime:
        from bulksync.sources.file_drop.wait import deadline

        opts = _options(self.options, self.landing, self.pattern)
        return deadline(opts, context.get("data_interval_end"), dt.datetime.now(dt.UTC))

    def poke(self, context: Any) -> bool:
        from bulksync.sources.file_drop.wait import check

        try:
            return check(
                _options(self.options, self.landing, self.pattern), self._limit(context), conn_id=self.conn_id
            ).ready
        except BulksyncError as exc:
            raise AirflowFailException(f"{type(exc).__name__}: {exc}") from None

    def execute(self, context: Any) -> Any:
        if not self.deferrable:
            return super().execute(context)
        if self.poke(context):
            return None
        trigger = FileDropTrigger(
            options={
                **self.options,
                "landing": self.landing or self.options["landing"],
                "pattern": self.pattern or self.options.get("pattern", "*"),
            },
            limit=self._limit(context).isoformat(),
            conn_id=self.conn_id,
        )
        self.defer(trigger=trigger, method_name="execute_complete")

    def execute_complete(self, context: Any, event: dict[str, Any]) -> None:
        """Resume after the trigger fired: fail with its message at the deadline."""
        if event.get("status") != "ready":
            raise AirflowFailException(event.get("message", "file drop wait failed"))


class FileDropTrigger(BaseTrigger):
    """Poll a landing folder in the triggerer until files are complete or the deadline passes."""

    def __init__(
        self, options: dict[str, Any], limit: str, poll_seconds: float | None = None, conn_id: str | None = None
    ) -> None:
        super().__init__()
        self.options, self.limit, self.conn_id = options, limit, conn_id
        self.poll_seconds = poll_seconds or FileDropOptions.model_validate(options).wait.poke_interval_seconds

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            "bulksync.operators.file_drop.FileDropTrigger",
            {"options": self.options, "limit": self.limit, "poll_seconds": self.poll_seconds, "conn_id": self.conn_id},
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from bulksync.sources.file_drop.wait import check

        opts = FileDropOptions.model_validate(self.options)
        limit = dt.datetime.fromisoformat(self.limit)
        while True:
            try:
                result = await asyncio.to_thread(check, opts, limit, None, self.conn_id)
            except BulksyncError as exc:
                yield TriggerEvent({"status": "failed", "message": f"{type(exc).__name__}: {exc}"})
                return
            if result.ready:
                yield TriggerEvent({"status": "ready", "message": result.message})
                return
            await asyncio.sleep(self.poll_seconds)


class FileDropOperator(BaseOperator):
    """Ingest a file drop in one task (hand-written DAGs): extract, transform and load one dataset.

    Args:
        spec: the pipeline spec as a JSON-able dict.
        dataset: the file_drop dataset's name.
    """

    template_fields = ("dataset",)
    ui_color = "#fff4d6"

    def __init__(self, *, spec: dict[str, Any], dataset: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.spec, self.dataset = spec, dataset

    def execute(self, context: Any) -> dict[str, Any]:
        from bulksync import stages
        from bulksync.operators.stages import run_context
        from bulksync.operators.task_logs import quiet_third_party_loggers
        from bulksync.spec.models import PipelineSpec

        quiet_third_party_loggers()
        spec = PipelineSpec.model_validate(self.spec)
        ds, ctx = spec.dataset(self.dataset), run_context(context)
        try:
            from bulksync.preflight import require

            require(spec, [ds])
            extracted = stages.extract(spec, ds, ctx)
            if ds.quality:
                stages.validate(spec, ds, ctx)
            stages.transform(spec, ds, ctx)
            loaded = stages.load(spec, ds, ctx)
        except BulksyncError as exc:
            if exc.terminal:
                raise AirflowFailException(f"{type(exc).__name__}: {exc}") from None
            raise
        return {**extracted.summary(), "loaded": loaded.inserted + loaded.updated}


def wait_task(ds: Any, spec_json: dict[str, Any]) -> FileDropSensor | None:
    """The ``wait`` task of a spec-built dataset group, when its file_drop source asks for one."""
    if ds.source.kind != "file_drop" or not ds.source.options.wait.enabled:
        return None
    wait = ds.source.options.wait
    options = next(d for d in spec_json["datasets"] if d["name"] == ds.name)["source"]["options"]
    return FileDropSensor(
        task_id="wait",
        options=options,
        mode="reschedule" if wait.mode == "reschedule" else "poke",
        deferrable=wait.mode == "deferrable",
        conn_id=ds.source.conn_id,
        doc_md=f"Wait for files matching {', '.join(ds.source.options.patterns)} in {ds.source.options.landing}",
    )
