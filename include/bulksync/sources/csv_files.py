"""The ``csv_files`` source: CSV files matching a pattern in a local folder, parsed with pyarrow.

Files are read one after another, in name order, as a stream of record batches converted to the
declared schema. A value that does not fit its declared type stops the extract with the file,
line, column and value (found by a second, pure-Python pass over the failing file, so the line
number is exact even with quoted newlines). The landing-zone features (trigger files, claiming,
ledger, archive, quarantine) build on this module in :mod:`bulksync.sources.file_drop`.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import decimal
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from bulksync.errors import ConfigurationError, DataError
from bulksync.settings import resolve_path
from bulksync.sources.base import Source
from bulksync.spec.sources import CsvOptions
from bulksync.arrow_types import arrow_type

log = logging.getLogger(__name__)


class CsvFilesSource(Source):
    """Read every file matching ``pattern`` in ``path`` against the declared ``columns``."""

    kind = "csv_files"
    options: CsvOptions

    def schema(self) -> pa.Schema:
        return pa.schema([pa.field(c.name, arrow_type(c.type), nullable=c.nullable) for c in self.options.columns])

    def files(self) -> list[Path]:
        """The files this extract reads, sorted by name."""
        folder = resolve_path(self.options.path)
        if not folder.is_dir():
            raise ConfigurationError(f"csv_files folder {folder} does not exist (options.path)")
        found = sorted(p for p in folder.glob(self.options.pattern) if p.is_file())
        if not found and not self.options.allow_missing:
            raise DataError(
                f"no file matches {self.options.pattern!r} in {folder}; the client's drop may be late. "
                "Set allow_missing: true if an empty night is normal"
            )
        return found

    def read(self) -> Iterator[pa.RecordBatch]:
        files = self.files()
        self.stats["files"] = []
        for path in files:
            rows = 0
            for batch in self.read_file(path):
                rows += batch.num_rows
                yield batch
            self.stats["files"].append({"path": str(path), "rows": rows})
            log.info("read %s: %d rows", path.name, rows)

    def read_file(self, path: Path) -> Iterator[pa.RecordBatch]:
        """Stream one file as batches of the declared schema."""
        opts = self.options
        if opts.header:
            self._check_header(path)
        raw_types = {c.name: (pa.string() if c.format or c.type == "timestamptz" else arrow_type(c.type))
                     for c in opts.columns}
        read = pacsv.ReadOptions(
            column_names=[c.name for c in opts.columns], skip_rows=1 if opts.header else 0,
            encoding=opts.encoding, block_size=opts.block_size_mb << 20,
        )
        parse = pacsv.ParseOptions(delimiter=opts.delimiter, quote_char=opts.quote_char or False,
                                   escape_char=opts.escape_char or False, newlines_in_values=True)
        convert = pacsv.ConvertOptions(column_types=raw_types, null_values=opts.null_values,
                                       strings_can_be_null=True, quoted_strings_can_be_null=False)
        schema = self.schema()
        seen = 0
        try:
            reader = pacsv.open_csv(path, read_options=read, parse_options=parse, convert_options=convert)
            for batch in reader:
                batch = self._finish(batch, schema, path, seen)
                seen += batch.num_rows
                yield batch
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise self._diagnose(path, exc) from None

    def _finish(self, batch: pa.RecordBatch, schema: pa.Schema, path: Path, seen: int) -> pa.RecordBatch:
        arrays = []
        for col, field in zip(self.options.columns, schema, strict=True):
            arr = batch.column(col.name)
            if col.format:
                arr = _parse_temporal(arr, col.format, field.type)
            elif col.type == "timestamptz":
                arr = _to_utc(arr)
            elif arr.type != field.type:
                arr = arr.cast(field.type)
            if not col.nullable and arr.null_count:
                idx = pc.index(pc.is_null(arr), True).as_py()
                raise DataError(
                    f"{path}: record {seen + idx + 1}, column {col.name!r}: empty value but the column is declared "
                    "nullable: false. Ask the client to fill it, or declare the column nullable"
                )
            arrays.append(arr)
        return pa.RecordBatch.from_arrays(arrays, schema=schema)

    def _check_header(self, path: Path) -> None:
        opts = self.options
        enc = "utf-8-sig" if codecs.lookup(opts.encoding).name == "utf-8" else opts.encoding
        try:
            with open(path, encoding=enc, newline="") as f:
                header = next(csv.reader(f, **self._dialect()), [])
        except UnicodeDecodeError as exc:
            raise DataError(f"{path}: not {opts.encoding} ({exc.reason} at byte {exc.start}); set options.encoding") from None
        declared = [c.name for c in opts.columns]
        if header != declared:
            missing = [c for c in declared if c not in header]
            extra = [c for c in header if c not in declared]
            detail = []
            if missing:
                detail.append(f"missing {missing}")
            if extra:
                detail.append(f"unexpected {extra}")
            if not detail:
                detail.append(f"in a different order: {header}")
            raise DataError(
                f"{path}: header does not match the declared columns ({'; '.join(detail)}). "
                "Fix the spec's columns or ask the client for the agreed layout"
            )

    def _dialect(self) -> dict[str, Any]:
        o = self.options
        return {"delimiter": o.delimiter, "quotechar": o.quote_char or None, "escapechar": o.escape_char,
                "quoting": csv.QUOTE_MINIMAL if o.quote_char else csv.QUOTE_NONE, "doublequote": True}

    def _diagnose(self, path: Path, exc: Exception) -> DataError:
        """Find the exact record behind a pyarrow conversion error with the csv module."""
        opts = self.options
        checks = [(c.name, c.type, _checker(c.type, c.format)) for c in opts.columns]
        nulls = set(opts.null_values)
        enc = "utf-8-sig" if codecs.lookup(opts.encoding).name == "utf-8" else opts.encoding
        try:
            with open(path, encoding=enc, newline="") as f:
                reader = csv.reader(f, **self._dialect())
                if opts.header:
                    next(reader, None)
                line = reader.line_num + 1
                for record in reader:
                    if len(record) != len(checks):
                        return DataError(
                            f"{path}, line {line}: {len(record)} fields but {len(checks)} columns are declared "
                            f"(delimiter {opts.delimiter!r}). Check the delimiter and quoting of that line"
                        )
                    for value, (name, typ, check) in zip(record, checks, strict=True):
                        if value in nulls:
                            continue
                        if not check(value):
                            return DataError(
                                f"{path}, line {line}, column {name!r}: value {value!r} is not a valid {typ}. "
                                "Fix the file or the declared type, then rerun the extract"
                            )
                    line = reader.line_num + 1
        except (UnicodeDecodeError, csv.Error) as err:
            return DataError(f"{path}: cannot be read as {opts.encoding} CSV: {err}")
        return DataError(f"{path}: {exc}")


def _parse_temporal(arr: pa.Array, fmt: str, typ: pa.DataType) -> pa.Array:
    unit = "us"
    parsed = pc.strptime(arr, format=fmt, unit=unit, error_is_null=False)
    if pa.types.is_date(typ):
        return parsed.cast(pa.date32())
    if getattr(typ, "tz", None):
        return pc.assume_timezone(parsed, typ.tz)
    return parsed


def _to_utc(arr: pa.Array) -> pa.Array:
    """ISO timestamps with an offset keep it; those without one are taken as UTC."""
    try:
        return arr.cast(pa.timestamp("us", tz="UTC"))
    except pa.ArrowInvalid:
        return pc.assume_timezone(arr.cast(pa.timestamp("us")), "UTC")


def _checker(typ: str, fmt: str | None) -> Callable[[str], bool]:
    def ok(fn: Callable[[str], Any]) -> Callable[[str], bool]:
        def check(v: str) -> bool:
            try:
                fn(v)
            except (ValueError, decimal.InvalidOperation, ArithmeticError):
                return False
            return True
        return check

    if typ in ("int32", "int64"):
        limit = 2**31 if typ == "int32" else 2**63

        def as_int(v: str) -> None:
            if not -limit <= int(v) < limit:
                raise ValueError
        return ok(as_int)
    if typ == "float64":
        return ok(float)
    if typ.startswith("decimal("):
        p, s = (int(x) for x in typ[len("decimal("):-1].split(","))

        def as_dec(v: str) -> None:
            d = decimal.Decimal(v)
            if not d.is_finite():
                raise ValueError
            t = d.as_tuple()
            exp = int(t.exponent)
            if -exp > s or len(t.digits) + exp > p - s:
                raise ValueError
        return ok(as_dec)
    if typ == "bool":
        return lambda v: v.lower() in {"true", "false", "1", "0"}
    if typ in ("date", "timestamp", "timestamptz"):
        if fmt:
            return ok(lambda v: dt.datetime.strptime(v, fmt))
        return ok(dt.date.fromisoformat if typ == "date" else _iso_ts)
    return lambda v: True


def _iso_ts(v: str) -> dt.datetime:
    return dt.datetime.fromisoformat(v.replace("Z", "+00:00"))
