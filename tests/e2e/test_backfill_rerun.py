"""End to end: a backfill and reruns through Airflow's REST API on a real scheduler.

Real processes: ``airflow api-server``, ``scheduler`` and ``dag-processor`` with the LocalExecutor
and a PostgreSQL metadata database created for the test; the target is another fresh PostgreSQL
database, the source the demo CRM (SQLite). The test creates a backfill of five daily intervals
(``POST /api/v2/backfills``, two runs at a time), waits, clears two of the runs
(``POST …/dagRuns/{run_id}/clear``), waits again, and checks that the target equals one clean load
of the five intervals computed from the source (full-table checksum), that staging holds exactly
the five committed partitions and that the audit table records every run. A second backfill over
days before the source's first record loads nothing and says so. The pipeline's "not finished
within 3 seconds" deadline makes the scheduler's deadline alerts post ``late`` alerts to a local
HTTP server standing in for Slack (a real socket; only the chat service is not real).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from bulksync.factory.dag_files import sync_dag_files
from tests.conftest import create_pg_database
from tests.e2e.cluster import Cluster, local_executor_env, local_executor_home
from tests.integration.test_migration_slices import source

pytestmark = pytest.mark.scheduler

DAG_ID = "ops__backfill"
FIRST, LAST = "2025-12-28", "2026-01-01"  # logical dates: five daily intervals up to 2026-01-02
EARLY = ("2023-07-01", "2023-07-02")  # the demo CRM's first change is on 2023-07-20
SPEC = {
    "tenant": "ops",
    "pipeline": "backfill",
    "schedule": "@daily",
    "start_date": "2023-01-01",
    "max_active_runs": 2,
    # every run here takes longer than 3 s: each one posts a `late` alert (Airflow DeadlineAlert)
    "alerts": {"webhooks": ["ops_hook"], "finish_within_minutes": 0.05},
    "tasks": {"retries": 1, "retry_delay_minutes": 0.05, "retry_exponential_backoff": False},
    "datasets": [
        {
            "name": "changes",
            "source": {
                "kind": "sql",
                "conn_id": "ops_crm",
                "options": {
                    "table": "accounts",
                    "columns": ["account_id", "status", "annual_revenue", "updated_at"],
                    "incremental": True,
                    "cursor_field": "updated_at",
                },
            },
            "target": {
                "kind": "postgres",
                "conn_id": "ops_pg",
                "table": "account_changes",
                "mode": "interval",
                "interval_column": "updated_at",
            },
        }
    ],
}


ALERTS: list[dict[str, Any]] = []


class _Hook(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        ALERTS.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    hook = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    home = tmp_path_factory.mktemp("backfill")
    dags = local_executor_home(home)
    (dags / "pipelines" / f"{DAG_ID}.yaml").write_text(yaml.safe_dump(SPEC), encoding="utf-8")
    meta_url, drop_meta = create_pg_database("airflow_e2e_backfill")
    target_url, drop_target = create_pg_database("bulksync_e2e_target")
    sync_dag_files(dags / "pipelines")  # one DAG file per spec
    env = local_executor_env(
        home,
        meta_url,
        {
            "AIRFLOW_CONN_OPS_CRM": f"sqlite:///{home}/demo/crm.db",
            "AIRFLOW_CONN_OPS_PG": target_url.replace("postgresql+psycopg://", "postgresql://"),
            "AIRFLOW_CONN_OPS_HOOK": json.dumps(
                {
                    "conn_type": "http",
                    "host": f"http://127.0.0.1:{hook.server_address[1]}/",
                    "extra": {"flavor": "generic"},
                }
            ),
            "TARGET_URL": target_url,
        },
    )
    c = Cluster(home, env)
    try:
        c.airflow("db", "migrate")
        c.start_core()
        c.wait(f"{DAG_ID} to be parsed", lambda: c.get(f"/api/v2/dags/{DAG_ID}"), 120)
        yield c
    finally:
        c.stop()
        hook.shutdown()
        drop_meta()
        drop_target()


def backfill(c: Cluster, first: str, last: str) -> list[dict[str, Any]]:
    """Create a backfill of the logical dates ``first``..``last`` and wait for all its runs to succeed."""
    body = c.call(
        "POST",
        "/api/v2/backfills",
        {
            "dag_id": DAG_ID,
            "from_date": f"{first}T00:00:00Z",
            "to_date": f"{last}T00:00:00Z",
            "max_active_runs": 2,
            "reprocess_behavior": "none",
        },
    )
    backfill_id = body["id"]
    days = (dt.date.fromisoformat(last) - dt.date.fromisoformat(first)).days + 1

    def done() -> list[dict[str, Any]] | None:
        runs = [r for r in c.runs(DAG_ID) if r["run_type"] == "backfill" and first <= r["logical_date"][:10] <= last]
        failed = [r["dag_run_id"] for r in runs if r["state"] == "failed"]
        assert not failed, f"backfill runs failed: {failed}\n{c.failure()}"
        return runs if len(runs) == days and all(r["state"] == "success" for r in runs) else None

    runs = list(c.wait(f"backfill {backfill_id} ({days} runs) to succeed", done, 240, every=2))
    # one backfill per DAG at a time: the scheduler marks it completed shortly after its last run
    c.wait(
        f"backfill {backfill_id} to be marked completed",
        lambda: (c.get(f"/api/v2/backfills/{backfill_id}") or {}).get("completed_at"),
        60,
    )
    return runs


def target_rows(c: Cluster) -> list[tuple[Any, ...]]:
    engine = sa.create_engine(c.env["TARGET_URL"])
    try:
        with engine.connect() as conn:
            rows = conn.exec_driver_sql(
                "SELECT account_id, status, annual_revenue, updated_at FROM account_changes ORDER BY account_id"
            ).fetchall()
    finally:
        engine.dispose()
    return [(a, s, str(r), u.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")) for a, s, r, u in rows]


def expected_rows(c: Cluster, start: str, end: str) -> list[tuple[Any, ...]]:
    """One clean load of [start, end): the source's rows changed in the range, computed with sqlite3."""
    return source(c.home / "demo/crm.db", start, end)


def checksum(rows: list[tuple[Any, ...]]) -> str:
    return hashlib.sha256(repr(rows).encode()).hexdigest()


def audit(c: Cluster) -> dict[str, dict[str, Any]]:
    engine = sa.create_engine(c.env["TARGET_URL"])
    try:
        with engine.connect() as conn:
            rows = conn.exec_driver_sql(
                "SELECT run_id, interval, status, staged, loaded, finished_at FROM bulksync_audit.runs "
                "WHERE pipeline = 'backfill' AND dataset = 'changes'"
            ).fetchall()
    finally:
        engine.dispose()
    return {r[0]: {"interval": r[1], "status": r[2], "staged": r[3], "loaded": r[4], "finished": r[5]} for r in rows}


def partitions(c: Cluster) -> dict[str, dict[str, Any]]:
    root = c.home / "staging/ops/backfill/changes"
    return {
        p.name: json.loads((p / "_manifest.json").read_text())
        for p in sorted(root.iterdir())
        if (p / "_manifest.json").exists()
    }


def test_backfill_then_rerun_two_intervals_equals_one_clean_load(cluster: Cluster) -> None:
    c = cluster
    runs = backfill(c, FIRST, LAST)
    want = expected_rows(c, "2025-12-28", "2026-01-02")
    assert len(want) > 100
    assert target_rows(c) == want
    first_audit = audit(c)
    assert sorted(first_audit) == sorted(r["dag_run_id"] for r in runs)

    cleared_at = dt.datetime.now(dt.UTC)
    rerun = [runs[1]["dag_run_id"], runs[4]["dag_run_id"]]
    for run_id in rerun:
        c.call("POST", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/clear", {"dry_run": False})

    def rerun_done() -> bool:
        states = {r["dag_run_id"]: r for r in c.runs(DAG_ID)}
        for run_id in rerun:
            r = states[run_id]
            assert r["state"] != "failed", f"rerun {run_id} failed\n{c.failure()}"
            if r["state"] != "success" or not r["end_date"] or dt.datetime.fromisoformat(r["end_date"]) < cleared_at:
                return False
        return True

    c.wait("the two cleared runs to succeed again", rerun_done, 180, every=2)

    # the target equals one clean load of the five intervals
    assert checksum(target_rows(c)) == checksum(want)

    # staging: exactly the five intervals, each committed; the rerun ones rewritten by their second try
    parts = partitions(c)
    keys = [
        f"{d:%Y%m%d}T000000Z_{d + dt.timedelta(days=1):%Y%m%d}T000000Z"
        for d in (dt.date(2025, 12, 28) + dt.timedelta(days=i) for i in range(5))
    ]
    assert sorted(parts) == keys
    assert [parts[k]["try_number"] for k in keys] == [1, 2, 1, 1, 2]
    assert sum(m["rows"] for m in parts.values()) == len(want)

    # the audit table records every run, the reruns with their second finish
    records = audit(c)
    assert sorted(records) == sorted(r["dag_run_id"] for r in runs)
    assert sorted(r["interval"] for r in records.values()) == keys
    assert all(r["status"] == "success" for r in records.values())
    assert sum(r["loaded"] for r in records.values()) == len(want)
    for run_id in rerun:
        assert records[run_id]["finished"] > first_audit[run_id]["finished"]
        assert records[run_id]["finished"] >= cleared_at


def test_backfill_before_the_first_source_record_loads_nothing_and_says_so(cluster: Cluster) -> None:
    c = cluster
    before = target_rows(c)
    runs = backfill(c, *EARLY)
    assert len(runs) == 2
    records = audit(c)
    for r in runs:
        rec = records[r["dag_run_id"]]
        assert (rec["status"], rec["staged"], rec["loaded"]) == ("success", 0, 0)
        logs = list(
            (c.home / "airflow/logs").glob(f"dag_id={DAG_ID}/run_id={r['dag_run_id']}/task_id=changes.extract/*")
        )
        text = "".join(p.read_text() for p in logs)
        assert f"no source rows in interval {rec['interval']}" in text and "this interval loads nothing" in text
    assert target_rows(c) == before


def test_runs_past_their_deadline_post_late_alerts(cluster: Cluster) -> None:
    c = cluster
    backfilled = [r for r in c.runs(DAG_ID) if r["run_type"] == "backfill" and r["logical_date"][:10] >= FIRST]
    assert len(backfilled) == 5

    def alerted() -> bool:
        late = {a["run_id"] for a in ALERTS if a["event"] == "late"}
        return all(r["dag_run_id"] in late for r in backfilled)

    c.wait("a late alert for each backfilled run", alerted, 120, every=2)
    for run in backfilled:
        alert = next(a for a in ALERTS if a["event"] == "late" and a["run_id"] == run["dag_run_id"])
        start = dt.datetime.fromisoformat(run["data_interval_start"])
        assert (alert["tenant"], alert["pipeline"]) == ("ops", "backfill")
        assert alert["interval"] == f"{start:%Y%m%d}T000000Z_{start + dt.timedelta(days=1):%Y%m%d}T000000Z"
        assert alert["summary"].startswith("run not finished 0.05 minutes after it was queued")
        assert alert["log_url"] == f"{c.base}/dags/{DAG_ID}/runs/{run['dag_run_id']}"
    assert not [a for a in ALERTS if a["event"] == "failed"], "no task failed"
