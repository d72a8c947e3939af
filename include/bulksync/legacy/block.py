"""Decoding one block of records into an Arrow record batch (with per-record errors)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from bulksync.legacy.decoders import REASONS, from_numpy
from bulksync.legacy.errors import RecordError
from bulksync.legacy.layout import arrow_type_of, size_of, walk
from bulksync.legacy.plan import Plan, RecordPlan, Selector, decode_field
from bulksync.legacy.records import RawBlock

REJECTED_SCHEMA = pa.schema(
    [("_record", pa.int64()), ("_offset", pa.int64()), ("_raw", pa.binary()), ("_reason", pa.string())]
)


@dataclass
class DecodedBlock:
    """Decoded records of one block.

    Attributes:
        batch: the records as Arrow (strict mode: only the records without errors).
        errors: invalid values found, at most ``max_error_details`` of them.
        error_count: invalid values found (all of them).
        error_records: records with at least one invalid value.
        rejected: strict mode: the records with errors (``_record``, ``_offset``, ``_raw``, ``_reason``).
        first_record: 1-based number of the block's first record.
        records: records read in this block (batch rows plus rejected rows).
        unprintable: text characters that did not map in the code page (shown as U+FFFD).
    """

    batch: pa.RecordBatch
    errors: list[RecordError]
    error_count: int
    error_records: int
    rejected: pa.RecordBatch | None
    first_record: int
    records: int
    unprintable: int = 0


@dataclass
class _Acc:
    """Pieces of every column decoded on subsets of rows, assembled at the end."""

    n: int
    pieces: list[list[tuple[np.ndarray | None, pa.Array]]]
    reasons: list[tuple[np.ndarray, int, str, int]] = field(default_factory=list)  # rows, column, reason, offset
    unprintable: int = 0


def _rows_all(rows: np.ndarray | None, n: int) -> np.ndarray:
    return np.arange(n) if rows is None else rows


def _selector_values(plan: Plan, sel: Selector, data: np.ndarray) -> np.ndarray:
    """Index into ``sel.names`` per record (-1: the value is not in ``when``)."""
    item = sel.item
    arr, _reason, _bad = decode_field(plan, item, arrow_type_of(item), data[:, sel.offset : sel.offset + item.size])
    out = np.full(len(data), -1, dtype=np.int64)
    as_text = pc.cast(arr, pa.string()) if not pa.types.is_string(arr.type) else arr
    for value, idx in sel.when.items():
        key = value.strip()
        if not pa.types.is_string(arr.type):
            with contextlib.suppress(ValueError):
                key = str(int(key))
        hit = pc.fill_null(pc.equal(pc.utf8_trim_whitespace(as_text), key), False)
        out[np.asarray(hit.to_numpy(zero_copy_only=False), dtype=bool)] = idx
    return out


def _decode_record(
    plan: Plan,
    rp: RecordPlan,
    data: np.ndarray,
    lengths: np.ndarray | None,
    rows: np.ndarray | None,
    acc: _Acc,
    rec_errors: list[tuple[np.ndarray, str]],
) -> None:
    """Decode the rows ``rows`` (None: all) of ``data`` with the layout of one 01 record."""
    sub = data if rows is None else data[rows]
    sub_len = None if lengths is None else (lengths if rows is None else lengths[rows])
    m = len(sub)
    keys: list[np.ndarray] = []
    bases = list(rp.rules)
    for base in bases:
        choice = _selector_values(plan, rp.rules[base], sub)
        bad = choice < 0
        if bad.any():
            sel = rp.rules[base]
            rec_errors.append(
                (
                    _rows_all(rows, len(data))[bad] if rows is not None else np.flatnonzero(bad),
                    f"{sel.item.name} has a value not listed in redefines.{base}.when",
                )
            )
        keys.append(choice)
    for name, counter, off in rp.counters:
        arr, reason, _ = decode_field(plan, counter, pa.int64(), sub[:, off : off + counter.size])
        vals = np.asarray(pc.fill_null(arr, -1).to_numpy(zero_copy_only=False), dtype=np.int64)
        table = _odo_range(rp, name)
        bad = (vals < table[0]) | (vals > table[1])
        if bad.any():
            rec_errors.append(
                (
                    _rows_all(rows, len(data))[bad] if rows is not None else np.flatnonzero(bad),
                    f"{name} = out of range {table[0]}..{table[1]} for its OCCURS DEPENDING ON table",
                )
            )
        keys.append(np.where(bad, -1, vals))
    if keys:
        stacked = np.stack(keys, axis=1)
        uniq, inverse = np.unique(stacked, axis=0, return_inverse=True)
        inverse = inverse.reshape(-1)
    else:
        uniq, inverse = np.zeros((1, 0), dtype=np.int64), np.zeros(m, dtype=np.int64)
    for u, key in enumerate(uniq):
        local = None if len(uniq) == 1 else np.flatnonzero(inverse == u)
        if (key[len(bases) :] < 0).any():
            continue  # an invalid ODO count: every column of the record stays null
        chosen = {b: rp.rules[b].names[int(key[i])] for i, b in enumerate(bases) if key[i] >= 0}
        counts = {name: int(key[len(bases) + j]) for j, (name, _c, _o) in enumerate(rp.counters)}
        part = sub if local is None else sub[local]
        part_len = None if sub_len is None else (sub_len if local is None else sub_len[local])
        global_rows = rows if local is None else _rows_all(rows, len(data))[local]
        if part_len is not None:
            need = size_of(rp.record, counts or None)
            short = part_len < need
            if short.any():
                rec_errors.append(
                    (
                        _rows_all(global_rows, len(data))[short],
                        f"the record is shorter than the {need} bytes its layout needs",
                    )
                )
        for it, idx, off, branches, _anc in walk(rp.record, 0, counts or None):
            col = rp.columns.get((id(it), idx))
            if col is None:
                continue
            if any(b in rp.rules and chosen.get(b) != br for b, br in branches):
                continue
            c = plan.columns[col]
            arr, reason, bad_chars = decode_field(plan, it, c.type, part[:, off : off + it.size])
            acc.unprintable += bad_chars
            if part_len is not None:
                beyond = part_len < off + it.size
                if beyond.any():
                    arr = pc.if_else(from_numpy(beyond, pa.bool_()), pa.nulls(len(arr), arr.type), arr)
                    if reason is not None:
                        reason = np.where(beyond, 0, reason).astype(np.uint8)
            acc.pieces[col].append((global_rows, arr))
            if reason is not None and not plan.quiet[col]:
                hits = np.flatnonzero(reason)
                if len(hits):
                    where = hits if global_rows is None else global_rows[hits]
                    for code in np.unique(reason[hits]):
                        acc.reasons.append((where[reason[hits] == code], col, REASONS[int(code)], off))


def _odo_range(rp: RecordPlan, counter: str) -> tuple[int, int]:
    stack = [rp.record]
    lo, hi = 0, 0
    while stack:
        it = stack.pop()
        stack.extend(it.children)
        if it.depending_on == counter:
            lo, hi = it.occurs_min, it.occurs
    return lo, hi


def _assemble(n: int, typ: pa.DataType, pieces: list[tuple[np.ndarray | None, pa.Array]]) -> pa.Array:
    if len(pieces) == 1 and pieces[0][0] is None:
        return pieces[0][1]
    if not pieces:
        return pa.nulls(n, typ)
    where = np.full(n, -1, dtype=np.int64)
    base = 0
    for rows, arr in pieces:
        rws = np.arange(n) if rows is None else rows
        where[rws] = base + np.arange(len(rws))
        base += len(arr)
    values = pa.concat_arrays([p[1] for p in pieces])
    return pc.take(values, from_numpy(where, pa.int64(), where >= 0))


def decode_block(plan: Plan, raw: RawBlock, name: str) -> DecodedBlock:
    """Decode one block of records (see :class:`DecodedBlock`)."""
    data, lengths = raw.data, raw.lengths
    if lengths is None and plan.options.record_length and plan.options.record_length < plan.width:
        lengths = np.full(len(data), plan.options.record_length, dtype=np.int64)
    n = len(data)
    acc = _Acc(n, [[] for _ in plan.columns])
    rec_errors: list[tuple[np.ndarray, str]] = []
    segment_names: pa.Array | None = None
    if plan.segment is None:
        _decode_record(plan, plan.records[0], data, lengths, None, acc, rec_errors)
    else:
        seg = _selector_values(plan, plan.segment, data)
        names = np.array([rp.record.name or "" for rp in plan.records] + [""], dtype=object)
        segment_names = pa.array([s.lower() or None for s in names[seg].tolist()], type=pa.string())
        unknown = np.flatnonzero(seg < 0)
        if len(unknown):
            rec_errors.append((unknown, f"{plan.segment.item.name} has a value not listed in segments.when"))
        for rp in plan.records:
            rows = np.flatnonzero(seg == rp.index)
            if len(rows):
                _decode_record(plan, rp, data, lengths, rows if len(rows) < n else None, acc, rec_errors)
    arrays = [_assemble(n, c.type, acc.pieces[i]) for i, c in enumerate(plan.columns)]
    if segment_names is not None:
        arrays.insert(0, segment_names)
    batch = pa.RecordBatch.from_arrays(arrays, schema=plan.schema)
    return _finish(plan, raw, batch, acc, rec_errors, lengths)


def _finish(
    plan: Plan,
    raw: RawBlock,
    batch: pa.RecordBatch,
    acc: _Acc,
    rec_errors: list[tuple[np.ndarray, str]],
    lengths: np.ndarray | None,
) -> DecodedBlock:
    n = batch.num_rows
    bad = np.zeros(n, dtype=bool)
    first_reason: dict[int, str] = {}
    details: list[RecordError] = []
    limit = plan.options.max_error_details
    count = 0
    for rows, reason in rec_errors:
        bad[rows] = True
        count += len(rows)
        for r in rows[: max(0, limit - len(details))].tolist():
            details.append(RecordError(raw.first + r, int(raw.offsets[r]), "", "", reason))
        for r in rows.tolist():
            first_reason.setdefault(r, reason)
    for rows, col, reason, off in acc.reasons:
        bad[rows] = True
        count += len(rows)
        c = plan.columns[col]
        for r in rows[: max(0, limit - len(details))].tolist():
            b = bytes(raw.data[r, off : off + c.item.size])
            details.append(RecordError(raw.first + r, int(raw.offsets[r]), c.name, b.hex().upper(), reason))
        for r in rows.tolist():
            first_reason.setdefault(r, f"{c.name}: {reason}")
    details.sort(key=lambda e: e.record)
    rejected = None
    if plan.options.strict:
        idx = np.flatnonzero(bad)
        raws = [bytes(raw.data[r, : (int(lengths[r]) if lengths is not None else raw.data.shape[1])]) for r in idx]
        rejected = pa.RecordBatch.from_arrays(
            [from_numpy(raw.first + idx, pa.int64()), from_numpy(raw.offsets[idx], pa.int64()),
             pa.array(raws, pa.binary()), pa.array([first_reason[int(r)] for r in idx], pa.string())],
            schema=REJECTED_SCHEMA,
        )  # fmt: skip
        if len(idx):
            batch = batch.filter(from_numpy(~bad, pa.bool_()))
    return DecodedBlock(batch, details, count, int(bad.sum()), rejected, raw.first, n, acc.unprintable)
