"""Helpers of the file-drop exactly-once tests: a spec, drops, and runs in real child processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from bulksync.staging.partition import Window
from tests.file_drop_corpus import COLUMNS, csv_text, query, write
from tests.helpers import pipeline

ROOT = Path(__file__).resolve().parents[1]
STAGES = ["extract", "transform", "load", "reconcile"]
_CHILDREN: list[subprocess.Popen[str]] = []


def reap() -> None:
    """SIGKILL every child :func:`spawn` started that still runs (a failed test leaves paused ones)."""
    while _CHILDREN:
        proc = _CHILDREN.pop()
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


def drop_dataset(landing: str, *, mode: str = "merge", lease: dict[str, Any] | None = None, **options: Any) -> Any:
    """The raw spec of one file_drop dataset ``orders`` into PostgreSQL ``orders`` (connection ``test_pg``)."""
    opts = {
        "landing": landing,
        "pattern": "orders_*.csv",
        "arrival": {"mode": "trigger"},
        "columns": COLUMNS,
        "primary_key": ["id"],
        **({"lease": lease} if lease else {}),
        **options,
    }
    target = {"kind": "postgres", "conn_id": "test_pg", "table": "orders", "mode": mode}
    if mode == "merge":
        target["keys"] = ["id"]
    return {"name": "orders", "source": {"kind": "file_drop", "options": opts}, "target": target}


def drop_spec(landing: str, **kwargs: Any) -> Any:
    """A pipeline ``acme/drops`` of :func:`drop_dataset`."""
    return pipeline([drop_dataset(landing, **kwargs)], pipeline="drops")


def drop(landing: Path, name: str, rows: list[tuple[Any, ...]]) -> None:
    """A data file and its trigger."""
    write(landing / name, csv_text(rows))
    write(landing / f"{name}.done", "")


def many(landing: Path, n: int, per_file: int = 3) -> list[tuple[int, str, str]]:
    """``n`` files ``orders_000.csv`` … of ``per_file`` rows each; all their rows."""
    rows = []
    for i in range(n):
        part = [(i * per_file + j, f"n{i}-{j}", f"{i}.{j:02d}") for j in range(per_file)]
        drop(landing, f"orders_{i:03d}.csv", part)
        rows += part
    return rows


def spawn(
    spec: Any, window: Window, run_id: str, *, try_number: int = 1, stages: list[str] | None = None,
    pause: dict[str, Any] | None = None,
) -> subprocess.Popen[str]:  # fmt: skip
    """A run of ``stages`` in a fresh interpreter (environment inherited: connections, staging root)."""
    args = {
        "spec": spec.model_dump(mode="json"),
        "window": [window.start.isoformat() if window.start else None, window.end.isoformat() if window.end else None],
        "run_id": run_id,
        "try_number": try_number,
        "stages": stages or ["extract"],
        "pause": pause,
    }
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    log = tempfile.NamedTemporaryFile("w+", prefix=f"bulksync-{run_id}-", suffix=".log", delete=False)  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.file_drop_child", json.dumps(args)],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    log.close()
    proc.log_path = log.name  # type: ignore[attr-defined]
    _CHILDREN.append(proc)
    return proc


def output(proc: subprocess.Popen[str]) -> str:
    """What the child logged so far (the Task SDK's logging writes to stdout)."""
    return Path(proc.log_path).read_text(errors="replace")  # type: ignore[attr-defined]


def wait_log(proc: subprocess.Popen[str], *texts: str, timeout: float = 120) -> str:
    """Wait until the child logs one of ``texts`` (or ends); the text seen."""
    deadline = time.monotonic() + timeout
    while True:
        got = output(proc)
        for t in texts:
            if t in got:
                return t
        if proc.poll() is not None:
            return ""
        assert time.monotonic() < deadline, f"the child never logged any of {texts}"
        time.sleep(0.05)


def wait_flag(proc: subprocess.Popen[str], flag: Path, timeout: float = 120) -> None:
    """Wait until the child reaches its pause point."""
    deadline = time.monotonic() + timeout
    while not flag.exists():
        if proc.poll() is not None:
            raise AssertionError(f"the child ended before its pause point: {output(proc)[-4000:]}")
        assert time.monotonic() < deadline, "the child never reached its pause point"
        time.sleep(0.02)


def kill(proc: subprocess.Popen[str]) -> None:
    """SIGKILL a child and reap it."""
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    log = getattr(proc, "log_path", None)
    if log and Path(log).parent == Path(tempfile.gettempdir()):  # only the log spawn() made
        Path(log).unlink(missing_ok=True)


def result(proc: subprocess.Popen[str], timeout: float = 180) -> dict[str, Any]:
    """The child's JSON result (fails on a crash that is not a bulksync error)."""
    proc.wait(timeout=timeout)
    out = output(proc)
    if Path(proc.log_path).parent == Path(tempfile.gettempdir()):  # type: ignore[attr-defined]
        Path(proc.log_path).unlink(missing_ok=True)  # type: ignore[attr-defined]
    lines = [line for line in out.splitlines() if line.startswith("{")]
    assert lines, f"exit {proc.returncode}, no result; output:\n{out[-4000:]}"
    data: dict[str, Any] = json.loads(lines[-1])
    data["stderr"] = out
    return data


def table(pg_url: str) -> list[tuple[Any, ...]]:
    """The target table, sorted."""
    return query(pg_url, "SELECT id, name, amount FROM orders ORDER BY id")


def expected(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Rows as the table holds them."""
    return sorted((i, n, Decimal(a)) for i, n, a in rows)


def ledger(pg_url: str) -> list[tuple[Any, ...]]:
    """``(file, status, interval, rows, reason, location)`` of every ledger row, by file name then id
    (none when the ledger was never created)."""
    if not query(pg_url, "SELECT 1 FROM pg_tables WHERE schemaname = 'bulksync_audit' AND tablename = 'files'"):
        return []
    return query(
        pg_url,
        "SELECT file_name, status, interval, rows, reason, location FROM bulksync_audit.files ORDER BY file_name, id",
    )


def leases(pg_url: str) -> list[tuple[Any, ...]]:
    """The lease rows left."""
    return query(pg_url, "SELECT interval, run_id FROM bulksync_audit.file_leases")
