"""Forcing a replay: ``bulksync files reprocess`` puts a processed or quarantined file back into the landing folder.

The file's accepted ledger rows become ``replaced`` (so an identical file is no longer a duplicate),
its copy from ``archive/`` (or the file itself from ``quarantine/``) goes back into the landing
root under its original name, with a trigger file when the drop uses them; the next run loads it
as a new arrival. It holds the lease of the file's interval (:mod:`.lease`) while it works, so it
never moves a file an extract of that interval is reading.
"""

from __future__ import annotations

import logging
from typing import Any

from bulksync.errors import ConfigurationError
from bulksync.sources.file_drop.ledger import ACCEPTED, FileRecord, Ledger
from bulksync.sources.file_drop.store import open_store
from bulksync.spec.file_drop import FileDropOptions

log = logging.getLogger(__name__)

REPLAYABLE = ("loaded", "staged", "quarantined", "duplicate", "pending")


def drop_options(ds: Any) -> FileDropOptions:
    """The file_drop options of a dataset, or a clear error when it is another kind."""
    if ds.source.kind != "file_drop":
        raise ConfigurationError(f"dataset {ds.name} has a {ds.source.kind} source, not a file_drop")
    return ds.source.options  # type: ignore[no-any-return]


def ledger_for(spec: Any, ds: Any) -> Ledger:
    """The ledger of a file_drop dataset (``ledger_conn_id`` or the target's connection)."""
    opts = drop_options(ds)
    conn_id = opts.ledger_conn_id or getattr(ds.target, "conn_id", None)
    if not conn_id:
        raise ConfigurationError(f"dataset {ds.name}: set source.options.ledger_conn_id")
    return Ledger(conn_id, spec.tenant, spec.pipeline, ds.name)


def reprocess(spec: Any, ds: Any, file_name: str, row_id: int | None = None) -> tuple[FileRecord, str]:
    """Put a file back into the landing folder so the next run loads it again.

    Args:
        spec: the pipeline spec.
        ds: the file_drop dataset.
        file_name: the file's name as it arrived.
        row_id: a ledger row id, when the name has several rows (default: the newest replayable one).

    Returns:
        the ledger row replayed and the file's name in the landing folder.
    """
    opts = drop_options(ds)
    ledger = ledger_for(spec, ds)
    try:
        rows = [r for r in ledger.rows(file_name) if r.status in REPLAYABLE and (row_id is None or r.id == row_id)]
        if not rows:
            raise ConfigurationError(
                f"no processed, quarantined or duplicate file {file_name!r} in the ledger of {spec.dag_id}.{ds.name}"
                + (f" with id {row_id}" if row_id is not None else "")
                + "; see `bulksync files list`"
            )
        row = rows[0]
        store = open_store(opts.landing, ds.source.conn_id)
        if row.interval:  # not while an extract of its interval claims, replays or archives
            ledger.take_lease(
                row.interval,
                "bulksync files reprocess",
                expire_seconds=opts.lease.expire_seconds,
                wait_seconds=opts.lease.wait_seconds,
                where=store.describe(),
            )
        if store.exists(file_name):
            raise ConfigurationError(f"{file_name} is already in the landing folder {store.describe()}; wait for it")
        if not row.location or not store.exists(row.location):
            raise ConfigurationError(f"{file_name} is no longer at {row.location} in {store.describe()}")
        if row.status in ACCEPTED:
            store.copy(row.location, file_name)  # the archive keeps its copy
        else:
            store.move(row.location, file_name)
        ledger.update(row.id, status="replaced", detail=f"reprocess requested; was {row.status}")
        if row.sha256:
            for other in ledger.rows(file_name):
                if other.id != row.id and other.sha256 == row.sha256 and other.status in ACCEPTED:
                    ledger.update(other.id, status="replaced", detail=f"reprocess requested; was {other.status}")
        if opts.arrival.mode == "trigger":
            store.write_text(file_name + opts.arrival.trigger_suffixes[0], "")
        elif opts.arrival.mode == "control_file":
            pattern = opts.arrival.control_pattern or ""
            if "*" not in pattern:
                raise ConfigurationError(f"put a control file matching {pattern!r} listing {file_name} to load it")
            store.write_text(pattern.replace("*", f"reprocess_{row.id}", 1), f"{file_name}|{row.rows or ''}\n")
        log.info("reprocess: %s (ledger row %d, was %s) is back in %s", file_name, row.id, row.status, store.describe())
        return row, file_name
    finally:
        try:
            ledger.release_lease()
        finally:
            ledger.close()
