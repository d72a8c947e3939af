"""The ``api`` source: any HTTP API described by options (or a preset) into Arrow record batches.

One extract is a list of *queries*: the endpoint for the run's window (split into slices when the API
caps a query), or one query per parent id (fan-out), and the deletes request when the API lists
deleted records separately. :meth:`ApiSource.source_count` fetches each query's first page (the
splitter needs the totals anyway) and the deletes, and sums the totals the API states;
:meth:`ApiSource.read` walks the pages from there. Slices, totals, requests, retries and
re-authentications go into the manifest's ``source_stats``.
"""

from __future__ import annotations

import concurrent.futures as cf
import datetime as dt
import logging
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pyarrow as pa

from bulksync.sources.api import paths, protocol
from bulksync.sources.api import window as win
from bulksync.sources.api.client import ApiClient, Call, Page
from bulksync.sources.api.errors import ApiDataError, ApiRequestError, where
from bulksync.sources.api.paginate import Paginator
from bulksync.sources.api.presets import merge
from bulksync.sources.api.records import Converter, Origin, without_gc
from bulksync.sources.base import Source
from bulksync.spec.api import ApiColumn, ApiOptions, Endpoint, Paginate
from bulksync.staging.partition import Window

log = logging.getLogger(__name__)
LOG_EVERY_PAGES = 200


@dataclass
class Query:
    """One paged read: its first call, how it pages, where its records are, what they are."""

    call: Call
    paginate: Paginate
    records_path: str
    kind: str = "main"
    piece: win.Slice | None = None
    parent_id: Any = None
    record_path: str | None = None
    window_field: str | None = None
    first: Page | None = None
    total: int | None = None
    paginator: Any = None
    stats: dict[str, Any] = field(default_factory=dict)


class ApiSource(Source):
    """Extract one object of an HTTP API (see :class:`~bulksync.spec.api.ApiOptions`)."""

    kind = "api"
    reports_deletes = True
    options: ApiOptions

    def __init__(self, spec: Any, window: Window, chunk: dict[str, Any] | None = None) -> None:
        super().__init__(spec, window, chunk)
        self._queries: list[Query] | None = None
        self._deleted: list[pa.RecordBatch] = []
        self._keys = _KeyCheck()

    @property
    def primary_key(self) -> list[str]:
        return list(self.options.primary_key)

    @property
    def cursor_field(self) -> str | None:
        return self.options.window.cursor_field if self.options.window and self.options.incremental else None

    @cached_property
    def columns(self) -> list[ApiColumn]:
        cols = self.options.records.columns
        if cols == "infer":
            from bulksync.sources.api.infer import frozen_columns

            return frozen_columns(self)
        return list(cols)

    @cached_property
    def converter(self) -> Converter:
        flag = self.options.deletes.flag if self.options.deletes else None
        return Converter(self.columns, flag, self.options.parent.column if self.options.parent else None)

    @cached_property
    def client(self) -> ApiClient:
        from bulksync.hooks.api import ApiHook

        o = self.options
        conc = o.parent.concurrency if o.parent else 1
        hook = ApiHook(self.spec.conn_id, timeout=o.limits.timeout_seconds, max_connections=max(2, conc))
        client = ApiClient(hook, o.limits, self.spec.conn_id)
        if o.hooks.sign:
            signer = protocol.hook("sign", o.hooks.sign)
            fields = {**hook.extras, "login": hook.connection.login, "password": hook.connection.password}
            client.sign = lambda request: signer(request, fields)
        log.info("api source %s: connection %s", self.label, hook.describe())
        return client

    @property
    def label(self) -> str:
        o = self.options
        return f"{o.preset}.{o.object}" if o.preset else o.endpoint.path

    def schema(self) -> pa.Schema:
        return self.converter.schema

    # -- planning -------------------------------------------------------------------------------

    @property
    def incremental(self) -> bool:
        return bool(self.options.incremental and self.options.window)

    def _slice(self) -> win.Slice | None:
        if not self.incremental:
            return None
        w = self.options.window
        assert w is not None
        return win.whole(self.window.start, self.window.end, w.overlap_minutes, dt.datetime.now(dt.UTC))

    def _call(
        self,
        endpoint: Endpoint,
        piece: win.Slice | None,
        extra_params: dict[str, Any] | None = None,
        parent_id: Any = None,
        page_size: Paginate | None = None,
    ) -> Call:
        w = self.options.window
        params = dict(endpoint.params)
        body = endpoint.body
        values: dict[str, Any] = {}
        if piece is not None and w is not None:
            values = win.bounds(piece, w.format)
            params.update(w.params)
            if w.body is not None:
                body = merge(body, w.body) if isinstance(body, dict) else w.body
        params.update(extra_params or {})
        if parent_id is not None:
            values["parent_id"] = parent_id
        path = endpoint.path
        if values:
            params, body = win.bind(params, values), win.bind(body, values)
            path = win.bind(path, {k: v for k, v in values.items() if k == "parent_id"})
        label = f"{endpoint.method} {endpoint.path}"
        if parent_id is not None:
            label += f" (parent id {parent_id})"
        return Call(endpoint.method, path, label, 1, params, body, dict(endpoint.headers))

    def _main(self, piece: win.Slice | None) -> Query:
        o = self.options
        endpoint, paginate = o.endpoint, o.paginate
        if piece is not None and o.window is not None:
            endpoint = o.window.endpoint or endpoint
            paginate = o.window.paginate or paginate
        call = self._call(endpoint, piece)
        if piece is not None and o.window is not None:
            call.rate = o.window.requests_per_second
        return Query(call, paginate, o.records.path, piece=piece)

    def plan(self) -> list[Query]:
        """The queries of the extract (first pages fetched, windows split to fit the API's cap)."""
        if self._queries is not None:
            return self._queries
        o = self.options
        if o.parent is not None:
            self._queries = []
            return self._queries
        piece = self._slice()
        queries = self._fit(self._main(piece))
        d = o.deletes
        if d is not None and d.request is not None:
            r = d.request
            endpoint = Endpoint(
                method=r.method or o.endpoint.method,
                path=r.path or o.endpoint.path,
                params={**o.endpoint.params, **r.params},
                body=r.body if r.body is not None else o.endpoint.body,
                headers=o.endpoint.headers,
            )
            extra = win.bind(r.window_params, win.bounds(piece, o.window.format)) if piece and o.window else {}
            call = self._call(endpoint, None, extra)
            queries.append(
                Query(
                    call,
                    o.paginate,
                    r.records_path if r.records_path is not None else o.records.path,
                    kind="deletes",
                    piece=piece,
                    record_path=r.record_path,
                    window_field=r.window_field,
                )
            )
        self._queries = queries
        return queries

    def _fetch_first(self, q: Query) -> None:
        q.paginator = Paginator(q.paginate)
        q.call = q.paginator.first(q.call)
        q.first = self._page(q, q.call)
        if self.options.total is not None and q.kind == "main":
            q.total = _total(q.first, self.options.total.path, self.options.total.capped_at)

    def _fit(self, q: Query) -> list[Query]:
        self._fetch_first(q)
        w = self.options.window
        cap = w.max_results if w else None
        if q.piece is None or cap is None or q.total is None or q.total <= cap:
            return [q]
        assert w is not None
        if q.piece.seconds <= w.min_slice_seconds:
            raise ApiDataError(
                f"{where(q.call.label)}: {q.total} records changed within {q.piece.seconds:g}s "
                f"({q.piece.start.isoformat()} .. {q.piece.end.isoformat()}), more than the API returns for one "
                f"query ({cap}); the window cannot be split further: lower window.min_slice_seconds or use a full "
                "extract"
            )
        pieces = protocol.hook("splitter", w.split_hook or "halve")(q.piece, q.total, cap)
        log.info(
            "%s: %d records in %s..%s exceed the cap of %d; split into %d slices",
            self.label,
            q.total,
            q.piece.start.isoformat(),
            q.piece.end.isoformat(),
            cap,
            len(pieces),
        )
        self.stats["window_splits"] = int(self.stats.get("window_splits", 0)) + 1
        out: list[Query] = []
        for p in pieces:
            out.extend(self._fit(self._main(p)))
        return out

    def source_count(self) -> int | None:
        """The sum of the totals the API states for the window's queries (+ listed deletions), or None."""
        queries = self.plan()
        self.stats["slices"] = [
            {**(q.piece.to_json() if q.piece else {}), "total": q.total} for q in queries if q.kind == "main"
        ]
        deletes = [q for q in queries if q.kind == "deletes"]
        for q in deletes:  # deletions are few (keys only): read them now, so they can be counted
            self._deleted.extend(self._read_query(q))
        mains = [q for q in queries if q.kind == "main"]
        if self.options.total is None or not mains or any(q.total is None for q in mains):
            return None
        count = sum(int(q.total or 0) for q in mains) + sum(b.num_rows for b in self._deleted)
        self.stats["api_total"] = count
        log.info(
            "%s: the API reports %d records for window %s (%d queries)",
            self.label,
            count,
            self.window.key,
            len(queries),
        )
        return count

    # -- reading --------------------------------------------------------------------------------

    def read(self) -> Iterator[pa.RecordBatch]:
        try:
            if self.options.parent is not None:
                yield from without_gc(self._fan_out())
            else:
                if self._queries is None:
                    self.source_count()
                for q in self.plan():
                    if q.kind == "main":
                        yield from without_gc(self._read_query(q))
                yield from self._deleted
                self.stats["deleted_listed"] = sum(b.num_rows for b in self._deleted)
        finally:
            self._record_stats()

    def _page(self, q: Query, call: Call) -> Page:
        page = self.client.fetch(call)
        hook_name = self.options.hooks.page
        if hook_name:
            page.body = protocol.hook("page", hook_name)(page.body, page.label, page.number)
        return page

    def _records(self, q: Query, page: Page) -> list[Any]:
        if q.records_path and self._v1_collection(q, page):
            records = page.body["d"]  # OData v1/v2 servers may send {"d": [...]} without "results"
        elif q.records_path:
            if not isinstance(page.body, dict) or not paths.has(page.body, q.records_path):
                if self.options.records.missing_is_empty or page.body is None:
                    return []
                members = ", ".join(sorted(page.body)) if isinstance(page.body, dict) else type(page.body).__name__
                raise ApiDataError(
                    f"{where(page.label, page.number)}: the page has no records at {q.records_path!r} (it has: "
                    f"{members[:200]}); check records.path"
                )
            records = paths.get(page.body, q.records_path)
        else:
            records = page.body
        if records is None:
            return []
        if isinstance(records, dict):
            records = [records]
        if not isinstance(records, list):
            raise ApiDataError(
                f"{where(page.label, page.number)}: {q.records_path or 'the body'} is not a list of records"
            )
        if q.record_path:
            records = [paths.get(r, q.record_path) for r in records]
        return records

    @staticmethod
    def _v1_collection(q: Query, page: Page) -> bool:
        p = q.paginate
        return (
            p.kind == "odata"
            and p.odata_version == "v2"
            and q.records_path == "d.results"
            and isinstance(page.body, dict)
            and isinstance(page.body.get("d"), list)
        )

    def _pages(self, q: Query) -> Iterator[tuple[Page, list[Any]]]:
        """The pages of a query; the next page is fetched in the background while the caller converts this one."""
        if q.first is None:
            self._fetch_first(q)
        paginator: Paginator = q.paginator
        page, call = q.first, q.call
        assert page is not None
        pool: cf.ThreadPoolExecutor | None = None
        read = 0
        try:
            while True:
                records = self._records(q, page)
                read += len(records)
                nxt = paginator.next(call, page, records)
                ahead = None
                if nxt is not None:
                    pool = pool or cf.ThreadPoolExecutor(max_workers=1, thread_name_prefix="api-prefetch")
                    ahead = pool.submit(self._page, q, nxt)
                yield page, records
                if ahead is None or nxt is None:
                    return
                try:
                    call, page = nxt, ahead.result()
                except ApiRequestError as exc:
                    raise self._past_cap(q, exc, read) from None
                if page.number % LOG_EVERY_PAGES == 0:
                    log.info("%s: page %d of %s", self.label, page.number, page.label)
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)

    def _past_cap(self, q: Query, exc: ApiRequestError, read: int) -> ApiRequestError:
        """A 400 on a later page of a capped query once the cap is reached means "paging past the cap" (HubSpot
        documents only the status, not the body): say so, instead of the vendor's bare 400."""
        w = self.options.window
        cap = w.max_results if w is not None and q.piece is not None else None
        if exc.status != 400 or cap is None or read < cap - (q.paginate.limit or 0):
            return exc
        span = f"{q.piece.start.isoformat()} .. {q.piece.end.isoformat()}" if q.piece else "the window"
        return ApiRequestError(
            f"{exc}; {read} records were read and the API refuses to page past {cap} results per query: more records "
            f"changed in {span} than the first page's total ({q.total}) said (records changing while the window is "
            "read). Nothing was committed; rerun (the window is split by the new total), or schedule it more often",
            400,
        )

    def _flags(self, records: list[Any], q: Query) -> list[bool] | None:
        d = self.options.deletes
        if d is None:
            return None
        if q.kind == "deletes":
            return [True] * len(records)
        if d.when_path is None:
            return [False] * len(records)
        marks = paths.column_values(records, d.when_path)
        if d.equals is not None:
            return [v == d.equals for v in marks]
        return [v is not None for v in marks]

    def _in_window(self, records: list[Any], q: Query) -> list[Any]:
        if not q.window_field or q.piece is None:
            return records
        conv = Converter([ApiColumn(name="t", type="timestamptz", path=q.window_field)])
        times = conv.convert(records, [Origin(q.call.label, 0, len(records))]).column(0).to_pylist()
        return [r for r, t in zip(records, times, strict=True) if t is not None and q.piece.start <= t < q.piece.end]

    def _read_query(self, q: Query) -> Iterator[pa.RecordBatch]:
        size = self.options.batch_records
        buf: list[Any] = []
        origins: list[Origin] = []
        flags: list[bool] = []
        n = pages = 0
        check = self.options.paginate.check_keys and bool(self.primary_key) and q.paginate.kind in ("offset", "page")
        for page, records in self._pages(q):
            pages += 1
            records = self._in_window(records, q)
            buf.extend(records)
            origins.append(Origin(page.label, page.number, len(records)))
            f = self._flags(records, q)
            if f is not None:
                flags.extend(f)
            if len(buf) >= size:
                batch = self.converter.convert(buf, origins, flags or None)
                if check:
                    self._keys.add(batch, self.primary_key, origins)
                n += batch.num_rows
                buf, origins, flags = [], [], []  # the records go before the caller gets the batch
                yield batch
        if buf or n == 0:
            batch = self.converter.convert(buf, origins, flags or None)
            if check:
                self._keys.add(batch, self.primary_key, origins)
            n += batch.num_rows
            if batch.num_rows:
                yield batch
        if check and q.total is not None and n != q.total:
            raise ApiDataError(
                f"{where(q.call.label)}: the API said {q.total} records (page 1) but {q.paginate.kind} paging returned "
                f"{n}: records moved while the pages were read (a gap or an overlap); nothing was committed. Rerun, "
                "ideally when the data is quiet, or page by a cursor instead of an offset"
            )
        self.stats["pages"] = int(self.stats.get("pages", 0)) + pages
        log.info("%s: %s query %s read %d records in %d pages", self.label, q.kind, q.call.label, n, pages)

    # -- parent fan-out -------------------------------------------------------------------------

    def _parent_ids(self) -> Iterator[Any]:
        p = self.options.parent
        assert p is not None
        q = Query(self._call(p.endpoint, None), p.paginate, p.records_path, kind="parent")
        for _, records in self._pages(q):
            for r in records:
                key = paths.get(r, p.key_path)
                if key is None:
                    raise ApiDataError(f"{where(q.call.label)}: a parent record has no id at {p.key_path!r}")
                yield key

    def _child(self, parent_id: Any) -> tuple[list[Any], list[Origin], list[bool] | None] | None:
        o = self.options
        piece = self._slice()
        endpoint, paginate = o.endpoint, o.paginate
        if piece is not None and o.window is not None:
            endpoint, paginate = o.window.endpoint or endpoint, o.window.paginate or paginate
        call = self._call(endpoint, piece, parent_id=parent_id)
        q = Query(call, paginate, o.records.path, piece=piece, parent_id=parent_id)
        records: list[Any] = []
        origins: list[Origin] = []
        try:
            for page, recs in self._pages(q):
                records.extend(recs)
                origins.append(Origin(page.label, page.number, len(recs)))
        except ApiRequestError as exc:
            if exc.status == 404 and o.parent and o.parent.on_missing == "skip":
                return None
            if exc.status == 404:
                raise ApiRequestError(
                    f"{exc}; the parent id {parent_id!r} was listed by the parent endpoint but its child endpoint "
                    "answers 404 (deleted meanwhile?): rerun, or set parent.on_missing: skip",
                    404,
                ) from None
            raise
        return records, origins, self._flags(records, q)

    def _fan_out(self) -> Iterator[pa.RecordBatch]:
        p = self.options.parent
        assert p is not None
        size = self.options.batch_records
        buf: list[Any] = []
        origins: list[Origin] = []
        flags: list[bool] = []
        parents: list[Any] = []
        done = missing = 0
        with cf.ThreadPoolExecutor(max_workers=p.concurrency, thread_name_prefix="api-fanout") as pool:
            pending: deque[tuple[Any, cf.Future[Any]]] = deque()
            ids = self._parent_ids()

            def flush() -> Iterator[pa.RecordBatch]:
                nonlocal buf, origins, flags, parents
                batch = self.converter.convert(buf, origins, flags or None, parents) if buf else None
                buf, origins, flags, parents = [], [], [], []  # the records go before the caller gets the batch
                if batch is not None:
                    yield batch

            exhausted = False
            while pending or not exhausted:
                while not exhausted and len(pending) < p.concurrency * 2:
                    try:
                        pid = next(ids)
                    except StopIteration:
                        exhausted = True
                        break
                    pending.append((pid, pool.submit(self._child, pid)))
                if not pending:
                    break
                pid, fut = pending.popleft()
                try:
                    result = fut.result()
                except BaseException:
                    for _, other in pending:
                        other.cancel()
                    raise
                done += 1
                if result is None:
                    missing += 1
                    continue
                recs, origs, fl = result
                buf.extend(recs)
                origins.extend(origs)
                parents.extend([pid] * len(recs))
                if fl is not None:
                    flags.extend(fl)
                if len(buf) >= size:
                    yield from flush()
            yield from flush()
        self.stats["parents"] = done
        self.stats["parents_missing"] = missing
        log.info("%s: read the children of %d parents (%d missing, skipped)", self.label, done, missing)

    # -- bookkeeping ----------------------------------------------------------------------------

    def _record_stats(self) -> None:
        if "client" in self.__dict__:
            self.stats.update(self.client.stats())
            self.stats["authentications"] = self.client.auth.authentications

    def close(self) -> None:
        if "client" in self.__dict__:
            self._record_stats()
            self.client.close()


def _total(page: Page, path: str, capped_at: int | None) -> int | None:
    value = paths.get(page.body, path)
    if value is None or value == "":
        return None
    try:
        total = int(value)
    except (TypeError, ValueError):
        raise ApiDataError(
            f"{where(page.label, page.number)}: the total at {path!r} is {value!r}, not a number"
        ) from None
    return None if capped_at is not None and total >= capped_at else total


class _KeyCheck:
    """Primary keys seen by offset/page paging, as 64-bit hashes (8 bytes a record), to catch duplicates."""

    def __init__(self) -> None:
        self.seen = np.empty(0, dtype=np.uint64)

    def add(self, batch: pa.RecordBatch, keys: list[str], origins: list[Origin]) -> None:
        import pandas as pd

        if batch.num_rows == 0:
            return
        frame = batch.select(keys).to_pandas()
        hashes = pd.util.hash_pandas_object(frame, index=False).to_numpy(dtype=np.uint64)
        again = np.isin(hashes, self.seen)
        uniq, _first, counts = np.unique(hashes, return_index=True, return_counts=True)
        dup = np.flatnonzero(again)
        if not len(dup) and (counts > 1).any():
            h = uniq[counts > 1][0]
            dup = np.flatnonzero(hashes == h)[1:]
        if len(dup):
            i = int(dup[0])
            from bulksync.sources.api.records import _locate

            label, page, index = _locate(origins, i)
            key = {k: getattr(v, "item", lambda v=v: v)() for k in keys for v in [frame[k].iloc[i]]}
            raise ApiDataError(
                f"{where(label, page, index)}: primary key {key} was already read on an earlier page: the data shifted "
                "under offset paging (records inserted or deleted while reading); nothing was committed. Rerun, "
                "ideally when the data is quiet, or page by a cursor instead of an offset"
            )
        self.seen = np.union1d(self.seen, uniq)
