"""Spec models of the ``ibmi`` source (IBM i / AS/400 Db2 for i): file or query, conventions, modes.

Example::

    source:
      kind: ibmi
      conn_id: acme_as400
      options:
        file: ACMELIB/ORDHDR          # or ACMELIB.ORDHDR, ACMELIB/ORDHDR(ARCHIVE) for a member
        columns:
          - {name: ORDDAT, convert: date, date_format: CYYMMDD}
          - {name: CHGDAT, convert: timestamp, date_format: CYYMMDD, time_column: CHGTIM, rename: CHANGED_AT}
          - {name: CUSNUM, convert: code, width: 6}
          - {name: ORDNOTE, convert: ebcdic, ccsid: 37}
        incremental: {date: CHGDAT, time: CHGTIM, date_format: CYYMMDD}
        chunking: {key: ORDNUM, chunks: 8}
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from bulksync.ibmi.ccsid import codec_for
from bulksync.ibmi.names import FileName, parse_file_name
from bulksync.spec.common import Identifier, StrictModel, check_timezone

DateFormat = Literal["CYYMMDD", "YYYYMMDD", "YYMMDD", "CYYDDD"]
Conversion = Literal["auto", "text", "date", "timestamp", "time", "code", "ebcdic", "binary", "decimal", "integer"]


def _upper_format(value: object) -> object:
    return value.upper() if isinstance(value, str) else value


class IbmiColumn(StrictModel):
    """How to read one column. Anything not declared follows the catalogue (see ``convert: auto``).

    ``convert``: ``auto`` (from the catalogue: CHAR → trimmed text, NUMERIC/DECIMAL → exact decimal,
    FOR BIT DATA → bytes, or text when ``bit_data_ccsid`` is set), ``text``, ``date`` (a numeric
    date in ``date_format``), ``timestamp`` (a numeric date plus the ``HHMMSS`` ``time_column``),
    ``time`` (``HHMMSS``), ``code`` (a number that is really a code: zero-padded text of ``width``
    digits), ``ebcdic`` (bytes decoded with ``ccsid``), ``binary``, ``decimal``, ``integer``.
    """

    name: Identifier = Field(description="Column name on the IBM i (case-insensitive).")
    rename: Identifier | None = Field(None, description="Name of the column in the staged data.")
    convert: Conversion = Field("auto", description="Conversion to apply (see the class docs).")
    date_format: DateFormat | None = Field(None, description="CYYMMDD, YYYYMMDD, YYMMDD or CYYDDD (Julian).")
    time_column: Identifier | None = Field(None, description="HHMMSS column combined with this date (timestamp).")
    ccsid: int | None = Field(None, description="EBCDIC CCSID of an ebcdic column (37, 273, 500, 1140 …).")
    trim: bool | None = Field(None, description="Right-trim CHAR padding (default: options.trim_char).")
    width: int | None = Field(None, ge=1, le=31, description="Digits of a code column (default: its precision).")
    comment: str | None = Field(None, description="Column comment for the target (default: the column text).")

    _upper = field_validator("date_format", mode="before")(_upper_format)

    @field_validator("ccsid")
    @classmethod
    def _known_ccsid(cls, value: int | None) -> int | None:
        if value is not None:
            codec_for(value)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> IbmiColumn:
        if self.convert in ("date", "timestamp") and self.date_format is None:
            raise ValueError(f"column {self.name}: convert: {self.convert} needs date_format (e.g. CYYMMDD)")
        if self.convert == "timestamp" and self.time_column is None:
            raise ValueError(f"column {self.name}: convert: timestamp needs time_column (the HHMMSS column)")
        if self.convert != "timestamp" and self.time_column is not None:
            raise ValueError(f"column {self.name}: time_column only goes with convert: timestamp")
        if self.convert not in ("date", "timestamp") and self.date_format is not None:
            raise ValueError(f"column {self.name}: date_format only goes with convert: date or timestamp")
        if self.convert != "ebcdic" and self.ccsid is not None:
            raise ValueError(f"column {self.name}: ccsid only goes with convert: ebcdic")
        if self.convert != "code" and self.width is not None:
            raise ValueError(f"column {self.name}: width only goes with convert: code")
        return self

    @property
    def out_name(self) -> str:
        """The column's name in the staged data."""
        return self.rename or self.name.upper()


class IbmiIncremental(StrictModel):
    """Read only the run's data interval: of a change timestamp, or of a numeric date + time pair.

    Give ``timestamp`` (a TIMESTAMP column), or ``date`` (numeric, in ``date_format``) with an
    optional ``time`` (``HHMMSS``). The window is converted to the IBM i's local time
    (``options.timezone``) before it becomes a predicate.
    """

    timestamp: Identifier | None = Field(None, description="TIMESTAMP column of the last change.")
    date: Identifier | None = Field(None, description="Numeric change date column (e.g. CHGDAT).")
    time: Identifier | None = Field(None, description="Numeric HHMMSS change time column (e.g. CHGTIM).")
    date_format: DateFormat = Field("CYYMMDD", description="Format of the date column.")
    overlap_minutes: int = Field(0, ge=0, description="Re-read this many minutes before the interval start.")

    _upper = field_validator("date_format", mode="before")(_upper_format)

    @model_validator(mode="after")
    def _one_cursor(self) -> IbmiIncremental:
        if (self.timestamp is None) == (self.date is None):
            raise ValueError("give either 'timestamp' (a TIMESTAMP column) or 'date' (+ 'time') columns")
        if self.time is not None and self.date is None:
            raise ValueError("'time' needs 'date' (the numeric date column it belongs to)")
        return self


class IbmiChunking(StrictModel):
    """Extract a large file in key ranges, one mapped Airflow task per range.

    The key must be a single column that is unique and indexed on the IBM i (a one-column primary
    key, unique constraint or unique index); anything else is refused when chunks are planned.
    """

    key: Identifier = Field(description="Unique, indexed key column (e.g. ORDNUM).")
    chunks: int | None = Field(None, ge=1, le=512, description="Number of ranges.")
    chunk_size: int | None = Field(None, ge=1_000, description="Rows per range (the count decides the number).")
    split: Literal["minmax", "quantiles"] = Field(
        "minmax",
        description="minmax: equal-width ranges between MIN and MAX of a numeric key (cheap); "
        "quantiles: ranges of equal row counts (one ordered scan of the key; any key type).",
    )

    @model_validator(mode="after")
    def _how_many(self) -> IbmiChunking:
        if (self.chunks is None) == (self.chunk_size is None):
            raise ValueError("give exactly one of 'chunks' or 'chunk_size'")
        return self


class IbmiOptions(StrictModel):
    """Options of the ``ibmi`` source: a file (optionally a member) or a query, with conventions."""

    file: str | None = Field(None, description="LIB/FILE or LIB.FILE, optionally with (MEMBER).")
    member: Identifier | None = Field(None, description="Member to read (default: the first member).")
    query: str | None = Field(None, description="SELECT statement to read instead of a file.")
    columns: list[IbmiColumn] = Field(default_factory=list, description="Per-column conventions.")
    read_columns: Literal["all", "declared"] = Field("all", description="Read every column, or only declared ones.")
    trim_char: bool = Field(True, description="Right-trim the blank padding of CHAR columns.")
    strict: bool = Field(False, description="Fail on an invalid date or time instead of null + count.")
    century_pivot: int = Field(40, ge=0, le=99, description="YYMMDD: years below it are 20xx, others 19xx.")
    bit_data_ccsid: int | None = Field(None, description="Decode every FOR BIT DATA column with this CCSID.")
    timezone: str = Field("UTC", description="The IBM i's local time zone (timestamps and numeric dates).")
    isolation: Literal["UR", "NC", "CS"] = Field("UR", description="UR: uncommitted read, never locks rows.")
    incremental: IbmiIncremental | None = Field(None, description="Read only the run's data interval.")
    chunking: IbmiChunking | None = Field(None, description="Parallel extraction by key ranges.")
    primary_key: list[Identifier] = Field(default_factory=list)
    batch_size: int = Field(50_000, ge=100, le=2_000_000, description="Rows per fetch and per Arrow batch.")
    pool: str | None = Field(None, description="Airflow pool of the extract tasks (limits sessions on the IBM i).")

    @field_validator("bit_data_ccsid")
    @classmethod
    def _known_ccsid(cls, value: int | None) -> int | None:
        if value is not None:
            codec_for(value)
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        return check_timezone(value)

    @model_validator(mode="after")
    def _source(self) -> IbmiOptions:
        if (self.file is None) == (self.query is None):
            raise ValueError("give exactly one of 'file' (LIB/FILE) or 'query'")
        if self.file is not None:
            self.file_name()  # raises ValueError with the expected syntax
        elif self.member is not None:
            raise ValueError("'member' goes with 'file', not with 'query'")
        names = [c.name.upper() for c in self.columns]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"columns declared twice: {', '.join(dupes)}")
        outs = [c.out_name for c in self.columns]
        clash = sorted({n for n in outs if outs.count(n) > 1})
        if clash:
            raise ValueError(f"two columns would be staged as {', '.join(clash)}; rename one")
        return self

    def file_name(self) -> FileName:
        """The parsed file name (``file`` plus ``member``)."""
        assert self.file is not None
        return parse_file_name(self.file, self.member)

    def column(self, name: str) -> IbmiColumn | None:
        """The declared conventions of a column, if any."""
        for c in self.columns:
            if c.name.upper() == name.upper():
                return c
        return None


class IbmiSourceSpec(StrictModel):
    """``source: {kind: ibmi, conn_id: ..., options: {...}}``."""

    kind: Literal["ibmi"]
    conn_id: str = Field(min_length=1, description="Airflow connection id (type ibmi, or an emulating database).")
    options: IbmiOptions

    def pool_name(self) -> str | None:
        """The Airflow pool of the extract tasks, if the spec names one."""
        return self.options.pool
