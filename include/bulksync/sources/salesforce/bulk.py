"""Bulk API 2.0 query jobs: create, wait, stream the result pages into Arrow, clean up.

A job's results are read page by page (``maxRecords`` per page, ``Sforce-Locator`` to the next,
the string ``null`` after the last). Each page is downloaded whole (retried as a unit, so a dropped
connection never yields half a page) while the previous page is being parsed, then parsed by
pyarrow's CSV reader straight into the declared schema. Memory is bounded by two pages.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import logging
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import requests

from bulksync.errors import DataError
from bulksync.sources.salesforce.api import SalesforceApi
from bulksync.sources.salesforce.errors import SalesforceApiError, SalesforceJobError

log = logging.getLogger(__name__)

JOBS = "jobs/query"
DONE_STATES = {"JobComplete", "Failed", "Aborted"}


@dataclass
class Page:
    """One downloaded results page."""

    data: bytes
    records: int
    locator: str | None


@dataclass
class Job:
    """A finished query job."""

    id: str
    records: int


class BulkQuery:
    """Run one SOQL query as a Bulk API 2.0 job and stream its results.

    Args:
        api: the HTTP client.
        soql: the query.
        operation: ``query`` (live records) or ``queryAll`` (deleted and archived too).
        options: the source options (page size, poll interval, job timeout).
        what: a label for logs and messages (``Account``).
    """

    def __init__(self, api: SalesforceApi, soql: str, operation: str, options: Any, what: str) -> None:
        self.api = api
        self.soql = soql
        self.operation = operation
        self.options = options
        self.what = what
        self._job: Job | None = None
        self.recreated = False
        self.job_seconds = 0.0
        """Seconds from creating the job to its completion (the server's processing time, polls included)."""

    @property
    def job(self) -> Job:
        """The completed job (created and waited for on first use; a Failed job is recreated once)."""
        if self._job is None:
            self._job = self._run()
        return self._job

    def _run(self) -> Job:
        started = time.monotonic()
        job_id = self._create()
        state, info = self._wait(job_id)
        if state == "Failed" and not self.recreated:
            self.recreated = True
            log.warning(
                "Bulk query job %s for %s failed (%s); creating it once more", job_id, self.what, _job_error(info)
            )
            self._delete(job_id)
            job_id = self._create()
            state, info = self._wait(job_id)
        if state != "JobComplete":
            raise SalesforceJobError(
                f"Bulk API 2.0 query job {job_id} for {self.what} ended {state}: {_job_error(info)}. "
                "The task will be retried with a new job"
            )
        records = int(info.get("numberRecordsProcessed") or 0)
        self.job_seconds = time.monotonic() - started
        log.info("Bulk query job %s for %s complete: %d records in %.1fs", job_id, self.what, records, self.job_seconds)
        return Job(job_id, records)

    def _create(self) -> str:
        body = {"operation": self.operation, "query": self.soql, "columnDelimiter": "COMMA", "lineEnding": "LF"}
        info = self.api.request("POST", JOBS, json=body)
        log.info("created Bulk API 2.0 %s job %s for %s", self.operation, info["id"], self.what)
        return str(info["id"])

    def _wait(self, job_id: str) -> tuple[str, dict[str, Any]]:
        deadline = time.monotonic() + self.options.job_timeout_minutes * 60
        delay = min(0.2, self.options.poll_interval_seconds)
        while True:
            info = self.api.request("GET", f"{JOBS}/{job_id}")
            state = str(info.get("state"))
            if state in DONE_STATES:
                return state, info
            if time.monotonic() > deadline:
                self._abort(job_id)
                raise SalesforceJobError(
                    f"Bulk API 2.0 query job {job_id} for {self.what} still {state} after "
                    f"{self.options.job_timeout_minutes} minutes; aborted it. Raise job_timeout_minutes or use "
                    "chunking for large objects"
                )
            time.sleep(delay)
            delay = min(delay * 2, self.options.poll_interval_seconds)

    def _abort(self, job_id: str) -> None:
        try:
            self.api.request("PATCH", f"{JOBS}/{job_id}", json={"state": "Aborted"})
        except (SalesforceApiError, SalesforceJobError, requests.RequestException):
            log.warning("could not abort Bulk query job %s", job_id)

    def _delete(self, job_id: str) -> None:
        try:
            self.api.request("DELETE", f"{JOBS}/{job_id}")
        except Exception:  # noqa: BLE001 - cleanup only, the data is already staged
            log.warning("could not delete Bulk query job %s (it expires by itself)", job_id)

    def close(self) -> None:
        """Delete the job (best effort)."""
        if self._job is not None:
            self._delete(self._job.id)

    # -- results ----------------------------------------------------------------------------

    def pages(self) -> Iterator[Page]:
        """Download the result pages in order, the next one while the caller handles the current one."""
        job = self.job
        with ThreadPoolExecutor(1, thread_name_prefix="sf-page") as pool:
            future: Future[Page] | None = pool.submit(self._page, job.id, None)
            while future is not None:
                page = future.result()
                future = pool.submit(self._page, job.id, page.locator) if page.locator else None
                yield page

    def _page(self, job_id: str, locator: str | None) -> Page:
        params: dict[str, Any] = {}
        if self.options.max_records:
            params["maxRecords"] = self.options.max_records
        if locator:
            params["locator"] = locator

        def read(resp: requests.Response) -> Page:
            if "Sforce-NumberOfRecords" not in resp.headers:
                raise SalesforceJobError(f"results page of job {job_id} has no Sforce-NumberOfRecords header")
            nxt = resp.headers.get("Sforce-Locator")
            # one read of the whole body (requests' .content reads 10 KiB at a time: 2-3x slower); a body
            # shorter than Content-Length raises urllib3's IncompleteRead, retried like a dropped connection
            return Page(
                resp.raw.read(decode_content=True),
                int(resp.headers["Sforce-NumberOfRecords"]),
                None if nxt in (None, "", "null") else nxt,
            )

        page: Page = self.api.request("GET", f"{JOBS}/{job_id}/results", params=params, accept="text/csv", read=read)
        return page

    def batches(self, schema: pa.Schema) -> Iterator[pa.RecordBatch]:
        """Every result row as record batches of ``schema`` (columns matched to the CSV header by name).

        Three stages overlap: the next page downloads (:meth:`pages`), the current one is parsed in a
        worker thread, and the caller consumes the batches of the previous one.
        """
        rows = 0
        number = 0
        with ThreadPoolExecutor(1, thread_name_prefix="sf-parse") as parser:
            pending: Future[list[pa.RecordBatch]] | None = None
            for page in self.pages():
                number += 1
                parsed = parser.submit(self._parse, page, schema, number)
                if pending is not None:
                    batches = pending.result()
                    rows += sum(b.num_rows for b in batches)
                    yield from batches
                pending = parsed
            if pending is not None:
                batches = pending.result()
                rows += sum(b.num_rows for b in batches)
                yield from batches
        if rows != self.job.records:
            raise SalesforceJobError(
                f"job {self.job.id} for {self.what} reported {self.job.records} records but its pages held {rows}; "
                "the task will be retried"
            )
        log.info("read %d records of %s in %d pages", rows, self.what, number)

    def _parse(self, page: Page, schema: pa.Schema, number: int) -> list[pa.RecordBatch]:
        batches = list(parse_page(page.data, schema, where=f"{self.what} job {self.job.id} page {number}"))
        got = sum(b.num_rows for b in batches)
        if got != page.records:
            raise SalesforceJobError(
                f"page {number} of job {self.job.id} for {self.what} said {page.records} records "
                f"(Sforce-NumberOfRecords) but held {got}; the task will be retried"
            )
        return batches


def parse_page(data: bytes, schema: pa.Schema, *, where: str) -> Iterator[pa.RecordBatch]:
    """Parse one CSV results page (header first) into batches of ``schema``.

    Salesforce quotes every value and writes null as an empty value; both quoted and unquoted
    empty values become null.

    Raises:
        DataError: the header does not hold the expected columns, or a value does not fit its type.
    """
    if len(data) < 4096 and not data.strip():
        return
    header_end = data.find(b"\n")
    header = next(csv.reader([data[: header_end if header_end >= 0 else len(data)].decode("utf-8")]))
    expected = {n.lower(): n for n in schema.names}
    names = [expected.get(h.strip().lower(), h) for h in header]
    missing = [n for n in schema.names if n not in names]
    if missing:
        raise DataError(f"{where}: the CSV header {header} lacks the queried fields {missing}")
    time_cols = {f.name for f in schema if pa.types.is_time(f.type)}
    decimal_cols = {f.name for f in schema if pa.types.is_decimal(f.type)}
    types = {f.name: (pa.string() if f.name in time_cols | decimal_cols else f.type) for f in schema}
    try:
        table = pacsv.read_csv(
            io.BytesIO(data),
            read_options=pacsv.ReadOptions(column_names=names, skip_rows=1),
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types=types,
                include_columns=list(schema.names),
                strings_can_be_null=True,
                quoted_strings_can_be_null=True,
            ),
        )
    except pa.ArrowInvalid as exc:
        raise DataError(f"{where}: {exc}") from None
    for name in time_cols:
        table = table.set_column(table.schema.get_field_index(name), name, _times(table[name]))
    for name in decimal_cols:
        target = schema.field(name).type
        table = table.set_column(table.schema.get_field_index(name), name, _decimals(table[name], target, name, where))
    for batch in table.to_batches():
        yield pa.RecordBatch.from_arrays(batch.columns, schema=schema)


def _decimals(col: pa.ChunkedArray, target: pa.Decimal128Type, name: str, where: str) -> pa.Array:
    """Bulk CSV numbers as exact decimals of describe's precision and scale.

    Salesforce writes them the way Java prints a double: ``100.0`` for a ``percent(3,0)``,
    ``1.2345678E7``, sometimes a float artefact digit beyond the scale. They are parsed with extra
    precision (``decimal128(38, scale + 6)``), rounded half-up to the scale and cast safely; only a
    value whose integer digits exceed the field's precision fails, naming the field.
    """
    strings = col.combine_chunks()
    extra = min(target.scale + 6, 37)
    try:
        wide = pc.cast(strings, pa.decimal128(38, extra))
    except pa.ArrowInvalid:
        wide = pc.cast(strings, pa.decimal128(38, target.scale))  # very large values: no room for extra digits
    rounded = pc.round(wide, ndigits=target.scale, round_mode="half_up")
    try:
        return pc.cast(rounded, target)
    except pa.ArrowInvalid:
        limit = 10 ** (target.precision - target.scale)
        bad = next((v for v in strings.to_pylist() if v is not None and abs(float(v)) >= limit), strings.drop_null()[0])
        raise DataError(
            f"{where}: field {name} holds {bad}, which does not fit its describe type decimal({target.precision},"
            f"{target.scale}) (at most {target.precision - target.scale} integer digits); the field's precision in "
            "Salesforce was probably raised after the data was written: extract it as text with a cast transform, "
            "or ask the org's admin to correct the field's length"
        ) from None


def _times(col: pa.ChunkedArray) -> pa.Array:
    """Salesforce ``time`` values (``10:00:00.000Z``) as time64[us]."""
    values = [None if v is None else dt.time.fromisoformat(v.rstrip("Z")) for v in col.to_pylist()]
    return pa.array(values, pa.time64("us"))


def _job_error(info: dict[str, Any]) -> str:
    return str(info.get("errorMessage") or "no error message")
