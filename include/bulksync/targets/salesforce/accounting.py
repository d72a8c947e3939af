"""Where every staged record of a write-back ends: succeeded, failed with Salesforce's error, or unprocessed.

Failed and unprocessed records go to the partition's ``quarantine/target/`` stage (stage name
``target_quarantine``): the staged columns as they were, plus

- ``_sf_result`` — ``failed`` (Salesforce refused it), ``unprocessed`` (a failed or aborted job never
  got to it, even after resubmitting) or ``invalid`` (the describe check refused it before upload);
- ``_sf_status_code``, ``_sf_error_message``, ``_sf_error_fields`` — ``sf__Error`` split as orgs
  write it (``CODE:message:FIELD,FIELD --``);
- ``_sf_id`` (the record's Id when Salesforce reported one), ``_sf_job_id`` and ``_bulksync_row`` (the
  record's position in the staged data).

The insert ledger (``{dataset}/.salesforce-ledger/{interval}.json`` beside the partitions) records
that an interval's insert started and committed, so a second insert of it is refused.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from bulksync.staging.manifest import Manifest
from bulksync.staging.partition import Partition
from bulksync.storage.location import Location, open_location

QUARANTINE_STAGE = "target_quarantine"
RESULT = "_sf_result"
CODE = "_sf_status_code"
MESSAGE = "_sf_error_message"
FIELDS = "_sf_error_fields"
SF_ID = "_sf_id"
JOB_ID = "_sf_job_id"
ROW = "_bulksync_row"
EXTRA_COLUMNS = (RESULT, CODE, MESSAGE, FIELDS, SF_ID, JOB_ID, ROW)
LEDGER_FOLDER = ".salesforce-ledger"
_CODE = re.compile(r"^[A-Z][A-Z0-9_]*$")


def split_error(text: str) -> tuple[str, str, list[str]]:
    """``sf__Error`` → (status code, message, fields).

    ``REQUIRED_FIELD_MISSING:Required fields are missing: [Name]:Name --`` gives
    ``("REQUIRED_FIELD_MISSING", "Required fields are missing: [Name]", ["Name"])``; the fields follow
    the last colon and end in ``--`` (empty when the error names none).
    """
    text = (text or "").strip()
    code, sep, rest = text.partition(":")
    if not sep or not _CODE.match(code):
        return "UNKNOWN_ERROR", text, []
    fields: list[str] = []
    if rest.endswith("--"):
        body, colon, tail = rest[:-2].rstrip().rpartition(":")
        if colon:
            fields = [f for f in re.split(r"[,\s]+", tail.strip()) if f]
            rest = body
        else:
            rest = rest[:-2].rstrip()
    return code, rest.strip(), fields


def quarantine_schema(staged: pa.Schema) -> pa.Schema:
    """The staged schema plus the outcome columns."""
    return pa.schema(
        [
            *staged,
            pa.field(RESULT, pa.string()),
            pa.field(CODE, pa.string()),
            pa.field(MESSAGE, pa.string()),
            pa.field(FIELDS, pa.list_(pa.string())),
            pa.field(SF_ID, pa.string()),
            pa.field(JOB_ID, pa.string()),
            pa.field(ROW, pa.int64()),
        ]
    )


def outcome_batch(
    rows: pa.Table | pa.RecordBatch,
    schema: pa.Schema,
    result: str,
    errors: list[tuple[str, str, list[str]]],
    sf_ids: list[str | None],
    job_id: str | None,
    positions: list[int],
) -> pa.RecordBatch:
    """Quarantine rows: the staged rows with their outcome columns."""
    n = rows.num_rows
    staged = [rows.column(f.name) for f in schema if f.name not in EXTRA_COLUMNS]
    extra = [
        pa.array([result] * n, pa.string()),
        pa.array([e[0] for e in errors], pa.string()),
        pa.array([e[1] for e in errors], pa.string()),
        pa.array([e[2] for e in errors], pa.list_(pa.string())),
        pa.array([s or None for s in sf_ids], pa.string()),
        pa.array([job_id] * n, pa.string()),
        pa.array(positions, pa.int64()),
    ]
    arrays = [c.combine_chunks() if isinstance(c, pa.ChunkedArray) else c for c in staged]
    return pa.RecordBatch.from_arrays([*arrays, *extra], schema=schema)


@dataclass
class Tally:
    """Counts of one write-back and its errors grouped by status code."""

    sent: int = 0
    succeeded: int = 0
    created: int = 0
    failed: int = 0
    unprocessed: int = 0
    invalid: int = 0
    jobs: list[str] = field(default_factory=list)
    codes: Counter[str] = field(default_factory=Counter)
    fields: dict[str, Counter[str]] = field(default_factory=dict)
    samples: dict[str, str] = field(default_factory=dict)

    def error(self, code: str, message: str, fields: list[str]) -> None:
        """Count one refused record."""
        self.codes[code] += 1
        self.fields.setdefault(code, Counter()).update(fields)
        self.samples.setdefault(code, message[:300])

    def errors_by_code(self) -> list[dict[str, Any]]:
        """``[{code, count, fields, sample}]``, most frequent first (for the report and audit tables)."""
        return [
            {
                "code": code,
                "count": count,
                "fields": [f for f, _ in self.fields.get(code, Counter()).most_common(5)],
                "sample": self.samples.get(code, ""),
            }
            for code, count in self.codes.most_common()
        ]


def manifest_key(manifest: Manifest) -> str:
    """What identifies the staged data loaded: the checksums of its files."""
    return hashlib.sha256(json.dumps([f.sha256 for f in manifest.files] + [manifest.rows]).encode()).hexdigest()


class InsertLedger:
    """Which intervals of a dataset a write-back started / committed (one small JSON file per interval)."""

    def __init__(self, partition: Partition) -> None:
        # a migration stages under {root}/_migrations/{run}/: its ledger is the pipeline's, so a second
        # migration run cannot insert an interval again either
        root = partition.root.split("/_migrations/", 1)[0]
        self.location: Location = open_location(root, partition.conn_id).child(
            partition.tenant, partition.pipeline, partition.dataset, LEDGER_FOLDER, f"{partition.window.key}.json"
        )

    def claim(self, force: bool = False) -> bool:
        """Claim the interval for an insert (a file created exclusively beside the entry), so two inserts of
        one interval started at once cannot both send. False when it is claimed already. Local staging only:
        on object storage the entry written before the first upload is the guard."""
        if not self.location.is_local:
            return True
        import os

        path = self.location.path + ".claim"
        self.location.makedirs_parent()
        if force:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        os.close(fd)
        return True

    def release(self) -> None:
        """Give up this insert's claim (it was refused before sending anything), so a rerun may claim it."""
        if self.location.is_local:
            import os

            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.location.path + ".claim")

    def read(self) -> dict[str, Any] | None:
        """The interval's entry, if any."""
        try:
            return dict(json.loads(self.location.read_text()))
        except FileNotFoundError:
            return None

    def write(self, entry: dict[str, Any]) -> None:
        """Replace the interval's entry (one write: a rename locally, one upload on object storage)."""
        self.location.makedirs_parent()
        self.location.write_text(json.dumps({**entry, "at": dt.datetime.now(dt.UTC).isoformat()}, indent=2))
