"""Small builders shared by tests: specs from dicts, windows, batch factories."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa

from bulksync.spec.loader import parse_spec
from bulksync.spec.models import PipelineSpec
from bulksync.staging.partition import Window

DAY = Window(dt.datetime(2026, 1, 1, tzinfo=dt.UTC), dt.datetime(2026, 1, 2, tzinfo=dt.UTC))


def pipeline(datasets: list[dict[str, Any]], **extra: Any) -> PipelineSpec:
    """A valid pipeline spec around the given datasets."""
    return parse_spec(
        {"tenant": "acme", "pipeline": "test", "start_date": "2026-01-01", "datasets": datasets, **extra}, "test.yaml"
    )


def target(kind: str = "postgres", conn_id: str = "test_pg", table: str = "accounts", **extra: Any) -> Any:
    """A parsed target spec."""
    spec = pipeline(
        [
            {
                "name": "d",
                "source": {"kind": "sql", "conn_id": "x", "options": {"table": "t"}},
                "target": {"kind": kind, "conn_id": conn_id, "table": table, **extra},
            }
        ]
    )
    return spec.datasets[0].target


def batches(*tables: pa.Table) -> Callable[[], Iterator[pa.RecordBatch]]:
    """A re-iterable batch source over tables."""

    def gen() -> Iterator[pa.RecordBatch]:
        for t in tables:
            yield from t.to_batches(max_chunksize=3)

    return gen


def kill_child_at_flag(script: str, flag: Path, root: Path, timeout: float) -> None:
    """Run ``script`` in a fresh interpreter and SIGKILL it once it creates ``flag``.

    Fails if the child exits or has not created ``flag`` within ``timeout`` seconds.
    """
    env = {**os.environ, "PYTHONPATH": str(root)}
    proc = subprocess.Popen([sys.executable, "-c", script], env=env, cwd=root, stderr=subprocess.PIPE)
    deadline = time.monotonic() + timeout
    while not flag.exists():
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        assert time.monotonic() < deadline, "the child never reached the kill point"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


def java_double_text(value: float) -> str:
    """Java's ``Double.toString`` (how Salesforce writes numbers in Bulk CSV), via numpy's shortest-digit
    formatting: ``100.0``, ``1234.5``, ``1.2345678E7``, ``1.0E-4``. Checked against a real JVM in
    tests/unit/sandbox/test_sf_java_numbers.py."""
    import numpy as np

    if value == 0:
        return "0.0"
    if 1e-3 <= abs(value) < 1e7:
        text = np.format_float_positional(value, unique=True, trim="0")
        return text + "0" if text.endswith(".") else text
    mantissa, exponent = np.format_float_scientific(value, unique=True, trim="0").split("e")
    mantissa = mantissa + "0" if mantissa.endswith(".") else mantissa
    return f"{mantissa}E{int(exponent)}"
