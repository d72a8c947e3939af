"""What the quality gate and reconciliation record: the contract between tasks, reports and alerts.

Files under the reports root (``$BULKSYNC_REPORTS_ROOT``)::

    {tenant}/{pipeline}/
        index.html                                  the pipeline's data-quality report (static)
        runs/{dataset}/{finished_at:%Y%m%dT%H%M%S}__{run_key}.json   one RunRecord per run
        gx/expectations/{suite}.json                GX stores (see bulksync.quality.data_docs)
        gx/validations/{suite}/{run_name}/{run_time}/{dataset}-{window}.json
        data_docs/index.html                        GX Data Docs site of the pipeline (GX's site builder)
        data_docs/expectations/{suite}.html
        data_docs/validations/{suite}/{run_name}/{run_time}/{dataset}-{window}.html
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, Literal

from pydantic import BaseModel, Field

QualityStatus = Literal["pass", "warn", "quarantined", "failed", "skipped"]
Severity = Literal["error", "warn"]


def run_key(run_id: str) -> str:
    """A file-name-safe form of an Airflow run id."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", run_id)[:120]


class ExpectationOutcome(BaseModel):  # type: ignore[no-redef]  # (pydantic plugin: field "kwargs")
    """One expectation's result in a validation."""

    expectation: str = Field(description="GX expectation type, e.g. expect_column_values_to_not_be_null.")
    column: str | None = None
    kwargs: dict[str, Any] = Field(default_factory=dict)
    severity: Severity = "error"
    success: bool
    row_level: bool = Field(description="True when failing rows can be told apart (and quarantined).")
    unexpected_count: int | None = None
    unexpected_percent: float | None = None
    observed_value: Any = None
    samples: list[Any] = Field(default_factory=list, description="A few unexpected values, PII masked.")
    error: str | None = Field(None, description="Set when GX could not evaluate it (e.g. missing column).")

    def describe(self) -> str:
        """One line for task logs and failure messages."""
        where = f" on column {self.column!r}" if self.column else ""
        if self.error:
            return f"{self.expectation}{where}: could not be evaluated: {self.error}"
        if self.unexpected_count is not None:
            pct = f" ({self.unexpected_percent:.2f}%)" if self.unexpected_percent is not None else ""
            return f"{self.expectation}{where}: {self.unexpected_count} unexpected{pct}, e.g. {self.samples[:5]}"
        return f"{self.expectation}{where}: observed {self.observed_value!r}"


class QualityResult(BaseModel):
    """The gate's verdict on one dataset in one run (written beside the partition as ``_quality.json``)."""

    suite: str
    on_failure: Literal["fail", "warn", "quarantine"]
    status: QualityStatus
    rows_checked: int
    rows_quarantined: int = 0
    expectations: list[ExpectationOutcome]
    validation_path: str | None = Field(None, description="GX result JSON, relative to the reports root.")
    data_docs_path: str | None = Field(None, description="Data Docs page, relative to the reports root.")
    duration_seconds: float = 0.0

    @property
    def failed(self) -> list[ExpectationOutcome]:
        """The expectations that did not pass."""
        return [e for e in self.expectations if not e.success]


class Reconciliation(BaseModel):
    """Counts that must add up: source = staged;
    staged = loaded + deletions + failed + unprocessed + quarantined + rejected."""

    source_count: int | None
    staged: int
    quarantined: int
    rejected: int = Field(description="Rows dropped on purpose by transforms (filter, dedupe).")
    loaded: int = Field(description="Rows written to the target: inserted + updated (merge-aware).")
    deletions: int = Field(0, description="Staged rows flagged as deleted (delete_flag): applied, not written.")
    failed: int = Field(0, description="Write-back: records the target system refused (quarantined with its error).")
    unprocessed: int = Field(0, description="Write-back: records the target system never processed (quarantined).")
    ok: bool
    problems: list[str] = Field(default_factory=list)


# The one set of labels of the counts of a run: CLI (run, summary), report, audit tables, asset events.
COUNT_LABELS: dict[str, str] = {
    "source_count": "source",
    "staged": "staged",
    "quarantined": "quarantined",
    "rejected": "rejected by transforms",
    "loaded": "loaded",
    "deletions": "deletions",
    "failed": "failed in the target",
    "unprocessed": "unprocessed by the target",
}
COUNTS_EXPLAINED = (
    "staged = loaded + deletions + failed + unprocessed + quarantined + rejected by transforms; loaded = inserted + "
    "updated; deletions are staged rows flagged as deleted, applied to the target (target rows deleted counts what "
    "they removed); failed / unprocessed are records a write-back target refused or never processed (quarantined)"
)


class Counts(BaseModel):
    """The counts of one dataset in one run, as every surface shows them (labels: :data:`COUNT_LABELS`).

    ``staged`` is what the extract committed to staging (the source's rows); the rows written to the
    target are ``loaded`` (``inserted`` + ``updated``); ``deletions`` are staged rows flagged as deleted
    and applied; ``target_deleted`` are target rows removed by them (merge) or replaced (replace,
    interval).
    """

    source_count: int | None = None
    staged: int = 0
    quarantined: int = 0
    rejected: int = 0
    loaded: int = 0
    deletions: int = 0
    failed: int = 0
    unprocessed: int = 0
    inserted: int = 0
    updated: int = 0
    target_deleted: int = 0
    mode: str | None = None

    @classmethod
    def of(cls, rec: Reconciliation, *, inserted: int, updated: int, deleted: int, mode: str | None = None) -> Counts:
        """The counts of a reconciled run."""
        return cls(
            source_count=rec.source_count,
            staged=rec.staged,
            quarantined=rec.quarantined,
            rejected=rec.rejected,
            loaded=rec.loaded,
            deletions=rec.deletions,
            failed=rec.failed,
            unprocessed=rec.unprocessed,
            inserted=inserted,
            updated=updated,
            target_deleted=deleted,
            mode=mode,
        )

    def items(self) -> list[tuple[str, str]]:
        """``(label, value)`` in the order of :data:`COUNT_LABELS`; ``source`` is ``not reported`` without a count."""
        out = []
        for key, label in COUNT_LABELS.items():
            value = getattr(self, key)
            if key in ("deletions", "failed", "unprocessed") and not value:
                continue
            out.append((label, "not reported" if value is None else f"{value:,}"))
        return out

    def load_detail(self) -> str:
        """``merge: 2,000 inserted, 449 updated, 3 target rows deleted``."""
        parts = [f"{self.inserted:,} inserted", f"{self.updated:,} updated"]
        if self.target_deleted or self.deletions or self.mode in ("replace", "interval"):
            parts.append(f"{self.target_deleted:,} target rows deleted")
        return (f"{self.mode}: " if self.mode else "") + ", ".join(parts)

    def line(self) -> str:
        """One line: ``source 4,500 · staged 4,500 · quarantined 1,157 · … · loaded 2,449 (merge: …)``."""
        return "  ·  ".join(f"{label} {value}" for label, value in self.items()) + f" ({self.load_detail()})"


class RunRecord(BaseModel):
    """Everything about one dataset in one run: what the report, audit tables and alerts show."""

    tenant: str
    pipeline: str
    dataset: str
    run_id: str
    interval: str
    window_start: dt.datetime | None
    window_end: dt.datetime | None
    status: Literal["success", "warn", "quarantined", "failed"]
    quality: QualityResult | None = None
    reconciliation: Reconciliation | None = None
    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    failed: int = 0
    unprocessed: int = 0
    writeback: dict[str, Any] | None = Field(
        None, description="Write-back targets: object, operation, jobs and the refused records' errors by status code."
    )
    target: str = ""
    durations: dict[str, float] = Field(default_factory=dict, description="Seconds per stage.")
    error: str | None = None
    finished_at: dt.datetime
