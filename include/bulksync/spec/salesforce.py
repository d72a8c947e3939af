"""Spec model of the ``salesforce`` source (``source: {kind: salesforce, conn_id: ..., options: {...}}``)."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from bulksync.spec.common import StrictModel

_API_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,79}$")


def _api_name(value: str) -> str:
    if not _API_NAME.fullmatch(value):
        raise ValueError(f"{value!r} is not a Salesforce API name (letters, digits and '_', e.g. Account, Amount__c)")
    return value


ApiName = Annotated[str, AfterValidator(_api_name)]
"""A Salesforce object or field API name (``Account``, ``Invoice__c``, ``BillingCity``)."""


class SalesforceChunking(StrictModel):
    """PK chunking: split the object into ``Id`` ranges extracted by parallel mapped tasks.

    Give ``chunk_size`` (records per chunk) or ``chunks`` (how many chunks), not both.
    """

    chunk_size: int | None = Field(None, ge=1_000, le=50_000_000, description="Records per Id range.")
    chunks: int | None = Field(None, ge=1, le=1_000, description="Number of Id ranges of about equal size.")

    @model_validator(mode="after")
    def _one(self) -> SalesforceChunking:
        if (self.chunk_size is None) == (self.chunks is None):
            raise ValueError("give exactly one of 'chunk_size' (records per chunk) or 'chunks' (number of chunks)")
        return self


class SalesforceOptions(StrictModel):
    """Options of the ``salesforce`` source: one object through Bulk API 2.0 query jobs."""

    object: ApiName = Field(description="API name of the object, e.g. Account or Invoice__c.")
    fields: list[ApiName] | Literal["all"] = Field(
        "all",
        description="Fields to extract, or 'all': every field of describe, compound fields replaced by their "
        "components, formula fields only with include_formula.",
    )
    exclude_fields: list[ApiName] = Field(default_factory=list, description="Fields left out of 'all'.")
    include_formula: bool = Field(False, description="With fields: all, also extract formula (calculated) fields.")
    incremental: bool = Field(False, description="Read only the run's data interval of cursor_field.")
    cursor_field: ApiName = Field("SystemModstamp", description="Change timestamp field of incremental reads.")
    overlap_minutes: int = Field(0, ge=0, description="Re-read this many minutes before the interval start.")
    deletes: Literal["ignore", "soft", "delete"] = Field(
        "soft",
        description="Deleted records: 'ignore' (query, live records only); 'soft' (queryAll, IsDeleted loaded "
        "as data); 'delete' (queryAll, and a merge target with delete_flag: IsDeleted removes them).",
    )
    primary_key: list[ApiName] = Field(default_factory=lambda: ["Id"])
    chunking: SalesforceChunking | None = Field(None, description="PK chunking into parallel Id ranges.")
    min_remaining_api_requests: int = Field(
        1_000, ge=0, description="Refuse to start when fewer daily API requests remain (from /limits)."
    )
    max_records: int | None = Field(
        100_000, ge=1, le=10_000_000, description="Records per results page (maxRecords); bounds memory."
    )
    poll_interval_seconds: float = Field(2.0, gt=0, le=300, description="Delay between job status polls.")
    job_timeout_minutes: float = Field(60, gt=0, description="Abort a query job not complete after this long.")
    request_timeout_seconds: float = Field(120, gt=0, description="Timeout of one HTTP request.")
    max_attempts: int = Field(6, ge=1, le=20, description="Attempts per request on 429/503/timeouts/resets.")
    retry_initial_wait_seconds: float = Field(1.0, ge=0, description="First backoff delay (doubles, with jitter).")
    retry_max_wait_seconds: float = Field(60.0, gt=0, description="Longest backoff delay (Retry-After included).")

    @model_validator(mode="after")
    def _consistent(self) -> SalesforceOptions:
        if self.fields != "all":
            lower = [f.lower() for f in self.fields]
            dupes = sorted({f for f in self.fields if lower.count(f.lower()) > 1})
            if dupes:
                raise ValueError(f"fields listed twice: {', '.join(dupes)}")
            if self.exclude_fields:
                raise ValueError("exclude_fields only applies to fields: all")
        return self


class SalesforceSourceSpec(StrictModel):
    """``source: {kind: salesforce, conn_id: ..., options: {...}}``.

    The connection is an Airflow ``salesforce`` connection (see docs/salesforce.md); extract tasks of
    one connection share the Airflow pool ``salesforce__{conn_id}`` which bounds concurrent jobs.
    """

    kind: Literal["salesforce"]
    conn_id: str = Field(min_length=1, description="Airflow connection id (type salesforce).")
    options: SalesforceOptions

    def pool_name(self) -> str | None:
        """The Airflow pool of this connection's extract tasks (create it with ``airflow pools set``)."""
        return f"salesforce__{self.conn_id}"
