"""End to end: `airflow dags test acme__api` against the HubSpot, Graph and Stripe stand-ins.

Real Airflow (SQLite metadata in a temporary home), the real DAG file and spec
(dags/pipelines/acme__api.yaml), the stand-ins served over HTTPS by this test process. The
warehouse tables are compared with the stand-ins' own rows: the contacts and customers of the
run's data interval (archived / deleted ones removed), every live Entra ID user.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import subprocess
import sys
from pathlib import Path

from bulksync.sandbox.apis.hubspot import HubSpotStandIn
from bulksync.sandbox.apis.msgraph import GraphStandIn
from bulksync.sandbox.apis.stripe import StripeStandIn
from bulksync.sandbox.asgi import StandInConfig
from tests.e2e.airflow_env import airflow_env

LOGICAL = "2026-01-02T02:00:00+00:00"
START, END = dt.datetime(2026, 1, 1, 2, tzinfo=dt.UTC), dt.datetime(2026, 1, 2, 2, tzinfo=dt.UTC)


def _run(cmd: list[str], env: dict[str, str], cwd: Path) -> str:
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"{cmd} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return proc.stdout + proc.stderr


def test_airflow_dags_test_of_the_api_pipeline(tmp_path: Path) -> None:
    cfg = {"records": 300, "workdir": None}
    hs = HubSpotStandIn(StandInConfig(**cfg, counts={"contacts": 1800})).start()  # type: ignore[arg-type]
    graph = GraphStandIn(StandInConfig(**cfg)).start()  # type: ignore[arg-type]
    stripe = StripeStandIn(StandInConfig(**cfg, counts={"customers": 1800})).start()  # type: ignore[arg-type]
    try:
        now = dt.datetime(2026, 1, 1, 20, tzinfo=dt.UTC)
        hs.tables["contacts"].delete("100001700", now)
        graph.tables["users"].delete(graph.tables["users"].make(5)["id"], now)
        stripe.tables["customers"].delete("cus_00000000001750", now)
        local = tmp_path / ".local"
        env = airflow_env(
            tmp_path,
            {
                "AIRFLOW_CONN_ACME_HUBSPOT": hs.connection_json(),
                "AIRFLOW_CONN_ACME_MSGRAPH": graph.connection_json(),
                "AIRFLOW_CONN_ACME_STRIPE": stripe.connection_json(),
                "AIRFLOW_CONN_ACME_WAREHOUSE": f"sqlite:///{local}/demo/warehouse.db",
                "AIRFLOW_CONN_ACME_CRM": f"sqlite:///{local}/demo/crm.db",
                "AIRFLOW_CONN_ACME_AS400": f"sqlite:///{local}/demo/as400.db",
                "BULKSYNC_TOKEN_DIR": str(tmp_path / "tokens"),
            },
        )
        (local / "demo").mkdir(parents=True)
        bindir = Path(sys.executable).parent
        _run([str(bindir / "airflow"), "db", "migrate"], env, tmp_path)
        for name in ("hubspot", "msgraph", "stripe"):
            _run([str(bindir / "airflow"), "pools", "set", f"api__acme_{name}", "2", name], env, tmp_path)
        out = _run([str(bindir / "airflow"), "dags", "test", "acme__api", LOGICAL], env, tmp_path)
        assert "state=success" in out and "state=failed" not in out
        con = sqlite3.connect(local / "demo" / "warehouse.db")
        contacts = dict(con.execute("SELECT id, email FROM hubspot_contacts").fetchall())
        users = dict(con.execute("SELECT id, mail FROM entra_users").fetchall())
        customers = dict(con.execute("SELECT id, email FROM stripe_customers").fetchall())
        con.close()
        assert contacts == {
            r["id"]: r["email"] for r in hs.records("contacts") if r["deleted"] is None and START <= r["updated"] < END
        }
        assert "100001700" not in contacts and len(contacts) == 1320 - 1  # 22 h of one change a minute
        assert users == {r["id"]: r["mail"] for r in graph.records("users") if r["deleted"] is None}
        assert len(users) == 299
        assert customers == {
            r["id"]: r["email"]
            for r in stripe.records("customers")
            if r["deleted"] is None and START <= r["created"] < END
        }
        assert len(customers) == 1320 - 1
    finally:
        for s in (hs, graph, stripe):
            s.stop()
