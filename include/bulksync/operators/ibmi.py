"""``IbmiExtractOperator``: extract an IBM i file or query into staging from a hand-written DAG."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from bulksync.errors import BulksyncError


class IbmiExtractOperator(BaseOperator):
    """Extract ``file`` (``LIB/FILE``, optionally ``(MEMBER)``) or ``query`` for a window into staging.

    Args:
        conn_id: Airflow connection of the IBM i (type ``ibmi``).
        tenant: staging tenant.
        pipeline: staging pipeline name.
        dataset: staging dataset name.
        file: the file to read (templated).
        query: a SELECT to read instead (templated).
        options: further ``ibmi`` source options (columns, incremental, chunking …).
        window_start: window start, ISO text (templated; default the data interval start).
        window_end: window end, exclusive (templated; default the data interval end).
    """

    template_fields: Sequence[str] = ("file", "query", "window_start", "window_end")
    ui_color = "#e8f4fd"

    def __init__(
        self,
        *,
        conn_id: str,
        tenant: str,
        pipeline: str,
        dataset: str,
        file: str | None = None,
        query: str | None = None,
        options: dict[str, Any] | None = None,
        window_start: str | None = "{{ data_interval_start }}",
        window_end: str | None = "{{ data_interval_end }}",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.conn_id, self.tenant, self.pipeline, self.dataset = conn_id, tenant, pipeline, dataset
        self.file, self.query, self.options = file, query, dict(options or {})
        self.window_start, self.window_end = window_start, window_end

    def execute(self, context: Any) -> dict[str, Any]:
        from bulksync.ibmi.extract import extract_ibmi, parse_bound, source_spec
        from bulksync.operators.task_logs import quiet_third_party_loggers
        from bulksync.staging.partition import Window

        quiet_third_party_loggers()
        given = {k: v for k, v in (("file", self.file), ("query", self.query)) if v}
        try:
            spec = source_spec(self.conn_id, {**self.options, **given}, f"task {self.task_id}")
            window = Window(parse_bound(self.window_start), parse_bound(self.window_end))
            manifest = extract_ibmi(
                spec,
                tenant=self.tenant,
                pipeline=self.pipeline,
                dataset=self.dataset,
                window=window,
                run_id=str(context["run_id"]),
                try_number=getattr(context.get("ti"), "try_number", None),
            )
        except BulksyncError as exc:
            if exc.terminal:
                raise AirflowFailException(f"{type(exc).__name__}: {exc}") from None
            raise
        return manifest.summary()


Db2ForIExtractOperator = IbmiExtractOperator
"""The same operator under the name of the database (Db2 for i)."""
