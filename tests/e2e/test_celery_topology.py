"""End to end: the docker-compose Celery topology, run as processes, survives losing a worker mid-load.

No Docker engine runs here, so the compose stack's topology runs as local processes: Redis on
127.0.0.1:6379 as broker (a database number and key prefix of this test only), a PostgreSQL
metadata database and result backend created by the test, ``airflow api-server``, ``scheduler``,
``dag-processor`` and two ``airflow celery worker`` processes with their own hostnames.

1. The demo pipeline runs; the whole warehouse equals the sources and both workers ran tasks.
2. A pipeline loading 300,000 rows into PostgreSQL: while its load is inside ``COPY`` (seen in
   ``pg_stat_activity``), the worker running it is killed with SIGKILL (with its task processes).
   The scheduler notices the lost task, Airflow retries it on the other worker, and the target
   holds every source row exactly once (full-table checksum against the source).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from bulksync.factory.dag_files import sync_dag_files
from tests.conftest import ROOT, create_pg_database, service_missing
from tests.e2e.cluster import Cluster
from tests.e2e.test_demo_pipeline import ACCOUNT_COLS, ORDER_COLS, SALT, expected_accounts, expected_orders

pytestmark = pytest.mark.scheduler

REDIS_DB = 13
BIG_ROWS = 300_000
BIG = {
    "tenant": "ops",
    "pipeline": "bigload",
    "schedule": None,
    "start_date": "2026-01-01",
    "tasks": {"retries": 2, "retry_delay_minutes": 0.05, "retry_exponential_backoff": False},
    "datasets": [
        {
            "name": "ledger",
            "source": {"kind": "sql", "conn_id": "ops_src", "options": {"table": "src_ledger", "primary_key": ["id"]}},
            "target": {"kind": "postgres", "conn_id": "ops_pg", "table": "ledger", "mode": "replace"},
        }
    ],
}


def redis_available() -> bool:
    import socket

    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=2) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    if not redis_available():
        service_missing("Redis is not reachable on 127.0.0.1:6379")
    home = tmp_path_factory.mktemp("celery")
    dags = home / "dags"
    (dags / "pipelines").mkdir(parents=True)
    (home / "plugins").mkdir()
    # In compose each worker is its own container with its own hostname; as processes on one host,
    # each worker reports its Celery hostname as the task instances' hostname instead.
    (home / "pylib").mkdir()
    (home / "pylib/e2e_hostname.py").write_text(
        "import os\n\ndef hostname() -> str:\n    return os.environ.get('E2E_WORKER_NAME') or os.uname().nodename\n",
        encoding="utf-8",
    )
    shutil.copy(ROOT / "dags/pipelines/acme__nightly.yaml", dags / "pipelines/acme__nightly.yaml")
    (dags / "pipelines/ops__bigload.yaml").write_text(yaml.safe_dump(BIG), encoding="utf-8")
    local = home / ".local"
    subprocess.run(
        [str(Path(sys.executable).parent / "bulksync"), "demo", "prepare", "--root", str(local / "demo")],
        check=True,
        capture_output=True,
    )
    meta_url, drop_meta = create_pg_database("airflow_e2e_celery")
    data_url, drop_data = create_pg_database("bulksync_e2e_celery")
    engine = sa.create_engine(data_url)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE src_ledger AS SELECT g AS id, md5(g::text) AS memo, mod(g, 977) * 1.25 AS amount "
            f"FROM generate_series(1, {BIG_ROWS}) g"
        )
        conn.exec_driver_sql("ALTER TABLE src_ledger ADD PRIMARY KEY (id)")
    engine.dispose()
    prefix = f"bulksync_e2e_{uuid.uuid4().hex[:8]}_"
    sync_dag_files(dags / "pipelines")  # one DAG file per spec
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "BULKSYNC"))}
    env.update(
        {
            "AIRFLOW_HOME": str(home / "airflow"),
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": meta_url,
            "AIRFLOW__CELERY__BROKER_URL": f"redis://127.0.0.1:6379/{REDIS_DB}",
            "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + meta_url,
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",
            "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__GLOBAL_KEYPREFIX": prefix,
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(home / "plugins"),
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "e2e_hostname.hostname",
            "PYTHONPATH": str(home / "pylib"),
            "BULKSYNC_HOME": str(home),
            "BULKSYNC_EXPECTATIONS_DIR": str(ROOT / "expectations"),
            "BULKSYNC_STAGING_ROOT": str(local / "staging"),
            "BULKSYNC_REPORTS_ROOT": str(local / "reports"),
            "AIRFLOW_CONN_ACME_CRM": f"sqlite:///{local}/demo/crm.db",
            "AIRFLOW_CONN_ACME_WAREHOUSE": f"sqlite:///{local}/demo/warehouse.db",
            "AIRFLOW_VAR_BULKSYNC_PII_SALT": SALT,
            "AIRFLOW_CONN_OPS_SRC": data_url.replace("postgresql+psycopg://", "postgresql://"),
            "AIRFLOW_CONN_OPS_PG": data_url.replace("postgresql+psycopg://", "postgresql://"),
            "DATA_URL": data_url,
            "HOME_DIR": str(home),
        }
    )
    c = Cluster(home, env)
    try:
        c.airflow("db", "migrate")
        c.start_core()
        for n in (1, 2):
            c.start(
                f"worker{n}",
                "celery",
                "worker",
                "--celery-hostname",
                f"w{n}@bulksync-e2e",
                "--queues",
                "default",
                "--concurrency",
                "2",
                "--skip-serve-logs",
                "--without-mingle",
                "--without-gossip",
                env={"E2E_WORKER_NAME": f"w{n}@bulksync-e2e"},
            )
        for dag_id in ("acme__nightly", "ops__bigload"):
            c.wait(f"{dag_id} to be parsed", lambda d=dag_id: c.get(f"/api/v2/dags/{d}"), 120)  # type: ignore[misc]
        yield c
    finally:
        c.stop()
        _flush_redis(prefix)
        drop_meta()
        drop_data()


def _flush_redis(prefix: str) -> None:
    """Delete this test's keys (and only them) from the Redis database."""
    import redis

    client = redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB)
    keys = list(client.scan_iter(match=f"{prefix}*"))
    if keys:
        client.delete(*keys)


def trigger(c: Cluster, dag_id: str) -> str:
    body = c.call("POST", f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": "2026-01-02T02:00:00Z"})
    return str(body["dag_run_id"])


def wait_run(c: Cluster, dag_id: str, run_id: str, timeout: float) -> None:
    def done() -> bool:
        run = c.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")
        assert run is None or run["state"] != "failed", f"{dag_id} {run_id} failed\n{c.failure()}"
        return bool(run and run["state"] == "success")

    c.wait(f"{dag_id} run {run_id} to succeed", done, timeout, every=2)


def sqlite_rows(c: Cluster, sql: str) -> list[tuple[Any, ...]]:
    import sqlite3

    con = sqlite3.connect(c.home / ".local/demo/warehouse.db")
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_demo_pipeline_runs_on_both_workers(cluster: Cluster) -> None:
    c = cluster
    run_id = trigger(c, "acme__nightly")
    wait_run(c, "acme__nightly", run_id, 240)
    env = {"HOME_DIR": c.env["HOME_DIR"]}
    assert sqlite_rows(c, f"SELECT {ACCOUNT_COLS} FROM accounts ORDER BY account_id") == expected_accounts(env)
    assert sqlite_rows(c, f"SELECT {ORDER_COLS} FROM orders ORDER BY order_id") == expected_orders(env)
    hosts = {ti["hostname"] for ti in c.task_instances("acme__nightly", run_id)}
    assert hosts == {"w1@bulksync-e2e", "w2@bulksync-e2e"}, hosts


def pg(c: Cluster, sql: str) -> list[tuple[Any, ...]]:
    engine = sa.create_engine(c.env["DATA_URL"])
    try:
        with engine.connect() as conn:
            return list(conn.execute(sa.text(sql)).fetchall())
    finally:
        engine.dispose()


def table_checksum(c: Cluster, table: str) -> tuple[int, str]:
    [(count, digest)] = pg(
        c,
        "SELECT count(*), md5(string_agg(id || ':' || memo || ':' || trim_scale(amount::numeric), ',' ORDER BY id)) "
        f"FROM {table}",
    )
    return int(count), str(digest)


def test_a_worker_killed_mid_load_is_replaced_by_the_other_and_the_target_is_exact(cluster: Cluster) -> None:
    c = cluster
    run_id = trigger(c, "ops__bigload")

    def copying() -> str | None:
        rows = pg(c, "SELECT query FROM pg_stat_activity WHERE query ILIKE 'COPY %ledger%' AND state <> 'idle'")
        if not rows:
            return None
        for ti in c.task_instances("ops__bigload", run_id):
            if ti["task_id"] == "ledger.load" and ti["state"] == "running" and ti["hostname"]:
                return str(ti["hostname"])
        return None

    host = c.wait("the load to be inside COPY", copying, 240, every=0.3)
    victim = "worker1" if host.startswith("w1@") else "worker2"
    c.expected_dead = {victim}
    c.kill(victim, signal.SIGKILL)
    survivor = "w2@bulksync-e2e" if victim == "worker1" else "w1@bulksync-e2e"

    wait_run(c, "ops__bigload", run_id, 240)
    [load] = [ti for ti in c.task_instances("ops__bigload", run_id) if ti["task_id"] == "ledger.load"]
    assert load["try_number"] >= 2, load
    assert load["hostname"] == survivor, load
    assert table_checksum(c, "ledger") == table_checksum(c, "src_ledger")
    assert pg(c, "SELECT count(DISTINCT id) FROM ledger") == [(BIG_ROWS,)]
