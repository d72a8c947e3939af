"""End to end: Assets, failure / retry alerts and StatsD metrics of real Airflow runs.

Real Airflow (SQLite metadata in a temporary AIRFLOW_HOME): ``airflow dags test`` runs the demo
pipeline with StatsD switched on (``AIRFLOW__METRICS__STATSD_ON``) towards a UDP socket opened by
this test, and a pipeline whose source database refuses connections (one retry). A local HTTP
server stands in for Slack/Teams (the generic JSON flavor); it is a real socket, only the chat
service is not real. Then a real ``airflow scheduler`` turns the asset events into a run of a
downstream DAG scheduled on ``bulksync://acme/nightly/orders``.

Expected numbers are read from the committed staging manifests and the warehouse, never hard-coded.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import yaml

from bulksync.factory.dag_files import sync_dag_files
from tests.conftest import ROOT

LOGICAL = "2026-01-02T02:00:00+00:00"
INTERVAL = "20260101T020000Z_20260102T020000Z"
BIN = Path(sys.executable).parent
DOWNSTREAM = """
from airflow.sdk import DAG, Asset, task

with DAG("acme_reporting", schedule=[Asset("bulksync://acme/nightly/orders")], catchup=False):
    @task
    def report() -> None:
        pass

    report()
"""


ECHO_TOKEN = "Ech0-T0ken/9f8e+7d6=="  # the secret path segment of the echoing webhook's URL
GONE_PASSWORD = "G0ne-Pa55/word+x"


class Hook(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.path.startswith("/echo/"):  # a receiver that echoes the token it refuses, raw and encoded
            url = f"http://127.0.0.1:{self.server.server_address[1]}{self.path}"
            text = f"invalid token {ECHO_TOKEN} ({quote(url, safe='')}, {base64.b64encode(url.encode()).decode()})"
            self.send_response(403)
            self.end_headers()
            self.wfile.write(text.encode())
            return
        type(self).received.append(json.loads(body))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def webhook() -> Iterator[list[dict[str, Any]]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Hook.received = []
    Hook.port = server.server_address[1]  # type: ignore[attr-defined]
    yield Hook.received
    server.shutdown()


@pytest.fixture(scope="module")
def statsd() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.2)
    yield sock
    sock.close()


def drain(sock: socket.socket) -> list[str]:
    lines = []
    while True:
        try:
            data = sock.recv(65535)
        except TimeoutError:
            return lines
        lines.extend(data.decode().splitlines())


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, webhook: list[dict[str, Any]], statsd: socket.socket) -> Path:
    home = tmp_path_factory.mktemp("ops-e2e")
    dags = home / "dags"
    (dags / "pipelines").mkdir(parents=True)
    (dags / "downstream.py").write_text(DOWNSTREAM, encoding="utf-8")
    nightly = yaml.safe_load((ROOT / "dags/pipelines/acme__nightly.yaml").read_text())
    nightly["alerts"] = {"webhooks": ["ops_hook"], "on": ["failed", "retry"]}
    (dags / "pipelines/acme__nightly.yaml").write_text(yaml.safe_dump(nightly), encoding="utf-8")
    broken = {
        "tenant": "acme",
        "pipeline": "broken",
        "schedule": "0 2 * * *",
        "start_date": "2026-01-01",
        "tasks": {"retries": 1, "retry_delay_minutes": 0.01, "retry_exponential_backoff": False},
        "alerts": {"webhooks": ["ops_hook", "ops_echo"], "on": ["failed", "retry"]},
        "datasets": [
            {
                "name": "ledger",
                "source": {"kind": "sql", "conn_id": "acme_gone", "options": {"table": "ledger"}},
                "target": {"kind": "sqlite", "conn_id": "acme_warehouse", "table": "ledger"},
            }
        ],
    }
    (dags / "pipelines/acme__broken.yaml").write_text(yaml.safe_dump(broken), encoding="utf-8")

    local = home / ".local"
    sync_dag_files(dags / "pipelines")  # one DAG file per spec
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "BULKSYNC"))}
    env.update(
        {
            "AIRFLOW_HOME": str(local / "airflow"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{local}/airflow/airflow.db",
            "AIRFLOW__METRICS__STATSD_ON": "True",
            "AIRFLOW__METRICS__STATSD_HOST": "127.0.0.1",
            "AIRFLOW__METRICS__STATSD_PORT": str(statsd.getsockname()[1]),
            "BULKSYNC_HOME": str(home),
            "BULKSYNC_EXPECTATIONS_DIR": str(ROOT / "expectations"),
            "BULKSYNC_REPORTS_ROOT": str(local / "reports"),
            "BULKSYNC_STAGING_ROOT": str(local / "staging"),
            "AIRFLOW_CONN_ACME_CRM": f"sqlite:///{local}/demo/crm.db",
            "AIRFLOW_CONN_ACME_WAREHOUSE": f"sqlite:///{local}/demo/warehouse.db",
            "AIRFLOW_CONN_ACME_GONE": f"postgresql://postgres:{quote(GONE_PASSWORD, safe='')}@127.0.0.1:1/gone",
            "AIRFLOW_CONN_OPS_ECHO": json.dumps(
                {"conn_type": "http", "host": f"http://127.0.0.1:{Hook.port}/echo/T0AB12/{quote(ECHO_TOKEN, safe='')}"}  # type: ignore[attr-defined]
            ),
            "AIRFLOW_CONN_OPS_HOOK": json.dumps(
                {"conn_type": "http", "host": f"http://127.0.0.1:{Hook.port}/hook", "extra": {"flavor": "generic"}}  # type: ignore[attr-defined]
            ),
            "AIRFLOW_VAR_BULKSYNC_PII_SALT": "ops-e2e-salt-0123456789",
        }
    )
    (local / "airflow").mkdir(parents=True)
    run([str(BIN / "bulksync"), "demo", "prepare", "--root", str(local / "demo")], env, home)
    run([str(BIN / "airflow"), "db", "migrate"], env, home)
    run([str(BIN / "airflow"), "dags", "reserialize"], env, home)
    drain(statsd)
    out = run([str(BIN / "airflow"), "dags", "test", "acme__nightly", LOGICAL], env, home, check=False)
    (home / "nightly.log").write_text(out, encoding="utf-8")
    assert "state=success" in out, "\n".join(line for line in out.splitlines() if "rror" in line)[-4000:]
    (home / "metrics.txt").write_text("\n".join(drain(statsd)), encoding="utf-8")
    broken_out = run([str(BIN / "airflow"), "dags", "test", "acme__broken", LOGICAL], env, home, check=False)
    assert "state=failed" in broken_out, broken_out[-3000:]
    (home / "broken.log").write_text(broken_out, encoding="utf-8")
    (home / "env.json").write_text(json.dumps(env), encoding="utf-8")
    return home


def run(cmd: list[str], env: dict[str, str], cwd: Path, check: bool = True, timeout: int = 400) -> str:
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if check:
        assert proc.returncode == 0, f"{cmd} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return proc.stdout + proc.stderr


def manifest(home: Path, dataset: str, stage: str) -> dict[str, Any]:
    folder = home / ".local/staging/acme/nightly" / dataset / INTERVAL
    path = (folder if stage == "extract" else folder / stage) / "_manifest.json"
    return dict(json.loads(path.read_text()))


def metadata(home: Path, sql: str) -> list[tuple[Any, ...]]:
    con = sqlite3.connect(home / ".local/airflow/airflow.db")
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_statsd_receives_every_dataset_metric_with_the_staged_counts(home: Path) -> None:
    lines = (home / "metrics.txt").read_text().splitlines()
    counters: dict[str, int] = {}
    timers: dict[str, list[float]] = {}
    for line in lines:
        name, _, rest = line.partition(":")
        value, _, kind = rest.partition("|")
        if not name.startswith("airflow.bulksync."):
            continue
        if kind == "c":
            counters[name] = counters.get(name, 0) + int(value)
        elif kind == "ms":
            timers.setdefault(name, []).append(float(value))
    expected: dict[str, int] = {}
    for ds in ("accounts", "account_changes", "orders"):
        extract = manifest(home, ds, "extract")
        base = f"airflow.bulksync.acme.nightly.{ds}"
        expected[f"{base}.rows_extracted"] = extract["rows"]
        expected[f"{base}.bytes_staged"] = sum(f["bytes"] for f in extract["files"])
        report = json.loads((home / ".local/staging/acme/nightly" / ds / INTERVAL / "_load.json").read_text())
        expected[f"{base}.rows_loaded"] = report["rows"]
        stages = ["extract", "transform", "load", "reconcile"]
        if ds != "account_changes":
            quarantine = home / ".local/staging/acme/nightly" / ds / INTERVAL / "quarantine/_manifest.json"
            expected[f"{base}.rows_quarantined"] = (
                json.loads(quarantine.read_text())["rows"] if quarantine.exists() else 0
            )
            stages.append("validate")
        chunks = extract["extra"].get("chunks")
        if chunks:  # chunked extract: one mapped extract task per chunk, then commit_extract
            stages.append("commit_extract")
        for stage in stages:
            times = len(timers.get(f"{base}.{stage}.duration", []))
            want = chunks if chunks and stage == "extract" else 1
            assert times == want, f"{times} durations of {ds} {stage}, expected {want}: {sorted(timers)}"
    assert counters == expected
    assert expected["airflow.bulksync.acme.nightly.orders.rows_quarantined"] > 0
    assert expected["airflow.bulksync.acme.nightly.accounts.rows_extracted"] == 2000
    assert manifest(home, "accounts", "extract")["extra"]["chunks"] > 1, "the demo's accounts are chunked"


def test_each_dataset_emits_its_asset_with_the_reconciled_counts(home: Path) -> None:
    rows = metadata(
        home,
        "SELECT a.uri, e.extra FROM asset_event e JOIN asset a ON a.id = e.asset_id ORDER BY a.uri",
    )
    events = {uri: json.loads(extra) for uri, extra in rows}
    assert sorted(events) == [f"bulksync://acme/nightly/{ds}" for ds in ("account_changes", "accounts", "orders")]
    for uri, extra in events.items():
        ds = uri.rsplit("/", 1)[-1]
        runs = sorted((home / ".local/reports/acme/nightly/runs" / ds).glob("*.json"))
        record = json.loads(runs[-1].read_text())
        rec = record["reconciliation"]
        assert {k: extra[k] for k in ("source_count", "staged", "loaded", "quarantined", "rejected")} == {
            k: rec[k] for k in ("source_count", "staged", "loaded", "quarantined", "rejected")
        }
        assert extra["dataset"] == ds and extra["status"] == record["status"]
        assert extra["data_interval_start"].startswith("2026-01-01T02:00:00")
        assert extra["data_interval_end"].startswith("2026-01-02T02:00:00")
        assert extra["run_id"] == record["run_id"]


def test_a_downstream_dag_scheduled_on_the_asset_is_triggered(home: Path) -> None:
    env = json.loads((home / "env.json").read_text())
    queued = metadata(home, "SELECT target_dag_id FROM asset_dag_run_queue")
    assert queued == [("acme_reporting",)]
    # a real scheduler until it has created the asset-triggered run (a fixed --num-runs made the test depend on
    # how many loops a loaded machine gets through, and on how long the executor's shutdown then takes)
    scheduler = subprocess.Popen(
        [str(BIN / "airflow"), "scheduler"], env=env, cwd=home, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and not metadata(
            home, "SELECT run_id FROM dag_run WHERE dag_id = 'acme_reporting'"
        ):
            time.sleep(1)
    finally:
        scheduler.terminate()
        try:
            scheduler.wait(60)
        except subprocess.TimeoutExpired:
            scheduler.kill()
            scheduler.wait()
    runs = _json_tail(run([str(BIN / "airflow"), "dags", "list-runs", "acme_reporting", "--output", "json"], env, home))
    assert len(runs) == 1, runs
    assert runs[0]["run_id"].startswith("asset_triggered__"), runs
    assert metadata(home, "SELECT count(*) FROM asset_dag_run_queue") == [(0,)]


def _json_tail(out: str) -> list[dict[str, Any]]:
    line = next(line for line in out.splitlines() if line.startswith(("[{", "[]")))
    return list(json.loads(line))


def test_failures_and_retries_post_alerts_with_interval_error_log_and_retries_left(
    home: Path, webhook: list[dict[str, Any]]
) -> None:
    broken = [a for a in webhook if a["pipeline"] == "broken"]
    assert [(a["event"], a["dataset"], a["retries_left"]) for a in broken] == [
        ("retry", "ledger", 1),
        ("failed", "ledger", 0),
    ]
    for alert in broken:
        assert alert["tenant"] == "acme" and alert["interval"] == INTERVAL
        assert alert["summary"].startswith(
            "extract failed: SourceConnectionError: cannot connect to connection 'acme_gone'"
            if alert["event"] == "failed"
            else "extract failed, 1 retry left: SourceConnectionError: cannot connect to connection 'acme_gone'"
        ), alert["summary"]
        assert alert["log_url"] and "acme__broken" in alert["log_url"] and "ledger.extract" in alert["log_url"]
        assert alert["report_url"].endswith("/bulksync/reports/acme/broken")
    nightly = [a for a in webhook if a["pipeline"] == "nightly"]
    assert nightly == [], "a successful run posts no failed/retry alert"


def test_no_form_of_a_secret_reaches_the_task_logs_or_the_records(home: Path) -> None:
    """Issue 12 item 8, in real Airflow task logs: a webhook echoing its token (raw, in the URL-encoded URL,
    in the base64 URL) and a source connection's password leave no trace in any file Airflow or bulksync wrote."""
    secrets = {
        "token": ECHO_TOKEN,
        "quoted token": quote(ECHO_TOKEN, safe=""),
        "base64 token": base64.b64encode(ECHO_TOKEN.encode()).decode(),
        "password": GONE_PASSWORD,
        "quoted password": quote(GONE_PASSWORD, safe=""),
    }
    files = [p for p in (home / ".local").rglob("*") if p.is_file() and p.suffix in (".log", ".json", ".html", "")]
    logs = [home / "nightly.log", home / "broken.log", *(p for p in files if p.suffix == ".log")]  # dags test: stdout
    echoed = [p for p in logs if "ops_echo" in p.read_text(errors="replace")]
    assert echoed, "the echoing webhook's refusal is not in any task log"
    assert any("invalid token ***" in p.read_text(errors="replace") for p in echoed)
    found = []
    for path in {*files, *logs}:
        text = path.read_text(errors="replace")
        found += [f"{name} in {path.relative_to(home)}" for name, form in secrets.items() if form in text]
    assert not found, found
