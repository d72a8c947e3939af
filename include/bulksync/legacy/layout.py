"""From a parsed copybook to output columns: flattening, naming, Arrow types and byte offsets.

Naming rule (documented in docs/copybooks.md):

* an elementary item becomes one column per occurrence; groups and FILLER make no column of their own;
* the name is the COBOL name in lower case with ``-`` turned into ``_`` (``CUST-NAME`` -> ``cust_name``);
* where two items would get the same name, each is prefixed by its enclosing group names, innermost first
  outwards, until the names differ (``naming: qualified`` always uses the whole group path below the 01);
  items of different 01 records that still clash get the record name as prefix;
* occurrences get ``_1``, ``_2`` ... appended, one suffix per OCCURS level (``item_qty_2_1``);
* a name starting with a digit gets ``f_`` in front; names longer than 63 characters are cut to 54 plus
  ``_`` and 8 hex digits of their hash.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

import pyarrow as pa

from bulksync.errors import SpecError
from bulksync.legacy.copybook_parser import Item, Layout


@dataclass(frozen=True)
class Column:
    """One output column: an elementary item at one occurrence.

    Attributes:
        name: the column name.
        item: the elementary item.
        record: the 01 record holding it.
        indices: occurrence numbers, outermost first (empty outside tables).
        branches: ``(redefined item, branch)`` pairs of every REDEFINES area it lies in.
        type: the Arrow type.
    """

    name: str
    item: Item
    record: str
    indices: tuple[int, ...]
    branches: tuple[tuple[str, str], ...]
    type: pa.DataType


def arrow_type_of(item: Item) -> pa.DataType:
    """Arrow type of an elementary item (exact decimal, int64 when scale 0 and at most 18 digits)."""
    if item.usage in ("comp-1", "comp-2"):
        return pa.float64()
    pic = item.picture
    assert pic is not None
    if pic.kind != "numeric":
        return pa.string()
    scale = max(pic.scale, 0)
    precision = pic.precision
    if item.usage == "comp-5":
        precision = max(precision, {2: 5, 4: 10, 8: 19}[item.size])
    if scale == 0 and (precision <= 18 or item.usage == "comp-5"):
        return pa.int64()
    return pa.decimal128(max(precision, scale, 1), scale)


def occurs_of(item: Item, counts: dict[str, int] | None) -> int:
    """Occurrences of an item: its ODO counter's value when given, else its maximum."""
    if item.depending_on and counts is not None and item.depending_on in counts:
        return counts[item.depending_on]
    return item.occurs


def size_of(item: Item, counts: dict[str, int] | None) -> int:
    """Bytes of one occurrence of ``item`` with the given ODO counts (maximum sizes without)."""
    if not item.children:
        return item.size
    total = 0
    for area in _areas(item):
        total += max(size_of(c, counts) * occurs_of(c, counts) for c in area)
    return total


def _areas(group: Item) -> list[list[Item]]:
    """Children grouped into storage areas: an item followed by the items that REDEFINE it."""
    areas: list[list[Item]] = []
    for c in group.children:
        if c.redefines and areas:
            areas[-1].append(c)
        else:
            areas.append([c])
    return areas


Slot = tuple[int, tuple[int, ...]]  # (id of the elementary item, occurrence indices)


def walk(
    item: Item, offset: int, counts: dict[str, int] | None, indices: tuple[int, ...] = ()
) -> Iterator[tuple[Item, tuple[int, ...], int, tuple[tuple[str, str], ...], tuple[Item, ...]]]:
    """Every elementary occurrence below ``item``: (item, indices, offset, branches, ancestors).

    With ``counts``, tables DEPENDING ON a counter have that many occurrences and what follows moves up.
    """
    yield from _walk(item, offset, counts, indices, (), ())


def _walk(
    item: Item,
    offset: int,
    counts: dict[str, int] | None,
    indices: tuple[int, ...],
    branches: tuple[tuple[str, str], ...],
    ancestors: tuple[Item, ...],
) -> Iterator[tuple[Item, tuple[int, ...], int, tuple[tuple[str, str], ...], tuple[Item, ...]]]:
    if not item.children:
        yield item, indices, offset, branches, ancestors
        return
    pos = offset
    for area in _areas(item):
        width = 0
        for child in area:
            b = (*branches, (area[0].name or "FILLER", child.name or "FILLER")) if len(area) > 1 else branches
            n = occurs_of(child, counts)
            one = size_of(child, counts)
            for k in range(n):
                idx = (*indices, k + 1) if child.has_occurs else indices
                yield from _walk(child, pos + k * one, counts, idx, b, (*ancestors, item))
            width = max(width, one * n)
        pos += width


def _sql_name(raw: str) -> str:
    name = "".join(ch if ch.isalnum() or ch == "_" else "_" for ch in raw.lower().replace("-", "_"))
    if not name or not name[0].isalpha():
        name = "f_" + name
    if len(name) > 63:
        name = name[:54] + "_" + hashlib.sha1(name.encode()).hexdigest()[:8]
    return name


def build_columns(layout: Layout, records: list[Item], naming: str) -> list[Column]:
    """The output columns of the given 01 records, in record order then storage order."""
    entries: list[tuple[Item, Item, tuple[int, ...], tuple[tuple[str, str], ...], tuple[Item, ...]]] = []
    for rec in records:
        for it, idx, _off, br, anc in walk(rec, 0, None):
            if it.name is None and not it.children:
                continue  # FILLER
            entries.append((rec, it, idx, br, anc))
    # qualification depth per distinct item: grow it for clashing names until they differ
    items: dict[int, tuple[Item, Item, tuple[Item, ...]]] = {}
    for rec, it, _idx, _br, anc in entries:
        items.setdefault(id(it), (rec, it, anc))

    def base(rec: Item, it: Item, anc: tuple[Item, ...], depth: int) -> str:
        groups = [a.name for a in anc[1:] if a.name]
        parts = ([*groups[len(groups) - depth :]] if depth else []) + [it.name or "filler"]
        if depth > len(groups):
            parts = [rec.name or "record", *parts]
        return "_".join(parts)

    depth = {
        k: (len([a for a in anc[1:] if a.name]) if naming == "qualified" else 0) for k, (_r, _i, anc) in items.items()
    }
    for _ in range(64):
        by_name: dict[str, list[int]] = defaultdict(list)
        for k, (rec, it, anc) in items.items():
            by_name[base(rec, it, anc, depth[k])].append(k)
        clashes = [ks for ks in by_name.values() if len(ks) > 1]
        if not clashes:
            break
        for ks in clashes:
            for k in ks:
                depth[k] += 1
    columns: list[Column] = []
    seen: dict[str, Item] = {}
    for rec, it, idx, br, anc in entries:
        raw = base(rec, it, anc, depth[id(it)]) + "".join(f"_{i}" for i in idx)
        name = _sql_name(raw)
        if name in seen:
            raise SpecError(
                [
                    (
                        layout.file,
                        f"line {it.line}",
                        f"{it.name} gives the column name {name!r}, which "
                        f"{seen[name].name} (line {seen[name].line}) has too; rename one of them",
                    )
                ]
            )
        seen[name] = it
        columns.append(Column(name, it, rec.name or "FILLER", idx, br, arrow_type_of(it)))
    return columns


def find_item(records: list[Item], name: str) -> tuple[Item, Item]:
    """The (01 record, item) of a COBOL name in the given records."""
    wanted = name.upper()
    for rec in records:
        stack = [rec]
        while stack:
            it = stack.pop()
            if it.name == wanted:
                return rec, it
            stack.extend(it.children)
    raise KeyError(name)


def static_offset(rec: Item, target: Item) -> int | None:
    """Offset of the first occurrence of ``target`` in ``rec`` if no variable table comes before it."""
    offsets = []
    for variant in (None, _min_counts(rec)):
        for it, _idx, off, _br, _anc in walk(rec, 0, variant):
            if it is target:
                offsets.append(off)
                break
    if len(offsets) == 2 and offsets[0] == offsets[1]:
        return offsets[0]
    return None


def _min_counts(rec: Item) -> dict[str, int]:
    counts: dict[str, int] = {}
    stack = [rec]
    while stack:
        it = stack.pop()
        if it.depending_on:
            counts[it.depending_on] = it.occurs_min
        stack.extend(it.children)
    return counts
