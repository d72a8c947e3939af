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

        Reads only the Ids, ordered, through one Bulk query job and keeps every n-th as a boundary,
        so planning needs memory for one page, not the object. The first range has no lower bound
        and the last no upper bound, so records created after planning are still read.
        """
        chunking = self.options.chunking
        if chunking is None:
            return [{}]
        self.check_limits()
        ids = BulkQuery(
            self.api, self.soql(["Id"], order_by="Id"), self.operation, self.options, f"{self.options.object} Ids"
        )
        try:
            total = ids.job.records
            size = chunking.chunk_size or max(1, math.ceil(total / (chunking.chunks or 1)))
            bounds: list[str] = []
            seen, last = 0, ""
            for batch in ids.batches(pa.schema([pa.field("Id", pa.string())])):
                col = batch.column(0).to_pylist()
                for pos in range(size - (seen % size) - 1, len(col), size):
                    if seen + pos + 1 < total:
                        bounds.append(str(col[pos]))
                if col and col[0] < last:
                    raise SalesforceApiError(f"the Ids of {self.options.object} did not come back ordered by Id")
                last = str(col[-1]) if col else last
                seen += len(col)
        finally:
            ids.close()
            self._record_stats()
        edges: list[str | None] = [None, *bounds, None]
        chunks = [{"lo": lo, "hi": hi} for lo, hi in itertools.pairwise(edges)]
        log.info("%s: %d records planned as %d Id ranges of up to %d", self.options.object, total, len(chunks), size)
        return chunks

    def close(self) -> None:
        if self._query is not None:
            self._query.close()
            self._record_stats()
        if "hook" in self.__dict__:
            self.hook.http_session.close()


def soql_time(value: dt.datetime, sf_type: str | None) -> str:
    """A SOQL datetime (or date) literal: unquoted, UTC."""
    utc = value.astimezone(dt.UTC)
    return utc.strftime("%Y-%m-%d") if sf_type == "date" else utc.strftime("%Y-%m-%dT%H:%M:%SZ")


def soql_string(value: str) -> str:
    """A quoted SOQL string literal."""
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"
