"""Start one :mod:`worker` subprocess per case and collect its JSON result.

The machine may be shared (tests, an Airflow scheduler ...). Before a case the harness waits until
the CPUs are idle; while it runs, it samples the CPU time of every process, so it can tell the
case's own work (its process tree and PostgreSQL) from other processes. A run during which other
processes took a noticeable share of the machine is repeated (``Settings.retries`` times at most).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from benchcfg import BENCH_DIR, LOG_DIR, REPO_DIR, RESULTS_DIR, subprocess_env

log = logging.getLogger(__name__)

Result = dict[str, Any]

QUIET_BUSY = 0.25
"""A case starts once the CPUs are at most this busy (share of all CPUs, sampled over a second)."""

FOREIGN_LIMIT = 0.10
"""A run counts as disturbed when other processes used more than this share of the machine meanwhile."""

OWN_PROCESS_NAMES = {"postgres"}
"""Processes whose CPU belongs to the case (the database server loading the rows)."""


class Settings:
    """Harness-wide knobs set by ``run.py``."""

    quiet_wait_seconds: float = 300.0
    retries: int = 2


class BenchError(RuntimeError):
    """A case subprocess failed; the message names its log file."""


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return ""


def cpu_busy(sample_seconds: float = 1.0) -> float:
    """Share of all CPUs busy during the next ``sample_seconds``."""
    return float(psutil.cpu_percent(interval=sample_seconds)) / 100.0


def wait_until_quiet() -> tuple[float, float]:
    """Wait (up to ``Settings.quiet_wait_seconds``) until the CPUs are idle; return (busy share, seconds waited)."""
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


@dataclass
class CpuLedger:
    """CPU seconds of every process seen while a case runs, split into the case's own and the others'."""

    root_pid: int
    first: dict[tuple[int, float], float] = field(default_factory=dict)
    last: dict[tuple[int, float], float] = field(default_factory=dict)
    own: set[tuple[int, float]] = field(default_factory=set)
    started: float = field(default_factory=time.time)

    def sample(self) -> None:
        """Record the CPU time of every process now."""
        for p in psutil.process_iter(["pid", "ppid", "name", "create_time", "cpu_times"]):
            info = p.info
            times = info.get("cpu_times")
            if times is None or info.get("create_time") is None:
                continue
            key = (int(info["pid"]), float(info["create_time"]))
            cpu = float(times.user + times.system)
            if key not in self.first:
                # a process born during the case used all its CPU during the case
                self.first[key] = 0.0 if key[1] >= self.started else cpu
            self.last[key] = cpu
            if (
                key[0] in (self.root_pid, os.getpid())
                or info.get("name") in OWN_PROCESS_NAMES
                or any(k[0] == info.get("ppid") for k in self.own)
            ):
                self.own.add(key)

    def foreign_seconds(self) -> float:
        """CPU seconds other processes used between the first and the last sample."""
        return sum(self.last[k] - self.first[k] for k in self.last if k not in self.own)


def _run_monitored(cmd: list[str], log_path: Path) -> tuple[int, float, float]:
    """Run the worker, sampling all processes twice a second; return (exit code, wall seconds, foreign CPU s)."""
    env = subprocess_env()  # creates bench/.data/{logs,results,...}: a fresh clone has none of them
    log_path.parent.mkdir(parents=True, exist_ok=True)
    ledger = CpuLedger(root_pid=-1)
    ledger.sample()
    started = time.perf_counter()
    with open(log_path, "w", encoding="utf-8") as f:
        proc = subprocess.Popen(cmd, env=env, cwd=REPO_DIR, stdout=f, stderr=subprocess.STDOUT)
        ledger.root_pid = proc.pid
        while proc.poll() is None:
            ledger.sample()
            time.sleep(0.5)
    wall = time.perf_counter() - started
    ledger.sample()
    return proc.returncode, wall, ledger.foreign_seconds()


def run_case(case: str, params: dict[str, Any], *, tag: str) -> Result:
    """Run ``case`` in a fresh interpreter; return its result plus timing context.

    Raises:
        BenchError: the subprocess exited non-zero (the tail of its log is in the message).
    """
    out, log_path = RESULTS_DIR / f"{tag}.json", LOG_DIR / f"{tag}.log"
    out.unlink(missing_ok=True)
    cmd = [sys.executable, str(BENCH_DIR / "worker.py"), case, json.dumps(params), str(out)]
    os.sync()  # earlier cases' dirty pages must not be written back while this one runs
    busy_before, waited = wait_until_quiet()
    log.info("running %s (%s)", tag, case)
    code, wall, foreign = _run_monitored(cmd, log_path)
    if code != 0 or not out.exists():
        raise BenchError(f"case {tag} failed with exit code {code}; log {log_path}:\n{_tail(log_path)}")
    result: Result = json.loads(out.read_text(encoding="utf-8"))
    result.update(
        {
            "case": case,
            "tag": tag,
            "wall_seconds": wall,
            "log": str(log_path),
            "busy_before": round(busy_before, 3),
            "waited_seconds": round(waited, 1),
            "foreign_cpu_seconds": round(foreign, 2),
            "foreign_share": round(foreign / (wall * (psutil.cpu_count() or 1)), 3) if wall else 0.0,
        }
    )
    out.write_text(json.dumps(result, indent=2, default=str), encoding="utf-8")
    rows, seconds = result.get("rows", 0), result.get("seconds", 0.0)
    log.info(
        "%s: %s rows in %.2fs (%.0f rows/s), peak RSS %.0f MiB, other processes %.0f%% of the machine",
        tag,
        rows,
        seconds,
        rows / seconds if seconds else 0.0,
        result.get("peak_rss_mib", 0.0),
        result["foreign_share"] * 100,
    )
    return result


@dataclass
class Job:
    """One case to run. ``key`` names it in the results; ``before`` resets state before each run;
    ``retry`` says whether a disturbed run may simply be run again (``before`` runs again first)."""

    key: str
    case: str
    params: dict[str, Any]
    before: Callable[[], None] | None = None
    retry: bool = True


def run_job(job: Job, tag: str) -> Result:
    """Run a job once, again (up to ``Settings.retries`` times) while other processes disturbed it; return
    the least disturbed run, with ``attempts``."""
    attempts: list[Result] = []
    while True:
        if job.before is not None:
            job.before()
        n = len(attempts)
        attempts.append(run_case(job.case, job.params, tag=tag if n == 0 else f"{tag}_retry{n}"))
        disturbed = attempts[-1]["foreign_share"] > FOREIGN_LIMIT
        if not disturbed or not job.retry or n >= Settings.retries:
            break
        log.warning(
            "%s was disturbed by other processes (%.0f%% of the machine); running it again",
            tag,
            attempts[-1]["foreign_share"] * 100,
        )
    best = dict(min(attempts, key=lambda r: float(r["foreign_share"])))
    best["attempts"] = len(attempts)
    return best


def run_interleaved(jobs: list[Job], times: int) -> dict[str, Result]:
    """Run every job ``times`` times, round by round (A B C, A B C ...), so a slow spell of the machine
    hits all of them alike. Per job the fastest run counts (interference only ever slows a run down);
    it carries every time in ``runs`` and the highest peak RSS of all runs."""
    results: dict[str, list[Result]] = {job.key: [] for job in jobs}
    for i in range(times):
        for job in jobs:
            results[job.key].append(run_job(job, job.key if times == 1 else f"{job.key}_run{i + 1}"))
    return {key: _fastest(runs) for key, runs in results.items()}


def _fastest(results: list[Result]) -> Result:
    best = dict(min(results, key=lambda r: float(r["seconds"])))
    best["runs"] = [round(float(r["seconds"]), 3) for r in results]
    best["peak_rss_mib"] = max(float(r["peak_rss_mib"]) for r in results)
    return best
