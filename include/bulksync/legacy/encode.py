"""A deterministic encoder of records for a copybook: the inverse of the decoder, for tests and benchmarks.

It writes plain Python values (``str``, ``int``, ``Decimal``, ``float``) keyed by output column name into
the bytes a mainframe program would write: zoned with overpunch or separate signs, packed, big-endian
binary, IBM hexadecimal floats, text in the code page. It is deliberately simple (one record at a time)
and independent of the vectorised decoders, so tests compare the two.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any, Literal

from bulksync.legacy.codepages import encode_text
from bulksync.legacy.copybook_parser import Item
from bulksync.legacy.layout import Counts, NeedCounter, record_end, walk
from bulksync.legacy.plan import SEGMENT_COLUMN, Plan, RecordPlan

_OVERPUNCH_POS = "{ABCDEFGHI"
_OVERPUNCH_NEG = "}JKLMNOPQR"


def unscaled(item: Item, value: Any) -> int:
    """The integer a numeric field stores for ``value`` (the scale applied; must be exact)."""
    pic = item.picture
    assert pic is not None
    d = Decimal(str(value)) if not isinstance(value, Decimal) else value
    scaled = d.scaleb(pic.scale)
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{item.name}: {value} has more decimals than PIC {pic.text} holds")
    return int(scaled)


def zoned_bytes(item: Item, n: int, code_page: str) -> bytes:
    """USAGE DISPLAY digits with the item's sign convention."""
    pic = item.picture
    assert pic is not None
    digits = str(abs(n)).rjust(pic.digits, "0")
    if len(digits) > pic.digits:
        raise ValueError(f"{item.name}: {n} has more than {pic.digits} digits")
    neg = n < 0
    if not item.signed:
        if neg:
            raise ValueError(f"{item.name}: negative value in an unsigned field")
        return encode_text(digits, code_page)
    if item.sign_separate:
        sign = "-" if neg else "+"
        return encode_text(sign + digits if item.sign_leading else digits + sign, code_page)
    pos = 0 if item.sign_leading else len(digits) - 1
    body = bytearray(encode_text(digits, code_page))
    d = int(digits[pos])
    if code_page == "ascii":
        body[pos] = ord((_OVERPUNCH_NEG if neg else _OVERPUNCH_POS)[d])
    else:
        body[pos] = (0xD0 if neg else 0xC0) | d
    return bytes(body)


def packed_bytes(item: Item, n: int) -> bytes:
    """COMP-3: two digits a byte, sign nibble C / D (F for unsigned)."""
    pic = item.picture
    assert pic is not None
    size = item.size
    digits = str(abs(n)).rjust(2 * size - 1, "0")
    if len(digits) > 2 * size - 1 or len(str(abs(n))) > pic.digits:
        raise ValueError(f"{item.name}: {n} does not fit PIC {pic.text}")
    sign = "d" if n < 0 else ("c" if pic.signed else "f")
    return bytes.fromhex(digits + sign)


def ibm_hex_float(value: float, size: int) -> bytes:
    """IBM System/360 hexadecimal floating point, 4 or 8 bytes."""
    bits = 8 * size - 8
    if value == 0:
        return bytes(size)
    sign = 0x80 if value < 0 else 0
    m, e = math.frexp(abs(value))  # abs = m * 2**e, 0.5 <= m < 1
    exp16 = -((-e) // 4)  # ceil(e / 4)
    frac = round(math.ldexp(m, e - 4 * exp16 + bits))
    if frac >= 1 << bits:
        frac >>= 4
        exp16 += 1
    return bytes([sign | (exp16 + 64)]) + frac.to_bytes(size - 1, "big")


def field_bytes(plan: Plan, item: Item, value: Any) -> bytes:
    """The bytes of one elementary field holding ``value``."""
    cp = plan.options.code_page
    if item.usage in ("comp-1", "comp-2"):
        if plan.options.float_format != "ibm_hex":
            import struct

            endian = "<" if plan.options.float_format == "ieee_little" else ">"
            return struct.pack(endian + ("f" if item.size == 4 else "d"), value)
        return ibm_hex_float(float(value), item.size)
    pic = item.picture
    assert pic is not None
    if pic.kind != "numeric":  # text, and edited pictures given as the characters they show
        raw = encode_text(str(value), cp)
        if len(raw) > item.size:
            raise ValueError(f"{item.name}: {value!r} is longer than {item.size}")
        return raw + encode_text(" ", cp) * (item.size - len(raw))
    n = unscaled(item, value)
    if item.usage == "display":
        return zoned_bytes(item, n, cp)
    if item.usage == "comp-3":
        return packed_bytes(item, n)
    order: Literal["big", "little"] = (
        "little" if item.usage == "comp-5" and plan.options.comp5_byte_order == "little" else "big"
    )
    return n.to_bytes(item.size, order, signed=pic.signed)


def encode_record(plan: Plan, row: Mapping[str, Any]) -> bytes:
    """One record (without RDW) for ``row`` (column name -> value; missing / None fields stay spaces)."""
    rp = _record_of(plan, row)
    counts = _counts(plan, rp, row)
    size = record_end(rp.record, counts if rp.variable else None)
    if plan.options.record_format == "fixed":
        size = max(size, plan.options.record_length or plan.width)
    buf = bytearray(encode_text(" ", plan.options.code_page) * size)
    for it, idx, off, _br, _anc in walk(rp.record, 0, counts if rp.variable else None):
        col = rp.columns.get((id(it), idx))
        if col is None:
            continue
        value = row.get(plan.columns[col].name)
        if value is None:
            continue
        buf[off : off + it.size] = field_bytes(plan, it, value)
    if plan.length_field is not None:
        item, off = plan.length_field
        buf[off : off + item.size] = field_bytes(plan, item, len(buf) - plan.options.record_length_adjust)
    return bytes(buf)


def _record_of(plan: Plan, row: Mapping[str, Any]) -> RecordPlan:
    if plan.segment is None:
        return plan.records[0]
    name = str(row[SEGMENT_COLUMN]).upper()
    return next(rp for rp in plan.records if rp.record.name == name)


def _counts(plan: Plan, rp: RecordPlan, row: Mapping[str, Any]) -> Counts:
    """The ODO counts of a row: each counter's value read from its column, occurrence by occurrence."""
    counts: Counts = {}
    if not rp.variable:
        return counts
    while True:
        try:
            walk(rp.record, 0, counts)
            return counts
        except NeedCounter as need:
            col = rp.columns.get((id(need.counter), need.key[1]))
            if col is None:
                raise ValueError(f"the counter {need.counter.name} has no column to take its value from") from None
            counts[need.key] = int(row[plan.columns[col].name])


def frame(plan: Plan, record: bytes) -> bytes:
    """``record`` with its RDW when the options say ``record_format: rdw`` (or ``vb``: see :func:`blocked`)."""
    o = plan.options
    if o.record_format not in ("rdw", "vb"):
        return record
    n = len(record) + (4 if o.rdw_includes_header else 0)
    length = n.to_bytes(2, o.rdw_byte_order)
    return (length + b"\x00\x00" if o.rdw_length_at == 0 else b"\x00\x00" + length) + record


def blocked(framed: Iterable[bytes], block_size: int = 32760) -> bytes:
    """RDW records packed into VB blocks of at most ``block_size`` bytes, each with its BDW (IBM format)."""
    out: list[bytes] = []
    block: list[bytes] = []
    used = 4
    for rec in framed:
        if block and used + len(rec) > block_size:
            out.append(used.to_bytes(2, "big") + b"\x00\x00" + b"".join(block))
            block, used = [], 4
        block.append(rec)
        used += len(rec)
    if block:
        out.append(used.to_bytes(2, "big") + b"\x00\x00" + b"".join(block))
    return b"".join(out)


def encode_file(plan: Plan, rows: Iterable[Mapping[str, Any]], header: bytes = b"", trailer: bytes = b"") -> bytes:
    """A whole file: header, every framed record (in VB blocks for ``vb``), trailer."""
    framed = [frame(plan, encode_record(plan, r)) for r in rows]
    body = blocked(framed) if plan.options.record_format == "vb" else b"".join(framed)
    return header + body + trailer
