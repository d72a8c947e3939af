"""The sandbox's REST resources: versions, describe, query/queryAll, limits, records, Bulk 2.0 jobs.

Each handler returns a :class:`Response`; the HTTP layer (``server.py``) adds auth, faults and the
``Sforce-Limit-Info`` header.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import pyarrow as pa

from bulksync.sandbox.salesforce import engine, soql
from bulksync.sandbox.salesforce.bulk import JobManager
from bulksync.sandbox.salesforce.errors import ApiError, not_found
from bulksync.sandbox.salesforce.faults import Faults
from bulksync.sandbox.salesforce.ingest import IngestManager
from bulksync.sandbox.salesforce.schema import API_VERSIONS, OBJECTS, ObjectDef, find_object
from bulksync.sandbox.salesforce.store import Store

QUERY_BATCH = 2000
_RELEASES = {
    "58.0": "Summer '23",
    "59.0": "Winter '24",
    "60.0": "Spring '24",
    "61.0": "Summer '24",
    "62.0": "Winter '25",
}


@dataclass
class Response:
    """Status, body (JSON-able, bytes, or a byte iterator with its length) and extra headers."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json;charset=UTF-8"
    length: int | None = None


def json_body(raw: bytes) -> dict[str, Any]:
    """A request's JSON object; JSON_PARSER_ERROR otherwise."""
    try:
        value = json.loads(raw or b"{}")
    except ValueError as exc:
        raise ApiError(400, "JSON_PARSER_ERROR", f"Unexpected character in request body: {exc}") from None
    if not isinstance(value, dict):
        raise ApiError(400, "JSON_PARSER_ERROR", "The request body must be a JSON object")
    return value


class Cursor:
    """A REST query's result, read lazily and handed out one batch at a time.

    Only the current chunk of matching rows is held (the total comes from a counting pass over the
    filter columns); the last batch is kept so that a client retrying a failed ``nextRecordsUrl``
    gets the same records again.
    """

    def __init__(self, store: Store, query: soql.Query, include_deleted: bool) -> None:
        self.query, self.include_deleted = query, include_deleted
        self.size = QUERY_BATCH
        self.total = engine.count(store, query, include_deleted)
        self._tables = engine.scan(store, query, include_deleted)
        self._buffer: pa.Table | None = None
        self._next = 0
        self._last: tuple[int, pa.Table] | None = None
        self.lock = threading.Lock()

    def batch(self, offset: int, size: int) -> pa.Table:
        """Records ``[offset, offset + size)``: the next batch, or the last one again."""
        with self.lock:
            if self._last is not None and self._last[0] == offset:
                return self._last[1]
            if offset != self._next:
                raise ApiError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
            parts: list[pa.Table] = []
            need = size
            while need > 0:
                if self._buffer is None or self._buffer.num_rows == 0:
                    self._buffer = next(self._tables, None)
                    if self._buffer is None:
                        break
                part = self._buffer.slice(0, need)
                parts.append(part)
                need -= part.num_rows
                self._buffer = self._buffer.slice(part.num_rows)
            empty = self.query.obj.arrow_schema.empty_table().select(self.query.columns())
            table = pa.concat_tables(parts) if parts else empty
            self._last, self._next = (offset, table), offset + table.num_rows
            return table


class Api:
    """Routes ``/services/data/...`` requests to the store, the query engine and the job manager."""

    def __init__(self, store: Store, jobs: JobManager, faults: Faults, ingest: IngestManager | None = None) -> None:
        self.store = store
        self.jobs = jobs
        self.ingest = ingest or IngestManager(store, faults, jobs.min_seconds)
        self.faults = faults
        self.cursors: OrderedDict[str, Cursor] = OrderedDict()
        self.lock = threading.Lock()

    @staticmethod
    def versions() -> Response:
        """GET ``/services/data/``."""
        return Response(
            200,
            [{"label": _RELEASES[v], "url": f"/services/data/v{v}", "version": v} for v in API_VERSIONS],
        )

    def handle(self, method: str, version: str, rest: str, query: str, body: bytes, headers: Any) -> Response:
        """Dispatch one versioned request (``rest`` is the path after ``/services/data/vXX.X``)."""
        if version not in API_VERSIONS:
            raise not_found()
        base = f"/services/data/v{version}"
        params = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
        parts = [p for p in rest.split("/") if p]
        route = (method, *parts)
        if route == ("GET",):
            return Response(200, {n: f"{base}/{n}" for n in ("sobjects", "query", "queryAll", "limits", "jobs")})
        if route == ("GET", "limits"):
            return Response(200, self.limits())
        if route == ("GET", "sobjects"):
            sobjects = [o.summary(base) for o in OBJECTS.values()]
            return Response(200, {"encoding": "UTF-8", "maxBatchSize": 200, "sobjects": sobjects})
        if len(parts) >= 2 and parts[0] == "sobjects":
            return self.sobject(method, base, parts[1:], body)
        if parts and parts[0] in ("query", "queryAll") and method == "GET":
            if len(parts) == 2:
                return self.more(base, parts[1])
            if len(parts) == 1:
                return self.query(base, version, params.get("q", ""), parts[0] == "queryAll", headers)
        if parts[:2] == ["jobs", "query"]:
            return self.bulk(method, version, parts[2:], params, body)
        if parts[:2] == ["jobs", "ingest"]:
            return self.ingest_route(method, version, parts[2:], body, headers)
        raise not_found()

    def ingest_route(self, method: str, version: str, parts: list[str], body: bytes, headers: Any) -> Response:
        """``/jobs/ingest`` resources (see :mod:`bulksync.sandbox.salesforce.ingest`)."""
        ingest = self.ingest
        if not parts:
            if method == "POST":
                return Response(200, ingest.create(json_body(body), version).info(ingest.min_seconds))
            if method == "GET":
                return Response(200, ingest.list())
        elif len(parts) == 1:
            if method == "GET":
                return Response(200, ingest.get(parts[0]).info(ingest.min_seconds))
            if method == "PATCH":
                job = ingest.set_state(parts[0], json_body(body).get("state"))
                return Response(200, job.info(ingest.min_seconds))
            if method == "DELETE":
                ingest.delete(parts[0])
                return Response(204)
        elif parts[1:] == ["batches"] and method == "PUT":
            ingest.upload(parts[0], body, headers.get("Content-Type"))
            return Response(201)
        elif len(parts) == 2 and method == "GET":
            return Response(200, ingest.result(parts[0], parts[1]), content_type="text/csv")
        raise not_found()

    def limits(self) -> dict[str, Any]:
        """GET ``/limits``."""
        s = self.faults.settings
        jobs_max = 10_000
        return {
            "DailyApiRequests": {"Max": s.daily_api_max, "Remaining": max(s.daily_api_max - self.faults.api_used, 0)},
            "DailyBulkV2QueryJobs": {"Max": jobs_max, "Remaining": max(jobs_max - self.jobs.created, 0)},
            "DailyBulkV2QueryFileStorageMB": {"Max": 976_562, "Remaining": 976_562},
            "DailyBulkApiBatches": {
                "Max": 15_000,
                "Remaining": max(15_000 - -(-self.ingest.records_uploaded // 10_000), 0),
            },
            "ConcurrentSyncLongTxn": {"Max": 10, "Remaining": 10},
            "DataStorageMB": {"Max": 1_024, "Remaining": 1_000},
        }

    def _object(self, name: str) -> ObjectDef:
        obj = find_object(name)
        if obj is None:
            raise ApiError(404, "NOT_FOUND", f"The requested resource does not exist: sObject type '{name}'")
        return obj

    def sobject(self, method: str, base: str, parts: list[str], body: bytes) -> Response:
        """``/sobjects/{obj}``, ``/describe`` and ``/{id}``."""
        obj = self._object(parts[0])
        if parts[1:] == ["describe"] and method == "GET":
            return Response(200, obj.describe(base))
        if len(parts) == 1:
            if method == "GET":
                return Response(200, {"objectDescribe": obj.summary(base), "recentItems": []})
            if method == "POST":
                new_id = self.store.create(obj, json_body(body))
                return Response(201, {"id": new_id, "success": True, "errors": []})
        if len(parts) == 2:
            record_id = parts[1]
            if method == "GET":
                row = self.store.get(obj, record_id)
                if row["IsDeleted"]:
                    raise ApiError(404, "ENTITY_IS_DELETED", "entity is deleted")
                query = soql.parse(f"SELECT {', '.join(f.name for f in obj.fields)} FROM {obj.name}")
                table = pa.Table.from_pylist([row], obj.arrow_schema)
                return Response(200, engine.json_records(table, query, base.rsplit("v", 1)[1])[0])
            if method == "PATCH":
                self.store.update(obj, record_id, json_body(body))
                return Response(204)
            if method == "DELETE":
                self.store.delete(obj, record_id)
                return Response(204)
        raise not_found()

    def query(self, base: str, version: str, text: str, include_deleted: bool, headers: Any) -> Response:
        """GET ``/query?q=`` and ``/queryAll?q=``: the first batch and a ``nextRecordsUrl``."""
        if not text.strip():
            raise ApiError(400, "MALFORMED_QUERY", "A query string is required (parameter q)")
        parsed = soql.parse(text, self.store.clock())
        if parsed.count_only:
            return Response(
                200, {"totalSize": engine.count(self.store, parsed, include_deleted), "done": True, "records": []}
            )
        batch = _batch_size(headers.get("Sforce-Query-Options", ""))
        cursor = Cursor(self.store, parsed, include_deleted)
        cursor.size = batch
        return self._page(base, version, cursor, 0, batch)

    def more(self, base: str, locator: str) -> Response:
        """GET ``/query/{cursor}-{offset}``: the next batch."""
        key, _, offset = locator.rpartition("-")
        with self.lock:
            cursor = self.cursors.get(key)
        if cursor is None or not offset.isdigit():
            raise ApiError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        return self._page(base, base.rsplit("v", 1)[1], cursor, int(offset), cursor.size, key)

    def _page(
        self, base: str, version: str, cursor: Cursor, offset: int, batch: int, key: str | None = None
    ) -> Response:
        table = cursor.batch(offset, batch)
        stop = offset + table.num_rows
        done = table.num_rows < batch or stop >= cursor.total
        records = engine.json_records(table, cursor.query, version)
        body: dict[str, Any] = {"totalSize": cursor.total, "done": done, "records": records}
        if not done:
            if key is None:
                key = "01g5J" + uuid.uuid4().hex[:13]
                with self.lock:
                    self.cursors[key] = cursor
                    while len(self.cursors) > 50:
                        self.cursors.popitem(last=False)
            endpoint = "queryAll" if cursor.include_deleted else "query"
            body["nextRecordsUrl"] = f"{base}/{endpoint}/{key}-{stop}"
        return Response(200, body)

    def bulk(self, method: str, version: str, parts: list[str], params: dict[str, str], body: bytes) -> Response:
        """``/jobs/query`` resources."""
        if not parts:
            if method == "POST":
                return Response(200, self.jobs.create(json_body(body), version).info(self.jobs.min_seconds))
            if method == "GET":
                return Response(200, self.jobs.list())
        elif len(parts) == 1:
            if method == "GET":
                return Response(200, self.jobs.info(parts[0]))
            if method == "PATCH":
                return Response(200, self.jobs.abort(parts[0], json_body(body).get("state")))
            if method == "DELETE":
                self.jobs.delete(parts[0])
                return Response(204)
        elif parts[1:] == ["results"] and method == "GET":
            header, result, start, stop, nxt = self.jobs.page(parts[0], params.get("locator"), params.get("maxRecords"))
            lo, hi = int(result.offsets[start]), int(result.offsets[stop])

            def stream() -> Iterator[bytes]:
                yield header
                yield from result.iter_bytes(lo, hi)

            return Response(
                200,
                stream(),
                {"Sforce-NumberOfRecords": str(stop - start), "Sforce-Locator": nxt},
                "text/csv",
                length=len(header) + hi - lo,
            )
        raise not_found()


def _batch_size(options: str) -> int:
    match = re.search(r"batchSize=(\d+)", options or "")
    return min(max(int(match.group(1)), 200), QUERY_BATCH) if match else QUERY_BATCH
