"""The ``salesforce`` source: one object, read through Bulk API 2.0 query jobs into Arrow.

One extract is: read ``/limits`` (refuse below the floor), describe the object, build the SOQL
(fields, the window on the cursor field, the chunk's Id range), run one query job (``queryAll``
when deletes are kept) and stream its pages. The job's record count is the source count
reconciliation compares with. See docs/salesforce.md.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import math
from collections.abc import Iterator
from functools import cached_property
from typing import Any

import pyarrow as pa

from bulksync.errors import ConfigurationError
from bulksync.hooks.salesforce import BulksyncSalesforceHook
from bulksync.sources.base import Source
from bulksync.sources.salesforce.api import SalesforceApi
from bulksync.sources.salesforce.bulk import BulkQuery
from bulksync.sources.salesforce.describe import field_name, schema_of, select_fields
from bulksync.sources.salesforce.errors import SalesforceApiError, SalesforceLimitError
from bulksync.staging.partition import Window

log = logging.getLogger(__name__)

DELETED_FIELD = "IsDeleted"


class SalesforceSource(Source):
    """Extract one Salesforce object (see :class:`~bulksync.spec.salesforce.SalesforceOptions`)."""

    kind = "salesforce"
    reports_deletes = True

    def __init__(self, spec: Any, window: Window, chunk: dict[str, Any] | None = None) -> None:
        super().__init__(spec, window, chunk)
        self._query: BulkQuery | None = None
        self._limits_checked = False

    @property
    def primary_key(self) -> list[str]:
        return list(self.options.primary_key)

    @property
    def cursor_field(self) -> str | None:
        return str(self.options.cursor_field)

    @cached_property
    def hook(self) -> BulksyncSalesforceHook:
        return BulksyncSalesforceHook(self.spec.conn_id, timeout=self.options.request_timeout_seconds)

    @cached_property
    def api(self) -> SalesforceApi:
        return SalesforceApi(self.hook, self.options)

    # -- what to read -----------------------------------------------------------------------

    @cached_property
    def describe(self) -> dict[str, Any]:
        """The object's describe (``/sobjects/{object}/describe``)."""
        self.check_limits()
        try:
            result: dict[str, Any] = self.api.request("GET", f"sobjects/{self.options.object}/describe")
        except SalesforceApiError as exc:
            if exc.code == "NOT_FOUND" or exc.status == 404:
                raise ConfigurationError(
                    f"Salesforce object {self.options.object!r} does not exist or connection "
                    f"{self.spec.conn_id!r} cannot see it ({exc.code}): check the object's API name (custom "
                    "objects end in __c) and the user's permissions"
                ) from None
            raise
        if result.get("queryable") is False:
            raise ConfigurationError(f"Salesforce object {self.options.object!r} is not queryable")
        return result

    @cached_property
    def fields(self) -> list[dict[str, Any]]:
        """The describe entries of the fields extracted, in describe order."""
        opts = self.options
        required = list(opts.primary_key)
        if opts.incremental:
            required.append(opts.cursor_field)
        if opts.deletes != "ignore":
            required.append(DELETED_FIELD)
        fields = select_fields(self.describe, opts, required)
        log.info("%s: extracting %d fields", opts.object, len(fields))
        return fields

    def schema(self) -> pa.Schema:
        return schema_of(self.fields)

    @property
    def operation(self) -> str:
        """``queryAll`` when deleted records are kept, else ``query``."""
        return "query" if self.options.deletes == "ignore" else "queryAll"

    def conditions(self) -> list[str]:
        """The WHERE conditions of the window and of this task's chunk."""
        opts = self.options
        where: list[str] = []
        if opts.incremental:
            cursor = field_name(self.describe, opts.cursor_field)
            kind = next((f.get("type") for f in self.describe["fields"] if f["name"] == cursor), "datetime")
            window = self.window.widened(opts.overlap_minutes)
            if window.start is not None:
                where.append(f"{cursor} >= {soql_time(window.start, kind)}")
            if window.end is not None:
                where.append(f"{cursor} < {soql_time(window.end, kind)}")
        if self.chunk:
            if self.chunk.get("lo"):
                where.append(f"Id > {soql_string(self.chunk['lo'])}")
            if self.chunk.get("hi"):
                where.append(f"Id <= {soql_string(self.chunk['hi'])}")
        return where

    def soql(self, select: list[str] | None = None, order_by: str | None = None) -> str:
        """The SOQL of this extract (or of ``select`` fields with the same filters)."""
        names = select or [f["name"] for f in self.fields]
        text = f"SELECT {', '.join(names)} FROM {self.options.object}"
        where = self.conditions()
        if where:
            text += " WHERE " + " AND ".join(where)
        if order_by:
            text += f" ORDER BY {order_by}"
        return text

    # -- limits -----------------------------------------------------------------------------

    def check_limits(self) -> None:
        """Read ``/limits`` once; refuse to start below ``min_remaining_api_requests``.

        Raises:
            SalesforceLimitError: too few daily API requests (or Bulk API 2.0 query jobs) remain.
        """
        if self._limits_checked:
            return
        limits = self.api.request("GET", "limits")
        daily = limits.get("DailyApiRequests") or {}
        remaining, maximum = daily.get("Remaining"), daily.get("Max")
        self.stats["daily_api_requests_remaining_at_start"] = remaining
        self.stats["daily_api_requests_max"] = maximum
        floor = self.options.min_remaining_api_requests
        if remaining is not None and int(remaining) < floor:
            raise SalesforceLimitError(
                f"Salesforce connection {self.spec.conn_id!r} has {remaining} of {maximum} daily API requests left, "
                f"below the spec's floor min_remaining_api_requests={floor}; the extract of {self.options.object} did "
                "not start. Wait for the 24-hour limit to recover, or lower the floor if that is safe"
            )
        jobs = limits.get("DailyBulkV2QueryJobs") or {}
        if jobs.get("Remaining") is not None and int(jobs["Remaining"]) <= 0:
            raise SalesforceLimitError(
                f"Salesforce connection {self.spec.conn_id!r} has no Bulk API 2.0 query jobs left today "
                f"(DailyBulkV2QueryJobs {jobs.get('Remaining')} of {jobs.get('Max')}); wait for the limit to recover"
            )
        log.info("Salesforce limits: %s of %s daily API requests remain (floor %d)", remaining, maximum, floor)
        self._limits_checked = True

    # -- reading ----------------------------------------------------------------------------

    @property
    def query(self) -> BulkQuery:
        """The Bulk query job of this extract (created on first use)."""
        if self._query is None:
            self._query = BulkQuery(self.api, self.soql(), self.operation, self.options, self._label())
        return self._query

    def _label(self) -> str:
        label = self.options.object
        if self.chunk and (self.chunk.get("lo") or self.chunk.get("hi")):
            label += f" (Id {self.chunk.get('lo') or 'start'}..{self.chunk.get('hi') or 'end'})"
        return label

    def source_count(self) -> int | None:
        count = self.query.job.records
        log.info("%s: the query job reports %d records for window %s", self._label(), count, self.window.key)
        return count

    def read(self) -> Iterator[pa.RecordBatch]:
        schema = self.schema()
        try:
            yield from self.query.batches(schema)
        finally:
            self._record_stats()

    def _record_stats(self) -> None:
        self.stats.update(self.api.stats())
        if self._query is not None and self._query._job is not None:
            self.stats["job_id"] = self._query._job.id
            self.stats["job_records"] = self._query._job.records
            self.stats["job_recreated"] = self._query.recreated
            self.stats["job_seconds"] = round(self._query.job_seconds, 3)
        self.stats["operation"] = self.operation

    # -- PK chunking ------------------------------------------------------------------------

    def plan_chunks(self) -> list[dict[str, Any]]:
        """Id ranges of about ``chunk_size`` records (or ``chunks`` ranges) over the window's records.

        The documented way of PK chunking (Bulk API "Use PK Chunking to Extract Large Data Sets":
        Salesforce splits an object into ranges of record Ids, ``chunkSize`` Ids wide): no query reads
        the object's Ids in order (the guide warns that ``ORDER BY Id`` over a large object can time
        out). Planning uses REST queries only: ``COUNT()`` of the window, the first and the last Id
        (``ORDER BY Id ASC/DESC LIMIT 1``, answered from the primary-key index), then equal ranges of
        the base-62 Id space between them, each counted; a range holding more than twice the chunk
        size is split again (at most three times). The first range has no lower bound and the last no
        upper bound, so records created after planning are still read.
        """
        chunking = self.options.chunking
        if chunking is None:
            return [{}]
        self.check_limits()
        try:
            total = self._count()
            size = chunking.chunk_size or max(1, math.ceil(total / (chunking.chunks or 1)))
            wanted = math.ceil(total / size) if total else 1
            if wanted <= 1:
                log.info("%s: %d records: one chunk", self.options.object, total)
                return [{"lo": None, "hi": None}]
            first, last = self._edge_id(descending=False), self._edge_id(descending=True)
            prefix = first[:3]
            lo, hi = _b62(first[3:15]), _b62(last[3:15])
            cuts = [lo + (hi - lo) * k // wanted for k in range(1, wanted)]
            ranges = list(itertools.pairwise([lo - 1, *cuts, hi]))
            counts = [self._count(a, b, prefix) for a, b in ranges]
            for _ in range(3):
                split = [i for i, c in enumerate(counts) if c > 2 * size and ranges[i][1] - ranges[i][0] > 1]
                if not split:
                    break
                new_ranges: list[tuple[int, int]] = []
                new_counts: list[int] = []
                for i, (a, b) in enumerate(ranges):
                    if i in split:
                        parts = math.ceil(counts[i] / size)
                        points = [a + (b - a) * k // parts for k in range(parts + 1)]
                        for x, y in itertools.pairwise(points):
                            new_ranges.append((x, y))
                            new_counts.append(self._count(x, y, prefix))
                    else:
                        new_ranges.append((a, b))
                        new_counts.append(counts[i])
                ranges, counts = new_ranges, new_counts
        finally:
            self._record_stats()
        bounds = [_id15(prefix, b) for _, b in ranges[:-1]]
        edges: list[str | None] = [None, *bounds, None]
        chunks = [{"lo": a, "hi": b} for a, b in itertools.pairwise(edges)]
        log.info(
            "%s: %d records planned as %d Id ranges of %s records (target %d) with %d API calls so far and no "
            "ordered Id scan",
            self.options.object,
            total,
            len(chunks),
            "/".join(str(c) for c in counts),
            size,
            self.api.calls,
        )
        return chunks

    def _count(self, lo: int | None = None, hi: int | None = None, prefix: str = "") -> int:
        """``SELECT COUNT()`` of the window (within the base-62 Id range ``(lo, hi]`` when given)."""
        where = self.conditions()
        if lo is not None and hi is not None:
            where = [*where, f"Id > {soql_string(_id15(prefix, lo))}", f"Id <= {soql_string(_id15(prefix, hi))}"]
        soql = f"SELECT COUNT() FROM {self.options.object}" + (f" WHERE {' AND '.join(where)}" if where else "")
        endpoint = "queryAll" if self.operation == "queryAll" else "query"
        return int(self.api.request("GET", endpoint, params={"q": soql})["totalSize"])

    def _edge_id(self, descending: bool) -> str:
        order = "DESC" if descending else "ASC"
        soql = self.soql(["Id"]) + f" ORDER BY Id {order} LIMIT 1"
        endpoint = "queryAll" if self.operation == "queryAll" else "query"
        records = self.api.request("GET", endpoint, params={"q": soql})["records"]
        if not records:
            raise SalesforceApiError(f"{self.options.object} has no records in the window, yet COUNT() said it had")
        return str(records[0]["Id"])

    def close(self) -> None:
        if self._query is not None:
            self._query.close()
            self._record_stats()
        if "hook" in self.__dict__:
            self.hook.http_session.close()


_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _b62(text: str) -> int:
    """The 12 characters after an Id's key prefix as a base-62 number (Id order is this number's order)."""
    value = 0
    for ch in text:
        value = value * 62 + _B62.index(ch)
    return value


def _id15(prefix: str, number: int) -> str:
    """The 15-character Id of ``prefix`` and a base-62 number (inverse of :func:`_b62`)."""
    digits = []
    for _ in range(12):
        number, r = divmod(max(number, 0), 62)
        digits.append(_B62[r])
    return prefix + "".join(reversed(digits))


def soql_time(value: dt.datetime, sf_type: str | None) -> str:
    """A SOQL datetime (or date) literal: unquoted, UTC."""
    utc = value.astimezone(dt.UTC)
    return utc.strftime("%Y-%m-%d") if sf_type == "date" else utc.strftime("%Y-%m-%dT%H:%M:%SZ")


def soql_string(value: str) -> str:
    """A quoted SOQL string literal."""
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"
