"""Bulk API 2.0 ingest jobs (``/jobs/ingest``), as the Bulk API 2.0 Developer Guide documents them.

Pages followed (https://developer.salesforce.com/docs/atlas.en-us.api_asynch.meta/api_asynch/…):

- ``create_job.htm`` — ``POST /jobs/ingest`` with ``object``, ``operation`` (insert, update, upsert,
  delete, hardDelete), ``externalIdFieldName`` (required for upsert), ``contentType`` (only ``CSV``),
  ``columnDelimiter``, ``lineEnding``; the answer is the job in state ``Open`` with its ``contentUrl``.
- ``upload_job_data.htm`` — ``PUT {contentUrl}`` (``…/batches``) with ``Content-Type: text/csv``;
  **201 Created** with no body; "A request can provide CSV data that does not in total exceed 150 MB
  of base64 encoded content … upload data that does not exceed 100 MB."
- ``close_job.htm`` — ``PATCH {"state": "UploadComplete"}`` starts processing ("If you don't make
  this request, processing of your data does not start"); ``{"state": "Aborted"}`` aborts.
- ``get_job_info.htm`` — states ``Open → UploadComplete → InProgress → JobComplete`` (or ``Failed``
  with ``errorMessage``, or ``Aborted``), ``numberRecordsProcessed``, ``numberRecordsFailed``,
  ``retries``, ``totalProcessingTime``, ``apiActiveProcessingTime``, ``apexProcessingTime``,
  ``jobType: V2Ingest``.
- ``get_job_successful_results.htm`` — CSV ``sf__Id, sf__Created`` + the original fields;
  ``get_job_failed_results.htm`` — ``sf__Id, sf__Error`` + the original fields;
  ``get_job_unprocessed_results.htm`` — ``unprocessedrecords``: the original fields of records a
  failed or aborted job never processed. "The order of records in the response is not guaranteed
  to match the ordering of records in the original job data."
- ``bulk_api_2_limits.htm`` — "Maximum number of records uploaded per rolling 24-hour period:
  150,000,000"; "Maximum file size: 150 MB".

The documented upsert walkthrough (``walkthrough_upsert.htm``) works unchanged against the sandbox
(its Account has the walkthrough's text external id ``customExtIdField__c``): it creates the job
``{"object": "Account", "externalIdFieldName": "customExtIdField__c", "contentType": "CSV",
"operation": "upsert", "lineEnding": "LF"}`` and uploads ``accountupsert.csv``::

    customExtIdField__c,name,NumberOfEmployees
    123,GenePoint,800
    234,"United Oil & Gas, UK",1467
    345,"United Oil & Gas, Singapore",348
    ...

Sandbox choices where the guide is silent: one data upload per job (a second ``PUT`` is refused);
an unknown header field fails the whole job (``InvalidBatch : Field name not found : X``).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from bulksync.sandbox.salesforce import apply, engine
from bulksync.sandbox.salesforce.errors import ApiError
from bulksync.sandbox.salesforce.faults import Faults
from bulksync.sandbox.salesforce.jobs import JobBook, job_document
from bulksync.sandbox.salesforce.schema import find_object
from bulksync.sandbox.salesforce.store import Store

log = logging.getLogger(__name__)

OPERATIONS = ("insert", "update", "upsert", "delete", "hardDelete")
MAX_UPLOAD_BASE64_BYTES = 150 * 1024 * 1024
MAX_JOBS = 500
RESULT_KINDS = {"successfulresults": "successful", "failedresults": "failed", "unprocessedrecords": "unprocessed"}
INTERNAL_ERROR = "InternalServerError : An unexpected error occurred (sandbox fault: fail_ingest_jobs)"


@dataclass
class IngestJob:
    """One Bulk API 2.0 ingest job."""

    id: str
    object: str
    operation: str
    external_id: str | None
    column_delimiter: str
    line_ending: str
    api_version: str
    created: dt.datetime
    state: str = "Open"
    error_message: str | None = None
    data: bytes | None = None
    processed: int = 0
    failed: int = 0
    started: float = 0.0
    finished: float | None = None
    processing_ms: int = 0
    results: dict[str, bytes] = field(default_factory=dict)
    fail_after: int | None = None
    abort_requested: bool = False

    def info(self, min_seconds: float) -> dict[str, Any]:
        """The job document (``GET /jobs/ingest/{id}``)."""
        if self.state in ("UploadComplete", "InProgress") and self.started:
            elapsed = time.monotonic() - self.started
            if self.finished is not None and elapsed >= min_seconds:
                self.state = "Failed" if self.error_message else "JobComplete"
            elif elapsed > min(0.05, min_seconds / 4):
                self.state = "InProgress"  # also while a finished result waits for min_seconds
        doc: dict[str, Any] = {
            **job_document(
                self.id, self.operation, self.object, self.created, self.state, self.api_version, "V2Ingest"
            ),
            "contentUrl": f"services/data/v{self.api_version}/jobs/ingest/{self.id}/batches",
            "lineEnding": self.line_ending,
            "columnDelimiter": self.column_delimiter,
        }
        if self.external_id:
            doc["externalIdFieldName"] = self.external_id
        if self.state != "Open":
            done = self.state in ("JobComplete", "Failed", "Aborted")
            doc.update(
                {
                    "numberRecordsProcessed": self.processed if done or self.state == "InProgress" else 0,
                    "numberRecordsFailed": self.failed if done or self.state == "InProgress" else 0,
                    "retries": 0,
                    "totalProcessingTime": self.processing_ms,
                    "apiActiveProcessingTime": self.processing_ms,
                    "apexProcessingTime": 0,
                }
            )
        if self.error_message and self.state == "Failed":
            doc["errorMessage"] = self.error_message
        return doc


class IngestManager(JobBook[IngestJob]):
    """All ingest jobs of one sandbox; processing runs in background threads, two at a time.

    Args:
        store: the records.
        faults: fault settings (``fail_ingest_jobs``, ``ingest_fail_after``).
        min_seconds: a job reports ``JobComplete`` no sooner than this after ``UploadComplete``.
        max_upload_bytes: the largest upload (raw bytes) accepted; Salesforce's is 150 MB of base64.
    """

    def __init__(
        self, store: Store, faults: Faults, min_seconds: float = 0.3, max_upload_bytes: int | None = None
    ) -> None:
        super().__init__(min_seconds, MAX_JOBS)
        self.store = store
        self.faults = faults
        self.max_upload_bytes = max_upload_bytes or MAX_UPLOAD_BASE64_BYTES * 3 // 4
        self.slots = threading.Semaphore(2)
        self.rules: dict[str, list[apply.ValidationRule]] = {}
        self.records_uploaded = 0

    # -- the resources ----------------------------------------------------------------------

    def create(self, payload: dict[str, Any], api_version: str) -> IngestJob:
        """``POST /jobs/ingest``."""
        name = payload.get("object")
        obj = find_object(str(name or ""))
        if obj is None:
            raise ApiError(400, "INVALIDJOB", f"InvalidJob : Invalid object type: {name!r}")
        operation = payload.get("operation")
        if operation not in OPERATIONS:
            raise ApiError(
                400, "INVALIDJOB", f"InvalidJob : Invalid operation: {operation!r}; use {', '.join(OPERATIONS)}"
            )
        external = payload.get("externalIdFieldName")
        if operation == "upsert":
            if not external:
                raise ApiError(400, "INVALIDJOB", "InvalidJob : External ID was blank for upsert")
            fdef = obj.field(str(external))
            if fdef is None or not (fdef.external_id or fdef.type == "id"):
                raise ApiError(
                    400,
                    "INVALIDJOB",
                    f"InvalidJob : Field name provided, {external} is not an External ID or indexed field for "
                    f"{obj.name}",
                )
            external = fdef.name
        if payload.get("contentType", "CSV") != "CSV":
            raise ApiError(400, "INVALIDJOB", "InvalidJob : contentType must be CSV")
        delimiter = payload.get("columnDelimiter", "COMMA")
        if delimiter not in engine.DELIMITERS:
            raise ApiError(400, "INVALIDJOB", f"InvalidJob : Invalid columnDelimiter: {delimiter}")
        ending = payload.get("lineEnding", "LF")
        if ending not in engine.LINE_ENDINGS:
            raise ApiError(400, "INVALIDJOB", f"InvalidJob : Invalid lineEnding: {ending}")
        job = IngestJob(
            "750" + uuid.uuid4().hex[:15],
            obj.name,
            str(operation),
            str(external) if operation == "upsert" else None,
            delimiter,
            ending,
            api_version,
            dt.datetime.now(dt.UTC),
        )
        self.add(job)
        log.info("ingest job %s created: %s %s", job.id, job.operation, job.object)
        return job

    def upload(self, job_id: str, body: bytes, content_type: str | None) -> None:
        """``PUT /jobs/ingest/{id}/batches``: the job's CSV (one upload per job)."""
        job = self.get(job_id)
        if job.state != "Open":
            raise ApiError(
                400, "INVALIDJOBSTATE", f"Job {job_id} is {job.state}; data can only be uploaded to an Open job"
            )
        if content_type and not content_type.lower().startswith("text/csv"):
            raise ApiError(400, "INVALIDJOB", f"InvalidJob : Content-Type must be text/csv, got {content_type}")
        if job.data is not None:
            raise ApiError(
                400, "INVALIDJOB", f"InvalidJob : data was already uploaded to job {job_id}; create a new job"
            )
        if not body:
            raise ApiError(400, "INVALIDJOB", "InvalidJob : the upload is empty")
        if len(body) > self.max_upload_bytes:
            raise ApiError(
                400,
                "INVALIDJOB",
                f"InvalidJob : the upload is {len(body)} bytes; a job takes at most 150 MB of base64-encoded data "
                f"(about {self.max_upload_bytes} bytes)",
            )
        job.data = body

    def set_state(self, job_id: str, state: Any) -> IngestJob:
        """``PATCH /jobs/ingest/{id}``: ``UploadComplete`` (start processing) or ``Aborted``."""
        job = self.get(job_id)
        job.info(self.min_seconds)
        if state == "UploadComplete":
            if job.state != "Open":
                raise ApiError(400, "INVALIDJOBSTATE", f"Job {job_id} is {job.state}, not Open")
            if job.data is None:
                raise ApiError(400, "INVALIDJOBSTATE", f"Job {job_id} has no data: upload it before UploadComplete")
            job.state, job.started = "UploadComplete", time.monotonic()
            if self.faults.take_ingest_failure():
                job.fail_after = self.faults.settings.ingest_fail_after
            threading.Thread(target=self._process, args=(job,), name=f"ingest-{job.id}", daemon=True).start()
            return job
        if state == "Aborted":
            if job.state in ("JobComplete", "Failed", "Aborted"):
                raise ApiError(400, "INVALIDJOBSTATE", f"Job {job_id} is already {job.state}")
            job.abort_requested = True
            if job.state == "Open":
                job.state = "Aborted"
                job.results["unprocessed"] = job.data or b""
            else:
                job.state = "Aborted"
            return job
        raise ApiError(
            400, "INVALIDJOBSTATE", f"Invalid state for an ingest job: {state!r}; use UploadComplete or Aborted"
        )

    def result(self, job_id: str, kind: str) -> bytes:
        """One of the three result sets (``successfulResults``, ``failedResults``, ``unprocessedrecords``)."""
        job = self.get(job_id)
        job.info(self.min_seconds)
        which = RESULT_KINDS.get(kind.lower())
        if which is None:
            raise ApiError(404, "NOT_FOUND", f"The requested resource does not exist: {kind}")
        if job.state not in ("JobComplete", "Failed", "Aborted"):
            raise ApiError(
                400, "INVALIDJOBSTATE", f"Job {job_id} is {job.state}; results are available once it is complete"
            )
        return job.results.get(which, b"")

    # -- processing ---------------------------------------------------------------------------

    def _process(self, job: IngestJob) -> None:
        started = time.monotonic()
        with self.slots:
            try:
                self._run(job)
            except apply.JobFailure as exc:
                job.error_message = str(exc)
            except Exception as exc:
                log.exception("ingest job %s failed", job.id)
                job.error_message = f"InternalServerError : {exc}"
        job.processing_ms = int((time.monotonic() - started) * 1000)
        job.finished = time.monotonic()
        log.info("ingest job %s processed: %d records, %d failed", job.id, job.processed, job.failed)

    def _run(self, job: IngestJob) -> None:
        obj = find_object(job.object)
        assert obj is not None and job.data is not None
        raw, header = parse_upload(job.data, engine.DELIMITERS[job.column_delimiter])
        self.records_uploaded += raw.num_rows
        writer = _Results(header, engine.DELIMITERS[job.column_delimiter], engine.LINE_ENDINGS[job.line_ending])
        try:
            columns = apply.resolve_columns(obj, header, job.operation, job.external_id)
        except apply.JobFailure:
            job.results = writer.finish(unprocessed=raw)
            raise
        rules = list(self.rules.get(obj.name, []))
        position = 0
        while position < raw.num_rows:
            if job.abort_requested or (job.fail_after is not None and position >= job.fail_after):
                break
            size = apply.BATCH_RECORDS
            if job.fail_after is not None:
                size = min(size, job.fail_after - position)
            batch = raw.slice(position, size)
            with self.store.lock:
                outcome = apply.process(self.store, obj, job.operation, job.external_id, columns, batch, rules)
            writer.add(batch, outcome)
            position += batch.num_rows
            job.processed = position
            job.failed = writer.failed
        rest = raw.slice(position) if position < raw.num_rows else None
        job.results = writer.finish(unprocessed=rest)
        if rest is not None and not job.abort_requested:
            job.error_message = INTERNAL_ERROR


def parse_upload(data: bytes, delimiter: str) -> tuple[pa.Table, list[str]]:
    """The upload's records as string columns (empty values as ``""``) and its header.

    Raises:
        JobFailure: the CSV cannot be read (the job fails with a ``ClientInputError``).
    """
    end = data.find(b"\n")
    first = data[: end if end >= 0 else len(data)].decode("utf-8", "replace").rstrip("\r")
    header = next(csv.reader([first], delimiter=delimiter))
    try:
        table = pacsv.read_csv(
            io.BytesIO(data),
            read_options=pacsv.ReadOptions(column_names=header, skip_rows=1, block_size=16 << 20),
            parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types={h: pa.string() for h in header}, strings_can_be_null=False, null_values=[]
            ),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        raise apply.JobFailure(f"ClientInputError : the CSV data cannot be read: {exc}") from None
    return table, header


class _Results:
    """Builds the three result sets of a job as CSV (every value quoted, as Bulk results are)."""

    def __init__(self, header: list[str], delimiter: str, eol: str) -> None:
        self.header = header
        self.delimiter = delimiter
        self.eol = eol
        self.ok: list[pa.Table] = []
        self.bad: list[pa.Table] = []
        self.failed = 0

    def add(self, batch: pa.Table, outcome: apply.Outcome) -> None:
        ok_rows = np.flatnonzero(outcome.ok)
        bad_rows = np.flatnonzero(~outcome.ok)
        if len(ok_rows):
            original = batch.take(pa.array(ok_rows))
            sf_id = pa.array([outcome.ids[i] for i in ok_rows], pa.string())
            created = pc.if_else(pa.array(outcome.created[ok_rows]), "true", "false")
            self.ok.append(_prefixed(original, [("sf__Id", sf_id), ("sf__Created", created)]))
        if len(bad_rows):
            original = batch.take(pa.array(bad_rows))
            sf_id = pa.array([outcome.ids[i] or "" for i in bad_rows], pa.string())
            error = pa.array([outcome.errors[i] or "UNKNOWN_EXCEPTION:no error recorded:--" for i in bad_rows])
            self.bad.append(_prefixed(original, [("sf__Id", sf_id), ("sf__Error", error)]))
            self.failed += len(bad_rows)

    def finish(self, unprocessed: pa.Table | None) -> dict[str, bytes]:
        return {
            "successful": self._csv(self.ok, ["sf__Id", "sf__Created", *self.header]),
            "failed": self._csv(self.bad, ["sf__Id", "sf__Error", *self.header]),
            "unprocessed": self._csv([unprocessed] if unprocessed is not None else [], self.header),
        }

    def _csv(self, tables: list[pa.Table], names: list[str]) -> bytes:
        head = (self.delimiter.join(f'"{n}"' for n in names) + self.eol).encode()
        if not tables:
            return head
        whole = pa.concat_tables(tables)
        buf = io.BytesIO()
        options = pacsv.WriteOptions(
            include_header=False, delimiter=self.delimiter, eol=self.eol, quoting_style="all_valid"
        )
        pacsv.write_csv(whole, buf, options)
        return head + buf.getvalue()


def _prefixed(table: pa.Table, columns: list[tuple[str, pa.Array]]) -> pa.Table:
    names = [n for n, _ in columns] + [f"c{i}" for i in range(table.num_columns)]
    return pa.table([a for _, a in columns] + list(table.columns), names=names)
