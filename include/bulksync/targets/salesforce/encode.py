"""Staged Arrow batches as Bulk API 2.0 ingest CSV, and the checks describe allows before any upload.

Encoding follows "Valid Date Format in Records" and "Valid CSV Record Rows" of the Bulk API 2.0
Developer Guide (datafiles_date_format.htm, datafiles_csv_valid_record_rows.htm): UTF-8, comma
delimiter, LF line ends, every value quoted (embedded quotes doubled, newlines kept), booleans
``true``/``false``, dates ``YYYY-MM-DD``, datetimes in UTC ``YYYY-MM-DDThh:mm:ss.SSSZ`` (naive
timestamps are taken as UTC; sub-millisecond digits are dropped, Salesforce keeps milliseconds),
decimals as plain text with their scale, floats in shortest round-trip form. A null is an empty
value — which an update leaves alone — or ``#N/A`` (which sets the field to null) with ``nulls: clear``.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from bulksync.targets.salesforce.plan import MAX_FIELD_CHARS, Column, WritePlan

NA = "#N/A"
MAX_PROBLEMS_SHOWN = 10
_TEXT = ("string", "textarea", "phone", "url", "email", "picklist", "multipicklist", "combobox", "encryptedstring")


def text_column(arr: pa.Array | pa.ChunkedArray) -> pa.Array:
    """One staged column as the text Salesforce expects (nulls stay null)."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    t = arr.type
    if pa.types.is_boolean(t):
        return pc.if_else(arr, "true", "false")
    if pa.types.is_timestamp(t):
        utc = arr if t.tz else pc.assume_timezone(arr, "UTC")
        ms = pc.floor_temporal(utc, unit="millisecond").cast(pa.timestamp("ms", tz="UTC"))
        return pc.strftime(ms, format="%Y-%m-%dT%H:%M:%SZ")
    if pa.types.is_date(t):
        return arr.cast(pa.string())
    if pa.types.is_time(t):
        return pc.strftime(arr.cast(pa.time64("us")), format="%H:%M:%S") if len(arr) else arr.cast(pa.string())
    if pa.types.is_string(t):
        return arr
    if pa.types.is_large_string(t) or pa.types.is_dictionary(t):
        return arr.cast(pa.string())
    return arr.cast(pa.string())


def encode(plan: WritePlan, batch: pa.RecordBatch | pa.Table, nulls: str, header: bool) -> bytes:
    """The CSV of ``batch`` for the plan's columns (``nulls``: ``ignore`` → empty, ``clear`` → ``#N/A``)."""
    fill = NA if nulls == "clear" and plan.operation in ("update", "upsert") else ""
    arrays = []
    for col in plan.columns:
        text = text_column(batch.column(col.source))
        if col.header.lower() == "id" or (plan.key_source and col.source == plan.key_source):
            arrays.append(pc.fill_null(text, ""))  # a key is never "cleared"
        else:
            arrays.append(pc.fill_null(text, fill))
    table = pa.table(arrays, names=plan.headers)
    buf = io.BytesIO()
    pacsv.write_csv(table, buf, pacsv.WriteOptions(include_header=header, quoting_style="all_valid", eol="\n"))
    return buf.getvalue()


_PRIME = np.uint64(1099511628211)


def hash_strings(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A 64-bit polynomial hash of every string, vectorised over the Arrow buffers (no Python loop).

    Equal strings hash equal; a repeat of a hash is only a suspect (the caller confirms by value).
    """
    arr = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    arr = arr.cast(pa.string())
    n = len(arr)
    if not n:
        return np.zeros(0, dtype=np.uint64)
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int32, count=n + 1, offset=arr.offset * 4).astype(np.int64)
    data_buf = arr.buffers()[2]
    data = np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None else np.zeros(0, dtype=np.uint8)
    data = data[offsets[0] : offsets[-1]]
    starts, lengths = offsets[:-1] - offsets[0], np.diff(offsets)
    position = np.arange(len(data), dtype=np.int64) - np.repeat(starts, lengths)
    longest = int(lengths.max()) if n else 0
    with np.errstate(over="ignore"):
        powers = np.cumprod(np.full(max(longest, 1), _PRIME, dtype=np.uint64))
        contrib = (data.astype(np.uint64) + np.uint64(1)) * powers[position]
        sums = np.concatenate([np.zeros(1, dtype=np.uint64), np.cumsum(contrib, dtype=np.uint64)])
        return (sums[starts + lengths] - sums[starts]) ^ (lengths.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15))


def _largest_record(plan: WritePlan) -> int:
    """An upper bound of one record's CSV bytes from describe (UTF-8: 4 bytes a character, every quote doubled)."""
    total = 0
    for col in plan.columns:
        t = col.sf_type
        if col.relationship or t not in ("boolean", "int", "long", "double", "currency", "percent", "date", "datetime"):
            length = int(col.field.get("length") or 0) if not col.relationship else 255
            if not length:
                return 1 << 62  # unknown length: check every record
            total += 8 * min(length, MAX_FIELD_CHARS) + 3
        else:
            total += 48
    return total


def header_bytes(plan: WritePlan) -> bytes:
    """The CSV header line."""
    return (",".join(f'"{h}"' for h in plan.headers) + "\n").encode()


@dataclass
class Problem:
    """A record the describe check refuses (before upload)."""

    row: int
    column: str
    field: str
    code: str
    message: str

    def describe(self) -> str:
        """One line for messages: row (1-based), column, field, what is wrong."""
        return f"row {self.row + 1}, column {self.column!r} ({self.field}): {self.code}: {self.message}"


@dataclass
class Precheck:
    """Streaming pre-upload checks over the whole staged data (memory: 9 bytes per record)."""

    plan: WritePlan
    max_record_bytes: int
    problems: list[Problem] = field(default_factory=list)
    invalid: list[np.ndarray] = field(default_factory=list)
    key_hashes: list[np.ndarray] = field(default_factory=list)
    rows: int = 0
    count: int = 0

    def __post_init__(self) -> None:
        # the per-record size check only runs when describe's lengths allow a record larger than an upload
        self.check_sizes = _largest_record(self.plan) > self.max_record_bytes

    def columns(self) -> list[str]:
        """The staged columns the checks read (text fields, required fields, the key)."""
        wanted = {c.source for c in self.plan.columns if not c.relationship and c.sf_type in _TEXT}
        wanted |= {c.source for c in self.plan.required}
        if self.plan.key_source:
            wanted.add(self.plan.key_source)
        return sorted(wanted)

    def add(self, batch: pa.RecordBatch) -> None:
        """Check one batch (rows numbered after the previous batches)."""
        n = batch.num_rows
        bad = np.zeros(n, dtype=bool)
        for col in self.plan.columns:
            self._column(batch, col, bad)
        if self.plan.operation == "insert":
            for col in self.plan.required:
                nulls = np.asarray(batch.column(col.source).is_null().to_numpy(zero_copy_only=False), dtype=bool)
                self._flag(
                    nulls,
                    bad,
                    col,
                    "REQUIRED_FIELD_MISSING",
                    lambda _v, c=col: (
                        f"{c.field['name']} is required on a new {self.plan.object} and the value is empty"
                    ),
                    batch,
                )
        if self.plan.key_source:
            self._keys(batch, bad)
        if self.check_sizes:
            self._sizes(batch, bad)
        self.invalid.append(bad)
        self.rows += n

    def _column(self, batch: pa.RecordBatch, col: Column, bad: np.ndarray) -> None:
        fdef = col.field
        if col.relationship or col.sf_type not in _TEXT:
            return
        values = batch.column(col.source)
        text = text_column(values)
        limit = min(int(fdef.get("length") or MAX_FIELD_CHARS), MAX_FIELD_CHARS)
        long = np.asarray(pc.fill_null(pc.greater(pc.utf8_length(text), limit), False).to_numpy(zero_copy_only=False))
        self._flag(
            long,
            bad,
            col,
            "STRING_TOO_LONG",
            lambda v: f"{len(v)} characters, the field takes at most {limit}",
            batch,
            text,
        )
        if fdef.get("restrictedPicklist") and fdef.get("picklistValues"):
            allowed = pa.array([p["value"] for p in fdef["picklistValues"] if p.get("active", True)], pa.string())
            if col.sf_type == "multipicklist":
                parts = pc.split_pattern(text, ";")
                flat_bad = np.asarray(
                    pc.invert(pc.is_in(pc.list_flatten(parts), allowed)).to_numpy(zero_copy_only=False)
                )
                owners = np.asarray(pc.list_parent_indices(parts).to_numpy())
                mask = np.zeros(len(text), dtype=bool)
                mask[owners[flat_bad]] = True
            else:
                mask = np.asarray(
                    pc.fill_null(pc.invert(pc.is_in(text, allowed)), False).to_numpy(zero_copy_only=False)
                ) & np.asarray(text.is_valid().to_numpy(zero_copy_only=False))
            shown = ", ".join(str(p["value"]) for p in fdef["picklistValues"][:12])
            self._flag(
                mask,
                bad,
                col,
                "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                lambda v: f"{v!r} is not a value of the restricted picklist (values: {shown})",
                batch,
                text,
            )

    def _keys(self, batch: pa.RecordBatch, bad: np.ndarray) -> None:
        key = self.plan.key_source
        assert key is not None
        col = next(c for c in self.plan.columns if c.source == key)
        text = text_column(batch.column(key))
        empty = np.asarray(
            pc.or_(pc.is_null(text), pc.equal(pc.utf8_trim_whitespace(pc.fill_null(text, "")), "")).to_numpy(
                zero_copy_only=False
            )
        )
        self._flag(empty, bad, col, "MISSING_KEY", lambda _v: f"the record key {col.header} is empty", batch)
        hashes = hash_strings(pc.utf8_lower(pc.fill_null(text, "")))
        # empty keys are reported above; give them distinct values so they never look repeated
        where = np.flatnonzero(empty)
        hashes[where] = (np.uint64(1) << np.uint64(63)) | (where + self.rows).astype(np.uint64)
        self.key_hashes.append(hashes)

    def _sizes(self, batch: pa.RecordBatch, bad: np.ndarray) -> None:
        lengths = np.zeros((len(self.plan.columns), batch.num_rows), dtype=np.int64)
        for i, col in enumerate(self.plan.columns):
            text = text_column(batch.column(col.source))
            lengths[i] = np.asarray(pc.fill_null(pc.binary_length(text), 0).to_numpy(zero_copy_only=False))
        total = lengths.sum(axis=0) + 3 * len(self.plan.columns)
        over = total > self.max_record_bytes
        if not over.any():
            return
        positions = np.flatnonzero(over)
        for pos in positions[:MAX_PROBLEMS_SHOWN]:
            col = self.plan.columns[int(lengths[:, pos].argmax())]  # name the column that makes it so large
            self._problem(
                int(pos),
                col,
                "RECORD_TOO_LARGE",
                f"the record is {int(total[pos])} bytes as CSV, more than one upload may hold "
                f"({self.max_record_bytes} bytes; max_bytes_per_job)",
            )
        bad |= over
        self.count += len(positions) - min(len(positions), MAX_PROBLEMS_SHOWN)

    def _flag(
        self,
        mask: np.ndarray,
        bad: np.ndarray,
        col: Column,
        code: str,
        message: Any,
        batch: pa.RecordBatch,
        text: pa.Array | None = None,
    ) -> None:
        if not mask.any():
            return
        positions = np.flatnonzero(mask)
        values = (text if text is not None else text_column(batch.column(col.source))).take(
            pa.array(positions[:MAX_PROBLEMS_SHOWN])
        )
        for pos, value in zip(positions[:MAX_PROBLEMS_SHOWN].tolist(), values.to_pylist(), strict=True):
            self._problem(pos, col, code, message(value if value is not None else ""))
        self.count += len(positions) - min(len(positions), MAX_PROBLEMS_SHOWN)
        bad |= mask

    def _problem(self, pos: int, col: Column, code: str, message: str) -> None:
        self.count += 1
        if len(self.problems) < 200:
            self.problems.append(Problem(self.rows + pos, col.source, col.header, code, message))

    def finish(self, read_keys: Any) -> np.ndarray:
        """Mark repeated record keys (found by hash, confirmed by value); return the invalid-row mask.

        ``read_keys()`` re-reads the key column (only when a hash repeats).
        """
        invalid = np.concatenate(self.invalid) if self.invalid else np.zeros(0, dtype=bool)
        if not self.key_hashes:
            return invalid
        hashes = np.concatenate(self.key_hashes)
        sorted_h = np.sort(hashes)
        repeated = np.unique(sorted_h[1:][sorted_h[1:] == sorted_h[:-1]])
        if not len(repeated):
            return invalid
        keys = read_keys()
        seen: dict[str, list[int]] = {}
        for pos in np.flatnonzero(np.isin(hashes, repeated)).tolist():
            value = keys[pos]
            if value:
                seen.setdefault(value.lower(), []).append(pos)
        col = next(c for c in self.plan.columns if c.source == self.plan.key_source)
        for rows in seen.values():
            if len(rows) < 2:
                continue
            for pos in rows:
                if len(self.problems) < 200:
                    self.problems.append(
                        Problem(
                            pos,
                            col.source,
                            col.header,
                            "DUPLICATE_KEY",
                            f"the key {keys[pos]!r} appears {len(rows)} times in the staged data (rows "
                            f"{', '.join(str(r + 1) for r in rows[:5])}); Salesforce would fail them all",
                        )
                    )
                self.count += 1
                invalid[pos] = True
        return invalid
