"""Records of a stand-in: a large generated base plus a small overlay of changes.

A table holds ``count`` generated rows (made on demand from their index, so a million rows cost no
memory) and an overlay of rows created, changed or deleted through the admin API. Rows are
vendor-neutral dicts ``{"id", "created", "updated", "deleted", **fields}``; each stand-in renders
them in its vendor's shape. Generated rows have ``created``/``updated`` non-decreasing with the index,
so a window of either maps to an index range by bisection.

A :class:`View` is the ordered result of one query (a window, deleted or not): the generated rows of
the window in index order (minus overridden ones), then the overlay rows in ``(updated, id)`` order.
It is sliced for offset paging and searched by id for keyset paging.
"""

from __future__ import annotations

import bisect
import datetime as dt
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

Row = dict[str, Any]


@dataclass(frozen=True)
class Query:
    """What one listing asks for: a window of a stamp field and which rows."""

    field: str = "updated"
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    start_inclusive: bool = True
    end_inclusive: bool = False
    deleted: str = "exclude"
    """``exclude`` live rows only, ``include`` both, ``only`` deleted rows."""
    where: Callable[[Row], bool] | None = None


class Table:
    """One object of a stand-in (contacts, users …).

    Args:
        name: object name.
        count: generated rows.
        make: index → row (deterministic; ``id``, ``created`` and ``updated`` non-decreasing with it).
    """

    def __init__(self, name: str, count: int, make: Callable[[int], Row]) -> None:
        self.name, self.count, self.make = name, count, make
        self.lock = threading.Lock()
        self.overlay: dict[str, Row] = {}
        self.hidden: list[int] = []  # sorted indices of generated rows replaced by the overlay (or purged)
        self._index_of: dict[str, int] = {}
        self.version = 0

    def _base_index(self, key: str) -> int | None:
        """Index of the visible generated row with id ``key``, or None."""
        i = self._index_of.get(key)
        if i is None:
            i = self._search(key)
            if i is None:
                return None
            self._index_of[key] = i
        return None if i in self._hidden_set() else i

    def _search(self, key: str) -> int | None:
        lo, hi = 0, self.count
        while lo < hi:  # ids are non-decreasing with the index as well (a stand-in's make() promises it)
            mid = (lo + hi) // 2
            mk = _id_key(self.make(mid)["id"])
            if mk < _id_key(key):
                lo = mid + 1
            else:
                hi = mid
        return lo if lo < self.count and self.make(lo)["id"] == key else None

    def _hidden_set(self) -> set[int]:
        return set(self.hidden)

    def get(self, key: str) -> Row | None:
        """The current row with id ``key`` (deleted rows included), or None."""
        with self.lock:
            if key in self.overlay:
                return self.overlay[key]
            i = self._base_index(key)
            return None if i is None else self.make(i)

    def upsert(self, key: str | None, changes: dict[str, Any], now: dt.datetime, new_id: Callable[[], str]) -> Row:
        """Create (``key`` None or unknown) or change a row; stamps ``updated`` (and ``created``) with ``now``."""
        with self.lock:
            current = self.overlay.get(key) if key else None
            if current is None and key:
                i = self._base_index(key)
                if i is not None:
                    current = self.make(i)
                    bisect.insort(self.hidden, i)
            row = dict(current) if current else {"id": key or new_id(), "created": now, "deleted": None}
            row.update(changes)
            row["updated"] = now
            self.overlay[str(row["id"])] = row
            self.version += 1
            return row

    def delete(self, key: str, now: dt.datetime, hard: bool = False) -> Row:
        """Soft-delete (archive) a row at ``now``, or purge it (``hard``). Raises ``KeyError``."""
        row = self.get(key)
        if row is None:
            raise KeyError(key)
        if hard:
            with self.lock:
                i = self._base_index(key)
                if i is not None:
                    bisect.insort(self.hidden, i)
                self.overlay.pop(key, None)
                self.version += 1
            return row
        return self.upsert(key, {"deleted": now}, now, lambda: key)

    def restore(self, key: str, now: dt.datetime) -> Row:
        """Undelete an archived row."""
        return self.upsert(key, {"deleted": None}, now, lambda: key)

    def view(self, query: Query) -> View:
        """The ordered rows matching ``query``."""
        with self.lock:
            lo, hi = 0, self.count
            if query.deleted == "only":
                lo = hi = 0  # generated rows are never deleted
            else:
                if query.start is not None:
                    lo = self._bisect(query.field, query.start, left=query.start_inclusive)
                if query.end is not None:
                    hi = self._bisect(query.field, query.end, left=not query.end_inclusive)
                hi = max(lo, hi)
            hidden = [i for i in self.hidden[bisect.bisect_left(self.hidden, lo) : bisect.bisect_left(self.hidden, hi)]]
            extra = sorted(
                (r for r in self.overlay.values() if _matches(r, query)), key=lambda r: (r["updated"], _id_key(r["id"]))
            )
        if query.where is not None:
            return View(self, 0, 0, [], [*[r for r in _gen(self, lo, hi, hidden) if query.where(r)], *extra])
        return View(self, lo, hi, hidden, extra)

    def _bisect(self, field: str, value: dt.datetime, left: bool) -> int:
        lo, hi = 0, self.count
        while lo < hi:
            mid = (lo + hi) // 2
            v = self.make(mid)[field]
            if v < value or (not left and v == value):
                lo = mid + 1
            else:
                hi = mid
        return lo

    def rows(self, include_deleted: bool = True) -> Iterator[Row]:
        """Every current row (the ground truth), generated ones first."""
        yield from self.view(Query(deleted="include" if include_deleted else "exclude")).iter()


def _gen(table: Table, lo: int, hi: int, hidden: list[int]) -> Iterator[Row]:
    skip = set(hidden)
    for i in range(lo, hi):
        if i not in skip:
            yield table.make(i)


def _matches(row: Row, q: Query) -> bool:
    deleted = row.get("deleted") is not None
    if (q.deleted == "exclude" and deleted) or (q.deleted == "only" and not deleted):
        return False
    v = row.get(q.field)
    if q.start is not None and (v is None or v < q.start or (v == q.start and not q.start_inclusive)):
        return False
    if q.end is not None and (v is None or v > q.end or (v == q.end and not q.end_inclusive)):
        return False
    return q.where is None or bool(q.where(row))


def _id_key(key: str) -> tuple[int, str]:
    """Ids sort numerically when they are numbers (HubSpot), else as text."""
    return (int(key), "") if key.isdigit() else (1 << 62, key)


class View:
    """An ordered query result: generated rows ``[lo, hi)`` minus ``hidden``, then ``extra`` rows."""

    def __init__(self, table: Table, lo: int, hi: int, hidden: list[int], extra: list[Row]) -> None:
        self.table, self.lo, self.hi, self.hidden, self.extra = table, lo, hi, hidden, extra
        self.base = hi - lo - len(hidden)

    def __len__(self) -> int:
        return self.base + len(self.extra)

    def _nth_base(self, k: int) -> int:
        """Index of the k-th (0-based) visible generated row."""
        pos = self.lo + k
        while True:
            skipped = bisect.bisect_right(self.hidden, pos) - bisect.bisect_left(self.hidden, self.lo)
            nxt = self.lo + k + skipped
            if nxt == pos:
                return pos
            pos = nxt

    def slice(self, start: int, stop: int) -> list[Row]:
        """Rows ``[start, stop)`` of the result."""
        stop = min(stop, len(self))
        out: list[Row] = []
        if start < self.base:
            i = self._nth_base(start)
            hidden = set(self.hidden)
            while len(out) < min(stop, self.base) - start and i < self.hi:
                if i not in hidden:
                    out.append(self.table.make(i))
                i += 1
        a, b = max(0, start - self.base), max(0, stop - self.base)
        out.extend(self.extra[a:b])
        return out

    def position_after(self, key: str) -> int | None:
        """The position following the row with id ``key`` (keyset paging), or None when it is not here."""
        for j, r in enumerate(self.extra):
            if r["id"] == key:
                return self.base + j + 1
        i = self.table._base_index(key)
        if i is None or not self.lo <= i < self.hi or i in set(self.hidden):
            return None
        return i - self.lo - (bisect.bisect_left(self.hidden, i) - bisect.bisect_left(self.hidden, self.lo)) + 1

    def iter(self, page: int = 1000) -> Iterator[Row]:
        """Every row, in order."""
        for start in range(0, len(self), page):
            yield from self.slice(start, start + page)
