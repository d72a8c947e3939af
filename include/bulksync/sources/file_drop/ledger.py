"""The file ledger: one row per file that arrived in a drop, making processing exactly once.

The ledger lives in bulksync's own database (the dataset's target connection, or
``options.ledger_conn_id``), never in Airflow's metadata database: PostgreSQL
``bulksync_audit.files``, SQLite ``bulksync_files``.

A file is identified by (tenant, pipeline, dataset, file name, size, sha256). Statuses:

``pending``      read and accepted for an interval; its rows are in an extract not yet committed
``staged``       its rows are in the interval's committed staging partition; the file is archived
``loaded``       the interval's load reconciled (source = staged = loaded + quarantined rows)
``quarantined``  rejected (``reason``, ``detail``); the file is in ``quarantine/`` with a ``.reason.json``
``duplicate``    identical to a file already accepted for another interval; skipped, quarantined
``rejected``     a control file named something unusable (``../x``); nothing was read
``missing``      listed in a control file but never arrived
``replaced``     was ``staged``; ``bulksync files reprocess`` asked for a replay

At most one row per identity is ``pending``, ``staged`` or ``loaded`` (a partial unique index), so of two
concurrent runs only one can accept a file. An extract holds its interval's lease (:mod:`.lease`) while
it claims, reads and archives; every write it makes to the ledger is fenced by that lease.

A file becomes ``loaded`` only when the reconciled partition lists it: :meth:`Ledger.mark_loaded`
takes the ledger row ids the extract's manifest recorded, never "every staged row of the interval".
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from bulksync.hooks.sql import SqlAlchemyHook
from bulksync.sources.file_drop.lease import Lease, lease_table

log = logging.getLogger(__name__)

ACCEPTED = ("pending", "staged", "loaded")


def _table(dialect: str) -> sa.Table:
    md = sa.MetaData()
    schema = "bulksync_audit" if dialect == "postgresql" else None
    name = "files" if schema else "bulksync_files"
    status: Any = sa.column("status")
    return sa.Table(
        name,
        md,
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("tenant", sa.Text(), nullable=False),
        sa.Column("pipeline", sa.Text(), nullable=False),
        sa.Column("dataset", sa.Text(), nullable=False),
        sa.Column("file_name", sa.Text(), nullable=False),
        sa.Column("size", sa.BigInteger()),
        sa.Column("sha256", sa.Text()),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("interval", sa.Text()),
        sa.Column("run_id", sa.Text()),
        sa.Column("rows", sa.BigInteger()),
        sa.Column("expected_rows", sa.BigInteger()),
        sa.Column("reason", sa.Text()),
        sa.Column("detail", sa.Text()),
        sa.Column("location", sa.Text(), doc="where the file is now, relative to the landing folder"),
        sa.Column("arrived_at", sa.DateTime(timezone=True)),
        sa.Column("updated_at", sa.DateTime(timezone=True)),
        sa.Index(
            f"{name}_accepted_once",
            "tenant",
            "pipeline",
            "dataset",
            "file_name",
            "size",
            "sha256",
            unique=True,
            postgresql_where=status.in_(ACCEPTED),
            sqlite_where=status.in_(ACCEPTED),
        ),
        sa.Index(f"{name}_by_interval", "tenant", "pipeline", "dataset", "interval"),
        schema=schema,
    )


@dataclass(frozen=True)
class FileRecord:
    """One ledger row."""

    id: int
    file_name: str
    size: int | None
    sha256: str | None
    status: str
    interval: str | None
    run_id: str | None
    rows: int | None
    expected_rows: int | None
    reason: str | None
    detail: str | None
    location: str | None
    arrived_at: dt.datetime | None
    updated_at: dt.datetime | None

    @classmethod
    def of(cls, row: Any) -> FileRecord:
        """From a result row."""
        m = row._mapping
        return cls(**{k: m[k] for k in cls.__dataclass_fields__})


class Ledger:
    """The ledger of one dataset.

    Args:
        conn_id: Airflow connection of the ledger database.
        tenant: the pipeline's tenant.
        pipeline: the pipeline name.
        dataset: the dataset name.
    """

    def __init__(self, conn_id: str, tenant: str, pipeline: str, dataset: str) -> None:
        self.hook = SqlAlchemyHook(conn_id)
        self.key = {"tenant": tenant, "pipeline": pipeline, "dataset": dataset}
        self.table = _table(self.hook.dialect)
        self.leases = lease_table(self.table.metadata, self.hook.dialect)
        self.lease: Lease | None = None
        self._ready = False

    def take_lease(
        self,
        interval: str,
        run_id: str,
        *,
        try_number: int | None = None,
        expire_seconds: float = 120,
        wait_seconds: float = 600,
        where: str = "",
    ) -> Lease:
        """Take the lease of ``interval`` (waiting for another holder); later writes are fenced by it.

        Raises:
            LeaseHeldError: another live run still holds it after ``wait_seconds``.
        """
        self.ensure()
        lease = Lease(
            lambda: self.hook.engine,
            self.leases,
            {**self.key, "interval": interval},
            run_id,
            try_number=try_number,
            expire_seconds=expire_seconds,
            wait_seconds=wait_seconds,
            where=where,
        )
        lease.acquire()
        self.lease = lease
        return lease

    def leases_held(self) -> list[Any]:
        """The leases currently in the table for this dataset (:class:`~.lease.Holder` with its interval)."""
        from bulksync.sources.file_drop.lease import Holder, _utc

        self.ensure()
        c = self.leases.c
        mine = (
            (c.tenant == self.key["tenant"]) & (c.pipeline == self.key["pipeline"]) & (c.dataset == self.key["dataset"])
        )
        cols = [c.token, c.run_id, c.try_number, c.host, c.pid, c.pid_started, c.acquired_at, c.expires_at]
        with self.hook.connect() as conn:
            rows = conn.execute(sa.select(c.interval, *cols).where(mine).order_by(c.interval)).all()
        out = []
        for r in rows:
            m = dict(r._mapping)
            interval = m.pop("interval")
            m["acquired_at"], m["expires_at"] = _utc(m["acquired_at"]), _utc(m["expires_at"])
            out.append((interval, Holder(**m)))
        return out

    def release_lease(self) -> None:
        """Give back the lease taken by :meth:`take_lease`, if any."""
        if self.lease is not None:
            self.lease.release()
            self.lease = None

    def _fence(self, conn: Any) -> None:
        if self.lease is not None:
            self.lease.check(conn)

    def describe(self) -> str:
        """Where the ledger is, without credentials."""
        return f"{self.table.fullname} in {self.hook.describe()}"

    def _mine(self) -> Any:
        t = self.table.c
        return (
            (t.tenant == self.key["tenant"]) & (t.pipeline == self.key["pipeline"]) & (t.dataset == self.key["dataset"])
        )

    def ensure(self) -> None:
        """Create the ledger table if it does not exist (safe when several runs race to do it)."""
        if self._ready:
            return
        for attempt in (1, 2):
            try:
                with self.hook.connect() as conn, conn.begin():
                    if self.table.schema:
                        conn.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {self.table.schema}")
                    self.table.metadata.create_all(conn, checkfirst=True)
                break
            except (sa.exc.IntegrityError, sa.exc.ProgrammingError):
                if attempt == 2:
                    raise
        self._ready = True

    def _now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    def accept(
        self,
        *,
        file_name: str,
        size: int,
        sha256: str,
        interval: str,
        run_id: str,
        rows: int,
        expected_rows: int | None,
        location: str,
        arrived_at: dt.datetime | None,
        replaying: int | None = None,
    ) -> tuple[bool, FileRecord]:
        """Accept a file read for ``interval``, unless an identical file was accepted already.

        Args:
            replaying: the ledger row of the file when the extract replays it (a rerun, or a retry
                reading a file an earlier try accepted).

        Returns:
            ``(True, row)`` when accepted (a new ``pending`` row, the row being replayed, or this
            interval's ``pending`` row of an earlier try), ``(False, earlier)`` when it is a
            duplicate of ``earlier`` (accepted for another interval, or already staged or loaded for
            this one — a full-window drop receiving the same file again).
        """
        self.ensure()
        t = self.table
        same = (
            self._mine()
            & (t.c.file_name == file_name)
            & (t.c.size == size)
            & (t.c.sha256 == sha256)
            & t.c.status.in_(ACCEPTED)
        )
        values = {
            "rows": rows,
            "expected_rows": expected_rows,
            "run_id": run_id,
            "location": location,
            "updated_at": self._now(),
        }
        try:
            with self.hook.connect() as conn, conn.begin():
                self._fence(conn)
                earlier = conn.execute(sa.select(t).where(same)).first()
                if earlier is not None:
                    rec = FileRecord.of(earlier)
                    if rec.interval != interval or (rec.status != "pending" and rec.id != replaying):
                        return False, rec
                    conn.execute(t.update().where(t.c.id == rec.id).values(**values))
                    return True, rec
                row = {
                    **self.key,
                    **values,
                    "file_name": file_name,
                    "size": size,
                    "sha256": sha256,
                    "status": "pending",
                    "interval": interval,
                    "arrived_at": arrived_at,
                }
                new_id = conn.execute(t.insert().values(**row).returning(t.c.id)).scalar_one()
                got = conn.execute(sa.select(t).where(t.c.id == new_id)).one()
                return True, FileRecord.of(got)
        except sa.exc.IntegrityError:
            # another run accepted the same file between our select and insert
            with self.hook.connect() as conn:
                earlier = conn.execute(sa.select(t).where(same)).first()
            if earlier is None:  # pragma: no cover - the other row vanished again
                raise
            return False, FileRecord.of(earlier)

    def record(self, *, file_name: str, status: str, interval: str, run_id: str, **fields: Any) -> FileRecord:
        """Add a row for a file that is not accepted (quarantined, duplicate, rejected, missing)."""
        self.ensure()
        t = self.table
        row = {
            **self.key,
            "file_name": file_name,
            "status": status,
            "interval": interval,
            "run_id": run_id,
            "updated_at": self._now(),
            **fields,
        }
        with self.hook.connect() as conn, conn.begin():
            self._fence(conn)
            new_id = conn.execute(t.insert().values(**row).returning(t.c.id)).scalar_one()
            return FileRecord.of(conn.execute(sa.select(t).where(t.c.id == new_id)).one())

    def update(self, row_id: int, **fields: Any) -> None:
        """Change fields of one row."""
        self.ensure()
        t = self.table
        with self.hook.connect() as conn, conn.begin():
            self._fence(conn)
            conn.execute(t.update().where(t.c.id == row_id).values(updated_at=self._now(), **fields))

    def mark_staged(self, interval: str, locations: dict[int, str], run_id: str) -> int:
        """Mark this interval's pending rows staged, with their archive locations (one transaction)."""
        self.ensure()
        t = self.table
        now = self._now()
        with self.hook.connect() as conn, conn.begin():
            self._fence(conn)
            for row_id, location in locations.items():
                conn.execute(
                    t.update()
                    .where(t.c.id == row_id)
                    .values(status="staged", location=location, run_id=run_id, updated_at=now)
                )
        return len(locations)

    def mark_loaded(self, interval: str, run_id: str, ids: list[int]) -> int:
        """Mark loaded the rows ``ids`` of ``interval`` that are ``staged`` (the files the reconciled
        partition lists); a staged file of the interval that the partition does not list stays staged."""
        self.ensure()
        t = self.table
        if not ids:
            return 0
        where = self._mine() & (t.c.interval == interval) & (t.c.status == "staged") & t.c.id.in_(ids)
        with self.hook.connect() as conn, conn.begin():
            done = conn.execute(t.update().where(where).values(status="loaded", run_id=run_id, updated_at=self._now()))
        return int(done.rowcount or 0)

    def for_interval(self, interval: str, statuses: tuple[str, ...] = ACCEPTED) -> list[FileRecord]:
        """The rows of an interval with one of ``statuses``, oldest first."""
        self.ensure()
        t = self.table
        query = (
            sa.select(t).where(self._mine() & (t.c.interval == interval) & t.c.status.in_(statuses)).order_by(t.c.id)
        )
        with self.hook.connect() as conn:
            return [FileRecord.of(r) for r in conn.execute(query)]

    def rows(self, file_name: str | None = None, limit: int = 200) -> list[FileRecord]:
        """The latest rows (optionally of one file name), newest first."""
        self.ensure()
        t = self.table
        where = self._mine() if file_name is None else self._mine() & (t.c.file_name == file_name)
        with self.hook.connect() as conn:
            return [
                FileRecord.of(r) for r in conn.execute(sa.select(t).where(where).order_by(t.c.id.desc()).limit(limit))
            ]

    def close(self) -> None:
        """Release pooled connections."""
        if "engine" in self.hook.__dict__:
            self.hook.engine.dispose()
