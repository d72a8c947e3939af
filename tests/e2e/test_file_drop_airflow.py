"""A file_drop pipeline in real Airflow: ``airflow dags test`` runs wait (FileDropSensor) → extract → transform →
load → reconcile; the good file loads, the bad one is quarantined, the ledger records both.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bulksync.factory.dag_files import sync_dag_files
from tests.conftest import ROOT
from tests.file_drop_corpus import COLUMNS, csv_text, write

LOGICAL = "2026-01-02T02:00:00+00:00"


@pytest.fixture(scope="module")
def airflow_env(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, str], Path]:
    home = tmp_path_factory.mktemp("e2e_drop")
    local = home / ".local"
    dags = home / "dags"
    (dags / "pipelines").mkdir(parents=True)
    landing = home / "landing"
    landing.mkdir()
    spec = {
        "tenant": "acme",
        "pipeline": "e2edrop",
        "schedule": "0 2 * * *",
        "start_date": "2026-01-01",
        "datasets": [
            {
                "name": "orders",
                "source": {
                    "kind": "file_drop",
                    "options": {
                        "landing": str(landing),
                        "pattern": "orders_*.csv",
                        "columns": COLUMNS,
                        "arrival": {"mode": "trigger"},
                        "wait": {"enabled": True, "deadline_minutes": 10_000_000, "poke_interval_seconds": 5},
                    },
                },
                "target": {"kind": "sqlite", "conn_id": "e2e_wh", "table": "orders", "mode": "append"},
            }
        ],
    }
    (dags / "pipelines" / "acme__e2edrop.yaml").write_text(yaml.safe_dump(spec), encoding="utf-8")
    sync_dag_files(dags / "pipelines")  # one DAG file per spec
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "BULKSYNC"))}
    env.update(
        {
            "AIRFLOW_HOME": str(local / "airflow"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{local}/airflow/airflow.db",
            "BULKSYNC_HOME": str(home),
            "BULKSYNC_SPECS_DIR": str(dags / "pipelines"),
            "BULKSYNC_REPORTS_ROOT": str(local / "reports"),
            "BULKSYNC_STAGING_ROOT": str(local / "staging"),
            "AIRFLOW_CONN_E2E_WH": f"sqlite:///{home}/warehouse.db",
        }
    )
    (local / "airflow").mkdir(parents=True)
    airflow = str(Path(sys.executable).parent / "airflow")
    proc = subprocess.run([airflow, "db", "migrate"], env=env, cwd=home, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return env, home


def test_dags_test_waits_claims_loads_and_quarantines(airflow_env: tuple[dict[str, str], Path]) -> None:
    env, home = airflow_env
    landing = home / "landing"
    write(landing / "orders_1.csv", csv_text([(1, "Anna", "10.50"), (2, "Bob", "-3.00")]))
    write(landing / "orders_1.csv.done", "")
    write(landing / "orders_2.csv", "id,name,amount\n3,x,not-a-number\n")
    write(landing / "orders_2.csv.done", "")
    write(landing / "orders_3.csv", csv_text([(4, "late", "1.00")]))  # no trigger yet: stays

    airflow = str(Path(sys.executable).parent / "airflow")
    proc = subprocess.run(
        [airflow, "dags", "test", "acme__e2edrop", LOGICAL],
        env=env,
        cwd=home,
        capture_output=True,
        text=True,
        timeout=900,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert re.search(r"DagRun Finished: dag_id=acme__e2edrop, .*state=success", out), out[-3000:]
    for task in ("orders.wait", "orders.extract", "orders.load", "orders.reconcile"):
        assert task in out

    con = sqlite3.connect(home / "warehouse.db")
    rows = con.execute("SELECT id, name, amount FROM orders ORDER BY id").fetchall()
    ledger = con.execute("SELECT file_name, status, reason, rows FROM bulksync_files ORDER BY file_name").fetchall()
    con.close()
    assert rows == [(1, "Anna", "10.50"), (2, "Bob", "-3.00")]
    assert ledger == [("orders_1.csv", "loaded", None, 2), ("orders_2.csv", "quarantined", "bad_value", None)]
    reason = json.loads((landing / "quarantine" / "orders_2.csv.reason.json").read_text(encoding="utf-8"))
    assert "orders_2.csv, line 2, column 'amount': value 'not-a-number'" in reason["message"]
    assert (landing / "orders_3.csv").exists()
