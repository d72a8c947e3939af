"""The Target contract and the result of a load."""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import pyarrow as pa

from bulksync.staging.partition import Window
from bulksync.targets.ledger import PartitionRef

BatchSource = Callable[[], Iterator[pa.RecordBatch]]

AUDIT_RUN_ID = "_bulksync_run_id"
AUDIT_LOADED_AT = "_bulksync_loaded_at"
AUDIT_COLUMNS = (AUDIT_RUN_ID, AUDIT_LOADED_AT)


@dataclass
class LoadResult:
    """Counts of one load. ``updated`` rows replaced existing keys (merge); ``deleted`` were removed
    before inserting (replace / interval)."""

    table: str
    mode: str
    rows: int
    inserted: int
    updated: int
    deleted: int
    duration_seconds: float
    created_table: bool = False
    added_columns: tuple[str, ...] = ()
    applied_deletes: int = 0
    """Staged rows that were deletions (``delete_flag`` true): applied, not inserted."""
    already_loaded: bool = False
    """Nothing was written: the load ledger says this committed partition is in the table already
    (or a newer extract of its window is); the counts are those of the load that wrote it."""
    noop_reason: str | None = None
    """Why nothing was written: ``already_loaded`` or ``superseded`` (None when the load wrote)."""
    load_id: str | None = None
    """The ledger's id of the load that wrote these rows (None for targets without a ledger)."""
    replaced_load_id: str | None = None
    """The earlier load of the same window whose rows this one replaced (a new extract of it)."""

    failed: int = 0
    """Write-back targets: records the target system refused (quarantined with its error)."""
    unprocessed: int = 0
    """Write-back targets: records the target system never processed (quarantined; rerun to send them)."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Target-specific details for reports (e.g. Salesforce job ids and errors by status code)."""

    def to_json(self) -> dict[str, Any]:
        """JSON-safe dict, for XCom and reports."""
        d = asdict(self)
        d["added_columns"] = list(self.added_columns)
        d["duration_seconds"] = round(self.duration_seconds, 3)
        return d


class Target(abc.ABC):
    """A system bulksync loads into.

    Args:
        spec: the dataset's parsed ``target`` section.
    """

    kind: str

    def __init__(self, spec: Any) -> None:
        self.spec = spec

    @abc.abstractmethod
    def load(self, batches: BatchSource, schema: pa.Schema, *, window: Window, run_id: str) -> LoadResult:
        """Load every batch in one transaction according to the spec's mode; all or nothing."""

    def load_partition(
        self, batches: BatchSource, schema: pa.Schema, *, window: Window, run_id: str, ref: PartitionRef
    ) -> LoadResult:
        """Load a committed staging partition, exactly once.

        Targets with a load ledger record ``ref`` in the load's own transaction, make a second load
        of the same partition a no-op and let a new extract of the window replace what the previous
        one wrote. The default (targets without a ledger) is :meth:`load`.
        """
        return self.load(batches, schema, window=window, run_id=run_id)

    def bind(self, partition: Any, manifest: Any, run: Any = None) -> None:  # noqa: B027 - optional hook
        """Called before :meth:`load` with the staging partition and manifest being loaded (write-back
        targets quarantine refused records beside the partition)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""
