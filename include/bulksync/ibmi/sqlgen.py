"""The SQL the ``ibmi`` source sends, built per dialect and testable as exact text.

On Db2 for i (``db2i``) every read ends with ``FOR READ ONLY WITH UR`` (or ``WITH NC`` / ``WITH
CS``), limits use ``FETCH FIRST n ROWS ONLY`` and a member other than the first is read through an
alias in ``QTEMP``. The same builder speaks PostgreSQL, MariaDB and SQLite for the emulation the
tests and the demo run on: a library is a schema on PostgreSQL (the connection's own database on
MariaDB and SQLite), member ``M`` of file ``F`` is table ``F__M``, and there is no isolation
clause (the session is made read-only instead).

Statements carry named parameters (``:lo``) in SQLAlchemy's ``text()`` style, never inlined values.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bulksync.ibmi.names import FileName

DB2I = "db2i"
MEMBER_SEPARATOR = "__"
_PLAIN = re.compile(r"^[A-Z][A-Z0-9_#$@]*$")
_QUOTES = {"db2i": '"', "postgresql": '"', "sqlite": '"', "mysql": "`"}


@dataclass(frozen=True)
class Sql:
    """A statement and its named parameters."""

    text: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Predicate:
    """A WHERE condition and its parameters."""

    text: str
    params: dict[str, Any] = field(default_factory=dict)


class SqlBuilder:
    """Build the source's statements for one dialect.

    Args:
        dialect: ``db2i`` for an IBM i, or the emulating database's dialect (``postgresql``,
            ``mysql``, ``sqlite``).
        isolation: ``UR`` (uncommitted read, default), ``NC`` (no commit) or ``CS`` — Db2 for i only.
    """

    def __init__(self, dialect: str, isolation: str = "UR") -> None:
        if dialect not in _QUOTES:
            raise ValueError(f"no IBM i SQL for dialect {dialect!r}; known: {', '.join(_QUOTES)}")
        self.dialect = dialect
        self.isolation = isolation

    @property
    def is_db2i(self) -> bool:
        """True on a real IBM i."""
        return self.dialect == DB2I

    # -- names -----------------------------------------------------------------------------

    def ident(self, name: str) -> str:
        """An identifier: plain upper-case names stay bare on Db2 for i, everything else is quoted."""
        if self.is_db2i and _PLAIN.match(name):
            return name
        q = _QUOTES[self.dialect]
        return f"{q}{name.replace(q, q + q)}{q}"

    def table(self, name: FileName) -> str:
        """The table to read for a file: the file itself, or on emulation the member's table."""
        table = name.file
        if not self.is_db2i and name.member and name.member != name.file:
            table = f"{name.file}{MEMBER_SEPARATOR}{name.member}"
        if name.library and self.dialect in (DB2I, "postgresql"):
            return f"{self.ident(name.library)}.{self.ident(table)}"
        return self.ident(table)

    @staticmethod
    def alias_name(name: FileName) -> str:
        """The QTEMP alias of a member: ``BULKSYNC_<FILE>_<MEMBER>`` (QTEMP is private to the job)."""
        return f"BULKSYNC_{name.file}_{name.member}"[:128]

    def create_alias(self, name: FileName) -> Sql:
        """``CREATE ALIAS QTEMP.x FOR LIB.FILE(MEMBER)`` — Db2 for i only."""
        self._db2i_only("member aliases")
        target = f"{self.ident(name.library)}.{self.ident(name.file)}" if name.library else self.ident(name.file)
        return Sql(
            f"CREATE ALIAS QTEMP.{self.ident(self.alias_name(name))} FOR {target}({self.ident(name.member or '')})"
        )

    def drop_alias(self, name: FileName) -> Sql:
        """``DROP ALIAS QTEMP.x``."""
        self._db2i_only("member aliases")
        return Sql(f"DROP ALIAS QTEMP.{self.ident(self.alias_name(name))}")

    def from_file(self, name: FileName) -> str:
        """What to put after FROM for a file: on Db2 for i a member other than the first goes through its alias."""
        if self.is_db2i and name.member and name.member != name.file:
            return f"QTEMP.{self.ident(self.alias_name(name))}"
        return self.table(name)

    @staticmethod
    def from_query(query: str) -> str:
        """A user's SELECT as a derived table."""
        return f"({query.strip().rstrip(';')}) AS Q"

    # -- statements ------------------------------------------------------------------------

    def _tail(self) -> str:
        return f" FOR READ ONLY WITH {self.isolation}" if self.is_db2i else ""

    @staticmethod
    def _where(predicates: Sequence[Predicate]) -> tuple[str, dict[str, Any]]:
        params: dict[str, Any] = {}
        for p in predicates:
            params.update(p.params)
        parts = [p.text for p in predicates if p.text]
        return (" WHERE " + " AND ".join(parts) if parts else ""), params

    def select(
        self,
        columns: Sequence[str],
        source: str,
        predicates: Sequence[Predicate] = (),
        *,
        order_by: Sequence[str] = (),
        limit: int | None = None,
    ) -> Sql:
        """``SELECT cols FROM source WHERE … [ORDER BY …] [FETCH FIRST n ROWS ONLY] FOR READ ONLY WITH UR``."""
        where, params = self._where(predicates)
        cols = ", ".join(self.ident(c) for c in columns) if columns else "*"
        text = f"SELECT {cols} FROM {source}{where}"
        if order_by:
            text += " ORDER BY " + ", ".join(self.ident(c) for c in order_by)
        if limit is not None:
            text += f" FETCH FIRST {int(limit)} ROWS ONLY" if self.is_db2i else f" LIMIT {int(limit)}"
        return Sql(text + self._tail(), params)

    def count(self, source: str, predicates: Sequence[Predicate] = ()) -> Sql:
        """``SELECT COUNT(*) FROM source WHERE …``."""
        where, params = self._where(predicates)
        return Sql(f"SELECT COUNT(*) FROM {source}{where}{self._tail()}", params)

    def min_max(self, key: str, source: str, predicates: Sequence[Predicate] = ()) -> Sql:
        """``SELECT MIN(key), MAX(key), COUNT(*) FROM source WHERE …``."""
        where, params = self._where(predicates)
        k = self.ident(key)
        return Sql(f"SELECT MIN({k}), MAX({k}), COUNT(*) FROM {source}{where}{self._tail()}", params)

    def quantiles(self, key: str, source: str, step: int, predicates: Sequence[Predicate] = ()) -> Sql:
        """Every ``step``-th key in key order: boundaries of ranges holding ``step`` rows each."""
        where, params = self._where(predicates)
        k = self.ident(key)
        rn = self.ident("BULKSYNC_RN")
        every = f"{rn} % :step = 0" if self.dialect == "sqlite" else f"MOD({rn}, :step) = 0"
        not_null = f"{k} IS NOT NULL"  # NULL keys belong to the first range (see key_range)
        where = f"{where} AND {not_null}" if where else f" WHERE {not_null}"
        text = (
            f"SELECT {k} FROM (SELECT {k}, ROW_NUMBER() OVER (ORDER BY {k}) AS {rn} FROM {source}{where}) AS R "
            f"WHERE {every} ORDER BY {k}{self._tail()}"
        )
        return Sql(text, {**params, "step": int(step)})

    def range_counts(self, key: str, source: str, cuts: Sequence[Any], predicates: Sequence[Predicate] = ()) -> Sql:
        """Rows per planned range ``[None, cut1, …, None)`` (NULL keys in the first): one scan, to check balance."""
        where, params = self._where(predicates)
        k = self.ident(key)
        b = self.ident("BULKSYNC_RANGE")
        whens = " ".join(f"WHEN {k} < :cut_{i} THEN {i}" for i in range(len(cuts)))
        params |= {f"cut_{i}": c for i, c in enumerate(cuts)}
        case = f"CASE WHEN {k} IS NULL THEN 0 {whens} ELSE {len(cuts)} END"
        text = f"SELECT {b}, COUNT(*) FROM (SELECT {case} AS {b} FROM {source}{where}) AS R GROUP BY {b}{self._tail()}"
        return Sql(text, params)

    # -- predicates ------------------------------------------------------------------------

    def key_range(self, key: str, lo: Any, hi: Any) -> Predicate:
        """``key >= :lo AND key < :hi``; an open end when ``lo`` / ``hi`` is ``None``. The first range
        (no ``lo``) also takes NULL keys, which a unique index may allow, so no row falls between chunks."""
        k = self.ident(key)
        if lo is None and hi is None:
            return Predicate("")
        if lo is None:
            return Predicate(f"({k} < :chunk_hi OR {k} IS NULL)", {"chunk_hi": hi})
        if hi is None:
            return Predicate(f"{k} >= :chunk_lo", {"chunk_lo": lo})
        return Predicate(f"{k} >= :chunk_lo AND {k} < :chunk_hi", {"chunk_lo": lo, "chunk_hi": hi})

    def timestamp_range(self, column: str, start: Any, end: Any) -> Predicate:
        """``col >= :window_start AND col < :window_end`` (local naive timestamps)."""
        c = self.ident(column)
        parts, params = [], {}
        if start is not None:
            parts.append(f"{c} >= :window_start")
            params["window_start"] = start
        if end is not None:
            parts.append(f"{c} < :window_end")
            params["window_end"] = end
        return Predicate(" AND ".join(parts), params)

    def date_time_range(self, date: str, time: str | None, bounds: NumericWindow) -> Predicate:
        """The window as predicates on a numeric date (and ``HHMMSS`` time) pair; see :class:`NumericWindow`."""
        d = self.ident(date)
        params: dict[str, Any] = {}
        ors: list[str] = []
        if time is None:
            for i, (a, b) in enumerate(bounds.days):
                ors.append(f"{d} BETWEEN :w_d{i}_lo AND :w_d{i}_hi")
                params[f"w_d{i}_lo"], params[f"w_d{i}_hi"] = a, b
        else:
            t = self.ident(time)
            if bounds.first is not None and bounds.last is not None and bounds.first[0] == bounds.last[0]:
                ors.append(f"({d} = :w_first AND {t} >= :w_first_time AND {t} < :w_last_time)")
                params.update(w_first=bounds.first[0], w_first_time=bounds.first[1], w_last_time=bounds.last[1])
            else:
                if bounds.first is not None:
                    ors.append(f"({d} = :w_first AND {t} >= :w_first_time)")
                    params.update(w_first=bounds.first[0], w_first_time=bounds.first[1])
                for i, (a, b) in enumerate(bounds.days):
                    ors.append(f"{d} BETWEEN :w_d{i}_lo AND :w_d{i}_hi")
                    params[f"w_d{i}_lo"], params[f"w_d{i}_hi"] = a, b
                if bounds.last is not None:
                    ors.append(f"({d} = :w_last AND {t} < :w_last_time)")
                    params.update(w_last=bounds.last[0], w_last_time=bounds.last[1])
        if not ors:
            return Predicate("1 = 0")
        return Predicate(ors[0] if len(ors) == 1 else "(" + " OR ".join(ors) + ")", params)

    def _db2i_only(self, what: str) -> None:
        if not self.is_db2i:
            raise ValueError(f"{what} exist only on Db2 for i (dialect {self.dialect})")


@dataclass(frozen=True)
class NumericWindow:
    """A time window in numeric-date terms.

    Attributes:
        first: ``(date code, HHMMSS)`` of the start: rows of that day from that time on.
        days: inclusive ``(lo, hi)`` code ranges of whole days inside the window (more than one
            where the format's codes are not in date order, e.g. ``YYMMDD`` across 2000).
        last: ``(date code, HHMMSS)`` of the end: rows of that day before that time.
    """

    first: tuple[int, int] | None
    days: list[tuple[int, int]]
    last: tuple[int, int] | None
