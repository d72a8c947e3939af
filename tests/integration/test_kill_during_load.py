"""A load killed with SIGKILL half-way leaves the target exactly as it was (one transaction)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

LOADER = textwrap.dedent("""
    import sys, time, datetime as dt, pathlib
    import pyarrow as pa
    from tests.helpers import target, DAY
    from bulksync.targets.registry import make_target
    kind, conn_id, marker = sys.argv[1], sys.argv[2], pathlib.Path(sys.argv[3])
    schema = pa.schema([("id", pa.int64()), ("name", pa.string())])
    def batches():
        for i in range(10_000):
            yield pa.record_batch([pa.array(range(i * 1000, (i + 1) * 1000)), pa.array(["new"] * 1000)], schema=schema)
            if i == 20:
                marker.write_text("copying")   # 21,000 rows are inside the transaction now
            if i >= 20:
                time.sleep(0.05)
    tgt = make_target(target(kind, conn_id, "accounts", mode="replace"))
    tgt.load(batches, schema, window=DAY, run_id="killed")
""")


@pytest.mark.parametrize("kind", ["postgres", "sqlite"])
def test_sigkill_during_load_leaves_target_unchanged(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    import pyarrow as pa

    from bulksync.targets.registry import make_target
    from tests.helpers import DAY, batches, target

    conn_id = "test_pg" if kind == "postgres" else "test_sqlite"
    request.getfixturevalue("pg_url" if kind == "postgres" else "sqlite_conn")
    schema = pa.schema([("id", pa.int64()), ("name", pa.string())])
    before = pa.table({"id": pa.array([1, 2, 3], pa.int64()), "name": ["a", "b", "c"]}, schema=schema)
    tgt = make_target(target(kind, conn_id, "accounts", mode="replace"))
    tgt.load(batches(before), schema, window=DAY, run_id="before")

    def snapshot() -> list[tuple[object, ...]]:
        with tgt.hook.connect() as conn:  # type: ignore[attr-defined]
            return [
                tuple(r)
                for r in conn.exec_driver_sql("SELECT id, name, _bulksync_run_id FROM accounts ORDER BY id").fetchall()
            ]

    original = snapshot()
    marker = tmp_path / "marker"
    proc = subprocess.Popen(
        [sys.executable, "-c", LOADER, kind, conn_id, str(marker)],
        cwd=Path(__file__).resolve().parents[2],
        env=os.environ.copy(),
    )
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert proc.poll() is None, "the loader exited before it was killed"
        assert time.monotonic() < deadline, "the loader never started copying"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    time.sleep(0.5)  # PostgreSQL notices the dead backend and rolls back
    assert snapshot() == original == [(1, "a", "before"), (2, "b", "before"), (3, "c", "before")]
    # and the next load works (no leftover lock or table)
    tgt.load(batches(before.slice(0, 1)), schema, window=DAY, run_id="after")
    assert [r[:2] for r in snapshot()] == [(1, "a")]
    if kind == "postgres":
        with tgt.hook.connect() as conn:  # type: ignore[attr-defined]
            assert (
                conn.execute(sa.text("SELECT count(*) FROM pg_tables WHERE tablename LIKE 'bulksync_stage%'")).scalar()
                == 0
            )
    tgt.close()
