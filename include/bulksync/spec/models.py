"""The pipeline spec: one YAML file in ``dags/pipelines/`` describes one pipeline (one DAG)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import Field, field_validator, model_validator

from bulksync.spec.common import Slug, StrictModel, check_timezone
from bulksync.spec.sources import SourceSpec
from bulksync.spec.targets import TargetSpec
from bulksync.spec.transforms import TransformStep

SCHEDULE_PRESETS = {"@once", "@hourly", "@daily", "@weekly", "@monthly", "@quarterly", "@yearly"}


class TaskDefaults(StrictModel):
    """Retries and timeouts applied to every task of the pipeline."""

    retries: int = Field(3, ge=0, le=20)
    retry_delay_minutes: float = Field(5, gt=0)
    retry_exponential_backoff: bool = True
    max_retry_delay_minutes: float = Field(60, gt=0)
    execution_timeout_minutes: float = Field(120, gt=0)


class RetentionSpec(StrictModel):
    """What ``bulksync staging prune`` may remove: partitions neither among the ``keep_last`` newest of
    their dataset nor committed within ``keep_days`` (the latest one and any in use always stay)."""

    keep_last: int = Field(7, ge=1, description="Newest committed partitions kept per dataset, whatever their age.")
    keep_days: float | None = Field(
        30, gt=0, description="Partitions committed within this many days are kept; null: age alone keeps nothing."
    )


class StagingSpec(StrictModel):
    """Where staging partitions go. ``root`` defaults to ``$BULKSYNC_STAGING_ROOT``; it may be an Azure
    container URL (``abfs://container/prefix``), reached through ``conn_id``."""

    root: str | None = None
    conn_id: str | None = Field(
        None,
        description="Airflow connection (type wasb) of an abfs:// or wasb:// root (default $BULKSYNC_STAGING_CONN_ID).",
    )
    retention: RetentionSpec = Field(default_factory=RetentionSpec)


class QualitySpec(StrictModel):
    """The Great Expectations suite that gates the load (``expectations/<suite>.json``).

    ``on_failure`` decides what error-severity failures do: ``fail`` stops the run before the load,
    ``warn`` loads and flags the run, ``quarantine`` sets aside the rows failing row-level
    expectations and loads the rest (aggregate failures then fail). Warn-severity failures always
    only flag the run.
    """

    suite: Slug
    on_failure: Literal["fail", "warn", "quarantine"] = "fail"
    pii_columns: list[str] = Field(default_factory=list, description="Columns whose samples are masked.")


AlertEvent = Literal["failed", "quarantined", "warn", "mismatch", "retry", "late"]


def _default_events() -> list[AlertEvent]:
    return ["failed", "quarantined", "mismatch"]


class AlertsSpec(StrictModel):
    """Where alerts go: Airflow connections of Slack / Microsoft Teams compatible incoming webhooks."""

    webhooks: list[str] = Field(default_factory=list, description="Airflow connection ids (type http).")
    on: list[AlertEvent] = Field(default_factory=lambda: _default_events())
    finish_within_minutes: float | None = Field(
        None,
        gt=0,
        description=(
            "Deadline of a run, in minutes after it was queued: a run still unfinished then posts a `late` "
            "alert (Airflow DeadlineAlert). None: no deadline."
        ),
    )

    @model_validator(mode="before")
    @classmethod
    def _yaml11_on(cls, data: Any) -> Any:
        """Take a ``True`` key as ``on``: a YAML 1.1 reader (not bulksync's loader) turns ``on:`` into ``True:``."""
        if isinstance(data, dict) and True in data and "on" not in data:
            data = {("on" if k is True else k): v for k, v in data.items()}
        return data


class DatasetSpec(StrictModel):
    """One dataset: a source, optional transforms and quality suite, and a target."""

    name: Slug
    description: str = ""
    source: SourceSpec
    transforms: list[TransformStep] = Field(default_factory=list)
    quality: QualitySpec | None = None
    target: TargetSpec

    @model_validator(mode="after")
    def _deletes_need_a_flag(self) -> DatasetSpec:
        opts = getattr(self.source, "options", None)
        if getattr(opts, "deletes", None) == "delete" and (
            self.target.mode != "merge" or getattr(self.target, "delete_flag", None) is None
        ):
            raise ValueError(
                "source option 'deletes: delete' needs a target with 'mode: merge' and 'delete_flag: IsDeleted' "
                "(or use 'deletes: soft' to load IsDeleted as data)"
            )
        from bulksync.spec.targets import dataset_name_problems

        problems = dataset_name_problems(self)
        if problems:
            raise ValueError("; ".join(problems))
        return self


class PipelineSpec(StrictModel):
    """A pipeline: a tenant's scheduled sync of one or more datasets.

    The DAG id is ``{tenant}__{pipeline}``.
    """

    tenant: Slug
    pipeline: Slug
    description: str = ""
    schedule: str | None = Field("@daily", description="Cron expression, preset (@daily …) or null.")
    timezone: str = "UTC"
    start_date: dt.date | dt.datetime
    catchup: bool = False
    owner: str = Field("bulksync", min_length=1)
    tags: list[str] = Field(default_factory=list)
    max_active_runs: int = Field(1, ge=1, le=32)
    dagrun_timeout_minutes: float | None = Field(None, gt=0)
    tasks: TaskDefaults = Field(default_factory=TaskDefaults)
    staging: StagingSpec = Field(default_factory=StagingSpec)
    alerts: AlertsSpec = Field(default_factory=AlertsSpec)
    datasets: list[DatasetSpec] = Field(min_length=1)

    @property
    def dag_id(self) -> str:
        """The Airflow DAG id of this pipeline."""
        return f"{self.tenant}__{self.pipeline}"

    def dataset(self, name: str) -> DatasetSpec:
        """Return the dataset called ``name`` or raise ``KeyError`` listing the known ones."""
        for ds in self.datasets:
            if ds.name == name:
                return ds
        raise KeyError(
            f"pipeline {self.dag_id} has no dataset {name!r}; it has: {', '.join(d.name for d in self.datasets)}"
        )

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: str | None) -> str | None:
        if value is None or value in SCHEDULE_PRESETS:
            return value
        from croniter import croniter

        if not croniter.is_valid(value):
            raise ValueError(
                f"{value!r} is not a valid cron expression or preset "
                f"({', '.join(sorted(SCHEDULE_PRESETS))}); e.g. '0 2 * * *' for 02:00 daily"
            )
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        return check_timezone(value)

    @field_validator("datasets")
    @classmethod
    def _unique_datasets(cls, datasets: list[DatasetSpec]) -> list[DatasetSpec]:
        names = [d.name for d in datasets]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"dataset names must be unique; repeated: {', '.join(dupes)}")
        tables = [(d.target.conn_id, d.target.db_schema, d.target.table) for d in datasets]
        clash = sorted({t[2] for t in tables if tables.count(t) > 1})
        if clash:
            raise ValueError(f"two datasets load the same target table: {', '.join(clash)}")
        return datasets

    def start_datetime(self) -> dt.datetime:
        """``start_date`` as an aware datetime in the pipeline's time zone."""
        sd = self.start_date
        if not isinstance(sd, dt.datetime):
            sd = dt.datetime(sd.year, sd.month, sd.day)
        return sd if sd.tzinfo else sd.replace(tzinfo=ZoneInfo(self.timezone))
