"""Small pieces the stand-alone benches (``*_bench.py``) share: each runs its cases in a child interpreter."""

from __future__ import annotations

import os
import platform
import resource
import time
from pathlib import Path
from typing import Any


def peak_rss_mib() -> float:
    """Peak RSS of this process image in MiB: ``VmHWM``, read by the child at the end of its case.

    Not ``ru_maxrss``: Linux carries the parent's high-water mark across fork + exec into the child's
    ``ru_maxrss``, so a child started by a big parent would report the parent's size.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_model() -> str:
    """The CPU's model name from ``/proc/cpuinfo`` (``?`` when not found)."""
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    return next((ln.split(":", 1)[1].strip() for ln in cpuinfo if ln.startswith("model name")), "?")


def fastest(runs: list[dict[str, Any]], key: str = "seconds") -> dict[str, Any]:
    """The run with the lowest ``key`` (the first of equals), with the highest ``peak_rss_mib`` of all runs."""
    best = min(runs, key=lambda r: r[key])
    return {**best, "peak_rss_mib": max(r["peak_rss_mib"] for r in runs)}


def run_on() -> str:
    """``Run <UTC time> on <CPU>, <n> CPUs, Python <version>``: the opening of a RESULTS file."""
    return (
        f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {cpu_model()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}"
    )
