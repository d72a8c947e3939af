"""The lease of one dataset's interval in the file ledger: one extract at a time claims, reads and archives.

Two runs of one interval at once (a manual rerun beside the scheduled run, a zombie task beside
its Airflow retry, two ``bulksync run`` commands) would otherwise both claim into
``processing/{interval}/``, read each other's files and move them under each other. Before an
extract of a file drop looks at the landing zone it takes the interval's lease, a row of
``bulksync_audit.file_leases`` (SQLite ``bulksync_file_leases``) beside the ledger:

* the **owner** is the run id, the try number, the host and process id and a random token;
* the lease **expires** ``expire_seconds`` after its last heartbeat; a thread of the holder renews it
  every third of that, so a live holder (also a zombie task) keeps it;
* a second run **waits** up to ``wait_seconds`` for the holder to finish, then **refuses** with
  :class:`LeaseHeldError` (transient: Airflow retries later) naming the holder;
* a lease whose holder is gone is taken over at once when the holder ran on this host (its process
  no longer exists), otherwise once it has expired;
* every ledger write and every move in the landing zone under the lease first checks that the lease
  is still this run's (**fencing**): a holder that was frozen past its expiry and lost the lease
  stops with :class:`LeaseLostError` instead of interleaving with the new holder.

Clocks: expiry compares the workers' clocks (UTC); keep them in sync (NTP), as Airflow needs anyway.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from bulksync.errors import TransientError
from bulksync.storage.lock import holder_gone, process_started

log = logging.getLogger(__name__)

POLL_SECONDS = 0.5


class LeaseHeldError(TransientError):
    """Another live run holds the interval's lease (names it); the retry tries again later."""


class LeaseLostError(TransientError):
    """This run lost the interval's lease (it was frozen past the expiry and another run took over)."""


def lease_table(metadata: sa.MetaData, dialect: str) -> sa.Table:
    """The lease table, in the ledger's schema."""
    schema = "bulksync_audit" if dialect == "postgresql" else None
    name = "file_leases" if schema else "bulksync_file_leases"
    return sa.Table(
        name,
        metadata,
        sa.Column("tenant", sa.Text(), primary_key=True),
        sa.Column("pipeline", sa.Text(), primary_key=True),
        sa.Column("dataset", sa.Text(), primary_key=True),
        sa.Column("interval", sa.Text(), primary_key=True),
        sa.Column("token", sa.Text(), nullable=False),
        sa.Column("run_id", sa.Text()),
        sa.Column("try_number", sa.Integer()),
        sa.Column("host", sa.Text()),
        sa.Column("pid", sa.Integer()),
        sa.Column("pid_started", sa.Text(), doc="the holder process's start time (guards against pid reuse)"),
        sa.Column("acquired_at", sa.DateTime(timezone=True)),
        sa.Column("expires_at", sa.DateTime(timezone=True)),
        schema=schema,
    )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    """SQLite returns naive datetimes; they were written in UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=dt.UTC)


@dataclass(frozen=True)
class Holder:
    """Who holds a lease (from its row)."""

    token: str
    run_id: str | None
    try_number: int | None
    host: str | None
    pid: int | None
    pid_started: str | None
    acquired_at: dt.datetime | None
    expires_at: dt.datetime | None

    def describe(self) -> str:
        """``run X (try 2) on host h, process 123, since …, expires …``."""
        tried = f" (try {self.try_number})" if self.try_number else ""
        since = self.acquired_at.isoformat(timespec="seconds") if self.acquired_at else "?"
        until = self.expires_at.isoformat(timespec="seconds") if self.expires_at else "?"
        return f"run {self.run_id}{tried} on host {self.host}, process {self.pid}, since {since}, expires {until}"

    def gone(self, now: dt.datetime) -> str | None:
        """Why the holder no longer counts (expired, or its process on this host is gone), or ``None``."""
        if self.expires_at is None or self.expires_at <= now:
            return "its lease expired"
        if holder_gone(self.host, self.pid, self.pid_started):
            return f"its process {self.pid} on this host is gone"
        return None


class Lease:
    """The lease of one (tenant, pipeline, dataset, interval), held by this process.

    Args:
        engine_of: a callable giving the ledger's SQLAlchemy engine.
        table: the lease table.
        key: ``tenant``, ``pipeline``, ``dataset`` and ``interval``.
        run_id: the run taking the lease.
        try_number: the task try (for messages).
        expire_seconds: how long the lease lasts after the last heartbeat.
        wait_seconds: how long :meth:`acquire` waits for another holder before refusing.
    """

    def __init__(
        self,
        engine_of: Any,
        table: sa.Table,
        key: dict[str, str],
        run_id: str,
        *,
        try_number: int | None = None,
        expire_seconds: float = 120,
        wait_seconds: float = 600,
        where: str = "",
    ) -> None:
        self._engine_of = engine_of
        self.table = table
        self.key = key
        self.run_id = run_id
        self.try_number = try_number
        self.expire_seconds = expire_seconds
        self.wait_seconds = wait_seconds
        self.where = where
        self.token = uuid.uuid4().hex
        self.held = False
        self.lost: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _mine(self) -> Any:
        c = self.table.c
        return sa.and_(*(c[k] == v for k, v in self.key.items()))

    def _row(self, now: dt.datetime) -> dict[str, Any]:
        pid = os.getpid()
        return {
            "token": self.token,
            "run_id": self.run_id,
            "try_number": self.try_number,
            "host": socket.gethostname(),
            "pid": pid,
            "pid_started": process_started(pid),
            "acquired_at": now,
            "expires_at": now + dt.timedelta(seconds=self.expire_seconds),
        }

    def describe(self) -> str:
        """The lease's key for messages."""
        k = self.key
        return f"interval {k['interval']} of {k['tenant']}/{k['pipeline']}/{k['dataset']}"

    def holder(self) -> Holder | None:
        """The current holder, if any."""
        c = self.table.c
        cols = [c.token, c.run_id, c.try_number, c.host, c.pid, c.pid_started, c.acquired_at, c.expires_at]
        with self._engine_of().connect() as conn:
            row = conn.execute(sa.select(*cols).where(self._mine())).first()
        if row is None:
            return None
        m = dict(row._mapping)
        m["acquired_at"], m["expires_at"] = _utc(m["acquired_at"]), _utc(m["expires_at"])
        return Holder(**m)

    def acquire(self) -> None:
        """Take the lease: at once when free, gone or expired; else wait up to ``wait_seconds``.

        Raises:
            LeaseHeldError: another live run still holds it after ``wait_seconds``.
        """
        started = time.monotonic()
        logged = False
        while True:
            now = _now()
            holder = self.holder()
            if holder is None:
                if self._insert(now):
                    break
                continue
            if holder.token == self.token:
                break
            why = holder.gone(now)
            if why is not None:
                if self._take_over(holder.token, now):
                    log.warning(
                        "took over the file-drop lease of %s from %s: %s; files it claimed are read again",
                        self.describe(),
                        holder.describe(),
                        why,
                    )
                    break
                continue
            waited = time.monotonic() - started
            if waited >= self.wait_seconds:
                raise LeaseHeldError(
                    f"another run is extracting {self.describe()} from {self.where or 'the landing zone'}: "
                    f"{holder.describe()}. This run waited {waited:.0f}s (options.lease.wait_seconds) and stops "
                    "without touching any file; it is retried later. If that run is truly dead on another "
                    "host, its lease expires by itself at the time above"
                )
            if not logged:
                log.info("waiting for %s, held by %s", self.describe(), holder.describe())
                logged = True
            time.sleep(min(POLL_SECONDS, max(0.05, self.wait_seconds - waited)))
        self.held = True
        self.lost = None
        self._start_heartbeat()
        log.info("file-drop lease of %s taken by run %s (expires after %.0fs)", self.describe(), self.run_id,
                 self.expire_seconds)  # fmt: skip

    def _insert(self, now: dt.datetime) -> bool:
        try:
            with self._engine_of().begin() as conn:
                conn.execute(self.table.insert().values(**self.key, **self._row(now)))
        except sa.exc.IntegrityError:
            return False  # another run inserted it first
        return True

    def _take_over(self, old_token: str, now: dt.datetime) -> bool:
        with self._engine_of().begin() as conn:
            done = conn.execute(
                self.table.update().where(self._mine() & (self.table.c.token == old_token)).values(**self._row(now))
            )
        return bool(done.rowcount)  # 0: someone else took it over between our look and our update

    def _start_heartbeat(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._beat, name=f"lease-{self.key['interval']}", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        every = max(0.2, self.expire_seconds / 3)
        while not self._stop.wait(every):
            try:
                if not self.renew():
                    return
            except Exception as exc:  # noqa: BLE001 - a failed heartbeat is retried; fencing catches a lost lease
                log.warning("renewing the lease of %s failed (%s); retrying", self.describe(), type(exc).__name__)

    def renew(self) -> bool:
        """Extend the lease; ``False`` (and :attr:`lost` set) when it is no longer this run's."""
        c = self.table.c
        with self._engine_of().begin() as conn:
            done = conn.execute(
                self.table.update()
                .where(self._mine() & (c.token == self.token))
                .values(expires_at=_now() + dt.timedelta(seconds=self.expire_seconds))
            )
        if not done.rowcount:
            self.lost = "another run took it over"
            log.error("the lease of %s was taken over by another run; this run stops", self.describe())
            return False
        return True

    def check(self, conn: Any = None) -> None:
        """Fence: raise unless this process still holds the lease.

        Inside ``conn``'s transaction the check is an update of the lease row (it renews it), so the
        row stays locked until that transaction commits: a takeover cannot slip in between the check
        and the ledger write it guards (PostgreSQL row lock, SQLite write lock).

        Raises:
            LeaseLostError: another run holds it now.
        """
        if not self.held:
            return
        c = self.table.c
        fence = (
            self.table.update()
            .where(self._mine() & (c.token == self.token))
            .values(expires_at=_now() + dt.timedelta(seconds=self.expire_seconds))
        )
        if conn is None:
            with self._engine_of().begin() as own:
                held = bool(own.execute(fence).rowcount)
        else:
            held = bool(conn.execute(fence).rowcount)
        if not held or self.lost:
            self.lost = self.lost or "another run took it over"
            raise LeaseLostError(
                f"this run ({self.run_id}) lost the file-drop lease of {self.describe()}: {self.lost} while this "
                "process was stalled past the lease's expiry. It stops without changing the ledger or moving files; "
                "the retry replays the interval"
            )

    def release(self) -> None:
        """Give the lease back (only if still this run's)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if not self.held:
            return
        self.held = False
        try:
            with self._engine_of().begin() as conn:
                conn.execute(self.table.delete().where(self._mine() & (self.table.c.token == self.token)))
        except Exception as exc:  # noqa: BLE001 - it expires anyway
            log.warning("could not release the lease of %s (%s); it expires by itself", self.describe(), exc)
            return
        log.info("file-drop lease of %s released by run %s", self.describe(), self.run_id)
