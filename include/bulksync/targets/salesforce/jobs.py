"""One Bulk API 2.0 ingest job, client side: create, upload, close, wait, read the three result sets.

The protocol of the Bulk API 2.0 Developer Guide ("Create a Job", "Upload Job Data", "Upload
Complete", "Get Information About an Ingest Job", "Get Job Successful / Failed / Unprocessed Record
Results", "Delete a Job"). Requests go through :class:`~bulksync.sources.salesforce.api.SalesforceApi`
(retries, re-authentication, call counting). Two requests are not blindly retried:

- the upload (``PUT``): after a dropped connection nobody knows whether Salesforce kept the data,
  so the job is aborted and a new one created with the same records (the open job never processed
  anything, so nothing is written twice);
- ``UploadComplete``: a retry that finds the job already past ``Open`` counts as done.
"""

from __future__ import annotations

import csv
import io
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from bulksync.errors import DataError
from bulksync.sources.salesforce.api import SalesforceApi
from bulksync.sources.salesforce.errors import SalesforceApiError, SalesforceJobError, SalesforceTransientError

log = logging.getLogger(__name__)

JOBS = "jobs/ingest"
DONE = {"JobComplete", "Failed", "Aborted"}


@dataclass
class Results:
    """The three result sets of one job: failed and unprocessed parsed (every value a string); the
    successful ones counted from their ``sf__Created`` column alone, parsed whole only when needed."""

    job_id: str
    state: str
    error_message: str | None
    successful_data: bytes
    failed: pa.Table
    unprocessed: pa.Table
    info: dict[str, Any] = field(default_factory=dict)
    ok: int = 0
    created: int = 0

    def __post_init__(self) -> None:
        created = parse_result(self.successful_data, "successfulResults", columns=["sf__Created"])
        self.ok = created.num_rows
        if created.num_rows and "sf__Created" in created.column_names:
            flags = pc.equal(pc.utf8_lower(created.column("sf__Created")), "true")
            self.created = int(pc.sum(flags).as_py() or 0)

    @property
    def successful(self) -> pa.Table:
        """Every successful record with its fields (parsed on demand)."""
        return parse_result(self.successful_data, f"successfulResults of job {self.job_id}")


def parse_result(data: bytes, what: str, columns: list[str] | None = None) -> pa.Table:
    """A result CSV as string columns (empty values as ``""``); the header names the columns.

    ``columns`` reads only those (the others are skipped by the parser)."""
    if not data.strip():
        return pa.table({})
    end = data.find(b"\n")
    header = next(csv.reader([data[: end if end >= 0 else len(data)].decode("utf-8").rstrip("\r")]))
    wanted = [h for h in header if columns is None or h in columns]
    if end < 0 or not data[end + 1 :].strip():
        return pa.table({h: pa.array([], pa.string()) for h in wanted})
    try:
        return pacsv.read_csv(
            io.BytesIO(data),
            read_options=pacsv.ReadOptions(column_names=header, skip_rows=1, block_size=16 << 20),
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types={h: pa.string() for h in header},
                strings_can_be_null=False,
                null_values=[],
                include_columns=wanted,
            ),
        )
    except pa.ArrowInvalid as exc:
        raise DataError(f"the {what} of the ingest job cannot be read as CSV: {exc}") from None


class IngestJob:
    """Run one ingest job for ``data`` (CSV with header) and return its :class:`Results`.

    Args:
        api: the HTTP client.
        spec: the target spec (object, operation, external id, polling and timeouts).
        external_id: the external id field's API name (upsert).
        label: for logs (``Account upsert job 3``).
    """

    def __init__(self, api: SalesforceApi, spec: Any, external_id: str | None, label: str) -> None:
        self.api = api
        self.spec = spec
        self.external_id = external_id
        self.label = label
        self.job_ids: list[str] = []

    def run(self, data: bytes) -> Results:
        """Create, upload, close, wait and read the results (a failed upload makes a new job)."""
        attempts = max(1, int(self.spec.max_attempts))
        for attempt in range(1, attempts + 1):
            job_id, content_url = self._create()
            try:
                self.api.request(
                    "PUT",
                    content_url,
                    data=data,
                    content_type="text/csv",
                    read=lambda r: None,
                    attempts=1,
                )
            except SalesforceTransientError as exc:
                self._abort(job_id)
                if attempt == attempts:
                    raise
                log.warning("%s: upload to job %s failed (%s); aborted it, creating a new job", self.label, job_id, exc)
                continue
            self._close(job_id)
            return self._finish(job_id)
        raise AssertionError("unreachable")  # pragma: no cover

    def _create(self) -> tuple[str, str]:
        body: dict[str, Any] = {
            "object": self.spec.object,
            "operation": self.spec.operation,
            "contentType": "CSV",
            "columnDelimiter": "COMMA",
            "lineEnding": "LF",
        }
        if self.external_id:
            body["externalIdFieldName"] = self.external_id
        info = self.api.request("POST", JOBS, json=body)
        job_id = str(info["id"])
        self.job_ids.append(job_id)
        url = str(info.get("contentUrl") or f"{JOBS}/{job_id}/batches")
        if url.startswith("services/"):
            url = "/" + url
        log.info("%s: created ingest job %s", self.label, job_id)
        return job_id, url

    def _close(self, job_id: str) -> None:
        try:
            self.api.request("PATCH", f"{JOBS}/{job_id}", json={"state": "UploadComplete"})
        except SalesforceApiError as exc:
            if exc.code != "INVALIDJOBSTATE":
                raise
            info = self.api.request("GET", f"{JOBS}/{job_id}")
            if info.get("state") == "Open":
                raise
            log.info("%s: job %s was already closed (a retried UploadComplete)", self.label, job_id)

    def _abort(self, job_id: str) -> None:
        try:
            self.api.request("PATCH", f"{JOBS}/{job_id}", json={"state": "Aborted"})
        except Exception:  # noqa: BLE001 - the job is Open: without UploadComplete it never processes anything
            log.warning("%s: could not abort job %s (it never runs without UploadComplete)", self.label, job_id)

    def _finish(self, job_id: str) -> Results:
        deadline = time.monotonic() + float(self.spec.job_timeout_minutes) * 60
        delay = min(0.2, float(self.spec.poll_interval_seconds))
        while True:
            info = self.api.request("GET", f"{JOBS}/{job_id}")
            state = str(info.get("state"))
            if state in DONE:
                break
            if time.monotonic() > deadline:
                self._abort(job_id)
                raise SalesforceJobError(
                    f"{self.label}: ingest job {job_id} still {state} after {self.spec.job_timeout_minutes} minutes; "
                    "aborted it. Its records are unprocessed (rerun the load), or raise job_timeout_minutes"
                )
            time.sleep(delay)
            delay = min(delay * 2, float(self.spec.poll_interval_seconds))
        results = Results(
            job_id,
            state,
            info.get("errorMessage"),
            self._raw(job_id, "successfulResults"),
            self._result(job_id, "failedResults"),
            self._result(job_id, "unprocessedrecords"),
            info,
        )
        log.info(
            "%s: job %s %s: %d successful (%d created), %d failed, %d unprocessed%s",
            self.label,
            job_id,
            state,
            results.ok,
            results.created,
            results.failed.num_rows,
            results.unprocessed.num_rows,
            f" ({results.error_message})" if results.error_message else "",
        )
        self._delete(job_id)
        return results

    def _raw(self, job_id: str, kind: str) -> bytes:
        data = self.api.request(
            "GET", f"{JOBS}/{job_id}/{kind}", accept="text/csv", read=lambda r: r.raw.read(decode_content=True)
        )
        return bytes(data or b"")

    def _result(self, job_id: str, kind: str) -> pa.Table:
        return parse_result(self._raw(job_id, kind), f"{kind} of job {job_id}")

    def _delete(self, job_id: str) -> None:
        try:
            self.api.request("DELETE", f"{JOBS}/{job_id}")
        except Exception:  # noqa: BLE001 - cleanup only: Salesforce removes finished jobs after 7 days
            log.warning("%s: could not delete ingest job %s (Salesforce removes it after 7 days)", self.label, job_id)
