"""Public API of the copybook engine: read a mainframe file described by a COBOL copybook as Arrow batches.

Usage::

    from bulksync.legacy.reader import CopybookOptions, load_layout, arrow_schema, read_records

    options = CopybookOptions(copybook="orders.cpy", record_format="rdw", code_page="cp037")
    layout = load_layout(options)                # SpecError naming the copybook file and line on bad syntax
    schema = arrow_schema(layout, options)        # the Arrow schema every batch has
    with open(path, "rb") as f:
        for block in read_records(f, options, name="orders.dat", layout=layout):
            block.batch          # pyarrow.RecordBatch (strict: the valid records only)
            block.errors         # list[RecordError]: record number, byte offset, field, raw hex, reason
            block.error_records  # number of records with at least one invalid value
            block.rejected       # strict mode: RecordBatch(_record, _offset, _raw, _reason) of the bad records

* Structural problems raise a :class:`~bulksync.legacy.errors.RecordFormatError` subclass
  (``TruncatedRecordError``, ``RecordLengthMismatchError``, ``RdwPastEofError``, ``InvalidRdwError``) naming the
  file, record number and byte offset; text in the wrong code page raises ``CodePageError``. All are
  :class:`~bulksync.errors.DataError` s (terminal), with a ``reason`` attribute for quarantine files.
* An invalid numeric (bad packed nibble, bad zoned sign ...) becomes null and is reported in ``block.errors``;
  with ``strict: true`` the whole record moves to ``block.rejected`` instead.
* Column names: see :mod:`bulksync.legacy.layout` (lower case, ``-`` -> ``_``, OCCURS suffix ``_1`` ...).

See docs/copybooks.md for the supported copybook syntax.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Literal

import numpy as np
import pyarrow as pa

from bulksync.legacy.block import REJECTED_SCHEMA, DecodedBlock, decode_block
from bulksync.legacy.codepages import CODE_PAGES, code_page
from bulksync.legacy.copybook_parser import Item, Layout
from bulksync.legacy.errors import (
    CodePageError,
    OdoCounterError,
    RecordError,
    RecordLengthMismatchError,
    TruncatedRecordError,
)
from bulksync.legacy.layout import arrow_type_of, walk
from bulksync.legacy.options import CopybookOptions, SelectRule
from bulksync.legacy.plan import (
    Plan,
    RecordPlan,
    Resolved,
    Selector,
    compile_plan,
    copybook_path,
    decode_field,
    load_layout,
)
from bulksync.legacy.records import (
    BadLength,
    LengthOf,
    NeedMore,
    RawBlock,
    fixed_blocks,
    rdw_length,
    skip_records,
    variable_blocks,
)

__all__ = [
    "REJECTED_SCHEMA",
    "CopybookOptions",
    "DecodedBlock",
    "RecordError",
    "SelectRule",
    "arrow_schema",
    "compile_plan",
    "copybook_path",
    "load_layout",
    "read_file",
    "read_records",
]

log = logging.getLogger(__name__)
_SAMPLE = 1000
BAD_TEXT_SHARE = 0.2


def arrow_schema(layout: Layout, options: CopybookOptions) -> pa.Schema:
    """The Arrow schema of the batches :func:`read_records` yields for these options."""
    return compile_plan(layout, options).schema


def read_file(path: str | Path, options: CopybookOptions, layout: Layout | None = None) -> Iterator[DecodedBlock]:
    """:func:`read_records` over a file on disk (its name in errors is the file name)."""
    with open(path, "rb") as f:
        yield from read_records(f, options, name=Path(path).name, layout=layout)


def read_records(
    stream: BinaryIO, options: CopybookOptions, *, name: str, layout: Layout | None = None
) -> Iterator[DecodedBlock]:
    """Decode a binary stream block by block (``options.block_records`` records per batch).

    Args:
        stream: the file, opened in binary mode (seekable streams get an up-front size check).
        options: the copybook options.
        name: the file name used in errors.
        layout: the parsed copybook (parsed from ``options.copybook`` when omitted).

    Raises:
        RecordFormatError: a structural problem (truncated record, length mismatch, RDW past the end ...).
        CodePageError: the text fields do not look like ``options.code_page``.
        SpecError: the copybook or the options are wrong.
    """
    plan = compile_plan(layout or load_layout(options), options)
    o = options
    total = errors = 0
    if o.record_format == "fixed":
        reclen = o.record_length or plan.width
        _check_fixed_size(stream, plan, name, reclen)
        raw_blocks = fixed_blocks(stream, name, reclen, o.block_records, o.header_bytes, o.trailer_bytes)
    elif o.record_format in ("rdw", "vb"):
        rdw = rdw_length(name, o.rdw_byte_order == "big", o.rdw_includes_header, o.rdw_length_at)
        raw_blocks = variable_blocks(stream, name, plan.width, o.block_records, 4, rdw, o.header_bytes,
                                     o.trailer_bytes, bdw=o.record_format == "vb")  # fmt: skip
    elif o.record_format == "odo":
        raw_blocks = variable_blocks(stream, name, plan.width, o.block_records, 0, _odo_length(plan, name),
                                     o.header_bytes, o.trailer_bytes, min_bytes=1)  # fmt: skip
    else:
        raw_blocks = variable_blocks(stream, name, plan.width, o.block_records, 0, _length_field(plan),
                                     o.header_bytes, o.trailer_bytes, _length_field_end(plan))  # fmt: skip
    if o.header_records or o.trailer_records:
        raw_blocks = skip_records(raw_blocks, o.header_records, o.trailer_records)
    first = True
    skipped = 0
    for raw in raw_blocks:
        if first and o.code_page_check:
            _check_code_page(plan, raw, name)
        first = False
        block = decode_block(plan, raw, name)
        total += block.records
        errors += block.error_records
        skipped += block.skipped
        numbers = raw.record_numbers()
        log.info("%s: decoded records %d-%d (%d with invalid values, %d left out by skip_records)", name,
                 int(numbers[0]) if len(numbers) else raw.first, int(numbers[-1]) if len(numbers) else raw.first,
                 block.error_records, block.skipped)  # fmt: skip
        yield block
    log.info("%s: %d records decoded, %d with invalid values; left out: %d header, %d trailer, %d by skip_records",
             name, total - skipped, errors, o.header_records, o.trailer_records, skipped)  # fmt: skip


def _length_field_end(plan: Plan) -> int:
    assert plan.length_field is not None
    item, off = plan.length_field
    return off + item.size


def _length_field(plan: Plan) -> LengthOf:
    assert plan.length_field is not None
    item, off = plan.length_field
    adjust = plan.options.record_length_adjust
    end = off + item.size

    def length_of(buf: bytes, pos: int, number: int) -> int:
        raw = buf[pos + off : pos + end]
        try:
            value = scalar(plan, item, raw)
        except ValueError:
            raise BadLength(f"the record length field {item.name} holds x'{raw.hex().upper()}', not a number") from None
        total = value + adjust
        if total < end:
            raise BadLength(
                f"the record length field {item.name} says {total} bytes, shorter than the field's own "
                f"end at byte {end} (check record_length_adjust)"
            )
        return total

    return length_of


def _odo_length(plan: Plan, name: str) -> LengthOf:
    """A :data:`LengthOf` for records without delimiter: the length follows from the ODO counters."""
    seg = plan.segment

    def record_of(buf: bytes, pos: int) -> RecordPlan:
        if seg is None:
            return plan.records[0]
        end = seg.offset + seg.item.size
        if len(buf) - pos < end:
            raise NeedMore(end)
        value = _selector_text(plan, seg, buf[pos + seg.offset : pos + end])
        if value not in seg.when:
            raise BadLength(f"{seg.item.name} = {value!r} is not listed in segments.when, so the record's layout "
                            "and length are unknown; list it or check the file", OdoCounterError)  # fmt: skip
        return plan.records[seg.when[value]]

    def length_of(buf: bytes, pos: int, number: int) -> int:
        rp = record_of(buf, pos)
        counts: dict[tuple[str, tuple[int, ...]], int] = {}
        while True:
            res = rp.resolve(counts)
            if isinstance(res, Resolved):
                return res.end
            c = res.counter
            need = res.offset + c.size
            if len(buf) - pos < need:
                raise NeedMore(need)
            raw = buf[pos + res.offset : pos + need]
            lo, hi = res.table.occurs_min, res.table.occurs
            try:
                v = scalar(plan, c, raw)
            except ValueError:
                v = None
            if v is None or not lo <= v <= hi:
                what = f"holds x'{raw.hex().upper()}', not a number" if v is None else f"= {v} is outside {lo}..{hi}"
                raise BadLength(
                    f"the OCCURS DEPENDING ON counter {c.name} (byte {res.offset} of the record) {what} (table "
                    f"{res.table.name}): the record's length, and where the next record starts, cannot be known; "
                    "the file is damaged or the copybook does not describe it",
                    OdoCounterError,
                )
            counts[res.key] = v

    return length_of


def _selector_text(plan: Plan, sel: Selector, raw: bytes) -> str:
    arr, _r, _b = decode_field(
        plan, sel.item, arrow_type_of(sel.item), np.frombuffer(raw, dtype=np.uint8).reshape(1, -1)
    )
    value = arr[0].as_py()
    text = "" if value is None else str(value).strip()
    for key in sel.when:
        k = key.strip()
        if k == text or (not isinstance(value, str) and value is not None and k.lstrip("0") == text.lstrip("0")):
            return key
    return text


_EBCDIC_DIGITS = bytes.maketrans(bytes(range(0xF0, 0xFA)), b"0123456789")


def scalar(plan: Plan, item: Item, raw: bytes) -> int:
    """The integer value of one numeric field (record lengths and ODO counters while framing: not vectorised).

    Raises:
        ValueError: the bytes are not a valid number of the field's format.
    """
    if item.usage in ("comp", "comp-5"):
        order: Literal["big", "little"] = (
            "little" if item.usage == "comp-5" and plan.options.comp5_byte_order == "little" else "big"
        )
        return int.from_bytes(raw, order, signed=bool(item.picture and item.picture.signed))
    if item.usage == "comp-3":
        h = raw.hex()
        if h[-1] not in "abcdef" or not h[:-1].isdigit():
            raise ValueError(h)
        return int(h[:-1]) * (-1 if h[-1] in "bd" else 1)
    if item.usage == "display" and not item.sign_separate:
        digits = raw.translate(_EBCDIC_DIGITS) if plan.code_page.ebcdic else raw
        if digits.isdigit():
            return int(digits)
    arr, reason, _ = decode_field(plan, item, pa.int64(), np.frombuffer(raw, dtype=np.uint8).reshape(1, -1))
    value = arr[0].as_py()
    if value is None or (reason is not None and reason[0]):
        raise ValueError(raw.hex())
    return int(value)


def _check_fixed_size(stream: BinaryIO, plan: Plan, name: str, reclen: int) -> None:
    """With a seekable stream: a size that is not a multiple of the record length fails before any record."""
    o = plan.options
    try:
        start = stream.tell()
        size = stream.seek(0, 2) - start
        stream.seek(start)
    except (OSError, AttributeError, ValueError):
        return
    payload = size - o.header_bytes - o.trailer_bytes
    if payload < 0 or payload % reclen == 0:
        return
    full, rest = divmod(payload, reclen)
    head = stream.read(min(payload, reclen * _SAMPLE + o.header_bytes))
    stream.seek(start)
    body = head[o.header_bytes :]
    hint = _format_hint(body, reclen)
    share = 0.0
    n = min(full, _SAMPLE)
    if n:
        arr = np.frombuffer(body[: n * reclen], dtype=np.uint8).reshape(n, reclen)
        raw = RawBlock(arr, None, 1, np.arange(n, dtype=np.int64) * reclen + o.header_bytes)
        block = decode_block(plan, raw, name)
        share = block.error_records / n
        text = _text_bytes(plan, arr)
        if len(text):
            share = max(share, _bad_share(text, plan.code_page.name))
    offset = o.header_bytes + full * reclen
    if n and share < 0.5 and not hint:
        raise TruncatedRecordError(
            name, full + 1, offset,
            f"the last record has only {rest} of {reclen} bytes (the file is {size} bytes): the file is cut short "
            "(incomplete transfer?); ask the sender for the file again",
        )  # fmt: skip
    raise RecordLengthMismatchError(
        name, full + 1, offset,
        f"the file size {size} (after {o.header_bytes} header and {o.trailer_bytes} trailer bytes) is not a multiple "
        f"of the {reclen}-byte record length of {Path(plan.layout.file).name}, and the records do not line up "
        f"({share:.0%} of the first {n} records are invalid){hint}; check the copybook, record_length and "
        "record_format",
    )  # fmt: skip


def _format_hint(body: bytes, reclen: int) -> str:
    if len(body) >= 4 and body[2:4] == b"\x00\x00" and 4 < int.from_bytes(body[:2], "big") <= len(body):
        return " (the file starts like a variable-length file with RDWs: try record_format: rdw)"
    for extra in (1, 2):
        ends = body[reclen : len(body) : reclen + extra][:20]
        if len(ends) >= 3 and set(ends) <= {0x0A, 0x0D, 0x25, 0x15}:
            return f" (every record seems to end with a line break: the record length is {reclen + extra}?)"
    return ""


def _text_bytes(plan: Plan, data: np.ndarray) -> np.ndarray:
    """The bytes of every text field in the given records, spaces and LOW-VALUES left out."""
    parts = []
    for rp in plan.records[:1]:
        for it, idx, off, branches, _a in walk(rp.record, 0, None):
            col = rp.columns.get((id(it), idx))
            if col is None or branches or it.picture is None or it.picture.kind == "numeric":
                continue
            if it.usage != "display":
                continue
            parts.append(data[:, off : off + it.size].reshape(-1))
    if not parts:
        return np.zeros(0, dtype=np.uint8)
    cp = plan.code_page
    b = np.concatenate(parts)
    return b[(b != cp.space) & (b != 0)]


def _bad_share(text: np.ndarray, cp_name: str) -> float:
    return float(code_page(cp_name).bad[text].mean()) if len(text) else 0.0


def _check_code_page(plan: Plan, raw: RawBlock, name: str) -> None:
    """Fail when the first records' text fields are mostly unprintable in the configured code page."""
    text = _text_bytes(plan, raw.data[:_SAMPLE])
    if len(text) < 20:
        return
    share = _bad_share(text, plan.code_page.name)
    if share <= BAD_TEXT_SHARE:
        return
    best = min(CODE_PAGES, key=lambda cp: _bad_share(text, cp))
    guess = (
        f"; the text reads best as {best} ({_bad_share(text, best):.0%} unprintable)"
        if best != plan.code_page.name
        else ""
    )
    raise CodePageError(
        name,
        f"{share:.0%} of the text characters in the first records are unprintable in code page {plan.code_page.name}"
        f"{guess}: the file is in another code page (or not described by this copybook); set code_page",
    )
