"""Spec models of the registered source kinds (``source: {kind: ...}``).

Each kind declares its options as a strict model. To add a source kind, add its model here and
its implementation to :mod:`bulksync.sources.registry`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag, model_validator

from bulksync.spec.api import ApiSourceSpec
from bulksync.spec.columns import ColumnSpec
from bulksync.spec.common import Identifier, StrictModel
from bulksync.spec.file_drop import FileDropSourceSpec
from bulksync.spec.ibmi import IbmiOptions as IbmiOptions  # re-exported beside the other kinds
from bulksync.spec.ibmi import IbmiSourceSpec
from bulksync.spec.salesforce import SalesforceSourceSpec


class SqlChunking(StrictModel):
    """Chunked parallel extraction by ranges of an integer key column."""

    column: Identifier = Field(description="Integer column the ranges are cut on (ideally the indexed primary key).")
    chunks: int = Field(4, ge=2, le=256, description="Number of key ranges, each extracted by its own mapped task.")


class SqlOptions(StrictModel):
    """Options of the ``sql`` source: a table or a query, full or incremental."""

    table: str | None = Field(None, description="Table to read, optionally schema-qualified (schema.table).")
    query: str | None = Field(None, description="SELECT statement to read instead of a table.")
    columns: list[Identifier] | None = Field(None, description="Columns to read (default: all).")
    incremental: bool = Field(False, description="Read only the run's data interval of cursor_field.")
    cursor_field: Identifier | None = Field(None, description="Change timestamp column for incremental reads.")
    overlap_minutes: int = Field(0, ge=0, description="Re-read this many minutes before the interval start.")
    primary_key: list[Identifier] = Field(default_factory=list)
    batch_size: int = Field(50_000, ge=100, le=2_000_000)
    chunking: SqlChunking | None = Field(
        None, description="Extract in parallel key ranges (mapped tasks) instead of one read."
    )

    @model_validator(mode="after")
    def _table_or_query(self) -> SqlOptions:
        if (self.table is None) == (self.query is None):
            raise ValueError("give exactly one of 'table' or 'query'")
        if self.incremental and not self.cursor_field:
            raise ValueError("'incremental: true' needs 'cursor_field' (the change timestamp column)")
        return self


class CsvOptions(StrictModel):
    """Options of the ``csv_files`` source: CSV files matching a pattern in a local folder."""

    path: str = Field(description="Folder holding the files (absolute, or relative to BULKSYNC_DATA_ROOT).")
    pattern: str = Field("*.csv", description="Glob pattern of the files to read, e.g. 'accounts_*.csv'.")
    columns: list[ColumnSpec] = Field(min_length=1, description="Declared schema, in file order.")
    delimiter: str = Field(",", min_length=1, max_length=1)
    quote_char: str | None = Field('"', max_length=1)
    escape_char: str | None = Field(None, max_length=1)
    header: bool = True
    check_header: bool = Field(True, description="Compare the header line with the declared column names.")
    encoding: str = "utf-8"
    null_values: list[str] = Field(default_factory=lambda: [""])
    primary_key: list[Identifier] = Field(default_factory=list)
    allow_missing: bool = Field(False, description="Succeed with zero rows when no file matches.")
    block_size_mb: int = Field(4, ge=1, le=512, description="pyarrow read block: memory per reader thread.")
    lenient_quotes: bool = Field(
        False,
        description="Read malformed quoting as pyarrow does (text after a closing quote appended, blanks kept) "
        "instead of rejecting the file with the line.",
    )

    @model_validator(mode="after")
    def _unique_columns(self) -> CsvOptions:
        names = [c.name for c in self.columns]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"column names declared twice: {', '.join(dupes)}")
        missing = [k for k in self.primary_key if k not in names]
        if missing:
            raise ValueError(f"primary_key names undeclared columns: {', '.join(missing)}")
        return self


class SqlSourceSpec(StrictModel):
    """``source: {kind: sql, conn_id: ..., options: {...}}``."""

    kind: Literal["sql"]
    conn_id: str = Field(min_length=1, description="Airflow connection id of the database.")
    options: SqlOptions


class CsvFilesSourceSpec(StrictModel):
    """``source: {kind: csv_files, options: {...}}``."""

    kind: Literal["csv_files"]
    conn_id: str | None = None
    options: CsvOptions


SOURCE_SPECS: dict[str, type[StrictModel]] = {
    "sql": SqlSourceSpec,
    "csv_files": CsvFilesSourceSpec,
    "file_drop": FileDropSourceSpec,
    "ibmi": IbmiSourceSpec,
    "salesforce": SalesforceSourceSpec,
    "api": ApiSourceSpec,
}


def _source_tag(value: Any) -> str | None:
    kind = value.get("kind") if isinstance(value, dict) else getattr(value, "kind", None)
    return f"kind={kind}" if kind in SOURCE_SPECS else None


SourceSpec = Annotated[
    Annotated[SqlSourceSpec, Tag("kind=sql")]
    | Annotated[CsvFilesSourceSpec, Tag("kind=csv_files")]
    | Annotated[FileDropSourceSpec, Tag("kind=file_drop")]
    | Annotated[IbmiSourceSpec, Tag("kind=ibmi")]
    | Annotated[SalesforceSourceSpec, Tag("kind=salesforce")]
    | Annotated[ApiSourceSpec, Tag("kind=api")],
    Discriminator(
        _source_tag,
        custom_error_type="unknown_source_kind",
        custom_error_message=f"unknown or missing source kind; registered kinds: {', '.join(SOURCE_SPECS)}",
    ),
]


def is_chunked(spec: Any) -> bool:
    """True when a ``source`` spec asks for chunked extraction (its options set ``chunking``)."""
    return getattr(spec.options, "chunking", None) is not None


def pool_of(spec: Any) -> str | None:
    """The Airflow pool the source's extract tasks run in, when its spec model names one."""
    pool_name = getattr(spec, "pool_name", None)
    return pool_name() if callable(pool_name) else None
