"""End to end: the ad-hoc migration DAG run by real Airflow with the form's Params (``dags test -c``).

Real Airflow (SQLite metadata in a temporary AIRFLOW_HOME), the project's dags folder, the demo
sources (SQLite CRM database, CSV drops) and a SQLite warehouse. Expected tables are computed
independently from the sources (see ``test_demo_pipeline``) and compared whole.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import sqlite3
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.airflow_env import airflow_env
from tests.e2e.test_demo_pipeline import ACCOUNT_COLS, ORDER_COLS, SALT, expected_accounts, expected_orders

BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    home = tmp_path_factory.mktemp("migration")
    local = home / ".local"
    env = airflow_env(
        home,
        {
            "AIRFLOW_CONN_ACME_CRM": f"sqlite:///{local}/demo/crm.db",
            "AIRFLOW_CONN_ACME_WAREHOUSE": f"sqlite:///{local}/demo/warehouse.db",
            "AIRFLOW_VAR_BULKSYNC_PII_SALT": SALT,
            "HOME_DIR": str(home),
        },
    )
    _run([str(BIN / "bulksync"), "demo", "prepare", "--root", str(local / "demo")], env)
    _run([str(BIN / "airflow"), "db", "migrate"], env)
    return env


def _run(cmd: list[str], env: dict[str, str], check: bool = True) -> str:
    proc = subprocess.run(cmd, env=env, cwd=env["HOME_DIR"], capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    if check:
        assert proc.returncode == 0, f"{cmd} failed:\n" + "\n".join(out.splitlines()[-60:])
    return out


def migrate(env: dict[str, str], conf: dict[str, Any], ok: bool = True) -> str:
    out = _run([str(BIN / "airflow"), "dags", "test", "bulksync__migration", "-c", json.dumps(conf)], env, check=False)
    state = re.findall(r"DagRun Finished: .*?state=(\w+)", out)
    assert state == ["success" if ok else "failed"], "\n".join(out.splitlines()[-60:])
    return out


def warehouse(env: dict[str, str], sql: str) -> list[tuple[Any, ...]]:
    con = sqlite3.connect(Path(env["HOME_DIR"]) / ".local/demo/warehouse.db")
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def crm(env: dict[str, str], sql: str, *args: Any) -> list[tuple[Any, ...]]:
    con = sqlite3.connect(Path(env["HOME_DIR"]) / ".local/demo/crm.db")
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


def tables(env: dict[str, str]) -> set[str]:
    return {r[0] for r in warehouse(env, "SELECT name FROM sqlite_master WHERE type = 'table'")}


def migrations_staging(env: dict[str, str]) -> Path:
    return Path(env["HOME_DIR"]) / ".local/staging/_migrations"


def test_full_history_replace_in_yearly_slices_loads_every_row(env: dict[str, str]) -> None:
    out = migrate(
        env,
        {
            "pipeline": "acme__nightly",
            "datasets": ["account_changes"],
            "full_history": True,
            "slice": "year",
            "load_mode": "replace",
            "target_suffix": "_mig",
        },
    )
    got = warehouse(env, "SELECT account_id, status, annual_revenue, updated_at FROM account_changes_mig ORDER BY 1")
    want = crm(env, "SELECT account_id, status, annual_revenue, updated_at FROM accounts ORDER BY 1")
    assert len(want) == 2000
    assert got == [(a, s, f"{Decimal(str(r)):.2f}", u) for a, s, r, u in want]
    # mapped tasks, one per slice: before the pipeline's start date, 2026 so far, and an open end
    slices = sorted(p.name for p in migrations_staging(env).glob("*/acme/nightly/account_changes/*"))
    today = dt.datetime.now(dt.UTC).strftime("%Y%m%dT000000Z")
    assert slices == sorted(["open_20260101T000000Z", f"20260101T000000Z_{today}", f"{today}_open"]), slices
    assert len(re.findall(r"migrated account_changes slice \d/3", out)) == 3
    assert "account_changes" not in tables(env), "the pipeline's own table is untouched"


def test_merge_into_an_overridden_table_equals_the_sources(env: dict[str, str]) -> None:
    conf = {
        "pipeline": "acme__nightly",
        "datasets": ["accounts"],
        "from_date": "2025-01-01",
        "to_date": "2026-01-02",
        "load_mode": "merge",
        "target_table": "accounts_copy",
    }
    migrate(env, conf)
    cols = ACCOUNT_COLS
    assert warehouse(env, f"SELECT {cols} FROM accounts_copy ORDER BY account_id") == expected_accounts(env)
    first = warehouse(env, f"SELECT {cols}, _bulksync_run_id FROM accounts_copy ORDER BY account_id")
    assert "accounts" not in tables(env)

    # the orders drops go to <table><suffix>, with the quality gate's quarantine applied as at night
    migrate(env, {**conf, "datasets": ["orders"], "target_table": None, "target_suffix": "_2025"})
    assert warehouse(env, f"SELECT {ORDER_COLS} FROM orders_2025 ORDER BY order_id") == expected_orders(env)

    # the same migration again: merged on the keys, same rows (idempotent)
    migrate(env, conf)
    again = warehouse(env, f"SELECT {cols}, _bulksync_run_id FROM accounts_copy ORDER BY account_id")
    assert [r[:-1] for r in again] == [r[:-1] for r in first]
    assert len({r[-1] for r in again}) == 1 and again[0][-1] != first[0][-1]


def test_dry_run_counts_each_slice_and_loads_nothing(env: dict[str, str]) -> None:
    before = tables(env)
    out = migrate(
        env,
        {
            "pipeline": "acme__nightly",
            "datasets": ["account_changes"],
            "from_date": "2024-01-01",
            "to_date": "2026-01-01",
            "slice": "year",
            "load_mode": "replace",
            "target_suffix": "_dry",
            "dry_run": True,
        },
    )
    counted = dict(re.findall(r"dry run account_changes slice \d/2 (\w+): (\d+) source rows", out))
    want = {
        f"{y}0101T000000Z_{y + 1}0101T000000Z": crm(
            env,
            "SELECT count(*) FROM accounts WHERE updated_at >= ? AND updated_at < ?",
            f"{y}-01-01",
            f"{y + 1}-01-01",
        )[0][0]
        for y in (2024, 2025)
    }
    assert {k: int(v) for k, v in counted.items()} == want
    assert all(v > 0 for v in want.values())
    assert tables(env) == before
    assert not list(migrations_staging(env).glob("*/acme/nightly/account_changes/2024*"))


@pytest.mark.parametrize(
    ("conf", "message"),
    [
        (
            {"from_date": "2026-02-01", "to_date": "2026-01-01"},
            "Param from_date=2026-02-01 is after to_date=2026-01-01",
        ),
        (
            {"datasets": ["orders", "invoices"]},
            "Param datasets names 'invoices', not in pipeline acme__nightly",
        ),
    ],
)
def test_bad_params_fail_the_first_task_before_any_extraction(
    env: dict[str, str], conf: dict[str, Any], message: str
) -> None:
    full = {"pipeline": "acme__nightly", "from_date": "2025-01-01", "to_date": "2025-02-01", **conf}
    out = migrate(env, full, ok=False)
    assert message in out
    failed = re.findall(r"\[DAG TEST\] starting task_id=(\w+)", out)
    assert failed == ["check_params"], failed
    assert "extract acme__nightly" not in out
