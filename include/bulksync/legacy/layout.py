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


def arrow_type_of(item: Item, edited_text: bool = False) -> pa.DataType:
    """Arrow type of an elementary item (exact decimal, int64 when scale 0 and at most 18 digits).

    Numeric-edited pictures are numbers unless ``edited_text`` (``edited_numbers: text``).
    """
    if item.usage in ("comp-1", "comp-2"):
        return pa.float64()
    pic = item.picture
    assert pic is not None
    if pic.kind != "numeric" and (pic.kind != "numeric_edited" or edited_text):
        return pa.string()
    scale = max(pic.scale, 0)
    precision = pic.precision
    if item.usage == "comp-5":
        precision = max(precision, {2: 5, 4: 10, 8: 19}[item.size])
    if scale == 0 and (precision <= 18 or item.usage == "comp-5"):
        return pa.int64()
    return pa.decimal128(max(precision, scale, 1), scale)


Counts = dict[tuple[str, tuple[int, ...]], int]
"""ODO counter values of one record: (counter name, occurrence indices of the counter) -> value.

A counter outside any table has indices ``()``; a counter inside a table has one value per occurrence
(``("ITEM-CNT", (2,))`` is the counter in the second occurrence), so each occurrence of an outer table may
hold an inner table of its own size.
"""


class NeedCounter(Exception):
    """A walk with counts reached an ``OCCURS DEPENDING ON`` table whose counter value is not known yet.

    Attributes:
        key: the counts key to fill in.
        counter: the counter item; offset: where this occurrence of it is in the record.
        table: the table that depends on it (its ``occurs_min`` .. ``occurs`` is the valid range).
    """

    def __init__(self, key: tuple[str, tuple[int, ...]], counter: Item, offset: int, table: Item) -> None:
        super().__init__(key)
        self.key = key
        self.counter = counter
        self.offset = offset
        self.table = table


def size_of(item: Item, counts: Counts | None = None) -> int:
    """Bytes of one occurrence of ``item`` (at the maximum size of every table without ``counts``).

    Raises:
        NeedCounter: with ``counts`` that lack a counter the layout needs.
    """
    if counts is None or not item.children:
        return item.size
    return _walk(item, 0, counts, (), (), (), [], {})


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
Entry = tuple[Item, tuple[int, ...], int, tuple[tuple[str, str], ...], tuple[Item, ...]]


def walk(item: Item, offset: int, counts: Counts | None, indices: tuple[int, ...] = ()) -> list[Entry]:
    """Every elementary occurrence below ``item``: (item, indices, offset, branches, ancestors).

    Without ``counts`` every table has its maximum size. With ``counts``, a table DEPENDING ON a counter has
    as many occurrences as the counter's value (the occurrence of the counter walked last before the table)
    and what follows moves up.

    Raises:
        NeedCounter: ``counts`` lacks the value of a counter the layout needs.
    """
    out: list[Entry] = []
    _walk(item, offset, counts, indices, (), (), out, {})
    return out


def record_end(item: Item, counts: Counts | None) -> int:
    """Where the record ends with these counts (every REDEFINES area as long as its longest branch)."""
    return _walk(item, 0, counts, (), (), (), [], {})


def _walk(
    item: Item,
    offset: int,
    counts: Counts | None,
    indices: tuple[int, ...],
    branches: tuple[tuple[str, str], ...],
    ancestors: tuple[Item, ...],
    out: list[Entry],
    seen: dict[str, tuple[tuple[int, ...], int, Item]],
) -> int:
    if not item.children:
        out.append((item, indices, offset, branches, ancestors))
        if item.name:
            seen[item.name] = (indices, offset, item)
        return offset + item.size
    pos = offset
    inner = (*ancestors, item)
    for area in _areas(item):
        width = 0
        for child in area:
            b = (*branches, (area[0].name or "FILLER", child.name or "FILLER")) if len(area) > 1 else branches
            n = child.occurs
            if counts is not None and child.depending_on:
                where = seen.get(child.depending_on)
                if where is None:
                    raise NeedCounter((child.depending_on, ()), child, -1, child)
                key = (child.depending_on, where[0])
                if key not in counts:
                    raise NeedCounter(key, where[2], where[1], child)
                n = counts[key]
            p = pos
            if counts is None and not child.children:
                for k in range(n):
                    idx = (*indices, k + 1) if child.has_occurs else indices
                    out.append((child, idx, p, b, inner))
                    p += child.size
                if child.name:
                    seen[child.name] = (indices, pos, child)
            else:
                for k in range(n):
                    idx = (*indices, k + 1) if child.has_occurs else indices
                    p = _walk(child, p, counts, idx, b, inner, out, seen)
            width = max(width, p - pos)
        pos += width
    return pos


def _sql_name(raw: str) -> str:
    name = "".join(ch if ch.isalnum() or ch == "_" else "_" for ch in raw.lower().replace("-", "_"))
    if not name or not name[0].isalpha():
        name = "f_" + name
    if len(name) > 63:
        name = name[:54] + "_" + hashlib.sha1(name.encode()).hexdigest()[:8]
    return name


def build_columns(
    layout: Layout, records: list[Item], naming: str, keep_filler_groups: bool = False, edited_text: bool = False
) -> list[Column]:
    """The output columns of the given 01 records, in record order then storage order.

    A FILLER group is dropped with all its named children unless ``keep_filler_groups``.
    """
    entries: list[tuple[Item, Item, tuple[int, ...], tuple[tuple[str, str], ...], tuple[Item, ...]]] = []
    for rec in records:
        for it, idx, _off, br, anc in walk(rec, 0, None):
            if it.name is None and not it.children:
                continue  # FILLER
            if not keep_filler_groups and any(a.name is None for a in anc[1:]):
                continue  # inside a FILLER group
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
        columns.append(Column(name, it, rec.name or "FILLER", idx, br, arrow_type_of(it, edited_text)))
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
    for it, _idx, off, _br, anc in walk(rec, 0, None):
        variable = bool(it.depending_on) or any(a.depending_on for a in anc)
        if it is target:
            return None if variable else off
        if variable:
            return None
    return None
