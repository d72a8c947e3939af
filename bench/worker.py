"""Run one benchmark case in this (fresh) process and write its result as JSON.

Usage: ``worker.py CASE PARAMS_JSON RESULT_PATH``. The parent (:mod:`harness`) starts one worker
per case, so the peak RSS reported here (``ru_maxrss`` of this process and of any child it waited
for, e.g. ``psql``) belongs to that case alone.
"""

from __future__ import annotations

import json
import logging
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

Case = Callable[[dict[str, Any]], dict[str, Any]]


def _cases() -> dict[str, Case]:
    import cases_csv
    import cases_pg
    import cases_sqlite

    return {**cases_csv.CASES, **cases_pg.CASES, **cases_sqlite.CASES}


def peak_rss_mib() -> float:
    """Peak resident set size of this process or of any waited-for child, in MiB (Linux: KiB)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024


def cpu_seconds() -> float:
    """User + system CPU time of this process and its waited-for children (imports included)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


class Clock:
    """Elapsed and CPU seconds of the measured work: ``with Clock() as clock: ...``."""

    def __enter__(self) -> Clock:
        self._wall, self._cpu = time.perf_counter(), cpu_seconds()
        self.started = self._wall
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._wall
        self.cpu = cpu_seconds() - self._cpu

    def figures(self) -> dict[str, float]:
        """``seconds`` and ``cpu_timed`` for a case result."""
        return {"seconds": self.seconds, "cpu_timed": round(self.cpu, 2)}


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    case, params, out = argv[0], json.loads(argv[1]), Path(argv[2])
    func = _cases()[case]
    result = func(params)
    result["peak_rss_mib"] = round(peak_rss_mib(), 1)
    result["peak_rss_self_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    result["cpu_seconds"] = round(cpu_seconds(), 2)
    out.write_text(json.dumps(result, indent=2, default=str), encoding="utf-8")
    return 0


def current_rss_mib() -> float:
    """Resident set size now (taken after imports, before the measured work starts)."""
    return round(psutil.Process().memory_info().rss / 2**20, 1)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
