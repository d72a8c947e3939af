"""Waiting for a drop: is there a complete file yet, and has the deadline passed?

The sensor, its trigger and ``bulksync files`` all call :func:`check`; it only looks (no claims).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from bulksync.errors import DataError
from bulksync.sources.file_drop.landing import Discovery, discover
from bulksync.sources.file_drop.store import open_store
from bulksync.spec.file_drop import FileDropOptions

log = logging.getLogger(__name__)


class DropDeadlineError(DataError):
    """The nightly file did not arrive by its deadline (names folder, pattern and deadline)."""


@dataclass(frozen=True)
class WaitResult:
    """One look at the landing folder."""

    ready: bool
    found: Discovery
    message: str


def deadline(opts: FileDropOptions, interval_end: dt.datetime | None, started: dt.datetime) -> dt.datetime:
    """When waiting gives up: ``deadline_minutes`` after the data interval's end (or after the wait began)."""
    base = interval_end or started
    return base + dt.timedelta(minutes=opts.wait.deadline_minutes)


def check(opts: FileDropOptions, limit: dt.datetime, now: dt.datetime | None = None) -> WaitResult:
    """Whether enough complete files are in the landing folder.

    Raises:
        DropDeadlineError: none (or too few) arrived and ``limit`` has passed.
    """
    now = now or dt.datetime.now(dt.UTC)
    store = open_store(opts.landing)
    found = discover(store, opts, now.timestamp())
    n = len(found.ready)
    patterns = ", ".join(opts.patterns)
    if n >= opts.wait.min_files:
        return WaitResult(True, found, f"{n} complete file(s) matching {patterns} in {store.describe()}")
    message = (
        f"{n} of {opts.wait.min_files} complete file(s) matching {patterns} in {store.describe()} "
        f"(arrival: {opts.arrival.mode}); not complete yet: {found.describe_waiting()}"
    )
    if now >= limit:
        raise DropDeadlineError(
            f"no complete file matching {patterns} arrived in {store.describe()} by the deadline "
            f"{limit.isoformat()} (wait.deadline_minutes after the interval's end); {message}. Ask the client "
            "whether the drop was sent, then clear this task to wait again, or rerun once it arrives"
        )
    log.info("waiting: %s; deadline %s", message, limit.isoformat())
    return WaitResult(False, found, message)
