"""What the Bulk API 2.0 query and ingest job managers share: their jobs by id, listing, deleting."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any, Generic, Protocol, TypeVar

from bulksync.sandbox.salesforce.errors import ApiError
from bulksync.sandbox.salesforce.store import SANDBOX_USER


def job_document(
    job_id: str, operation: str, obj: str, created: dt.datetime, state: str, api_version: str, job_type: str
) -> dict[str, Any]:
    """The fields every Bulk API 2.0 job document starts with, in the order Salesforce sends them.

    Args:
        job_id: the job's id.
        operation: ``query``, ``insert`` …
        obj: the sObject name.
        created: when the job was created (``createdDate`` and ``systemModstamp``).
        state: the job's state.
        api_version: the API version the job was created with (``"59.0"``).
        job_type: ``V2Query`` or ``V2Ingest``.

    Returns:
        ``id`` … ``jobType``; the caller adds the fields of its job type after them.
    """
    stamp = created.strftime("%Y-%m-%dT%H:%M:%S.000+0000")
    return {
        "id": job_id,
        "operation": operation,
        "object": obj,
        "createdById": SANDBOX_USER,
        "createdDate": stamp,
        "systemModstamp": stamp,
        "state": state,
        "concurrencyMode": "Parallel",
        "contentType": "CSV",
        "apiVersion": float(api_version),
        "jobType": job_type,
    }


class BulkJob(Protocol):
    """A Bulk API 2.0 job as the book keeps it."""

    id: str
    state: str

    def info(self, min_seconds: float) -> dict[str, Any]:
        """The job document (moves the job on once ``min_seconds`` have passed)."""
        ...


J = TypeVar("J", bound=BulkJob)


class JobBook(Generic[J]):
    """The jobs of one kind, oldest first; the oldest are forgotten beyond ``max_jobs``.

    Args:
        min_seconds: a job reports complete no sooner than this after it started.
        max_jobs: jobs kept at the most.
    """

    def __init__(self, min_seconds: float, max_jobs: int) -> None:
        self.min_seconds = min_seconds
        self.max_jobs = max_jobs
        self.jobs: dict[str, J] = {}
        self.lock = threading.Lock()
        self.created = 0

    def add(self, job: J) -> None:
        """Keep a new job (and count it), forgetting the oldest beyond ``max_jobs``."""
        with self.lock:
            self.jobs[job.id] = job
            self.created += 1
            while len(self.jobs) > self.max_jobs:
                self.jobs.pop(next(iter(self.jobs)))

    def get(self, job_id: str) -> J:
        """A job by id; NOT_FOUND otherwise."""
        job = self.jobs.get(job_id)
        if job is None:
            raise ApiError(404, "NOT_FOUND", f"The requested resource does not exist: job {job_id}")
        return job

    def list(self) -> dict[str, Any]:
        """``GET /jobs/query`` or ``GET /jobs/ingest``."""
        return {"done": True, "records": [j.info(self.min_seconds) for j in self.jobs.values()], "nextRecordsUrl": None}

    def delete(self, job_id: str) -> None:
        """``DELETE`` a job (not while it is processing)."""
        job = self.get(job_id)
        job.info(self.min_seconds)
        if job.state in ("UploadComplete", "InProgress"):
            raise ApiError(400, "INVALIDJOBSTATE", f"Job {job_id} is {job.state}; abort it before deleting it")
        with self.lock:
            self.jobs.pop(job_id, None)
