"""The demo's file drop: `bulksync demo prepare` drops the fixed-width stock file, the acme__drops spec loads it.

Runs the real spec file through the stages into a real SQLite warehouse; the expected rows are read from
the dropped file independently (plain Python slicing), and a rerun of the night replays the archived file.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bulksync import stages
from bulksync.sandbox.demo import build_stock_drop
from bulksync.spec.loader import load_spec
from bulksync.staging.partition import Window

ROOT = Path(__file__).resolve().parents[2]
NIGHT = Window(dt.datetime(2026, 1, 1, 2, tzinfo=dt.UTC), dt.datetime(2026, 1, 2, 2, tzinfo=dt.UTC))


def expected(path: Path) -> list[tuple[Any, ...]]:
    lines = path.read_bytes().decode("latin-1").split("\r\n")[1:-2]  # header, trailer and the final newline
    return [
        (
            ln[0:12].strip(),
            ln[12:42].strip(),
            int(ln[42:50]),
            str(Decimal(ln[50:60].strip())),
            f"{ln[60:64]}-{ln[64:66]}-{ln[66:68]}",
        )
        for ln in lines
    ]


def run(spec: Any, run_id: str) -> dict[str, Any]:
    ds = spec.datasets[0]
    ctx = stages.RunContext(run_id=run_id, window=NIGHT, try_number=1)
    for stage in (stages.extract, stages.transform, stages.load):
        stage(spec, ds, ctx)
    return stages.reconcile(spec, ds, ctx)


def test_demo_stock_drop_loads_and_reruns_replay_it(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    landing = tmp_path / ".local/demo/landing/stock"
    assert build_stock_drop(landing) == 400
    dropped = landing / "STOCK_20260101.TXT"
    want = expected(dropped)
    env.setenv("AIRFLOW_CONN_ACME_WAREHOUSE", f"sqlite:///{tmp_path / 'warehouse.db'}")
    spec = load_spec(ROOT / "dags" / "pipelines" / "acme__drops.yaml")

    first = run(spec, "night-1")
    build_stock_drop(landing)  # a second `demo prepare`: already archived, nothing dropped again
    assert not dropped.exists()
    again = run(spec, "night-1-rerun")

    con = sqlite3.connect(tmp_path / "warehouse.db")
    got = con.execute("SELECT sku, description, qty, price, counted_on FROM stock ORDER BY sku").fetchall()
    files = con.execute("SELECT file_name, status, rows FROM bulksync_files").fetchall()
    con.close()
    assert len(want) == 400 and got == want
    assert first["status"] == again["status"] == "success" and first["loaded"] == again["loaded"] == 400
    assert files == [("STOCK_20260101.TXT", "loaded", 400)]
