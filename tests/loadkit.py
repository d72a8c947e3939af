"""A small pipeline for exactly-once tests: a SQLite source table, a SQL target, and child processes
that run the real stages and can be paused or SIGKILLed at chosen points.

The child script wraps two functions of :mod:`bulksync.stages` *in the child only* (the code under
test is unchanged): the staging reader, to pause after the first batch is in the target's
transaction (``pause_in_copy``), and the load report writer, which runs right after the load's
commit (``pause_after_commit``: a worker lost between the commit and the task's success).
"""

from __future__ import annotations

import atexit
import datetime as dt
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml

ROOT = Path(__file__).resolve().parents[1]
UTC = dt.UTC
DAY1 = (dt.datetime(2026, 1, 1, tzinfo=UTC), dt.datetime(2026, 1, 2, tzinfo=UTC))
DAY2 = (dt.datetime(2026, 1, 2, tzinfo=UTC), dt.datetime(2026, 1, 3, tzinfo=UTC))


def source_rows(n: int, day: int, version: str = "v1", start_id: int = 1) -> list[tuple[Any, ...]]:
    """``n`` rows changed on 2026-01-``day`` (ids from ``start_id``); ``version`` marks an edit."""
    base = dt.datetime(2026, 1, day, tzinfo=UTC)
    return [
        (i, f"name {i} {version}", (base + dt.timedelta(seconds=(i * 7) % 86_000)).strftime("%Y-%m-%d %H:%M:%S"))
        for i in range(start_id, start_id + n)
    ]


def write_source(path: Path, rows: list[tuple[Any, ...]]) -> None:
    """(Re)write the source table ``accounts`` of the SQLite source database."""
    con = sqlite3.connect(path)
    with con:
        con.execute("DROP TABLE IF EXISTS accounts")
        con.execute("CREATE TABLE accounts (id BIGINT NOT NULL, name TEXT, updated_at TIMESTAMP NOT NULL)")
        con.executemany("INSERT INTO accounts VALUES (?, ?, ?)", rows)
    con.close()


def spec_dict(target_kind: str, target_conn: str, mode: str, table: str = "accounts") -> dict[str, Any]:
    """A pipeline spec: the SQLite ``accounts`` table, incremental on ``updated_at``, into ``table``."""
    target: dict[str, Any] = {"kind": target_kind, "conn_id": target_conn, "table": table, "mode": mode}
    if mode == "merge":
        target["keys"] = ["id"]
    if mode == "interval":
        target["interval_column"] = "updated_at"
    return {
        "tenant": "acme",
        "pipeline": "exact",
        "start_date": "2026-01-01",
        "datasets": [
            {
                "name": "accounts",
                "source": {
                    "kind": "sql",
                    "conn_id": "test_source",
                    "options": {
                        "table": "accounts",
                        "incremental": True,
                        "cursor_field": "updated_at",
                        "batch_size": 500,
                    },
                },
                "target": target,
            }
        ],
    }


def write_spec(folder: Path, data: dict[str, Any]) -> Path:
    path = folder / "exact.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


CHILD = textwrap.dedent("""
    import sys, time, json, pathlib, datetime as dt
    from bulksync import stages
    from bulksync.spec.loader import load_spec
    from bulksync.staging.partition import Window

    spec_path, steps, start, end, run_id, flags = sys.argv[1:7]
    flags = pathlib.Path(flags)
    spec = load_spec(spec_path)
    ds = spec.datasets[0]
    ctx = stages.RunContext(run_id=run_id, window=Window(dt.datetime.fromisoformat(start),
                            dt.datetime.fromisoformat(end)), try_number=1)

    def wait_for(name):
        (flags / name).write_text("reached")
        while not (flags / "go").exists():
            time.sleep(0.02)

    if "pause_in_copy" in steps:
        original = stages.iter_batches
        def paused(*args, **kwargs):
            for i, batch in enumerate(original(*args, **kwargs)):
                yield batch
                if i == 0:
                    wait_for("in_copy")
        stages.iter_batches = paused
    if "pause_after_commit" in steps:
        def lost(*args, **kwargs):
            wait_for("committed")
            raise SystemExit("the worker was lost after the commit")
        stages._write_report = lost

    for step in steps.split(","):
        if step in ("extract", "transform", "reconcile"):
            getattr(stages, step)(spec, ds, ctx)
        elif step == "load":
            (flags / "loading").write_text("loading")
            r = stages.load(spec, ds, ctx)
            (flags / "result.json").write_text(json.dumps(r.to_json()))
""")


class Child:
    """A stage runner in its own interpreter (see :data:`CHILD`)."""

    def __init__(
        self,
        spec: Path,
        steps: str,
        window: tuple[dt.datetime, dt.datetime],
        run_id: str,
        flags: Path,
        **env_vars: str,
    ):
        flags.mkdir(parents=True, exist_ok=True)
        self.flags = flags
        path = os.pathsep.join(p for p in (os.environ.get("PYTHONPATH"), str(ROOT)) if p)
        env = {**os.environ, "PYTHONPATH": path, **env_vars}
        args = [str(spec), steps, window[0].isoformat(), window[1].isoformat(), run_id, str(flags)]
        self.proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, *args], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        atexit.register(self._reap)  # a child a failed test left paused must not outlive the test run

    def _reap(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)

    def wait_flag(self, name: str, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while not (self.flags / name).exists():
            if self.proc.poll() is not None:
                raise AssertionError(f"child exited ({self.proc.returncode}) before {name}:\n{self.output()}")
            assert time.monotonic() < deadline, f"child never reached {name}"
            time.sleep(0.02)

    def go(self) -> None:
        (self.flags / "go").write_text("go")

    def kill(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def finish(self, timeout: float = 120) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"child did not finish:\n{self.output()}") from None

    def output(self) -> str:
        if self.proc.poll() is None:
            return "(still running)"
        assert self.proc.stdout is not None
        return self.proc.stdout.read().decode(errors="replace")

    def result(self) -> dict[str, Any]:
        import json

        return dict(json.loads((self.flags / "result.json").read_text()))


def target_rows(url: str, table: str = "accounts") -> list[tuple[Any, ...]]:
    """Every row of the target table (id, name, updated_at as text), ordered by id."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.exec_driver_sql(f"SELECT id, name, updated_at FROM {table} ORDER BY id, name").fetchall()
    finally:
        engine.dispose()
    return [(int(r[0]), r[1], _text_time(r[2])) for r in rows]


def _text_time(v: Any) -> str:
    if isinstance(v, dt.datetime):
        return v.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if v.tzinfo else v.strftime("%Y-%m-%d %H:%M:%S")
    return str(v)[:19]


def in_window(rows: list[tuple[Any, ...]], window: tuple[dt.datetime, dt.datetime]) -> list[tuple[Any, ...]]:
    lo, hi = (w.strftime("%Y-%m-%d %H:%M:%S") for w in window)
    return sorted((r for r in rows if lo <= r[2] < hi), key=lambda r: (r[0], r[1]))


def waiting_for_advisory_lock(url: str) -> int:
    """PostgreSQL: how many sessions wait for an advisory lock right now."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return int(
                conn.exec_driver_sql(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                ).scalar()
                or 0
            )
    finally:
        engine.dispose()
