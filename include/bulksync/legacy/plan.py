"""A copybook layout compiled for one set of options: columns, selectors, ODO counters, field decoders."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from bulksync import settings
from bulksync.errors import SpecError
from bulksync.legacy import decoders as dec
from bulksync.legacy.codepages import CodePage, code_page
from bulksync.legacy.copybook_parser import Item, Layout, load_copybook
from bulksync.legacy.edited import EditedLayout, decode_edited, edited_layout
from bulksync.legacy.layout import (
    Column,
    Counts,
    Entry,
    NeedCounter,
    build_columns,
    find_item,
    record_end,
    size_of,
    static_offset,
    walk,
)
from bulksync.legacy.options import CopybookOptions, SelectRule, SkipRule

SEGMENT_COLUMN = "_segment"


def copybook_path(value: str) -> Path:
    """A copybook's path: absolute, or relative to ``$BULKSYNC_HOME/include/copybooks/``."""
    p = Path(value)
    return p if p.is_absolute() else settings.home() / "include" / "copybooks" / p


def load_layout(options: CopybookOptions | str | Path) -> Layout:
    """Parse the copybook of ``options`` (or at a path).

    Raises:
        SpecError: the copybook is missing or has a syntax error (names the file and line).
    """
    if isinstance(options, CopybookOptions):
        return load_copybook(copybook_path(options.copybook), options.source_format, options.decimal_comma)
    return load_copybook(copybook_path(str(options)))


@dataclass(frozen=True)
class Selector:
    """A field whose value chooses a record layout or a REDEFINES branch."""

    item: Item
    offset: int
    when: dict[str, int]  # value -> index of the record / branch
    names: list[str]  # index -> name


@dataclass(frozen=True)
class Resolved:
    """The layout of a record for one set of ODO counts: its fields and its length."""

    entries: list[Entry]
    end: int


@dataclass
class RecordPlan:
    """What to decode for one 01 record."""

    record: Item
    index: int
    columns: dict[tuple[int, tuple[int, ...]], int]  # (id(item), indices) -> column number
    rules: dict[str, Selector] = field(default_factory=dict)  # redefined item -> branch selector
    fixed: dict[str, str] = field(default_factory=dict)  # redefined item -> the branch options fix
    variable: bool = False  # the record has OCCURS DEPENDING ON tables
    cache: dict[tuple[tuple[tuple[str, tuple[int, ...]], int], ...], Resolved | NeedCounter] = field(
        default_factory=dict
    )

    def resolve(self, counts: Counts) -> Resolved | NeedCounter:
        """The record's layout for these counts, or the next counter it needs (memoised)."""
        key = tuple(sorted(counts.items()))
        hit = self.cache.get(key)
        if hit is None:
            try:
                entries = walk(self.record, 0, counts if self.variable else None)
                hit = Resolved(entries, record_end(self.record, counts if self.variable else None))
            except NeedCounter as need:
                hit = need
            if len(self.cache) < 100_000:
                self.cache[key] = hit
        return hit


@dataclass
class Plan:
    """A layout compiled for options (build it with :func:`compile_plan`)."""

    layout: Layout
    options: CopybookOptions
    code_page: CodePage
    columns: list[Column]
    records: list[RecordPlan]
    segment: Selector | None
    width: int
    schema: pa.Schema
    quiet: list[bool]  # per column: errors not counted (a REDEFINES branch nobody selected)
    length_field: tuple[Item, int] | None = None
    skip: Selector | None = None
    edited: dict[int, EditedLayout] = field(default_factory=dict)  # id(item) -> numeric-edited layout


def _spec_error(layout: Layout, option: str, message: str) -> SpecError:
    return SpecError([(layout.file, option, message)])


def _selector(layout: Layout, records: list[Item], rule: SelectRule, names: list[str], option: str) -> Selector:
    try:
        rec, item = find_item(records, rule.field)
    except KeyError:
        raise _spec_error(layout, option, f"no field {rule.field} in the copybook") from None
    if item.children:
        raise _spec_error(layout, option, f"{rule.field} is a group; name an elementary field")
    off = static_offset(rec, item)
    if off is None:
        raise _spec_error(
            layout, option, f"{rule.field} moves with an OCCURS DEPENDING ON table; choose a field before the table"
        )
    upper = [n.upper() for n in names]
    when: dict[str, int] = {}
    for value, target in rule.when.items():
        if target.upper() not in upper:
            raise _spec_error(layout, option, f"{target} is not one of {', '.join(names)}")
        when[value] = upper.index(target.upper())
    return Selector(item, off, when, names)


def _skip_selector(layout: Layout, rule: SkipRule) -> Selector:
    sel = _selector(layout, layout.records, SelectRule(field=rule.field, when={}), [], "skip_records.field")
    return Selector(sel.item, sel.offset, {v: 0 for v in rule.values}, ["skip"])


def _check_counters(layout: Layout, rp: RecordPlan) -> None:
    """Every ODO counter must come before its table: resolve the record with every counter at its minimum."""
    counts: Counts = {}
    for _ in range(10_000):
        res = rp.resolve(counts)
        if isinstance(res, Resolved):
            return
        if res.offset < 0:
            raise _spec_error(
                layout,
                f"line {res.table.line}",
                f"{res.table.name}: OCCURS DEPENDING ON {res.key[0]}: the counter must come before the table",
            )
        if (
            res.counter.children
            or res.counter.usage in ("comp-1", "comp-2")
            or res.counter.picture is None
            or (res.counter.picture.kind not in ("numeric",))
        ):
            raise _spec_error(
                layout,
                f"line {res.table.line}",
                f"{res.table.name}: the DEPENDING ON field {res.key[0]} must be an elementary integer field",
            )
        counts[res.key] = res.table.occurs_min
    rp.cache.clear()


def compile_plan(layout: Layout, options: CopybookOptions) -> Plan:
    """Check the options against the copybook and work out columns, selectors and counters.

    Raises:
        SpecError: an option names a record, field or branch the copybook does not have.
    """
    if options.segments is not None:
        records = [layout.record(name) for name in dict.fromkeys(options.segments.when.values())]
    else:
        records = [layout.record(options.record)]
    columns = build_columns(
        layout, records, options.naming, options.keep_filler_groups, options.edited_numbers == "text"
    )
    branch_names: dict[str, list[str]] = {}
    for c in columns:
        for base, branch in c.branches:
            names = branch_names.setdefault(base, [])
            if branch not in names:
                names.append(branch)
    for base in options.redefines:
        if base.upper() not in branch_names:
            raise _spec_error(
                layout,
                f"redefines.{base}",
                f"{base} is not REDEFINES-d in the copybook (REDEFINES-d items: {', '.join(branch_names) or 'none'})",
            )
    fixed_branch = {b.upper(): v.upper() for b, v in options.redefines.items() if isinstance(v, str)}
    for base, branch in fixed_branch.items():
        if branch not in branch_names[base]:
            raise _spec_error(
                layout,
                f"redefines.{base}",
                f"{branch} is not a branch of {base} (branches: {', '.join(branch_names[base])})",
            )
    columns = [c for c in columns if all(fixed_branch.get(b, br) == br for b, br in c.branches)]
    ruled = {b.upper() for b, v in options.redefines.items() if not isinstance(v, str)}
    quiet = [any(b not in ruled and b not in fixed_branch for b, _ in c.branches) for c in columns]
    by_slot = {(id(c.item), c.indices): i for i, c in enumerate(columns)}
    plans: list[RecordPlan] = []
    for k, rec in enumerate(records):
        rp = RecordPlan(rec, k, by_slot)
        for base, rule in options.redefines.items():
            if isinstance(rule, SelectRule):
                try:
                    find_item([rec], base)
                except KeyError:
                    continue
                rp.rules[base.upper()] = _selector(
                    layout, [rec], rule, branch_names[base.upper()], f"redefines.{base}.field"
                )
        rp.fixed = {b: v for b, v in fixed_branch.items() if _has(rec, b)}
        rp.variable = _has_odo(rec)
        if rp.variable:
            _check_counters(layout, rp)
        plans.append(rp)
    segment = None
    if options.segments is not None:
        segment = _selector(layout, records, options.segments, [r.name or "" for r in records], "segments.field")
    width = max(size_of(r, None) for r in records)
    if options.record_length:
        width = max(width, options.record_length)
    length_field = None
    if options.record_format == "length_field":
        if not options.record_length_field:
            raise _spec_error(layout, "record_length_field", "record_format length_field needs record_length_field")
        try:
            rec, item = find_item(records, options.record_length_field)
        except KeyError:
            raise _spec_error(layout, "record_length_field", f"no field {options.record_length_field}") from None
        off = static_offset(rec, item)
        if off is None or item.children or item.usage in ("comp-1", "comp-2"):
            raise _spec_error(
                layout, "record_length_field", "the length field must be a numeric field at a fixed offset"
            )
        length_field = (item, off)
    fields = [pa.field(c.name, c.type) for c in columns]
    if segment is not None:
        fields.insert(0, pa.field(SEGMENT_COLUMN, pa.string()))
    edited = {
        id(c.item): edited_layout(c.item.picture.text, options.decimal_comma)
        for c in columns
        if c.item.picture is not None and c.item.picture.kind == "numeric_edited"
    }
    skip = _skip_selector(layout, options.skip_records) if options.skip_records is not None else None
    return Plan(
        layout,
        options,
        code_page(options.code_page),
        columns,
        plans,
        segment,
        width,
        pa.schema(fields),
        quiet,
        length_field,
        skip,
        edited,
    )


def _has(rec: Item, name: str) -> bool:
    try:
        find_item([rec], name)
    except KeyError:
        return False
    return True


def _has_odo(item: Item) -> bool:
    return bool(item.depending_on) or any(_has_odo(c) for c in item.children)


def decode_field(plan: Plan, item: Item, typ: pa.DataType, b: np.ndarray) -> tuple[pa.Array, np.ndarray | None, int]:
    """Decode one field of many records: (Arrow array, reason codes or None, unprintable characters)."""
    o = plan.options
    cp = plan.code_page
    low, spaces = o.null_low_values, o.null_spaces
    if item.usage in ("comp-1", "comp-2"):
        values = dec.ibm_float(b, o.float_format != "ibm_hex", o.float_format == "ieee_little")
        return dec.from_numpy(values, pa.float64(), dec.blank_valid(b, cp, low == "all", spaces == "all")), None, 0
    pic = item.picture
    assert pic is not None
    if pic.kind == "numeric_edited" and pa.types.is_string(typ):
        pic = None
    if pic is None or pic.kind not in ("numeric", "numeric_edited"):
        arr, bad = dec.text(b, cp, o.trim)
        if low == "all" or spaces == "all":
            valid = dec.blank_valid(b, cp, low == "all", spaces == "all")
            if valid is not None:
                arr = dec.with_nulls(arr, valid)
        return arr, None, bad
    nulls = (low != "none", spaces != "none")
    if pic.kind == "numeric_edited":
        arr, reason = _edited(plan, item, typ, b, nulls)
        return arr, reason, 0
    times = -pic.scale if pic.scale < 0 else 0
    if item.usage == "display":
        fast = dec.zoned_fast(b, item.signed, item.sign_leading, item.sign_separate, cp)
        arr = None if fast is None else dec.int64_array(fast, typ, times)
        if arr is not None:
            return arr, None, 0
        digits, neg, valid, reason = dec.zoned(b, item.signed, item.sign_leading, item.sign_separate, cp, nulls)
        return dec.number_array(digits, neg, valid, typ, times), reason, 0
    if item.usage == "comp-3":
        fast = dec.packed_fast(b, pic.digits, pic.signed)
        arr = None if fast is None else dec.int64_array(fast, typ, times)
        if arr is not None:
            return arr, None, 0
        digits, neg, valid, reason = dec.packed(b, pic.digits, pic.signed, cp, nulls)
        return dec.number_array(digits, neg, valid, typ, times), reason, 0
    comp5 = item.usage == "comp-5"
    big = not comp5 or o.comp5_byte_order == "big"
    values, valid, reason = dec.binary(b, pic.signed, big, None if comp5 else pic.digits)
    if low == "all" or spaces == "all":
        blank = dec.blank_valid(b, cp, low == "all", spaces == "all")
        if blank is not None:
            valid &= blank
            reason[~blank] = dec.OK  # read as null by the option: no invalid value (x'4040' exceeds a PIC 9(4))
    if times:
        values = values * 10**times
    return dec.int_array(values, valid, typ), reason, 0


def _edited(
    plan: Plan, item: Item, typ: pa.DataType, b: np.ndarray, nulls: tuple[bool, bool]
) -> tuple[pa.Array, np.ndarray]:
    """A numeric-edited field as numbers (see :mod:`bulksync.legacy.edited`)."""
    cp = plan.code_page
    assert item.picture is not None
    lay = plan.edited.get(id(item)) or edited_layout(item.picture.text, plan.options.decimal_comma)
    n, w = b.shape
    codes = np.frombuffer(b.tobytes().translate(cp.translate), dtype=np.uint8).reshape(n, w)
    sd = sn = None
    if lay.overpunch:
        _plain, sign_tab, neg_tab = dec.cached_tables(cp)
        raw_last = b[:, lay.digit_pos[-1]]
        sd, sn = sign_tab[raw_last], neg_tab[raw_last]
    digits, neg, blank, bad = decode_edited(codes, lay, sd, sn)
    reason = np.where(bad, dec.BAD_EDITED, dec.OK).astype(np.uint8)
    valid = np.ones(n, dtype=bool)
    if lay.zero_suppressed or item.blank_when_zero:
        reason[blank] = dec.OK  # spaces: zero (Z positions and BLANK WHEN ZERO show a zero as spaces)
    elif nulls[1]:
        reason[blank] = dec.OK
        valid &= ~blank
    low = (b == 0).all(axis=1) if bad.any() else np.zeros(n, dtype=bool)
    if nulls[0] and low.any():
        reason[low] = dec.OK
        valid &= ~low
    valid &= reason == dec.OK
    return dec.number_array(digits, neg, valid, typ), reason
