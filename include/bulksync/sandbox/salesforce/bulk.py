"""Bulk API 2.0 query jobs: create, process in the background, page results by ``maxRecords`` / ``locator``.

A job's result is written once, while the job is ``InProgress``, to an unlinked temp file as
Bulk CSV, with the byte offset of every record kept in a numpy array; a results page is then one
``pread`` of a byte range. Identical queries over unchanged data (same store version) reuse the
result file, so repeated benchmark runs do not pay for generation again.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import logging
import os
import tempfile
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from bulksync.sandbox.salesforce import engine, soql
from bulksync.sandbox.salesforce.errors import ApiError
from bulksync.sandbox.salesforce.faults import Faults
from bulksync.sandbox.salesforce.jobs import JobBook, job_document
from bulksync.sandbox.salesforce.schema import FieldDef
from bulksync.sandbox.salesforce.store import Store

log = logging.getLogger(__name__)
DEFAULT_MAX_RECORDS = 50_000
MAX_JOBS = 200
"""Jobs kept (the oldest is forgotten beyond this, as Salesforce forgets jobs after some days)."""
MAX_CACHED_RESULTS = 8
COMPOUND_MESSAGE = "Selecting compound data not supported in Bulk Query"
FAILED_MESSAGE = (
    "Failed to process query: UNKNOWN_EXCEPTION: An unexpected error occurred. Please include this ErrorId if you "
    "contact support: 1914062-42 (sandbox fault)"
)


class ResultFile:
    """One job result: CSV records in an unlinked file and their byte offsets."""

    def __init__(self, fd: int, offsets: np.ndarray, header: bytes) -> None:
        self.fd = fd
        self.offsets = offsets
        self.header = header

    @property
    def records(self) -> int:
        """Records in the result."""
        return len(self.offsets) - 1

    def read(self, start: int, stop: int) -> bytes:
        """The CSV bytes of records ``[start, stop)`` (without header)."""
        lo, hi = int(self.offsets[start]), int(self.offsets[stop])
        return os.pread(self.fd, hi - lo, lo) if hi > lo else b""

    def iter_bytes(self, lo: int, hi: int, piece: int = 4 << 20) -> Iterator[bytes]:
        """Bytes ``[lo, hi)`` of the file in pieces of at most ``piece``."""
        while lo < hi:
            data = os.pread(self.fd, min(piece, hi - lo), lo)
            if not data:
                raise OSError(f"result file ended at byte {lo}, expected {hi}")
            lo += len(data)
            yield data

    def __del__(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)


def _csv_part(table: pa.Table, fields: list[FieldDef], delimiter: str, eol: str) -> tuple[bytes, np.ndarray]:
    """Bulk CSV of ``table`` (no header) and the end offset of each record in it.

    Every value is quoted, so a line end outside quotes (even quote count before it) ends a record;
    line ends inside values (textareas) do not.
    """
    buf = engine.csv_bytes(table, fields, delimiter, eol, header=False)
    arr = np.frombuffer(buf, dtype=np.uint8)
    quotes = np.flatnonzero(arr == 34)
    newlines = np.flatnonzero(arr == 10)
    ends = newlines[np.searchsorted(quotes, newlines) % 2 == 0] + 1
    if len(ends) != table.num_rows:
        raise RuntimeError(f"CSV framing: {len(ends)} line ends for {table.num_rows} records")
    return buf, ends.astype(np.int64)


def write_result(
    store: Store, query: soql.Query, include_deleted: bool, delimiter: str, eol: str, workdir: Path, workers: int = 2
) -> ResultFile:
    """Run ``query`` and write its Bulk CSV result; return the result file.

    Queries without ORDER BY (other than Id), LIMIT or OFFSET are read as independent index ranges
    by ``workers`` threads (numpy and Arrow release the GIL), written in order.
    """
    fields: list[FieldDef] = list(query.fields)
    fd, name = tempfile.mkstemp(prefix="bulk-", suffix=".csv", dir=workdir)
    os.unlink(name)
    ends = [np.zeros(1, dtype=np.int64)]
    written = 0
    scan_plan = engine.plan(store, query, include_deleted)

    def part(start: int, stop: int) -> tuple[bytes, np.ndarray] | None:
        table = scan_plan.read(start, stop)
        return None if table is None else _csv_part(table, fields, delimiter, eol)

    def parts() -> Iterator[tuple[bytes, np.ndarray] | None]:
        if not scan_plan.streamable:
            for table in engine.scan(store, query, include_deleted):
                for start in range(0, table.num_rows, 20_000):
                    yield _csv_part(table.slice(start, 20_000), fields, delimiter, eol)
            return
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="bulk-part") as pool:
            pending: deque[Future[tuple[bytes, np.ndarray] | None]] = deque()
            for start, stop in scan_plan.ranges(25_000):
                pending.append(pool.submit(part, start, stop))
                if len(pending) > workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()

    with os.fdopen(os.dup(fd), "wb", buffering=1 << 20) as out:
        for item in parts():
            if item is None:
                continue
            buf, row_ends = item
            ends.append(row_ends + written)
            out.write(buf)
            written += len(buf)
    return ResultFile(fd, np.concatenate(ends), engine.csv_header(fields, delimiter, eol))


def encode_locator(position: int) -> str:
    """Locators are opaque to clients; like Salesforce's they are base64 of the record offset."""
    return base64.b64encode(str(position).encode()).decode().rstrip("=")


def decode_locator(locator: str) -> int:
    """The record offset of a locator; INVALIDLOCATOR if it is not one of ours."""
    try:
        return int(base64.b64decode(locator + "=" * (-len(locator) % 4)).decode())
    except ValueError:
        raise ApiError(400, "INVALIDLOCATOR", f"Invalid locator: {locator}") from None


@dataclass
class Job:
    """One Bulk API 2.0 query job."""

    id: str
    operation: str
    query: soql.Query
    column_delimiter: str
    line_ending: str
    api_version: str
    created: dt.datetime
    started: float = field(default_factory=time.monotonic)
    state: str = "UploadComplete"
    error_message: str | None = None
    result: ResultFile | None = None
    done: bool = False
    fail: bool = False
    finished_ms: int = 0

    def info(self, min_seconds: float) -> dict[str, Any]:
        """The job document of GET ``/jobs/query/{id}``."""
        elapsed = time.monotonic() - self.started
        if self.state in ("UploadComplete", "InProgress"):
            # the result may be ready early: the job still reports InProgress until min_seconds passed
            if self.done and elapsed >= min_seconds:
                self.state = "Failed" if self.fail else "JobComplete"
                if self.fail:
                    self.error_message = FAILED_MESSAGE
            elif elapsed > min(0.05, min_seconds / 4):
                self.state = "InProgress"
        doc: dict[str, Any] = {
            **job_document(
                self.id, self.operation, self.query.obj.name, self.created, self.state, self.api_version, "V2Query"
            ),
            "lineEnding": self.line_ending,
            "columnDelimiter": self.column_delimiter,
            "numberRecordsProcessed": self.result.records if self.result and self.state == "JobComplete" else 0,
            "retries": 0,
            "totalProcessingTime": self.finished_ms,
            "isPkChunkingSupported": True,
        }
        if self.error_message:
            doc["errorMessage"] = self.error_message
        return doc


class JobManager(JobBook[Job]):
    """All query jobs of one sandbox, processed by background threads.

    Args:
        store: the records.
        workdir: folder for result files (they are unlinked at once; the folder stays empty).
        faults: fault settings (``fail_jobs``).
        min_seconds: simulated processing time; a job reports ``JobComplete`` no sooner.
    """

    def __init__(self, store: Store, workdir: Path, faults: Faults, min_seconds: float = 0.3) -> None:
        super().__init__(min_seconds, MAX_JOBS)  # beyond it the oldest job (and its result file) is forgotten
        self.store = store
        self.faults = faults
        self.workdir = workdir
        self.cache: dict[tuple[Any, ...], ResultFile] = {}
        self.slots = threading.Semaphore(2)

    def create(self, payload: dict[str, Any], api_version: str) -> Job:
        """Validate a create-job request and start processing it."""
        operation = payload.get("operation")
        if operation not in ("query", "queryAll"):
            raise ApiError(400, "INVALIDJOB", f"Invalid operation: {operation!r}; use query or queryAll")
        text = payload.get("query")
        if not isinstance(text, str) or not text.strip():
            raise ApiError(400, "INVALIDJOB", "The query is required for a query job")
        delimiter = payload.get("columnDelimiter", "COMMA")
        if delimiter not in engine.DELIMITERS:
            raise ApiError(400, "INVALIDJOB", f"Invalid columnDelimiter: {delimiter}")
        line_ending = payload.get("lineEnding", "LF")
        if line_ending not in engine.LINE_ENDINGS:
            raise ApiError(400, "INVALIDJOB", f"Invalid lineEnding: {line_ending}")
        query = soql.parse(text, self.store.clock())
        if query.compound_fields:
            raise ApiError(400, "API_ERROR", COMPOUND_MESSAGE)
        if query.count_only:
            raise ApiError(400, "INVALIDJOB", "Aggregate queries are not supported in Bulk Query: COUNT()")
        if query.offset:
            raise ApiError(400, "INVALIDJOB", "OFFSET is not supported in Bulk Query")
        job_id = "750" + uuid.uuid4().hex[:15]
        job = Job(job_id, operation, query, delimiter, line_ending, api_version, dt.datetime.now(dt.UTC))
        self.add(job)
        job.fail = self.faults.take_job_failure()
        threading.Thread(target=self._process, args=(job,), name=f"bulk-{job_id}", daemon=True).start()
        log.info("bulk job %s created: %s", job_id, text[:200])
        return job

    def _process(self, job: Job) -> None:
        started = time.monotonic()
        key = (
            job.query.soql,
            job.operation,
            job.column_delimiter,
            job.line_ending,
            self.store.version,
        )
        try:
            with self.slots:
                if job.state == "Aborted":
                    return
                with self.lock:
                    cached = self.cache.get(key)
                if cached is None:
                    cached = write_result(
                        self.store,
                        job.query,
                        job.operation == "queryAll",
                        engine.DELIMITERS[job.column_delimiter],
                        engine.LINE_ENDINGS[job.line_ending],
                        self.workdir,
                    )
                    with self.lock:
                        self.cache = {k: v for k, v in self.cache.items() if k[-1] == self.store.version}
                        self.cache[key] = cached
                        while len(self.cache) > MAX_CACHED_RESULTS:
                            self.cache.pop(next(iter(self.cache)))
                job.result = cached
        except Exception as exc:
            log.exception("bulk job %s failed", job.id)
            job.fail, job.error_message = True, f"Failed to process query: {exc}"
        job.finished_ms = int((time.monotonic() - started) * 1000)
        job.done = True
        log.info("bulk job %s processed: %s records", job.id, job.result.records if job.result else 0)

    def info(self, job_id: str) -> dict[str, Any]:
        """The job document."""
        return self.get(job_id).info(self.min_seconds)

    def abort(self, job_id: str, state: Any) -> dict[str, Any]:
        """PATCH ``{"state": "Aborted"}``."""
        job = self.get(job_id)
        if state != "Aborted":
            raise ApiError(400, "INVALIDJOBSTATE", f"Invalid state for a query job: {state!r}; only Aborted is allowed")
        job.info(self.min_seconds)
        if job.state in ("JobComplete", "Failed", "Aborted"):
            raise ApiError(400, "INVALIDJOBSTATE", f"Job {job_id} is already {job.state}")
        job.state = "Aborted"
        return job.info(self.min_seconds)

    def page(
        self, job_id: str, locator: str | None, max_records: str | None
    ) -> tuple[bytes, ResultFile, int, int, str]:
        """One results page: (header, file, first record, end record, next locator or ``null``)."""
        job = self.get(job_id)
        job.info(self.min_seconds)
        if job.state != "JobComplete" or job.result is None:
            raise ApiError(
                400, "INVALIDJOB", f"Can only get results of a job in state JobComplete; job {job_id} is {job.state}"
            )
        try:
            size = int(max_records) if max_records else DEFAULT_MAX_RECORDS
        except ValueError:
            size = 0
        if size <= 0:
            raise ApiError(400, "INVALIDMAXRECORDS", f"maxRecords must be a positive integer, got {max_records!r}")
        result = job.result
        start = decode_locator(locator) if locator else 0
        if not 0 <= start <= result.records:
            raise ApiError(400, "INVALIDLOCATOR", f"Invalid locator: {locator}")
        stop = min(start + size, result.records)
        nxt = encode_locator(stop) if stop < result.records else "null"
        return result.header, result, start, stop, nxt
