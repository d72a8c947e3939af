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
import io
import logging
import re
import string
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from bulksync.arrow_types import arrow_type
from bulksync.errors import ConfigurationError, DataError, FileRejectedError
from bulksync.settings import resolve_path
from bulksync.sources.base import Source
from bulksync.sources.csv_checks import CheckedCsvBytes, likely_delimiter
from bulksync.spec.sources import CsvOptions

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

    def read_file(self, path: Path, opener: Callable[[], IO[bytes]] | None = None) -> Iterator[pa.RecordBatch]:
        """Stream one file as batches of the declared schema.

        Args:
            path: the file (named in error messages).
            opener: opens the file's bytes (default: the file itself); file drops pass one that
                decompresses, hashes or holds back a trailer record.
        """
        opts = self.options
        self._opener = opener or (lambda: open(path, "rb"))  # noqa: SIM115 - the caller closes it
        if opts.header and opts.check_header:
            self._check_header(path)
        raw_types = {c.name: _raw_type(c.type, c.format) for c in opts.columns}
        read = pacsv.ReadOptions(
            column_names=[c.name for c in opts.columns],
            skip_rows=1 if opts.header else 0,
            encoding=opts.encoding,
            block_size=opts.block_size_mb << 20,
        )
        parse = pacsv.ParseOptions(
            delimiter=opts.delimiter,
            quote_char=opts.quote_char or False,
            escape_char=opts.escape_char or False,
            newlines_in_values=True,
            ignore_empty_lines=len(opts.columns) > 1,  # in a one-column file an empty line is an empty value
        )
        convert = pacsv.ConvertOptions(
            column_types=raw_types,
            null_values=opts.null_values,
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
        )
        schema = self.schema()
        seen = 0
        checker = CheckedCsvBytes(
            self._opener(),
            str(path),
            opts.encoding,
            opts.delimiter,
            opts.quote_char,
            check_quotes=not opts.lenient_quotes and not opts.escape_char,
        )
        if opener is None:  # pyarrow reads the file natively; the checks read it beside it (page cache)
            stream: Any = path
            checker.drain_in_background()
        else:  # one pass over the caller's stream: the checks see the bytes on their way to pyarrow
            stream = checker
        try:
            reader = pacsv.open_csv(stream, read_options=read, parse_options=parse, convert_options=convert)
            for batch in reader:
                if checker.error is not None:
                    raise checker.error
                batch = self._finish(batch, schema, path, seen)
                seen += batch.num_rows
                yield batch
            checker.finish()  # the whole file checked before its last rows count as read
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            checker.finish()  # a problem the checks found explains the parse error better
            if "Could not skip initial" in str(exc) and opts.header and self._header_only(path):
                return  # a header line without a final newline: a file of no rows
            if "straddling" in str(exc) or "block size" in str(exc):
                raise FileRejectedError(
                    "field_too_large",
                    f"{path}: a record is larger than the read block of "
                    f"{opts.block_size_mb} MiB (or a quote is never closed). Raise options.block_size_mb (bulksync "
                    "convert: --block-size-mb) above the largest record; memory grows with it",
                ) from None
            raise self._diagnose(path, exc) from None
        finally:
            if opener is None:  # our own file; a caller's stream is closed by the caller
                checker.close()

    def _finish(self, batch: pa.RecordBatch, schema: pa.Schema, path: Path, seen: int) -> pa.RecordBatch:
        arrays = []
        for col, field in zip(self.options.columns, schema, strict=True):
            arr = batch.column(col.name)
            if col.format:
                arr = _parse_temporal(arr, col.format, field.type)
            elif col.type == "timestamptz":
                arr = _to_utc(arr)
            elif col.type == "bool":
                arr = _to_bool(arr)
            elif pa.types.is_decimal(field.type):
                arr = _to_decimal(arr, field.type)
            elif arr.type != field.type:
                arr = arr.cast(field.type)
            if not col.nullable and arr.null_count:
                record = seen + pc.index(pc.is_null(arr), True).as_py()
                raise FileRejectedError(
                    "missing_value",
                    f"{path}, line {self._line_of_record(path, record)}, column {col.name!r}: empty value but the "
                    "column is declared nullable: false. Ask the client to fill it, or declare the column nullable",
                )
            arrays.append(arr)
        return pa.RecordBatch.from_arrays(arrays, schema=schema)

    def _header_only(self, path: Path) -> bool:
        """True when the file is one line (the header) without a final newline."""
        with self._opener() as f:
            data = f.read(1 << 20)
        return b"\n" not in data and b"\r" not in data

    def _line_of_record(self, path: Path, record: int) -> int:
        """File line on which data record ``record`` (0-based, as pyarrow counts) starts."""
        opts = self.options
        with self._text(path) as f:
            reader = csv.reader(f, **self._dialect())
            if opts.header:
                next(reader, None)
            line = reader.line_num + 1
            seen = 0
            one_column = len(opts.columns) == 1
            for fields in reader:
                if fields or one_column:  # pyarrow skips empty lines, except in a one-column file
                    if seen == record:
                        return line
                    seen += 1
                line = reader.line_num + 1
        return line  # pragma: no cover - the record was read by pyarrow, so it exists

    def _check_header(self, path: Path) -> None:
        opts = self.options
        try:
            with self._text(path) as f:
                header = next(csv.reader(f, **self._dialect()), [])
        except UnicodeDecodeError as exc:
            raise FileRejectedError(
                "encoding", f"{path}: not {opts.encoding} ({exc.reason} at byte {exc.start}); set options.encoding"
            ) from None
        declared = [c.header or c.name for c in opts.columns]
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
            hint = self._delimiter_hint(path, len(header))
            raise FileRejectedError(
                "header_mismatch",
                f"{path}: header does not match the declared columns ({'; '.join(detail)}). "
                + (hint or "Fix the spec's columns or ask the client for the agreed layout"),
            )

    def _delimiter_hint(self, path: Path, fields: int) -> str:
        """What to set when a line read as one field looks delimited by another character ('' if not).

        Several columns are declared, so one field means the delimiter is wrong; the ``convert``
        command's detection (a candidate appearing equally often in every sampled line) names it.
        """
        opts = self.options
        if fields != 1 or len(opts.columns) < 2:
            return ""
        opener = getattr(self, "_opener", None) or (lambda: open(path, "rb"))  # noqa: SIM115
        with opener() as f:
            raw = f.read(64 * 1024)
        enc = "utf-8-sig" if codecs.lookup(opts.encoding).name == "utf-8" else opts.encoding
        lines = [ln for ln in raw.decode(enc, errors="replace").splitlines()[:50] if ln.strip()]
        if len(raw) == 64 * 1024 and len(lines) > 1:
            lines = lines[:-1]  # the sample may end inside a line
        likely = likely_delimiter(lines, opts.delimiter)
        if likely is None:
            return ""
        shown, value = ("tab", '"\\t"') if likely == "\t" else (likely, f"'{likely}'")
        return (
            f"{likely!r} appears the same number of times in every line of the file's start: the file looks "
            f"'{shown}'-delimited, not {opts.delimiter!r}-delimited. Set options.delimiter: {value} "
            "(in a file_drop: options.csv.delimiter, or options.csv.detect: true)"
        )

    def _dialect(self) -> dict[str, Any]:
        o = self.options
        return {
            "delimiter": o.delimiter,
            "quotechar": o.quote_char or None,
            "escapechar": o.escape_char,
            "quoting": csv.QUOTE_MINIMAL if o.quote_char else csv.QUOTE_NONE,
            "doublequote": True,
        }

    def _diagnose(self, path: Path, exc: Exception) -> DataError:
        """Find the exact record behind a pyarrow conversion error with the csv module."""
        opts = self.options
        csv.field_size_limit(1 << 30)  # the block size bounds a field, not the csv module's 128 KiB default
        checks = [(c.name, c.type, _checker(c.type, c.format)) for c in opts.columns]
        nulls = set(opts.null_values)
        try:
            with self._text(path) as f:
                reader = csv.reader(f, **self._dialect())
                if opts.header:
                    next(reader, None)
                line = reader.line_num + 1
                for record in reader:
                    if not record and len(checks) > 1:  # an empty line: pyarrow skips it
                        line = reader.line_num + 1
                        continue
                    record = record or [""]
                    if len(record) != len(checks):
                        return FileRejectedError(
                            "column_count",
                            f"{path}, line {line}: {len(record)} fields but {len(checks)} columns are declared "
                            f"(delimiter {opts.delimiter!r}). "
                            + (
                                self._delimiter_hint(path, len(record))
                                or "Check the delimiter and quoting of that line"
                            ),
                        )
                    for value, (name, typ, check) in zip(record, checks, strict=True):
                        if value in nulls:
                            continue
                        if not check(value):
                            return FileRejectedError(
                                "bad_value",
                                f"{path}, line {line}, column {name!r}: value {value!r} is not a valid {typ}. "
                                "Fix the file or the declared type, then rerun the extract",
                            )
                    line = reader.line_num + 1
        except (UnicodeDecodeError, csv.Error) as err:
            reason = "encoding" if isinstance(err, UnicodeDecodeError) else "parse_error"
            return FileRejectedError(reason, f"{path}: cannot be read as {opts.encoding} CSV: {err}")
        return FileRejectedError("parse_error", f"{path}: {exc}")

    def _text(self, path: Path) -> IO[str]:
        """The file as text in the declared encoding (a UTF-8 BOM skipped), for the csv module."""
        enc = "utf-8-sig" if codecs.lookup(self.options.encoding).name == "utf-8" else self.options.encoding
        opener = getattr(self, "_opener", None) or (lambda: open(path, "rb"))  # noqa: SIM115
        return io.TextIOWrapper(opener(), encoding=enc, newline="")


def _raw_type(typ: str, fmt: str | None) -> pa.DataType:
    """Type pyarrow reads a column as, before :meth:`CsvFilesSource._finish` converts it.

    Formatted temporals, ``timestamptz``, ``bool`` and decimals are read as strings and converted
    there: pyarrow's own conversion of those does not check everything (see the ``_to_*`` functions).
    """
    if fmt or typ in ("timestamptz", "bool") or typ.startswith("decimal("):
        return pa.string()
    return arrow_type(typ)


def _to_decimal(arr: pa.Array, typ: pa.Decimal128Type) -> pa.Array:
    """Decimal text to ``typ``, refusing values beyond its precision or scale (``pa.ArrowInvalid``).

    Arrow checks precision only in a cast between decimals, so the text goes to the widest decimal of
    the same scale first. Its rescaling wraps around silently when the value overflows 128 bits (39+
    digits at the target scale), so the rare texts that could (an exponent, or that many integer
    digits) are compared with Python's exact reading.
    """
    wide = pa.decimal128(38, typ.scale)
    try:
        dec = arr.cast(wide)
    except pa.ArrowInvalid:
        arr = pc.utf8_trim_whitespace(arr)  # pyarrow's CSV number parser allows blanks around a number
        dec = arr.cast(wide)
    risky = pc.match_substring_regex(arr, rf"[eE]|^\s*[+-]?0*[1-9]\d{{{38 - typ.scale}}}")
    if pc.any(risky).as_py():
        idx = pc.indices_nonzero(pc.fill_null(risky, False))
        for text, value in zip(arr.take(idx).to_pylist(), dec.take(idx).to_pylist(), strict=True):
            try:
                exact = decimal.Decimal(text.strip())
            except decimal.InvalidOperation:
                exact = None
            if exact != value:
                raise pa.ArrowInvalid(f"{text!r} does not fit {typ}")
    return dec.cast(typ)  # safe: a value beyond the declared precision is refused


def _parse_temporal(arr: pa.Array, fmt: str, typ: pa.DataType) -> pa.Array:
    text = pc.utf8_trim_whitespace(arr)
    parsed = _refuse_rollover(text, pc.strptime(text, format=fmt, unit="us", error_is_null=False), fmt)
    if pa.types.is_date(typ):
        return parsed.cast(pa.date32())
    if parsed.type.tz is not None:  # the format has an offset (%z): already UTC
        return parsed.cast(typ)
    if getattr(typ, "tz", None):
        return pc.assume_timezone(parsed, typ.tz)
    return parsed


def _refuse_rollover(text: pa.Array, parsed: pa.Array, fmt: str) -> pa.Array:
    """Refuse what ``pc.strptime`` rolls over (31.02.2024 becomes 2024-03-02).

    Each parsed value is formatted back with ``fmt`` and compared with its text. The few that differ
    even after normalising case, spacing and zero padding (``1.3.2024``) are parsed again with
    :func:`datetime.datetime.strptime`, which refuses impossible dates (``pa.ArrowInvalid``, so the
    diagnosis pass names the line) and otherwise gives the value to keep. With ``%z`` every value whose
    offset is not +0000 formats back differently, so such columns are parsed in Python (slower).
    """
    if parsed.null_count == len(parsed):
        return parsed
    # pc.strftime's %S prints fractions of a second; a format parses none, so whole seconds suffice
    back = pc.strftime(parsed.cast(pa.timestamp("s", tz=parsed.type.tz), safe=False), format=fmt)
    differ = pc.indices_nonzero(pc.fill_null(pc.not_equal(back, text), False))
    if not len(differ):
        return parsed
    suspect = pc.filter(differ, pc.not_equal(_normal(back.take(differ)), _normal(text.take(differ))))
    if not len(suspect):
        return parsed
    values = []
    for value in text.take(suspect).to_pylist():
        try:
            values.append(dt.datetime.strptime(value, fmt))
        except ValueError:
            raise pa.ArrowInvalid(f"{value!r} is not a valid date for format {fmt!r}") from None
    mask = np.zeros(len(parsed), dtype=bool)
    mask[suspect.to_numpy()] = True
    return pc.replace_with_mask(parsed, pa.array(mask), pa.array(values, type=parsed.type))


def _normal(arr: pa.Array) -> pa.Array:
    """Lower case, single spaces and unpadded 2-3 digit numbers: what strptime does not distinguish."""
    arr = pc.replace_substring_regex(pc.utf8_lower(arr), pattern=r"\s+", replacement=" ")
    return pc.replace_substring_regex(arr, pattern=r"\b(?:0(\d)|00(\d)|0(\d\d))\b", replacement=r"\1\2\3")


_HAS_OFFSET = r"[T ][0-9:.]*[Z+-]"  # an offset follows the time: Z, +hh[[:]mm] or -hh[[:]mm]


def _to_utc(arr: pa.Array) -> pa.Array:
    """ISO timestamps with an offset keep it; those without one are taken as UTC (also mixed in a column).

    A column is usually all one or the other, so each is tried as a whole first (a cast stops at its
    first failing value); only a mixed column is split by a regular expression.
    """
    utc = pa.timestamp("us", tz="UTC")
    try:
        return arr.cast(utc)
    except pa.ArrowInvalid:
        pass
    try:
        return arr.cast(pa.timestamp("us")).cast(utc)
    except pa.ArrowInvalid:
        pass
    has_offset = pc.match_substring_regex(arr, _HAS_OFFSET)
    with_offset = pc.if_else(has_offset, arr, None).cast(utc)  # a bad value raises pa.ArrowInvalid
    without = pc.if_else(has_offset, None, arr).cast(pa.timestamp("us")).cast(utc)
    return pc.if_else(has_offset, with_offset, without)


def _to_bool(arr: pa.Array) -> pa.Array:
    """true/false/1/0 in any letter case; anything else raises ``pa.ArrowInvalid``."""
    lower = pc.utf8_lower(arr)
    # built here, not at import: pa.array imports pandas, which `bulksync convert` must not wait for
    true = pc.is_in(lower, value_set=pa.array(["true", "1"]))
    known = pc.or_(true, pc.is_in(lower, value_set=pa.array(["false", "0"])))
    if pc.any(pc.and_(pc.is_valid(arr), pc.invert(known))).as_py():
        raise pa.ArrowInvalid("not a bool: expected true, false, 1 or 0")
    return pc.if_else(pc.is_valid(arr), true, None)


# What pyarrow's ISO 8601 parser accepts: a date, optionally a time (hh[:mm[:ss[.ffffff]]]) after
# 'T' or ' ', and after a time optionally an offset (Z, +hh, +hhmm or +hh:mm).
_ISO = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:[T ](\d{2})(?::(\d{2})(?::(\d{2})(?:\.\d{1,6})?)?)?(Z|[+-](\d{2})(?::?(\d{2}))?)?)?"
)


def _iso(value: str, offset: bool, time: bool = True) -> None:
    """Raise ``ValueError`` unless pyarrow parses ``value`` (with an offset only if ``offset``).

    Dates alone are read by pyarrow's CSV date parser, which ignores surrounding whitespace.
    """
    m = _ISO.fullmatch(value if time else value.strip())
    if not m or (m[7] and not offset) or (m[4] and not time):
        raise ValueError(value)
    year = int(m[1]) or 2000  # pyarrow accepts year 0, a leap year like 2000; Python's datetime does not
    dt.datetime(year, int(m[2]), int(m[3]), int(m[4] or 0), int(m[5] or 0), int(m[6] or 0))
    if m[8] and (int(m[8]) > 23 or int(m[9] or 0) > 59):
        raise ValueError(value)


def _checker(typ: str, fmt: str | None) -> Callable[[str], bool]:
    """Whether a value (not a null value) converts like :meth:`CsvFilesSource.read_file` converts it."""

    def ok(fn: Callable[[str], Any]) -> Callable[[str], bool]:
        def check(v: str) -> bool:
            try:
                fn(v)
            except (ValueError, decimal.InvalidOperation, ArithmeticError):
                return False
            return True

        return check

    def number(v: str) -> str:
        """The number text without blanks; Python's digit separators and non-ASCII digits are refused."""
        t = v.strip()
        if not t.isascii() or "_" in t:
            raise ValueError
        return t

    if typ in ("int32", "int64"):
        bits = 32 if typ == "int32" else 64

        def as_int(v: str) -> None:
            t = number(v)
            if t[:2] in ("0x", "0X"):  # pyarrow reads hexadecimal (wrapping around into the sign bit)
                if not 0 < len(t) - 2 <= bits // 4 or not all(c in string.hexdigits for c in t[2:]):
                    raise ValueError
                return
            if t.startswith("+") or not -(2 ** (bits - 1)) <= int(t) < 2 ** (bits - 1):
                raise ValueError

        return ok(as_int)
    if typ == "float64":
        return ok(lambda v: float(number(v)))
    if typ.startswith("decimal("):
        p, s = (int(x) for x in typ[len("decimal(") : -1].split(","))
        context = decimal.Context(prec=100, traps=[decimal.InvalidOperation])

        def as_dec(v: str) -> None:
            d = context.create_decimal(number(v))
            if not d.is_finite():
                raise ValueError
            units = d.scaleb(s, context)  # trailing zeros beyond the scale are fine (1.000 in decimal(5,2))
            if units != units.to_integral_value(context=context) or units.copy_abs() >= 10**p:
                raise ValueError

        return ok(as_dec)
    if typ == "bool":
        return lambda v: v.lower() in {"true", "false", "1", "0"}
    if typ in ("date", "timestamp", "timestamptz"):
        if fmt:
            return ok(lambda v: dt.datetime.strptime(v.strip(), fmt))
        return ok(lambda v: _iso(v, offset=typ == "timestamptz", time=typ != "date"))
    return lambda v: True
