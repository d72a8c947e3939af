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
from bulksync.legacy.layout import Column, build_columns, find_item, size_of, static_offset
from bulksync.legacy.options import CopybookOptions, SelectRule

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
        return load_copybook(copybook_path(options.copybook), options.source_format)
    return load_copybook(copybook_path(str(options)))


@dataclass(frozen=True)
class Selector:
    """A field whose value chooses a record layout or a REDEFINES branch."""

    item: Item
    offset: int
    when: dict[str, int]  # value -> index of the record / branch
    names: list[str]  # index -> name


@dataclass
class RecordPlan:
    """What to decode for one 01 record."""

    record: Item
    index: int
    columns: dict[tuple[int, tuple[int, ...]], int]  # (id(item), indices) -> column number
    rules: dict[str, Selector] = field(default_factory=dict)  # redefined item -> branch selector
    counters: list[tuple[str, Item, int]] = field(default_factory=list)  # (name, item, offset)


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


def compile_plan(layout: Layout, options: CopybookOptions) -> Plan:
    """Check the options against the copybook and work out columns, selectors and counters.

    Raises:
        SpecError: an option names a record, field or branch the copybook does not have.
    """
    if options.segments is not None:
        records = [layout.record(name) for name in dict.fromkeys(options.segments.when.values())]
    else:
        records = [layout.record(options.record)]
    columns = build_columns(layout, records, options.naming)
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
        seen: set[str] = set()
        stack = [rec]
        while stack:
            it = stack.pop()
            stack.extend(it.children)
            if it.depending_on and it.depending_on not in seen:
                seen.add(it.depending_on)
                _r, counter = find_item([rec], it.depending_on)
                off = static_offset(rec, counter)
                if off is None or counter.children:
                    raise _spec_error(
                        layout,
                        f"line {it.line}",
                        f"{it.name}: the DEPENDING ON field "
                        f"{it.depending_on} must be an elementary field before any variable table",
                    )
                rp.counters.append((it.depending_on, counter, off))
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
    )


def decode_field(plan: Plan, item: Item, typ: pa.DataType, b: np.ndarray) -> tuple[pa.Array, np.ndarray | None, int]:
    """Decode one field of many records: (Arrow array, reason codes or None, unprintable characters)."""
    o = plan.options
    cp = plan.code_page
    if item.usage in ("comp-1", "comp-2"):
        return dec.from_numpy(dec.ibm_float(b, o.float_format == "ieee"), pa.float64()), None, 0
    pic = item.picture
    assert pic is not None
    if pic.kind != "numeric":
        arr, bad = dec.text(b, cp, o.trim)
        return arr, None, bad
    times = -pic.scale if pic.scale < 0 else 0
    if item.usage == "display":
        digits, neg, valid, reason = dec.zoned(b, pic.signed, item.sign_leading, item.sign_separate, cp)
        return dec.number_array(digits, neg, valid, typ, times), reason, 0
    if item.usage == "comp-3":
        digits, neg, valid, reason = dec.packed(b, pic.digits, pic.signed, cp)
        return dec.number_array(digits, neg, valid, typ, times), reason, 0
    comp5 = item.usage == "comp-5"
    big = not comp5 or o.comp5_byte_order == "big"
    values, valid, reason = dec.binary(b, pic.signed, big, None if comp5 else pic.digits)
    if times:
        values = values * 10**times
    return dec.int_array(values, valid, typ), reason, 0
