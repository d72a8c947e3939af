"""Spec models of the ``file_drop`` source: a landing folder, arrival conventions and file formats.

A file drop names where the client's files land, how bulksync knows a file is complete (a trigger
file, a control file, or a size that stopped changing), what to verify (checksum sidecars, control
totals) and how to read the files (CSV dialect, fixed-width layout or COBOL copybook).
"""

from __future__ import annotations

import codecs
import itertools
import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from bulksync.spec.columns import ColumnSpec
from bulksync.spec.common import Identifier, StrictModel

RESERVED_FOLDERS = ("processing", "archive", "quarantine")
"""Sub-folders of a landing folder that bulksync owns; patterns never match them."""


class ArrivalSpec(StrictModel):
    """How bulksync knows that a file in the landing folder is complete.

    ``trigger``: a file ``<name>.done`` (or ``.ok`` / ``.trg``, also ``<stem>.done``) appears once the
    data file is complete. ``control_file``: a control file (``control_pattern``) lists the data
    files of the drop, one per line, optionally with their record counts. ``stable_size``: the file
    has not changed for ``stable_seconds``. ``immediate``: every matching file is taken as is.
    """

    mode: Literal["trigger", "control_file", "stable_size", "immediate"] = "stable_size"
    trigger_suffixes: list[str] = Field(
        default_factory=lambda: [".done", ".ok", ".trg"], description="Suffixes of trigger files."
    )
    control_pattern: str | None = Field(None, description="Glob of the control file, e.g. 'orders_*.ctl'.")
    stable_seconds: int = Field(60, ge=0, description="Seconds a file's size and mtime must stay unchanged.")

    @model_validator(mode="after")
    def _control(self) -> ArrivalSpec:
        if self.mode == "control_file" and not self.control_pattern:
            raise ValueError("arrival mode 'control_file' needs 'control_pattern' (a glob such as 'orders_*.ctl')")
        for s in self.trigger_suffixes:
            if not s.startswith(".") or "/" in s:
                raise ValueError(f"trigger suffix {s!r} must start with '.' and hold no '/'")
        return self


class WaitSpec(StrictModel):
    """The wait task the DAG puts before extract (``FileDropSensor``)."""

    enabled: bool = Field(False, description="Add a wait task before extract in spec-built DAGs.")
    deadline_minutes: float = Field(
        360, gt=0, description="Fail when no complete file arrived this long after the data interval's end."
    )
    poke_interval_seconds: float = Field(300, ge=5)
    mode: Literal["reschedule", "deferrable"] = "reschedule"
    min_files: int = Field(1, ge=1, description="Complete files needed before the extract runs.")


class ControlTotalSpec(StrictModel):
    """Record counts the client sends to compare with what was read.

    ``trailer``: the last line of each file is a trailer record matching ``trailer_pattern`` whose
    first group is the record count (the trailer is not loaded). ``control_file``: the count is the
    second field of the file's line in the control file (arrival mode ``control_file``).
    """

    kind: Literal["none", "trailer", "control_file"] = "none"
    trailer_pattern: str = Field(r"^(?:TRL|TRAILER|T)\W*0*(\d+)", description="Regex; group 1 is the record count.")

    @field_validator("trailer_pattern")
    @classmethod
    def _regex(cls, value: str) -> str:
        try:
            compiled = re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from None
        if compiled.groups < 1:
            raise ValueError("the trailer pattern needs a group capturing the record count, e.g. '^TRL(\\d+)'")
        return value


class CsvDialectSpec(StrictModel):
    """CSV dialect of a file drop (``format: csv``)."""

    delimiter: str = Field(",", min_length=1, max_length=1, description="',', ';', '|', tab, '^', '`' …")
    quote_char: str | None = Field('"', max_length=1)
    escape_char: str | None = Field(None, max_length=1)
    header: bool = True
    check_header: bool = Field(True, description="Compare the header line with the declared column names.")
    null_values: list[str] = Field(default_factory=lambda: [""])
    detect: bool = Field(False, description="Detect delimiter and quote per file from a sample (csv.Sniffer).")
    lenient_quotes: bool = Field(
        False,
        description="Read malformed quoting as pyarrow does (text after a closing quote appended, blanks kept) "
        "instead of rejecting the file with the line.",
    )


class FixedWidthColumn(ColumnSpec):
    """A fixed-width column: ``{name: amount, type: decimal(9,2), start: 21, width: 10}`` (start is 1-based)."""

    start: int = Field(ge=1, description="First character of the field, 1-based.")
    width: int = Field(ge=1, description="Characters of the field.")


class FixedWidthSpec(StrictModel):
    """A fixed-width text layout (``format: fixed_width``)."""

    columns: list[FixedWidthColumn] = Field(min_length=1)
    header_lines: int = Field(0, ge=0, description="Lines to skip at the top of each file.")
    allow_short_records: bool = Field(False, description="Pad records shorter than the layout with blanks.")
    null_values: list[str] = Field(default_factory=lambda: [""], description="Values (after trimming) read as null.")

    @model_validator(mode="after")
    def _layout(self) -> FixedWidthSpec:
        cols = sorted(self.columns, key=lambda c: c.start)
        for a, b in itertools.pairwise(cols):
            if a.start + a.width > b.start:
                raise ValueError(f"columns {a.name!r} and {b.name!r} overlap (start/width)")
        return self


class LeaseSpec(StrictModel):
    """How two runs of one interval keep out of each other's way (docs/file-drops.md, "Two runs at once")."""

    wait_seconds: float = Field(
        600, ge=0, description="How long a second run waits for the run extracting the interval, then refuses."
    )
    expire_seconds: float = Field(
        120, ge=1, description="A holder's lease lasts this long after its last heartbeat (renewed every third)."
    )


class FileDropOptions(StrictModel):
    """Options of the ``file_drop`` source."""

    landing: str = Field(
        description="Landing folder (absolute, or relative to BULKSYNC_HOME), or an Azure container prefix "
        "abfs://container/prefix (with source.conn_id)."
    )
    pattern: str | list[str] = Field("*", description="Glob pattern(s) of the data files, e.g. 'orders_*.csv'.")
    format: Literal["csv", "fixed_width", "copybook"] = "csv"
    columns: list[ColumnSpec] = Field(default_factory=list, description="Declared schema (csv), in file order.")
    csv: CsvDialectSpec = Field(default_factory=CsvDialectSpec)
    fixed_width: FixedWidthSpec | None = None
    copybook: dict[str, Any] | None = Field(
        None, description="CopybookOptions of bulksync.legacy (copybook, record_format, code_page …)."
    )
    on_record_errors: Literal["quarantine_file", "load"] = Field(
        "quarantine_file", description="A record with an undecodable value quarantines its file, or loads (nulls)."
    )
    encoding: str = Field("utf-8", description="Text encoding: utf-8, utf-8-sig, cp1252, latin-1, utf-16 …")
    compression: Literal["auto", "none", "gzip", "zip"] = Field("auto", description="auto: by suffix .gz / .zip.")
    max_uncompressed_mb: int = Field(4096, ge=1, description="Refuse compressed files that expand beyond this.")
    arrival: ArrivalSpec = Field(default_factory=ArrivalSpec)
    checksum: Literal["auto", "md5", "sha256", "none"] = Field(
        "auto", description="auto: verify a <name>.md5 / <name>.sha256 sidecar when present; md5/sha256: required."
    )
    control_total: ControlTotalSpec = Field(default_factory=ControlTotalSpec)
    wait: WaitSpec = Field(default_factory=WaitSpec)
    ledger_conn_id: str | None = Field(None, description="Database of the file ledger (default: the target's).")
    primary_key: list[Identifier] = Field(default_factory=list)
    allow_missing: bool = Field(True, description="Succeed with zero rows when no new file arrived.")
    block_size_mb: int = Field(4, ge=1, le=512, description="Read block size.")
    spool_memory_mb: int = Field(64, ge=1, description="Rows of a file held in memory before spilling to disk.")
    lease: LeaseSpec = Field(default_factory=LeaseSpec)

    @property
    def patterns(self) -> list[str]:
        """The data file patterns as a list."""
        return [self.pattern] if isinstance(self.pattern, str) else list(self.pattern)

    @field_validator("encoding")
    @classmethod
    def _encoding(cls, value: str) -> str:
        try:
            codecs.lookup(value)
        except LookupError:
            raise ValueError(f"unknown encoding {value!r}; e.g. utf-8, cp1252, latin-1, utf-16") from None
        return value

    @field_validator("pattern")
    @classmethod
    def _patterns(cls, value: str | list[str]) -> str | list[str]:
        for p in [value] if isinstance(value, str) else value:
            if "/" in p or "\\" in p or p in ("", ".", ".."):
                raise ValueError(f"pattern {p!r} must name files of the landing folder itself (no '/')")
        return value

    @model_validator(mode="after")
    def _format(self) -> FileDropOptions:
        if self.format == "csv" and not self.columns:
            raise ValueError("format 'csv' needs 'columns' (the declared schema, in file order)")
        if self.format == "fixed_width" and self.fixed_width is None:
            raise ValueError("format 'fixed_width' needs a 'fixed_width' layout (columns with start and width)")
        if self.format == "copybook" and self.copybook is None:
            raise ValueError("format 'copybook' needs 'copybook: {copybook: file.cpy, record_format: …}'")
        if self.copybook is not None:
            from bulksync.legacy.options import CopybookOptions

            CopybookOptions.model_validate(self.copybook)
        if self.format != "csv" and self.columns:
            raise ValueError(f"'columns' is for format csv; format {self.format!r} declares its own layout")
        if self.control_total.kind == "control_file" and self.arrival.mode != "control_file":
            raise ValueError("control_total 'control_file' needs arrival mode 'control_file'")
        names = [c.name for c in self.columns] or [
            c.name for c in (self.fixed_width.columns if self.fixed_width else [])
        ]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"column names declared twice: {', '.join(dupes)}")
        return self


class FileDropSourceSpec(StrictModel):
    """``source: {kind: file_drop, options: {...}}``."""

    kind: Literal["file_drop"]
    conn_id: str | None = Field(
        None, description="Airflow connection (type wasb) of the storage account of an abfs:// landing."
    )
    options: FileDropOptions

    @model_validator(mode="after")
    def _remote_landing(self) -> FileDropSourceSpec:
        from bulksync.errors import ConfigurationError
        from bulksync.storage.location import is_remote, split_azure_url

        if is_remote(self.options.landing):
            try:
                split_azure_url(self.options.landing)  # other schemes, no container
            except ConfigurationError as exc:
                raise ValueError(f"options.landing: {exc}") from None
            if not self.conn_id:
                raise ValueError(
                    f"landing {self.options.landing!r} is a blob container: set conn_id to the Airflow connection "
                    "(type wasb) of its storage account"
                )
        return self
