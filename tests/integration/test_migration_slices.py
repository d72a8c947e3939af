"""Migration slices in-process against the demo CRM (SQLite) into PostgreSQL: replace, rerun, dry run.

The DAG around these functions is run by real Airflow in ``tests/e2e/test_migration_dag.py``; here
the slices run directly so a rerun of one slice and a replace over an existing table are checked
fast, whole table against the source.
"""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from bulksync.migration import MigrationRequest, count_rows, plan, prepare_targets, run_slice
from bulksync.sandbox.demo import prepare
from bulksync.spec.models import PipelineSpec
from tests.helpers import pipeline

CHANGES = {
    "name": "changes",
    "source": {
        "kind": "sql",
        "conn_id": "mig_crm",
        "options": {
            "table": "accounts",
            "columns": ["account_id", "status", "annual_revenue", "updated_at"],
            "incremental": True,
            "cursor_field": "updated_at",
            "primary_key": ["account_id"],
        },
    },
    "target": {"kind": "postgres", "conn_id": "test_pg", "table": "changes", "mode": "merge", "keys": ["account_id"]},
}


@pytest.fixture
def crm(tmp_path: Path, env: pytest.MonkeyPatch) -> Path:
    prepare(tmp_path / "demo")
    env.setenv("AIRFLOW_CONN_MIG_CRM", f"sqlite:///{tmp_path}/demo/crm.db")
    return tmp_path / "demo/crm.db"


def source(crm: Path, start: str = "0000", end: str = "9999") -> list[tuple[Any, ...]]:
    con = sqlite3.connect(crm)
    try:
        rows = con.execute(
            "SELECT account_id, status, annual_revenue, updated_at FROM accounts "
            "WHERE updated_at >= ? AND updated_at < ? ORDER BY account_id",
            (start, end),
        ).fetchall()
    finally:
        con.close()
    return [(a, s, f"{Decimal(str(r)):.2f}", u[:19]) for a, s, r, u in rows]


def target(pg_url: str, table: str) -> list[tuple[Any, ...]]:
    engine = sa.create_engine(pg_url)
    try:
        with engine.connect() as conn:
            rows = conn.exec_driver_sql(
                f"SELECT account_id, status, annual_revenue, updated_at FROM {table} ORDER BY account_id"
            ).fetchall()
    finally:
        engine.dispose()
    return [(a, s, str(r), u.strftime("%Y-%m-%d %H:%M:%S")) for a, s, r, u in rows]


def migrate(specs: list[PipelineSpec], params: dict[str, Any], run_id: str) -> list[dict[str, Any]]:
    req = MigrationRequest.from_params({"pipeline": "acme__test", **params})
    slices = plan(specs, req)
    prepare_targets(specs, req, slices)
    return [run_slice(specs, req, piece, run_id, 1) for piece in slices]


def test_replace_in_slices_rebuilds_an_existing_table_and_a_slice_reruns_alone(crm: Path, pg_url: str) -> None:
    specs = [pipeline([CHANGES])]
    params = {"from_date": "2024-01-01", "to_date": "2026-01-02", "slice": "year", "load_mode": "replace"}
    want = source(crm, "2024-01-01", "2026-01-02")

    # an older, different copy of the table is there: replace empties it first
    first = migrate(specs, {**params, "from_date": "2025-06-01"}, "manual__1")
    assert sum(r["loaded"] for r in first) == len(source(crm, "2025-06-01", "2026-01-02"))
    results = migrate(specs, params, "manual__2")
    assert [r["window"] for r in results] == [
        "20240101T000000Z_20250101T000000Z",
        "20250101T000000Z_20260101T000000Z",
        "20260101T000000Z_20260102T000000Z",
    ]
    assert target(pg_url, "changes") == want

    # rerunning one slice (what clearing one map index does) changes nothing
    req = MigrationRequest.from_params({"pipeline": "acme__test", **params})
    again = run_slice(specs, req, plan(specs, req)[1], "manual__2", 2)
    assert again["deleted"] == again["loaded"] == results[1]["loaded"] > 0
    assert target(pg_url, "changes") == want


def test_merge_and_dry_run(crm: Path, pg_url: str) -> None:
    specs = [pipeline([CHANGES])]
    params = {"from_date": "2025-01-01", "to_date": "2026-01-02", "slice": "month", "target_suffix": "_m"}
    dry = migrate(specs, {**params, "dry_run": True}, "manual__d")
    assert sum(r["source_rows"] for r in dry) == len(source(crm, "2025-01-01", "2026-01-02"))
    engine = sa.create_engine(pg_url)
    assert not sa.inspect(engine).has_table("changes_m")
    engine.dispose()
    migrate(specs, params, "manual__m")
    migrate(specs, params, "manual__m2")  # merged again on the keys: same rows
    assert target(pg_url, "changes_m") == source(crm, "2025-01-01", "2026-01-02")


def test_count_rows_reads_when_the_source_cannot_count(tmp_path: Path, env: pytest.MonkeyPatch) -> None:
    import yaml

    from tests.conftest import ROOT

    prepare(tmp_path / "demo")
    demo = yaml.safe_load((ROOT / "dags/pipelines/acme__nightly.yaml").read_text())
    demo_orders = next(d for d in demo["datasets"] if d["name"] == "orders")
    spec = pipeline(
        [
            {
                "name": "orders",
                "source": {
                    "kind": "csv_files",
                    "options": {
                        "path": str(tmp_path / "demo/drops/orders"),
                        "pattern": "orders_*.csv",
                        "columns": demo_orders["source"]["options"]["columns"],
                    },
                },
                "target": {"kind": "postgres", "conn_id": "w", "table": "orders"},
            }
        ]
    )
    import csv

    records = 0
    for path in (tmp_path / "demo/drops/orders").glob("orders_*.csv"):
        with open(path, newline="", encoding="utf-8") as f:
            records += sum(1 for _ in csv.DictReader(f))
    from bulksync.staging.partition import Window

    assert count_rows(spec.datasets[0], Window()) == records
