"""Start one :mod:`worker` subprocess per case and collect its JSON result."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchcfg import BENCH_DIR, LOG_DIR, REPO_DIR, RESULTS_DIR, subprocess_env

log = logging.getLogger(__name__)


QUIET_BUSY = 0.25
"""A case starts once other processes use at most this share of all CPUs (sampled over a second)."""


class Settings:
    """Harness-wide knobs set by ``run.py``."""

    quiet_wait_seconds: float = 300.0


class BenchError(RuntimeError):
    """A case subprocess failed; the message names its log file."""


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return ""


def _cpu_times() -> tuple[int, int]:
    """(total, idle) jiffies of all CPUs from ``/proc/stat``."""
    with open("/proc/stat", encoding="ascii") as f:
        fields = [int(x) for x in f.readline().split()[1:9]]
    return sum(fields), fields[3] + fields[4]


def cpu_busy(sample_seconds: float = 1.0) -> float:
    """Share of all CPUs busy during the next ``sample_seconds``."""
    total0, idle0 = _cpu_times()
    time.sleep(sample_seconds)
    total1, idle1 = _cpu_times()
    return 1.0 - (idle1 - idle0) / (total1 - total0) if total1 > total0 else 0.0


def wait_until_quiet() -> tuple[float, float]:
    """Wait (up to ``Settings.quiet_wait_seconds``) until the machine is idle; return (busy share, seconds waited).

    Other processes on the machine (tests, autovacuum after a big load) would otherwise slow the case.
    """
    started = time.monotonic()
    while True:
        busy = cpu_busy()
        waited = time.monotonic() - started
        if busy <= QUIET_BUSY or waited >= Settings.quiet_wait_seconds:
            if busy > QUIET_BUSY:
                log.warning("machine still busy (%.0f%% CPU) after %.0fs; running anyway", busy * 100, waited)
            return busy, waited
        log.info("machine busy (%.0f%% CPU used by other processes); waiting", busy * 100)
        time.sleep(2.0)


def run_case(case: str, params: dict[str, Any], *, tag: str) -> dict[str, Any]:
    """Run ``case`` in a fresh interpreter; return its result plus ``wall_seconds`` and ``log``.

    Raises:
        BenchError: the subprocess exited non-zero (the tail of its log is in the message).
    """
    env = subprocess_env()
    out, log_path = RESULTS_DIR / f"{tag}.json", LOG_DIR / f"{tag}.log"
    out.unlink(missing_ok=True)
    cmd = [sys.executable, str(BENCH_DIR / "worker.py"), case, json.dumps(params), str(out)]
    os.sync()  # earlier cases' dirty pages must not be written back while this one runs
    busy_before, waited = wait_until_quiet()
    log.info("running %s (%s)", tag, case)
    cpu0 = _cpu_times()
    started = time.perf_counter()
    with open(log_path, "w", encoding="utf-8") as f:
        proc = subprocess.run(cmd, env=env, cwd=REPO_DIR, stdout=f, stderr=subprocess.STDOUT, check=False)
    wall = time.perf_counter() - started
    cpu1 = _cpu_times()
    if proc.returncode != 0 or not out.exists():
        raise BenchError(f"case {tag} failed with exit code {proc.returncode}; log {log_path}:\n{_tail(log_path)}")
    result: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    total = cpu1[0] - cpu0[0]
    result.update(
        {
            "case": case,
            "tag": tag,
            "wall_seconds": wall,
            "log": str(log_path),
            "busy_before": round(busy_before, 3),
            "waited_seconds": round(waited, 1),
            "machine_busy_during": round(1.0 - (cpu1[1] - cpu0[1]) / total, 3) if total > 0 else 0.0,
        }
    )
    rows, seconds = result.get("rows", 0), result.get("seconds", 0.0)
    log.info(
        "%s: %s rows in %.2fs (%.0f rows/s), peak RSS %.0f MiB (process wall %.1fs)",
        tag,
        rows,
        seconds,
        rows / seconds if seconds else 0.0,
        result.get("peak_rss_mib", 0.0),
        wall,
    )
    return result


def run_repeated(
    case: str, params: dict[str, Any], *, tag: str, times: int, before: Callable[[], None] | None = None
) -> dict[str, Any]:
    """Run a case ``times`` times; return the fastest run (noise from other processes only ever slows a
    run down), with every time in ``runs`` and the highest peak RSS of all runs. ``before`` resets state
    before each run."""
    results = []
    for i in range(times):
        if before is not None:
            before()
        results.append(run_case(case, params, tag=tag if times == 1 else f"{tag}_run{i + 1}"))
    best = dict(min(results, key=lambda r: float(r["seconds"])))
    best["runs"] = [round(float(r["seconds"]), 3) for r in results]
    best["peak_rss_mib"] = max(float(r["peak_rss_mib"]) for r in results)
    best["busy_before"] = max(float(r["busy_before"]) for r in results)
    return best
