"""Spec model of the ``salesforce`` target: write a dataset into an org through Bulk API 2.0 ingest jobs.

```yaml
target:
  kind: salesforce
  conn_id: acme_salesforce
  object: Account
  operation: upsert            # insert | update | upsert | delete | hardDelete
  external_id: Acme_Id__c      # upsert key (an externalId field, or Id)
  fields: {Name: account_name, Industry: industry}   # Salesforce field: staged column (default: by name)
  relationships:
    Parent: {object: Account, external_id: Acme_Id__c, from: parent_id}
```

See docs/salesforce-write-back.md.
"""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, model_validator

from bulksync.spec.common import StrictModel
from bulksync.spec.salesforce import ApiName

Operation = Literal["insert", "update", "upsert", "delete", "hardDelete"]
MAX_JOB_BYTES = 100 * 1024 * 1024
"""Bulk API 2.0 takes 150 MB of base64 per upload, which Salesforce advises is about 100 MB of CSV."""


class SalesforceRelationship(StrictModel):
    """A reference set through the parent's external id: ``Parent: {object: Account, external_id: Acme_Id__c,
    from: parent_id}`` sends the staged column ``parent_id`` as the CSV column ``Parent.Acme_Id__c``."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    object: ApiName = Field(description="The parent object (must be one the reference field points to).")
    external_id: ApiName = Field(description="The parent's external id field (or Id) the staged values match.")
    from_: str = Field(alias="from", min_length=1, description="The staged column holding the parent's key.")


class SalesforceTargetSpec(StrictModel):
    """``target: {kind: salesforce, conn_id: ..., object: ..., operation: ...}``."""

    kind: Literal["salesforce"]
    conn_id: str = Field(min_length=1, description="Airflow connection id (type salesforce).")
    object: ApiName = Field(description="API name of the object written, e.g. Account or Invoice__c.")
    operation: Operation = "upsert"
    external_id: ApiName | None = Field(None, description="upsert: the externalId field (or Id) that matches records.")
    fields: dict[ApiName, str] | None = Field(
        None,
        description="Salesforce field -> staged column. Default: every staged column is sent to the field of "
        "the same name (case-insensitive); a column with no such field is refused.",
    )
    exclude_columns: list[str] = Field(default_factory=list, description="Staged columns not sent (by-name mapping).")
    relationships: dict[ApiName, SalesforceRelationship] = Field(
        default_factory=dict, description="Relationship name (e.g. Parent, Account) -> parent object, key and column."
    )
    allow_hard_delete: bool = Field(False, description="hardDelete bypasses the recycle bin: it must be allowed here.")
    nulls: Literal["ignore", "clear"] = Field(
        "ignore",
        description="Staged nulls on update/upsert: 'ignore' leaves the field as it is in Salesforce (empty CSV "
        "value); 'clear' sets it to null (#N/A).",
    )
    invalid_rows: Literal["fail", "quarantine"] = Field(
        "fail",
        description="Rows the describe check refuses before upload (too long, bad picklist, missing required, "
        "repeated key): 'fail' uploads nothing and names them; 'quarantine' sets them aside and sends the rest.",
    )
    audit_conn_id: str | None = Field(
        None, description="SQL connection holding the audit tables of this write-back (none: run records only)."
    )
    max_records_per_job: int = Field(100_000, ge=1, le=10_000_000, description="Records per ingest job.")
    max_bytes_per_job: int = Field(
        MAX_JOB_BYTES, ge=1_000, le=MAX_JOB_BYTES, description="CSV bytes per ingest job (Salesforce: 100 MB)."
    )
    max_parallel_jobs: int = Field(
        2, ge=1, le=25, description="Ingest jobs in flight at once; the load task takes as many pool slots."
    )
    min_remaining_api_requests: int = Field(1_000, ge=0, description="Refuse to start below this many daily requests.")
    poll_interval_seconds: float = Field(2.0, gt=0, le=300, description="Longest delay between job status polls.")
    job_timeout_minutes: float = Field(60, gt=0, description="Abort an ingest job not complete after this long.")
    request_timeout_seconds: float = Field(120, gt=0, description="Timeout of one HTTP request.")
    max_attempts: int = Field(6, ge=1, le=20, description="Attempts per request on 429/503/timeouts/resets.")
    retry_initial_wait_seconds: float = Field(1.0, ge=0, description="First backoff delay (doubles, with jitter).")
    retry_max_wait_seconds: float = Field(60.0, gt=0, description="Longest backoff delay (Retry-After included).")

    @model_validator(mode="after")
    def _consistent(self) -> SalesforceTargetSpec:
        op = self.operation
        if op == "upsert" and not self.external_id:
            raise ValueError("operation 'upsert' needs 'external_id' (an externalId field of the object, or Id)")
        if op != "upsert" and self.external_id:
            raise ValueError(f"'external_id' applies to operation 'upsert' only, not {op!r}")
        if op == "hardDelete" and not self.allow_hard_delete:
            raise ValueError(
                "operation 'hardDelete' deletes records for good (no recycle bin): set 'allow_hard_delete: true' "
                "to confirm, or use 'delete'"
            )
        if op in ("delete", "hardDelete") and (self.relationships or (self.fields and list(self.fields) != ["Id"])):
            raise ValueError(f"operation {op!r} sends only the Id column: use fields: {{Id: <staged column>}} or none")
        columns = [*(self.fields or {}).values(), *(r.from_ for r in self.relationships.values())]
        dupes = sorted({c for c in columns if columns.count(c) > 1})
        if dupes:
            raise ValueError(f"staged columns mapped twice: {', '.join(dupes)}")
        names = [n.lower() for n in (self.fields or {})]
        if len(set(names)) != len(names):
            raise ValueError("'fields' names a Salesforce field twice (names are case-insensitive)")
        return self

    # -- what code that names targets generically reads ----------------------------------------

    @property
    def table(self) -> str:
        """The object, where other targets have a table."""
        return self.object

    @property
    def mode(self) -> str:
        """The operation, where other targets have a load mode."""
        return self.operation

    @property
    def keys(self) -> list[str]:
        """The record key: the external id for upserts, Id otherwise (none for insert)."""
        if self.operation == "insert":
            return []
        return [self.external_id or "Id"]

    @property
    def db_schema(self) -> None:
        """Salesforce has no database schema."""
        return None

    @property
    def delete_flag(self) -> None:
        """Deletes are an operation here, not a flag column."""
        return None

    @property
    def interval_column(self) -> None:
        """No interval mode."""
        return None

    def pool_name(self) -> str:
        """The Airflow pool shared with the connection's extracts (``salesforce__{conn_id}``); the load task
        takes ``max_parallel_jobs`` slots of it."""
        return f"salesforce__{self.conn_id}"
