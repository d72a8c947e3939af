"""An exclusive lock held in the storage itself: a leased blob on Azure, ``flock`` on a local file.

The lake target uses two: one per (table, interval) for a whole load, so two loads of one interval
never interleave (a second waits, then refuses), and one per table for the short commit phase, so
two intervals writing into one partition folder never lose each other's marker entries.

On Azure the lock is a blob lease (the service's own mutual exclusion: 60 s, renewed by a thread
every 20 s); the lock blob's metadata names the holder's host and process, so a holder killed on
this host is broken at once, and one killed elsewhere lapses within a minute. On a local folder it
is ``fcntl.flock`` on a lock file; the kernel drops it when the holder dies.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from types import TracebackType
from typing import Any

from bulksync.errors import TransientError
from bulksync.storage.location import Location

log = logging.getLogger(__name__)

LEASE_SECONDS = 60
POLL_SECONDS = 0.5


def process_started(pid: int) -> str | None:
    """The start time of a process (``/proc/<pid>/stat`` field 22), or ``None`` when it is gone or a zombie."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None
    except OSError:  # no /proc here: the process exists if a signal 0 reaches it
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return "?"
    if fields[0] in ("Z", "X"):  # a zombie process is dead, only not reaped yet
        return None
    return fields[19]


def holder_gone(host: str | None, pid: int | None, started: str | None) -> bool:
    """Whether a holder that ran on this host as ``pid`` (started at ``started``) no longer exists."""
    if not host or host != socket.gethostname() or not pid:
        return False
    now = process_started(pid)
    return now is None or bool(started and now not in ("?", started))


class StorageLockHeldError(TransientError):
    """Another live load holds the lock (the retry tries again later)."""


class StorageLock:
    """An exclusive lock on ``location`` (a lock file or blob, created when missing).

    Args:
        location: the lock's file or blob.
        what: what it protects, for messages.
        wait_seconds: how long :meth:`acquire` waits for another holder.
    """

    def __init__(self, location: Location, what: str, wait_seconds: float = 600) -> None:
        self.location = location
        self.what = what
        self.wait_seconds = wait_seconds
        self._fd: int | None = None
        self._lease: Any = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> StorageLock:
        self.acquire()
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.release()

    def acquire(self, wait: bool = True) -> bool:
        """Take the lock, waiting up to ``wait_seconds`` (or not at all).

        Returns:
            ``False`` when ``wait`` is false and another holder has it.

        Raises:
            StorageLockHeldError: still held by another after ``wait_seconds``.
        """
        started = time.monotonic()
        logged = False
        while not self._try():
            if not wait:
                return False
            if time.monotonic() - started >= self.wait_seconds:
                raise StorageLockHeldError(
                    f"another load holds {self.what} ({self.location.url}); this one waited "
                    f"{self.wait_seconds:.0f}s and stops without writing. It is retried later; a holder that was "
                    f"killed lets go within {LEASE_SECONDS}s"
                )
            if not logged:
                log.info("waiting for %s, held by another load", self.what)
                logged = True
            time.sleep(POLL_SECONDS)
        return True

    def _try(self) -> bool:
        if self.location.is_local:
            import fcntl

            os.makedirs(os.path.dirname(self.location.path), exist_ok=True)
            fd = os.open(self.location.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return False
            self._fd = fd
            return True
        from azure.core import MatchConditions
        from azure.core.exceptions import HttpResponseError, ResourceExistsError

        blob = self._blob()
        with contextlib.suppress(ResourceExistsError):
            blob.upload_blob(b"", overwrite=False)
        props = blob.get_blob_properties()
        me = os.getpid()
        unchanged = MatchConditions.IfNotModified
        try:
            if props.lease.state == "leased":
                meta = props.metadata or {}
                pid = int(meta["pid"]) if str(meta.get("pid", "")).isdigit() else None
                if not holder_gone(meta.get("host"), pid, meta.get("pid_started")):
                    return False
                log.warning("%s was held by process %s on this host, which is gone: breaking its lease", self.what, pid)
                from azure.storage.blob import BlobLeaseClient

                # only while the blob still names the gone holder: not a lease another waiter took meanwhile
                BlobLeaseClient(blob).break_lease(lease_break_period=0, etag=props.etag, match_condition=unchanged)
            # this process's name first, then the lease on condition that nobody wrote the blob since, so
            # a leased lock blob always names its holder: a waiter never takes a live holder that has just
            # taken the lease for the gone process the blob named before (and breaks its lease)
            named = blob.set_blob_metadata(
                {"host": socket.gethostname(), "pid": str(me), "pid_started": process_started(me) or ""},
                etag=props.etag,
                match_condition=unchanged,
            )
            self._lease = blob.acquire_lease(
                lease_duration=LEASE_SECONDS, etag=named["etag"], match_condition=unchanged
            )
        except HttpResponseError as exc:
            if exc.status_code in (409, 412):  # leased meanwhile, or another waiter named itself first
                return False
            raise
        self._stop.clear()
        self._thread = threading.Thread(target=self._renew, name="storage-lock", daemon=True)
        self._thread.start()
        return True

    def _blob(self) -> Any:
        from airflow.providers.microsoft.azure.hooks.wasb import WasbHook

        container, _, name = self.location.path.partition("/")
        return WasbHook(wasb_conn_id=str(self.location.conn_id)).get_conn().get_blob_client(container, name)

    def _renew(self) -> None:
        while not self._stop.wait(LEASE_SECONDS / 3):
            try:
                self._lease.renew()
            except Exception as exc:  # noqa: BLE001 - retried at the next beat; the lease lasts 60 s
                log.warning("renewing the lease of %s failed (%s)", self.what, type(exc).__name__)

    def release(self) -> None:
        """Let go (a no-op when not held)."""
        if self._fd is not None:
            os.close(self._fd)  # drops the flock
            self._fd = None
        if self._lease is not None:
            self._stop.set()
            if self._thread is not None:
                self._thread.join(timeout=5)
                self._thread = None
            with contextlib.suppress(Exception):  # it lapses by itself anyway
                self._lease.release()
            self._lease = None
