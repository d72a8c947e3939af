"""Start one :mod:`worker` subprocess per case and collect its JSON result."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from typing import Any

from benchcfg import BENCH_DIR, LOG_DIR, REPO_DIR, RESULTS_DIR, subprocess_env

log = logging.getLogger(__name__)


class BenchError(RuntimeError):
    """A case subprocess failed; the message names its log file."""


def _tail(path: Any, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return ""


def run_case(case: str, params: dict[str, Any], *, tag: str) -> dict[str, Any]:
    """Run ``case`` in a fresh interpreter; return its result plus ``wall_seconds`` and ``log``.

    Raises:
        BenchError: the subprocess exited non-zero (the tail of its log is in the message).
    """
    env = subprocess_env()
    out, log_path = RESULTS_DIR / f"{tag}.json", LOG_DIR / f"{tag}.log"
    out.unlink(missing_ok=True)
    cmd = [sys.executable, str(BENCH_DIR / "worker.py"), case, json.dumps(params), str(out)]
    log.info("running %s (%s)", tag, case)
    started = time.perf_counter()
    with open(log_path, "w", encoding="utf-8") as f:
        proc = subprocess.run(cmd, env=env, cwd=REPO_DIR, stdout=f, stderr=subprocess.STDOUT, check=False)
    wall = time.perf_counter() - started
    if proc.returncode != 0 or not out.exists():
        raise BenchError(f"case {tag} failed with exit code {proc.returncode}; log {log_path}:\n{_tail(log_path)}")
    result: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    result.update({"case": case, "tag": tag, "wall_seconds": wall, "log": str(log_path)})
    rows, seconds = result.get("rows", 0), result.get("seconds", 0.0)
    log.info("%s: %s rows in %.2fs (%.0f rows/s), peak RSS %.0f MiB (process wall %.1fs)", tag, rows, seconds,
             rows / seconds if seconds else 0.0, result.get("peak_rss_mib", 0.0), wall)
    return result
