"""End to end: `airflow dags test` runs the demo pipeline; the whole warehouse equals the sources.

Real Airflow (SQLite metadata in a temporary AIRFLOW_HOME), real DAG file, real specs. The expected
tables are computed independently from the sources with the standard library (sqlite3, csv,
hashlib), then compared row by row and column by column. Running the same interval twice must
leave every table identical (full-table checksum).
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import hashlib
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.airflow_env import airflow_env

SALT = "e2e-salt-0123456789abcdef"
LOGICAL = "2026-01-02T02:00:00+00:00"
WINDOW = ("2026-01-01 02:00:00", "2026-01-02 02:00:00")
D = decimal.Decimal


@pytest.fixture(scope="module")
def demo_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    home = tmp_path_factory.mktemp("e2e")
    local = home / ".local"
    env = airflow_env(
        home,
        {
            "AIRFLOW_CONN_ACME_CRM": f"sqlite:///{local}/demo/crm.db",
            "AIRFLOW_CONN_ACME_WAREHOUSE": f"sqlite:///{local}/demo/warehouse.db",
            "AIRFLOW_VAR_BULKSYNC_PII_SALT": SALT,
        },
    )
    bindir = Path(sys.executable).parent
    _run([str(bindir / "bulksync"), "demo", "prepare", "--root", str(local / "demo")], env, home)
    _run([str(bindir / "airflow"), "db", "migrate"], env, home)
    env["HOME_DIR"] = str(home)
    return env


def _run(cmd: list[str], env: dict[str, str], cwd: Path) -> str:
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{cmd} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return proc.stdout + proc.stderr


def dags_test(env: dict[str, str]) -> str:
    out = _run(
        [str(Path(sys.executable).parent / "airflow"), "dags", "test", "acme__nightly", LOGICAL],
        env,
        Path(env["HOME_DIR"]),
    )
    assert "state=success" in out and "state=failed" not in out
    return out


def warehouse(env: dict[str, str], sql: str) -> list[tuple[Any, ...]]:
    con = sqlite3.connect(Path(env["HOME_DIR"]) / ".local/demo/warehouse.db")
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def expected_accounts(env: dict[str, str]) -> list[tuple[Any, ...]]:
    con = sqlite3.connect(Path(env["HOME_DIR"]) / ".local/demo/crm.db")
    status = {"A": "active", "I": "inactive", "P": "prospect"}
    rows = []
    for r in con.execute(
        "SELECT account_id, acct_name, industry, country, status, annual_revenue, employees, "
        "contact_email, created_at, updated_at FROM accounts ORDER BY account_id"
    ):
        aid, name, industry, country, st, revenue, employees, email, created, updated = r
        rows.append(
            (
                aid,
                name.strip(),
                industry,
                country,
                status.get(st, st),
                f"{D(str(revenue)):.2f}",
                employees,
                hashlib.sha256((SALT + email).encode()).hexdigest(),
                created,
                updated,
            )
        )
    con.close()
    return rows


def expected_orders(env: dict[str, str]) -> list[tuple[Any, ...]]:
    latest: dict[int, tuple[str, int, dict[str, str]]] = {}
    n = 0
    for path in sorted((Path(env["HOME_DIR"]) / ".local/demo/drops/orders").glob("orders_*.csv")):
        with open(path, newline="", encoding="utf-8") as f:
            for rec in csv.DictReader(f):
                if not 1 <= int(rec["quantity"]) <= 30:  # quarantined by the orders suite
                    n += 1
                    continue
                key = int(rec["order_id"])
                cand = (rec["updated_at"], n, rec)
                if key not in latest or cand[:2] >= latest[key][:2]:
                    latest[key] = cand
                n += 1

    def ts(v: str) -> str:
        return dt.datetime.fromisoformat(v.replace("Z", "+00:00")).strftime("%Y-%m-%d %H:%M:%S.%fZ")

    out = []
    for key in sorted(latest):
        rec = latest[key][2]
        if rec["status"] == "test":
            continue
        price = D(rec["unit_price"])
        out.append(
            (
                key,
                int(rec["account_id"]),
                ts(rec["ordered_at"]),
                rec["status"],
                int(rec["quantity"]),
                f"{price:.2f}",
                rec["note"] or None,
                ts(rec["updated_at"]),
                str(int(rec["quantity"]) * price),
            )
        )
    return out


ACCOUNT_COLS = (
    "account_id, account_name, industry, country, status, annual_revenue, employees, contact_email, "
    "created_at, updated_at"
)
ORDER_COLS = "order_id, account_id, ordered_at, status, quantity, unit_price, note, updated_at, line_total"


def test_demo_pipeline_loads_exactly_the_sources_and_is_idempotent(demo_env: dict[str, str]) -> None:
    dags_test(demo_env)
    accounts = warehouse(demo_env, f"SELECT {ACCOUNT_COLS} FROM accounts ORDER BY account_id")
    assert accounts == expected_accounts(demo_env)

    orders = warehouse(demo_env, f"SELECT {ORDER_COLS} FROM orders ORDER BY order_id")
    assert orders == expected_orders(demo_env)

    changes = warehouse(
        demo_env, "SELECT account_id, status, annual_revenue, updated_at FROM account_changes ORDER BY account_id"
    )
    crm = sqlite3.connect(Path(demo_env["HOME_DIR"]) / ".local/demo/crm.db")
    want = crm.execute(
        "SELECT account_id, status, annual_revenue, updated_at FROM accounts "
        "WHERE updated_at >= ? AND updated_at < ? ORDER BY account_id",
        WINDOW,
    ).fetchall()
    assert len(want) > 100
    assert changes == [(a, s, f"{D(str(r)):.2f}", u) for a, s, r, u in want]

    staging = Path(demo_env["HOME_DIR"]) / ".local/staging/acme/nightly"
    assert sorted(p.name for p in (staging / "orders").iterdir()) == ["20260101T020000Z_20260102T020000Z"]

    def checksum() -> dict[str, str]:
        out = {}
        for table, cols, key in (
            ("accounts", ACCOUNT_COLS, "account_id"),
            ("orders", ORDER_COLS, "order_id"),
            ("account_changes", "account_id, status, annual_revenue, updated_at", "account_id"),
        ):
            rows = warehouse(demo_env, f"SELECT {cols} FROM {table} ORDER BY {key}")
            out[table] = hashlib.sha256(repr(rows).encode()).hexdigest()
        return out

    first = checksum()
    dags_test(demo_env)  # the same interval again
    assert checksum() == first
    assert warehouse(demo_env, "SELECT count(DISTINCT _bulksync_run_id) FROM orders") == [(1,)]  # all rows re-merged


def test_bulksync_summary_reports_each_dataset(demo_env: dict[str, str]) -> None:
    dags_test(demo_env)
    out = _run(
        [str(Path(sys.executable).parent / "bulksync"), "summary", "acme__nightly"],
        demo_env,
        Path(demo_env["HOME_DIR"]),
    )
    orders = len(expected_orders(demo_env))
    quarantined = 0
    for path in (Path(demo_env["HOME_DIR"]) / ".local/demo/drops/orders").glob("*.csv"):
        with open(path, newline="", encoding="utf-8") as f:
            quarantined += sum(1 for r in csv.DictReader(f) if not 1 <= int(r["quantity"]) <= 30)
    assert quarantined > 100
    rejected = 4_500 - quarantined - orders  # re-sent orders deduplicated, test orders filtered
    assert rejected > 100
    assert (
        f"source not reported  ·  staged 4,500  ·  quarantined {quarantined:,}  ·  rejected by transforms "
        f"{rejected:,}  ·  loaded {orders:,} (merge: "  # inserted or updated: the module ran the night before
    ) in out
    assert "s)  ·  quality quarantined\n" in out  # on the dataset's first line
    assert (
        "source 2,000  ·  staged 2,000  ·  quarantined 0  ·  rejected by transforms 0  ·  loaded 2,000 (merge: "
        in out
    )
    assert "acme/nightly/orders/20260101T020000Z_20260102T020000Z" in out
