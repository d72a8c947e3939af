"""Reading one file of a drop as a stream of record batches: CSV, fixed-width text, COBOL copybook.

Each reader takes the file's display name and an opener of its (decompressed) bytes and yields
batches of one schema; a file that cannot be read raises :class:`~bulksync.errors.FileRejectedError`
with a reason code and a message naming the file, line / record, column and value. The CSV reader
is the ``csv_files`` source's pyarrow reader (same conversions, same exact bad-value locating).
"""

from __future__ import annotations

import codecs
import csv
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import IO, Any, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from bulksync.arrow_types import arrow_type
from bulksync.errors import FileRejectedError
from bulksync.sources.csv_checks import DELIMITERS
from bulksync.sources.csv_files import (
    CsvFilesSource,
    _checker,
    _parse_temporal,
    _to_bool,
    _to_decimal,
    _to_utc,
)
from bulksync.spec.file_drop import FileDropOptions, FixedWidthColumn
from bulksync.spec.sources import CsvOptions
from bulksync.staging.partition import Window

log = logging.getLogger(__name__)

Opener = Callable[[], IO[bytes]]


class FileReader(Protocol):
    """Reads one file of a drop into batches of :meth:`schema`."""

    def schema(self) -> pa.Schema:
        """The Arrow schema of every batch."""

    def read(self, name: str, opener: Opener) -> Iterator[pa.RecordBatch]:
        """Yield the file's rows; raise ``FileRejectedError`` when it cannot be read."""


def make_reader(opts: FileDropOptions) -> FileReader:
    """The reader of a drop's ``format``."""
    if opts.format == "fixed_width":
        return FixedWidthReader(opts)
    if opts.format == "copybook":
        return CopybookReader(opts)
    return CsvReader(opts)


class CsvReader:
    """CSV files in any dialect, through the ``csv_files`` source's streaming pyarrow reader."""

    def __init__(self, opts: FileDropOptions, dialect: dict[str, Any] | None = None) -> None:
        self.opts = opts
        d = opts.csv
        self.csv_options = CsvOptions(
            path=".",
            columns=list(opts.columns),
            delimiter=d.delimiter,
            quote_char=d.quote_char,
            escape_char=d.escape_char,
            header=d.header,
            check_header=d.check_header,
            encoding=opts.encoding,
            null_values=list(d.null_values),
            block_size_mb=opts.block_size_mb,
            lenient_quotes=d.lenient_quotes,
            **(dialect or {}),
        )

    def schema(self) -> pa.Schema:
        return pa.schema([pa.field(c.name, arrow_type(c.type), nullable=c.nullable) for c in self.opts.columns])

    def _source(self, options: CsvOptions) -> CsvFilesSource:
        return CsvFilesSource(SimpleNamespace(kind="csv_files", options=options), Window())

    def read(self, name: str, opener: Opener) -> Iterator[pa.RecordBatch]:
        options = self.csv_options
        if self.opts.csv.detect:
            options = options.model_copy(update=self.detect(name, opener))
        yield from self._source(options).read_file(Path(name), opener)

    def detect(self, name: str, opener: Opener) -> dict[str, Any]:
        """Delimiter and quote character of a file, from a sample (``csv.Sniffer``)."""
        with opener() as f:
            raw = f.read(64 * 1024)
        text = raw.decode(self.opts.encoding, errors="replace")
        if len(raw) == 64 * 1024 and "\n" in text:
            text = text[: text.rfind("\n")]
        try:
            dialect = csv.Sniffer().sniff(text, delimiters=DELIMITERS)
        except csv.Error:
            lines = [ln for ln in text.splitlines() if ln.strip()]
            if len(self.opts.columns) == 1 or not any(d in ln for ln in lines for d in DELIMITERS):
                log.info("%s: no delimiter in the sample: a one-column file", name)
                return {"delimiter": self.csv_options.delimiter, "quote_char": self.csv_options.quote_char}
            raise FileRejectedError(
                "dialect_unknown",
                f"{name}: cannot detect the CSV delimiter from the first lines; set options.csv.delimiter "
                "and options.csv.detect: false",
            ) from None
        found = {"delimiter": dialect.delimiter, "quote_char": dialect.quotechar or '"'}
        log.info("%s: detected delimiter %r, quote %r", name, found["delimiter"], found["quote_char"])
        return found


class FixedWidthReader:
    """Fixed-width text: each line sliced by the layout's character positions, vectorised per block."""

    def __init__(self, opts: FileDropOptions) -> None:
        assert opts.fixed_width is not None
        self.opts = opts
        self.layout = opts.fixed_width
        self.columns: list[FixedWidthColumn] = list(self.layout.columns)
        self.record_chars = max(c.start - 1 + c.width for c in self.columns)
        self.nulls = pa.array(self.layout.null_values, pa.string())
        utf8 = codecs.lookup(opts.encoding).name == "utf-8"
        self.decode = None if utf8 else codecs.getincrementaldecoder(opts.encoding)()

    def schema(self) -> pa.Schema:
        return pa.schema([pa.field(c.name, arrow_type(c.type), nullable=c.nullable) for c in self.columns])

    def read(self, name: str, opener: Opener) -> Iterator[pa.RecordBatch]:
        block = self.opts.block_size_mb << 20
        line = 1
        skip = self.layout.header_lines
        with opener() as f:
            carry = b""
            first = True
            while True:
                data = f.read(block)
                if first and data.startswith(codecs.BOM_UTF8):
                    data = data[3:]
                first = False
                buf = carry + data
                if not data:
                    if buf:
                        batch, line, skip = self._block(buf + b"\n", name, line, skip)
                        if batch is not None:
                            yield batch
                    break
                cut = buf.rfind(b"\n")
                if cut < 0:
                    carry = buf
                    continue
                batch, line, skip = self._block(buf[: cut + 1], name, line, skip)
                carry = buf[cut + 1 :]
                if batch is not None:
                    yield batch

    def _lines(self, chunk: bytes, name: str, line: int) -> pa.StringArray:
        """Whole lines of a block (each ending in ``\\n``) as a string array, CR and LF removed."""
        if self.decode is not None:
            chunk = self.decode.decode(chunk).encode("utf-8")
        data = np.frombuffer(chunk, dtype=np.uint8)
        ends = np.flatnonzero(data == 10)
        starts = np.concatenate(([0], ends[:-1] + 1))
        lengths = ends - starts
        cr = (lengths > 0) & (data[np.maximum(ends - 1, 0)] == 13)
        stops = ends - cr
        # the line bytes without their CR/LF, and the offsets between them
        keep = np.ones(len(data), dtype=bool)
        keep[ends] = False
        keep[(ends - 1)[cr]] = False
        compact = data[keep]
        lens = stops - starts
        offs = np.zeros(len(ends) + 1, dtype=np.int32)
        np.cumsum(lens, out=offs[1:])
        arr = pa.StringArray.from_buffers(len(ends), pa.py_buffer(offs.tobytes()), pa.py_buffer(compact.tobytes()))
        try:
            arr.validate(full=True)
        except pa.ArrowInvalid:
            for i, value in enumerate(pa.BinaryArray.from_buffers(pa.binary(), len(ends), arr.buffers()).to_pylist()):
                try:
                    value.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise FileRejectedError(
                        "encoding",
                        f"{name}, line {line + i}: not {self.opts.encoding} text ({exc.reason} at character "
                        f"{exc.start + 1}); set options.encoding",
                    ) from None
        return arr

    def _block(self, chunk: bytes, name: str, line: int, skip: int) -> tuple[pa.RecordBatch | None, int, int]:
        lines = self._lines(chunk, name, line)
        n = len(lines)
        first_line = line
        if skip:
            taken = min(skip, n)
            lines, skip, first_line = lines.slice(taken), skip - taken, line + taken
        blank = pc.equal(pc.utf8_length(pc.utf8_rtrim_whitespace(lines)), 0)
        rows = pc.indices_nonzero(pc.invert(blank))
        records = lines.take(rows)
        numbers = pc.add(rows, first_line)
        if not len(records):
            return None, line + n, skip
        lengths = pc.utf8_length(records)
        short = pc.less(lengths, self.record_chars)
        if pc.any(short).as_py():
            if not self.layout.allow_short_records:
                i = pc.index(short, True).as_py()
                raise FileRejectedError(
                    "record_length",
                    f"{name}, line {numbers[i].as_py()}: {lengths[i].as_py()} characters but the layout needs "
                    f"{self.record_chars} (options.fixed_width). Set allow_short_records: true if short lines are "
                    "padded records",
                )
            records = pc.utf8_rpad(records, width=self.record_chars, padding=" ")
        arrays = [self._column(records, col, name, numbers) for col in self.columns]
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema()), line + n, skip

    def _column(self, records: pa.Array, col: FixedWidthColumn, name: str, numbers: pa.Array) -> pa.Array:
        text = pc.utf8_trim_whitespace(pc.utf8_slice_codeunits(records, col.start - 1, col.start - 1 + col.width))
        text = pc.if_else(pc.is_in(text, value_set=self.nulls), pa.scalar(None, pa.string()), text)
        typ = arrow_type(col.type)
        try:
            arr = convert_text(text, col.type, col.format, typ)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            check = _checker(col.type, col.format)
            for i, value in enumerate(text.to_pylist()):
                if value is not None and not check(value):
                    raise FileRejectedError(
                        "bad_value",
                        f"{name}, line {numbers[i].as_py()}, column {col.name!r} (characters {col.start}-"
                        f"{col.start + col.width - 1}): value {value!r} is not a valid {col.type}. "
                        "Fix the file or the layout, then rerun the extract",
                    ) from None
            raise
        if not col.nullable and arr.null_count:
            i = pc.index(pc.is_null(arr), True).as_py()
            raise FileRejectedError(
                "missing_value",
                f"{name}, line {numbers[i].as_py()}, column {col.name!r}: blank but declared nullable: false",
            )
        return arr


def convert_text(text: pa.Array, declared: str, fmt: str | None, typ: pa.DataType) -> pa.Array:
    """Trimmed text to a declared type as the CSV reader converts it (``pa.ArrowInvalid``: a value does not fit)."""
    if fmt:
        return _parse_temporal(text, fmt, typ)
    if declared == "timestamptz":
        return _to_utc(text)
    if declared == "bool":
        return _to_bool(text)
    if pa.types.is_decimal(typ):
        return _to_decimal(text, typ)
    if declared == "string":
        return text
    return text.cast(typ)


class CopybookReader:
    """Mainframe files described by a COBOL copybook, decoded by :mod:`bulksync.legacy`.

    A copybook with a syntax error is a spec problem (``SpecError`` naming the line), raised when
    the reader is built, before any file is claimed.
    """

    def __init__(self, opts: FileDropOptions) -> None:
        from bulksync.legacy import reader as legacy

        assert opts.copybook is not None
        self.opts = opts
        self.legacy: Any = legacy
        self.options = legacy.CopybookOptions.model_validate(opts.copybook)
        self.layout = legacy.load_layout(self.options)  # type: ignore[attr-defined]
        self.record_errors = 0
        self.error_lines: list[str] = []  # the first invalid values, for `bulksync convert`

    def schema(self) -> pa.Schema:
        return self.legacy.arrow_schema(self.layout, self.options)  # type: ignore[no-any-return]

    def read(self, name: str, opener: Opener) -> Iterator[pa.RecordBatch]:
        with opener() as f:
            for block in self.legacy.read_records(f, self.options, name=name, layout=self.layout):
                bad = int(getattr(block, "error_records", 0) or 0)
                errors = list(getattr(block, "errors", []) or [])
                # strict: a record with an invalid value is never dropped nor nulled: the file is quarantined
                if bad and (self.opts.on_record_errors == "quarantine_file" or self.options.strict):
                    shown = "; ".join(str(e) for e in errors[:3])
                    raise FileRejectedError(
                        "record_errors",
                        f"{name}: {bad} record(s) hold values that cannot be decoded ({shown}). Check the copybook, "
                        "code page and record format, or set on_record_errors: load"
                        + (" and strict: false" if self.options.strict else "")
                        + " to load them with nulls",
                    )
                self.record_errors += bad
                self.error_lines.extend(str(e) for e in errors[: max(0, 10 - len(self.error_lines))])
                yield block.batch
