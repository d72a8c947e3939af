"""Decoding one block of records into an Arrow record batch (with per-record errors)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from bulksync.legacy.copybook_parser import Item
from bulksync.legacy.decoders import REASONS, binaries, from_numpy, int_values, strings
from bulksync.legacy.errors import RecordError
from bulksync.legacy.layout import Counts, arrow_type_of
from bulksync.legacy.plan import Plan, RecordPlan, Resolved, Selector, decode_field
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
        records: records read in this block (batch rows plus rejected rows), skipped ones left out.
        skipped: records left out by ``skip_records``.
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
    skipped: int = 0


@dataclass
class _RecErr:
    """Records with one structural problem (they cannot be laid out, or a selector value is unknown)."""

    rows: np.ndarray  # rows of the block
    reason: str
    field: str = ""
    offset: int = -1  # of the field in the record
    size: int = 0


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
    as_text = pc.cast(arr, pa.string()) if not pa.types.is_string(arr.type) else arr
    keys: list[str] = []
    targets: list[int] = []
    for value, idx in sel.when.items():
        key = value.strip()
        if not pa.types.is_string(arr.type):
            with contextlib.suppress(ValueError):
                key = str(int(key))
        keys.append(key)
        targets.append(idx)
    hit = pc.index_in(pc.utf8_trim_whitespace(as_text), value_set=strings(keys))
    pos = int_values(hit, -1)
    lookup = np.array([*targets, -1], dtype=np.int64)
    return lookup[pos]


def _column_name(rp: RecordPlan, plan: Plan, item: Item, indices: tuple[int, ...]) -> str:
    col = rp.columns.get((id(item), indices))
    return plan.columns[col].name if col is not None else (item.name or "FILLER").lower().replace("-", "_")


def _layouts(
    plan: Plan,
    rp: RecordPlan,
    sub: np.ndarray,
    sub_len: np.ndarray | None,
    idx: np.ndarray | None,
    counts: Counts,
    errs: list[tuple[np.ndarray, _RecErr]],
) -> Iterator[tuple[np.ndarray | None, Resolved]]:
    """Split the rows ``idx`` (None: all) of ``sub`` by their ODO counts: (rows, layout) per distinct layout.

    Counters are read where the layout puts them; a counter in a table is read once per occurrence. Rows
    whose counter is not a number, is out of its table's range, or lies past the record's end are reported
    in ``errs`` (as rows of ``sub``) and left out: their later fields cannot be located.
    """
    res = rp.resolve(counts)
    if isinstance(res, Resolved):
        yield idx, res
        return
    part = sub if idx is None else sub[idx]
    c = res.counter
    arr, _reason, _ = decode_field(plan, c, pa.int64(), part[:, res.offset : res.offset + c.size])
    vals = int_values(arr, -(2**62))
    lo, hi = res.table.occurs_min, res.table.occurs
    rows_of = np.arange(len(part)) if idx is None else idx
    name = _column_name(rp, plan, c, res.key[1])
    bad = (vals < lo) | (vals > hi)
    if sub_len is not None:
        past = (sub_len if idx is None else sub_len[idx]) < res.offset + c.size
        if past.any():
            errs.append((rows_of[past], _RecErr(rows_of[past], f"the record ends before its counter {c.name}",
                                                name, res.offset, c.size)))  # fmt: skip
            bad &= ~past
            vals[past] = -(2**62)
    if bad.any():
        for v in np.unique(vals[bad]).tolist():
            hit = rows_of[bad & (vals == v)]
            what = "is not a number" if v == -(2**62) else f"= {v} is outside {lo}..{hi}"
            errs.append(
                (
                    hit,
                    _RecErr(
                        hit,
                        f"the OCCURS DEPENDING ON counter {c.name} {what} (table {res.table.name}):"
                        " the fields after it cannot be located",
                        name,
                        res.offset,
                        c.size,
                    ),
                )
            )
    good = (vals >= lo) & (vals <= hi)
    for v in np.unique(vals[good]).tolist():
        sel = np.flatnonzero(good & (vals == v))
        nxt = None if idx is None and len(sel) == len(part) else rows_of[sel]
        yield from _layouts(plan, rp, sub, sub_len, nxt, {**counts, res.key: int(v)}, errs)


def _decode_record(
    plan: Plan,
    rp: RecordPlan,
    data: np.ndarray,
    lengths: np.ndarray | None,
    rows: np.ndarray | None,
    acc: _Acc,
    rec_errors: list[_RecErr],
) -> None:
    """Decode the rows ``rows`` (None: all) of ``data`` with the layout of one 01 record."""
    sub = data if rows is None else data[rows]
    sub_len = None if lengths is None else (lengths if rows is None else lengths[rows])
    m = len(sub)

    def to_block(local: np.ndarray) -> np.ndarray:
        return local if rows is None else rows[local]

    keys: list[np.ndarray] = []
    bases = list(rp.rules)
    for base in bases:
        choice = _selector_values(plan, rp.rules[base], sub)
        bad = choice < 0
        if bad.any():
            sel = rp.rules[base]
            rec_errors.append(_RecErr(to_block(np.flatnonzero(bad)),
                                      f"{sel.item.name} has a value not listed in redefines.{base}.when",
                                      sel.item.name.lower().replace("-", "_") if sel.item.name else "",
                                      sel.offset, sel.item.size))  # fmt: skip
        keys.append(choice)
    if keys:
        stacked = np.stack(keys, axis=1)
        uniq, inverse = np.unique(stacked, axis=0, return_inverse=True)
        inverse = inverse.reshape(-1)
    else:
        uniq, inverse = np.zeros((1, 0), dtype=np.int64), np.zeros(m, dtype=np.int64)
    errs: list[tuple[np.ndarray, _RecErr]] = []
    for u, key in enumerate(uniq):
        if (key < 0).any():
            continue  # an unknown branch value: reported above, every column stays null
        group = None if len(uniq) == 1 else np.flatnonzero(inverse == u)
        chosen = dict(rp.fixed)
        chosen.update({b: rp.rules[b].names[int(key[i])] for i, b in enumerate(bases)})
        for local, res in _layouts(plan, rp, sub, sub_len, group, {}, errs):
            _decode_layout(plan, rp, sub, sub_len, local, res, chosen, rows, acc, rec_errors)
    for block_rows, e in errs:
        e.rows = to_block(block_rows)
        rec_errors.append(e)


def _decode_layout(
    plan: Plan,
    rp: RecordPlan,
    sub: np.ndarray,
    sub_len: np.ndarray | None,
    local: np.ndarray | None,
    res: Resolved,
    chosen: dict[str, str],
    rows: np.ndarray | None,
    acc: _Acc,
    rec_errors: list[_RecErr],
) -> None:
    """Decode the rows ``local`` of ``sub`` (None: all), which share one layout and one choice of branches.

    ``rows``: the block rows ``sub`` holds (None: the whole block).
    """
    part = sub if local is None else sub[local]
    part_len = None if sub_len is None else (sub_len if local is None else sub_len[local])
    n_sub = len(sub)

    def to_block(x: np.ndarray) -> np.ndarray:
        return x if rows is None else rows[x]

    global_rows = None if local is None and rows is None else to_block(_rows_all(local, n_sub))
    active = [e for e in res.entries if all(chosen.get(b, br) == br for b, br in e[3])]
    if part_len is not None:
        need = max((off + it.size for it, _i, off, _b, _a in active), default=0)
        short = part_len < need
        if short.any():
            where = to_block(_rows_all(local, n_sub)[short])
            branch = ", ".join(f"{v} of {b}" for b, v in chosen.items())
            rec_errors.append(_RecErr(where, f"the record is shorter than the {need} bytes its layout needs"
                                             f"{f' ({branch})' if branch else ''}"))  # fmt: skip
        limit = max(res.end, plan.options.record_length or 0)
        long = part_len > limit
        if long.any():
            where = to_block(_rows_all(local, n_sub)[long])
            rec_errors.append(
                _RecErr(
                    where,
                    f"the record is longer than the {limit} bytes its layout holds "
                    "(a wrong copybook, record format or OCCURS DEPENDING ON counter?)",
                )
            )
    for it, idx, off, _branches, _anc in active:
        col = rp.columns.get((id(it), idx))
        if col is None:
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
    skipped = 0
    if plan.skip is not None and len(raw.data):
        drop = _selector_values(plan, plan.skip, raw.data) == 0
        skipped = int(drop.sum())
        if skipped:
            raw = raw.subset(~drop)
    data, lengths = raw.data, raw.lengths
    if lengths is None and plan.options.record_length and plan.options.record_length < plan.width:
        lengths = np.full(len(data), plan.options.record_length, dtype=np.int64)
    n = len(data)
    acc = _Acc(n, [[] for _ in plan.columns])
    rec_errors: list[_RecErr] = []
    segment_names: pa.Array | None = None
    if plan.segment is None:
        _decode_record(plan, plan.records[0], data, lengths, None, acc, rec_errors)
    else:
        seg = _selector_values(plan, plan.segment, data)
        names = [(rp.record.name or "").lower() for rp in plan.records]
        seg_idx = np.where(seg < 0, len(names), seg)
        segment_names = pc.take(strings(names), from_numpy(seg_idx, pa.int64(), seg >= 0))
        unknown = np.flatnonzero(seg < 0)
        if len(unknown):
            sel = plan.segment
            rec_errors.append(
                _RecErr(
                    unknown,
                    f"{sel.item.name} has a value not listed in segments.when",
                    (sel.item.name or "").lower().replace("-", "_"),
                    sel.offset,
                    sel.item.size,
                )
            )
        for rp in plan.records:
            rows = np.flatnonzero(seg == rp.index)
            if len(rows):
                _decode_record(plan, rp, data, lengths, rows if len(rows) < n else None, acc, rec_errors)
    arrays = [_assemble(n, c.type, acc.pieces[i]) for i, c in enumerate(plan.columns)]
    if segment_names is not None:
        arrays.insert(0, segment_names)
    batch = pa.RecordBatch.from_arrays(arrays, schema=plan.schema)
    block = _finish(plan, raw, batch, acc, rec_errors, lengths)
    block.skipped = skipped
    return block


def _finish(
    plan: Plan,
    raw: RawBlock,
    batch: pa.RecordBatch,
    acc: _Acc,
    rec_errors: list[_RecErr],
    lengths: np.ndarray | None,
) -> DecodedBlock:
    n = batch.num_rows
    bad = np.zeros(n, dtype=bool)
    first_reason: dict[int, str] = {}
    details: list[RecordError] = []
    limit = plan.options.max_error_details
    count = 0
    numbers = raw.record_numbers()
    for e in rec_errors:
        rows = e.rows
        bad[rows] = True
        count += len(rows)
        for r in rows[: max(0, limit - len(details))].tolist():
            hexed = bytes(raw.data[r, e.offset : e.offset + e.size]).hex().upper() if e.offset >= 0 else ""
            details.append(RecordError(int(numbers[r]), int(raw.offsets[r]), e.field, hexed, e.reason, e.offset))
        for r in rows.tolist():
            first_reason.setdefault(r, f"{e.field}: {e.reason}" if e.field else e.reason)
    for rows, col, reason, off in acc.reasons:
        bad[rows] = True
        count += len(rows)
        c = plan.columns[col]
        for r in rows[: max(0, limit - len(details))].tolist():
            b = bytes(raw.data[r, off : off + c.item.size])
            details.append(RecordError(int(numbers[r]), int(raw.offsets[r]), c.name, b.hex().upper(), reason, off))
        for r in rows.tolist():
            first_reason.setdefault(r, f"{c.name}: {reason}")
    details.sort(key=lambda e: e.record)
    rejected = None
    if plan.options.strict:
        idx = np.flatnonzero(bad)
        raws = [bytes(raw.data[r, : (int(lengths[r]) if lengths is not None else raw.data.shape[1])]) for r in idx]
        rejected = pa.RecordBatch.from_arrays(
            [from_numpy(numbers[idx], pa.int64()), from_numpy(raw.offsets[idx], pa.int64()),
             binaries(raws), strings([first_reason[int(r)] for r in idx])],
            schema=REJECTED_SCHEMA,
        )  # fmt: skip
        if len(idx):
            batch = batch.filter(from_numpy(~bad, pa.bool_()))
    return DecodedBlock(batch, details, count, int(bad.sum()), rejected, raw.first, n, acc.unprintable)
