"""End to end: the migration DAG writes a pipeline's dataset into Salesforce, on a real scheduler.

Real processes: ``airflow api-server``, ``scheduler`` and ``dag-processor`` (LocalExecutor, a fresh
PostgreSQL metadata database); the project's ``dags/migration.py`` and the write-back demo pipeline
``acme__writeback`` (the demo CRM in SQLite → Salesforce Account, upserted on ``Acme_Id__c``); the
Salesforce sandbox serves the org over HTTPS from this test process, reached by the tasks through the
unmodified client stack. Runs are triggered through the REST API with the form's Params: a dry run
(describe and record checks, nothing written), then the migration. The org's
Accounts are read back and compared with the CRM, computed independently with sqlite3.
"""

from __future__ import annotations

import decimal
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bulksync.sandbox.salesforce import SalesforceSandbox, SandboxConfig
from tests.conftest import ROOT, create_pg_database
from tests.e2e.cluster import Cluster, local_executor_env, local_executor_home

pytestmark = pytest.mark.scheduler

MIGRATION = "bulksync__migration"
CONF = {"pipeline": "acme__writeback", "datasets": ["crm_accounts"], "full_history": True, "slice": "year"}


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cluster, SalesforceSandbox]]:
    home = tmp_path_factory.mktemp("sf-migration")
    dags = local_executor_home(home)
    shutil.copy(ROOT / "dags" / "migration.py", dags / "migration.py")
    shutil.copy(ROOT / "dags" / "pipelines" / "acme__writeback.yaml", dags / "pipelines" / "acme__writeback.yaml")
    sandbox = SalesforceSandbox(SandboxConfig(records_per_object=50, job_seconds=0.1, workdir=home / "sf")).start()
    meta_url, drop_meta = create_pg_database("airflow_e2e_sf_migration")
    env = local_executor_env(
        home,
        meta_url,
        {
            "BULKSYNC_SPECS_DIR": str(dags / "pipelines"),
            "AIRFLOW_CONN_ACME_CRM": f"sqlite:///{home}/demo/crm.db",
            "AIRFLOW_CONN_ACME_SALESFORCE": sandbox.connection_uri(),
        },
    )
    c = Cluster(home, env)
    try:
        c.airflow("db", "migrate")
        c.airflow("pools", "set", "salesforce__acme_salesforce", "4", "ACME's org: concurrent Bulk jobs")
        c.start_core()
        c.wait(f"{MIGRATION} to be parsed", lambda: c.get(f"/api/v2/dags/{MIGRATION}"), 120)
        yield c, sandbox
    finally:
        c.stop()
        sandbox.stop()
        drop_meta()


def trigger(c: Cluster, conf: dict[str, Any]) -> dict[str, Any]:
    run = c.call("POST", f"/api/v2/dags/{MIGRATION}/dagRuns", {"logical_date": None, "conf": conf})
    run_id = run["dag_run_id"]

    def done() -> dict[str, Any] | None:
        body = c.get(f"/api/v2/dags/{MIGRATION}/dagRuns/{run_id}")
        if body and body["state"] == "failed":
            tis = {t["task_id"]: t["state"] for t in c.task_instances(MIGRATION, run_id)}
            raise AssertionError(f"migration run {run_id} failed: {tis}\n{c.failure()}")
        return body if body and body["state"] == "success" else None

    return dict(c.wait(f"migration run {run_id} to succeed", done, 300, every=2))


def crm_accounts(home: Path) -> dict[str, tuple[Any, ...]]:
    con = sqlite3.connect(home / "demo" / "crm.db")
    try:
        rows = con.execute(
            "SELECT account_id, trim(acct_name), industry, annual_revenue, employees FROM accounts"
        ).fetchall()
    finally:
        con.close()

    def revenue(v: Any) -> float | None:  # AnnualRevenue is currency(18,0): Salesforce rounds half up
        return None if v is None else float(decimal.Decimal(str(v)).quantize(decimal.Decimal(1), decimal.ROUND_HALF_UP))

    return {str(a): (name, industry, revenue(rev), emp) for a, name, industry, rev, emp in rows}


def org_accounts(sandbox: SalesforceSandbox) -> dict[str, tuple[Any, ...]]:
    table = sandbox.records("Account", ["Acme_Id__c", "Name", "Industry", "AnnualRevenue", "NumberOfEmployees"])
    return {
        r["Acme_Id__c"]: (r["Name"], r["Industry"], r["AnnualRevenue"], r["NumberOfEmployees"])
        for r in table.to_pylist()
        if r["Acme_Id__c"] is not None
    }


def test_the_migration_dag_writes_into_salesforce(setup: tuple[Cluster, SalesforceSandbox]) -> None:
    c, sandbox = setup
    before = sandbox.store.version
    trigger(c, {**CONF, "dry_run": True})
    assert sandbox.store.version == before and not sandbox.ingest.jobs and org_accounts(sandbox) == {}
    trigger(c, CONF)
    expected = crm_accounts(c.home)
    assert org_accounts(sandbox) == expected and len(expected) > 100
    # (a rerun leaving the org unchanged is shown in tests/integration/test_salesforce_writeback.py)
