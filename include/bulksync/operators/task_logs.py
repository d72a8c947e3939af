"""What a task log holds: bulksync's own INFO lines, third-party libraries only from WARNING up.

Great Expectations logs about 200 INFO lines ("Skipping registering function …") each time it is
imported, the Azure SDK logs every HTTP request at INFO, and so on: in a task log they bury the
lines an engineer on call needs. :func:`quiet_third_party_loggers` raises the level of the loggers of
the libraries bulksync runs on (``BULKSYNC_THIRD_PARTY_LOG_LEVEL``, default ``WARNING``) and leaves
``bulksync.*`` and Airflow's own loggers alone. :func:`task_process_age` says how long the task
process had been running when the stage started: the time spent on process start, DAG parsing and
imports, which the stage's own timings do not show.
"""

from __future__ import annotations

import logging
import os
import time

# top-level loggers of the libraries bulksync's stages run (their children inherit the level)
THIRD_PARTY = (
    "great_expectations",
    "altair",
    "numexpr",
    "azure",
    "adlfs",
    "fsspec",
    "urllib3",
    "requests",
    "httpx",
    "httpcore",
    "simple_salesforce",
    "sqlalchemy",
    "pyodbc",
    "filelock",
    "asyncio",
    "tzlocal",
    "matplotlib",
)
LEVEL_ENV = "BULKSYNC_THIRD_PARTY_LOG_LEVEL"


class ThirdPartyFilter(logging.Filter):
    """Drop records of the :data:`THIRD_PARTY` loggers below a level (some set their own level at
    import, e.g. ``great_expectations.data_context.types.base`` sets INFO, so levels alone do not do)."""

    def __init__(self, level: int) -> None:
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= self.level:
            return True
        return record.name.split(".", 1)[0] not in THIRD_PARTY


def quiet_third_party_loggers() -> int:
    """Keep third-party records below ``$BULKSYNC_THIRD_PARTY_LOG_LEVEL`` (default WARNING) out of the log.

    Sets the level of the :data:`THIRD_PARTY` loggers and adds a :class:`ThirdPartyFilter` to the
    root logger's handlers (once). Returns the level.
    """
    name = (os.environ.get(LEVEL_ENV) or "WARNING").upper()
    level = logging.getLevelName(name)
    if not isinstance(level, int):
        level = logging.WARNING
    for logger in THIRD_PARTY:
        logging.getLogger(logger).setLevel(level)
    for handler in logging.getLogger().handlers:
        for f in [f for f in handler.filters if isinstance(f, ThirdPartyFilter)]:
            handler.removeFilter(f)
        handler.addFilter(ThirdPartyFilter(level))
    return level


def task_process_age() -> float | None:
    """Seconds since this process started (``/proc``), or None where that cannot be read."""
    try:
        with open(f"/proc/{os.getpid()}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        start_ticks = int(fields[19])  # field 22 of stat: start time in clock ticks after boot
        with open("/proc/uptime", encoding="ascii") as f:
            uptime = float(f.read().split()[0])
        return max(uptime - start_ticks / os.sysconf("SC_CLK_TCK"), 0.0)
    except (OSError, ValueError, IndexError):
        return None


def elapsed_since(started: float) -> float:
    """Seconds since ``time.monotonic()`` was ``started``."""
    return time.monotonic() - started
