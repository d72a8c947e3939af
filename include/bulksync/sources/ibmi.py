"""The ``ibmi`` source: a file (or member) or a query of an IBM i, decoded by its conventions.

One extract: connect (read-only), look the file up in the catalogue, check the member, plan the
staged columns (declared conventions over catalogue types), then stream ``SELECT … FOR READ ONLY
WITH UR`` from the driver's cursor ``batch_size`` rows at a time, each batch converted with Arrow /
NumPy. Incremental windows become predicates on a change timestamp or a numeric date + time pair;
a chunk (see :meth:`IbmiSource.plan_chunks`) adds a key range.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import difflib
import itertools
import logging
import math
from collections.abc import Iterator
from functools import cached_property
from typing import Any

import pyarrow as pa
import sqlalchemy as sa

from bulksync.errors import BulksyncError, ConfigurationError, SourceConnectionError
from bulksync.hooks.ibmi import IbmiHook
from bulksync.ibmi.catalog import Catalog, CatalogColumn
from bulksync.ibmi.fetch import describe_query, iter_rows
from bulksync.ibmi.layout import BatchDecoder, StagedColumn, plan_columns
from bulksync.ibmi.names import FileName
from bulksync.ibmi.sqlgen import Predicate, Sql, SqlBuilder
from bulksync.ibmi.window import numeric_window, to_local
from bulksync.sources.base import Source
from bulksync.sources.sql_fetch import no_gc

log = logging.getLogger(__name__)


class IbmiSource(Source):
    """Extract from an IBM i (see :class:`~bulksync.spec.ibmi.IbmiOptions`)."""

    kind = "ibmi"

    @property
    def cursor_field(self) -> str | None:
        inc = self.options.incremental
        return None if inc is None else (inc.timestamp or inc.date)

    @cached_property
    def file(self) -> FileName | None:
        """The file (and member) read, ``None`` for a query."""
        return self.options.file_name() if self.options.file else None

    @property
    def where(self) -> str:
        """The file or query, for messages."""
        return str(self.file) if self.file else "the query"

    @cached_property
    def hook(self) -> IbmiHook:
        member = self.file is not None and self.file.member not in (None, self.file.file)
        return IbmiHook(self.spec.conn_id, read_only=not member)  # a member alias is DDL in QTEMP

    @cached_property
    def builder(self) -> SqlBuilder:
        return SqlBuilder(self.hook.backend, self.options.isolation)

    @cached_property
    def _conn(self) -> sa.Connection:
        conn = self.hook.connect()
        if self.hook.backend == "postgresql":
            conn.exec_driver_sql("SET TIME ZONE 'UTC'")
        return conn

    @cached_property
    def catalog(self) -> Catalog:
        return Catalog(self._conn, self.builder, self.hook.describe())

    @cached_property
    def _source(self) -> str:
        """What follows FROM: the file, the member's alias (created now on Db2 for i) or the query."""
        if self.file is None:
            return self.builder.from_query(self.options.query)
        self.catalog.check_member(self.file)
        if self.builder.is_db2i and self.file.member and self.file.member != self.file.file:
            alias = self.builder.create_alias(self.file)
            self._conn.execute(sa.text(alias.text))
            self._alias = True
            log.info("reading member %s through %s", self.file, alias.text)
        return self.builder.from_file(self.file)

    @cached_property
    def _columns(self) -> list[CatalogColumn]:
        source = self._source  # checks the member (and creates its alias) first
        if self.file is None:
            with self._sql_errors("reading the query's columns"):
                return describe_query(self._conn, source, self.hook.backend)
        return self.catalog.columns(self.file)

    @contextlib.contextmanager
    def _sql_errors(self, doing: str) -> Iterator[None]:
        """A statement the system refuses: a terminal error quoting the user's query; a lost connection: transient."""
        from bulksync.sources.sql import _is_database_error

        try:
            yield
        except Exception as exc:
            if isinstance(exc, BulksyncError) or not _is_database_error(exc):
                raise
            orig = getattr(exc, "orig", None) or exc
            message = str(getattr(getattr(orig, "diag", None), "message_primary", None) or orig).strip()
            message = message.splitlines()[0] if message else type(orig).__name__
            for wrapper in (") AS Q WHERE 1 = 0", ") AS Q"):
                message = message.replace(wrapper, "")
            invalidated = bool(getattr(exc, "connection_invalidated", False))
            if invalidated or ("Operational" in type(exc).__name__ and _lost(orig)):
                raise SourceConnectionError(
                    f"{self.where}: {doing} failed on {self.hook.describe()}: {message}; the task is retried"
                ) from None
            if self.file is None:
                query = " ".join((self.options.query or "").split())
                raise ConfigurationError(
                    f"{self.where}: the system refused the query ({message}). The query: {query[:300]!r} - fix "
                    "options.query (run it in ACS Run SQL Scripts or STRSQL to check it)"
                ) from None
            raise ConfigurationError(f"{self.where}: {doing} failed on {self.hook.describe()}: {message}") from None

    @cached_property
    def _plan(self) -> tuple[list[CatalogColumn], list[StagedColumn]]:
        selected, staged = plan_columns(self._columns, self.options, self.where)
        by_name = {c.name: c for c in self._columns}
        return [by_name[n] for n in selected], staged

    def schema(self) -> pa.Schema:
        return pa.schema([s.field for s in self._plan[1]])

    # -- predicates ------------------------------------------------------------------------

    def _predicates(self, chunk: dict[str, Any] | None = None) -> list[Predicate]:
        preds = []
        inc = self.options.incremental
        if inc is not None:  # checked on a full-window run too, which filters nothing
            self._require(inc.timestamp or inc.date or "", "incremental")
            if inc.time:
                self._require(inc.time, "incremental")
        if inc is not None and not self.window.is_full:
            window = self.window.widened(inc.overlap_minutes)
            if inc.timestamp:
                tz = self.options.timezone
                preds.append(
                    self.builder.timestamp_range(inc.timestamp, to_local(window.start, tz), to_local(window.end, tz))
                )
            else:
                assert inc.date is not None
                if inc.time:
                    self._require(inc.time, "incremental")
                bounds = numeric_window(
                    window.start,
                    window.end,
                    inc.date_format,
                    with_time=inc.time is not None,
                    timezone=self.options.timezone,
                    pivot=self.options.century_pivot,
                )
                preds.append(self.builder.date_time_range(inc.date, inc.time, bounds))
        chunk = self.chunk if chunk is None else chunk
        if chunk and self.options.chunking is not None:
            preds.append(self.builder.key_range(self.options.chunking.key, chunk.get("lo"), chunk.get("hi")))
        return preds

    def _require(self, column: str, what: str) -> None:
        names = [c.name for c in self._columns]
        if column.upper() not in {n.upper() for n in names}:
            close = difflib.get_close_matches(column.upper(), [n.upper() for n in names], n=3, cutoff=0.6)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise ConfigurationError(
                f"{what} column {column} is not a column of {self.where}{hint} Its columns: {', '.join(names)}"
            )

    def select_sql(self) -> Sql:
        """The statement this extract (or chunk) runs."""
        selected, _ = self._plan
        return self.builder.select([c.name for c in selected], self._source, self._predicates())

    # -- the contract ----------------------------------------------------------------------

    def source_count(self) -> int | None:
        _ = self._plan  # the file (or query) is looked up in the catalogue before anything runs on it
        sql = self.builder.count(self._source, self._predicates())
        with self._sql_errors("counting the rows"):
            count = int(self._conn.execute(sa.text(sql.text), sql.params).scalar_one())
        log.info("%s reports %d rows for window %s%s", self.where, count, self.window.key, self._chunk_note())
        return count

    def read(self) -> Iterator[pa.RecordBatch]:
        selected, staged = self._plan
        decoder = BatchDecoder(selected, staged, self.options.strict, self.where)
        sql = self.select_sql()
        log.info("reading %s: %s", self.where, sql.text)
        with self._sql_errors("reading the rows"):
            rows_of = iter_rows(self._conn, sql, self.options.batch_size)
        while True:
            with no_gc(), self._sql_errors("reading the rows"):  # the GC would only rescan short-lived tuples
                rows = next(rows_of, None)
                batch = None if rows is None else decoder.decode(rows)
            if batch is None:
                break
            yield batch
        self.stats.update(decoder.report())
        log.info("read %d rows from %s%s", decoder.rows, self.where, self._chunk_note())

    def _chunk_note(self) -> str:
        return f" (chunk {self.chunk})" if self.chunk else ""

    # -- chunks ----------------------------------------------------------------------------

    def plan_chunks(self) -> list[dict[str, Any]]:
        """Key ranges ``[lo, hi)`` of the chunking key whose union is the window's extract.

        The first range has no lower bound and the last no upper one, so rows added after planning
        are still read by exactly one chunk. The key must be unique and indexed (checked in the
        catalogue).

        Raises:
            ConfigurationError: no chunking, a query source, or a key that is not unique and indexed.
        """
        chunking = self.options.chunking
        if chunking is None:
            return [{}]
        if self.file is None:
            raise ConfigurationError("chunking needs a file: the catalogue cannot vouch for a query's key")
        self._require(chunking.key, "chunking")
        self.catalog.check_chunk_key(self.file, chunking.key)
        preds = self._predicates(chunk={})
        sql = self.builder.min_max(chunking.key, self._source, preds)
        lo, hi, count = self._conn.execute(sa.text(sql.text), sql.params).one()
        if not count or lo is None:
            log.info("%s: no keyed rows in window %s, one chunk", self.where, self.window.key)
            return [{"index": 0, "lo": None, "hi": None}]
        n = chunking.chunks or max(1, math.ceil(count / (chunking.chunk_size or count)))
        if chunking.split == "quantiles":
            cuts = self._quantile_cuts(chunking.key, preds, count, n, lo)
        else:
            cuts = sorted(set(_even_cuts(_plain(lo), _plain(hi), n, chunking.key, self.where)))
            counts = self._range_counts(chunking.key, cuts, preds)
            target = math.ceil(count / n)
            if n > 1 and max(counts, default=0) > 2 * target:
                log.warning(
                    "%s: minmax ranges of %s are unbalanced (largest %d rows, %d planned): the keys are skewed, "
                    "splitting by quantiles instead (set split: quantiles to skip this check)",
                    self.where,
                    chunking.key,
                    max(counts),
                    target,
                )
                cuts = self._quantile_cuts(chunking.key, preds, count, n, lo)
        edges: list[Any] = [None, *cuts, None]
        chunks = [{"index": i, "lo": a, "hi": b} for i, (a, b) in enumerate(itertools.pairwise(edges))]
        log.info(
            "%s: %d rows in window %s, %d chunks on %s (%s)",
            self.where,
            count,
            self.window.key,
            len(chunks),
            chunking.key,
            chunking.split,
        )
        return chunks

    def _quantile_cuts(self, key: str, preds: list[Predicate], count: int, n: int, lo: Any) -> list[Any]:
        step = max(1, math.ceil(count / n))
        q = self.builder.quantiles(key, self._source, step, preds)
        cuts = [_plain(r[0]) for r in self._conn.execute(sa.text(q.text), q.params).fetchall()]
        cuts = [c for c in cuts if c is not None and c != _plain(lo)][: n - 1]  # the n-th quantile is the maximum
        return sorted(set(cuts))

    def _range_counts(self, key: str, cuts: list[Any], preds: list[Predicate]) -> list[int]:
        """Rows in each planned range, in one scan."""
        if not cuts:
            return []
        sql = self.builder.range_counts(key, self._source, cuts, preds)
        return [int(r[1]) for r in self._conn.execute(sa.text(sql.text), sql.params).fetchall()]

    def close(self) -> None:
        if "_conn" in self.__dict__:
            if getattr(self, "_alias", False) and self.file is not None:
                with contextlib.suppress(Exception):  # QTEMP goes with the job anyway
                    self._conn.execute(sa.text(self.builder.drop_alias(self.file).text))
            with contextlib.suppress(Exception):
                self._conn.rollback()
            self._conn.close()
        if "hook" in self.__dict__:
            self.hook.dispose()


def _plain(value: Any) -> Any:
    """A key value as JSON can carry it (chunk descriptors travel through XCom)."""
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, str):
        return value
    return value


def _even_cuts(lo: Any, hi: Any, n: int, key: str, where: str) -> list[Any]:
    if not isinstance(lo, int | float) or not isinstance(hi, int | float):
        raise ConfigurationError(
            f"chunking key {key} of {where} is not numeric: use split: quantiles for text or date keys"
        )
    if isinstance(lo, int) and isinstance(hi, int):
        width = (hi - lo + 1) / n
        return [lo + math.ceil(width * i) for i in range(1, n) if lo + math.ceil(width * i) <= hi]
    return [lo + (hi - lo) * i / n for i in range(1, n)]


def _lost(orig: Any) -> bool:
    """True when the driver reports a lost or refused connection."""
    text = str(orig).lower()
    return any(w in text for w in ("connection", "server closed", "gone away", "lost", "timeout", "08s01", "08001"))
