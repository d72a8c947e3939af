"""End to end: ``make airflow`` on another port, as an on-call engineer runs it, with one broken spec.

Real processes: the README's recipe ``AIRFLOW__API__PORT=<port> make airflow`` (``airflow standalone``:
api-server, scheduler, dag-processor and triggerer, LocalExecutor, SQLite metadata) in a temporary
home (``LOCAL``, ``DAGS`` and ``BULKSYNC_HOME`` set on make's command line), nothing on port 8080
involved. The DAGs folder is the project's plus one spec with a misspelt load mode. Checked through
the REST API, as the UI shows it:

- the broken spec is the only import error, of its own DAG file, naming its spec file and field;
  every other DAG, ``bulksync__migration`` included, is there (issue 14 item 1);
- the demo pipeline's scheduled run succeeds: the workers reach the execution API on the chosen
  port (item 2);
- its run lasts minutes, not the months since some past logical date, and each task log is
  readable in the UI (item 5);
- the validate task's log keeps bulksync's INFO lines and has none of Great Expectations'
  "Skipping registering function" noise (item 4).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from bulksync.factory.dag_files import sync_dag_files
from tests.conftest import ROOT
from tests.e2e.cluster import FAST, Cluster

pytestmark = pytest.mark.scheduler

BROKEN = "acme__typo"


@pytest.fixture(scope="module")
def standalone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    home = tmp_path_factory.mktemp("make-airflow")
    dags = home / "dags"
    shutil.copytree(ROOT / "dags", dags, ignore=shutil.ignore_patterns("__pycache__"))
    spec = yaml.safe_load((ROOT / "dags/pipelines/acme__nightly.yaml").read_text())
    spec["pipeline"] = "typo"
    spec["datasets"][1]["target"]["mode"] = "intervall"
    (dags / "pipelines" / f"{BROKEN}.yaml").write_text(yaml.safe_dump(spec), encoding="utf-8")
    sync_dag_files(dags / "pipelines")
    for shared in ("include", "expectations"):  # copybooks, transforms and suites, as in the repository
        (home / shared).symlink_to(ROOT / shared)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "BULKSYNC"))}
    env.update(FAST)
    env["AIRFLOW__CORE__PARALLELISM"] = "3"
    c = Cluster(home, env)
    # the recipe under test: only the port is given; the Makefile must derive the rest from it
    env["AIRFLOW__API__PORT"] = str(c.port)
    c.env = env
    log = (c.logs / "make-airflow.log").open("a")
    make = [
        "make",
        "-C",
        str(ROOT),
        "--no-print-directory",
        "airflow",
        f"LOCAL={home / '.local'}",
        f"DAGS={dags}",
        f"BULKSYNC_HOME={home}",
    ]
    c.procs["make-airflow"] = subprocess.Popen(
        make, env=env, cwd=home, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    log.close()
    try:
        c.wait("make airflow to serve the REST API", lambda: c.get("/api/v2/version"), 400, every=2)
        c.wait(f"{BROKEN}'s import error", lambda: (c.get("/api/v2/importErrors") or {}).get("total_entries"), 240)
        yield c
    finally:
        proc = c.procs["make-airflow"]
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C does: standalone stops its components
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


def _dag_ids(c: Cluster) -> list[str]:
    return sorted(d["dag_id"] for d in (c.get("/api/v2/dags?limit=100") or {"dags": []})["dags"])


def test_a_broken_spec_is_an_import_error_of_its_own_file_and_every_other_dag_loads(standalone: Cluster) -> None:
    c = standalone
    # every spec of the repository's dags/pipelines (all valid), plus the migration DAG; not the broken one
    want = sorted([*(p.stem for p in (ROOT / "dags/pipelines").glob("*.yaml")), "bulksync__migration"])
    assert BROKEN not in want and len(want) > 2
    c.wait("every valid DAG to be parsed", lambda: _dag_ids(c) == want, 240, every=2)
    errors = c.get("/api/v2/importErrors")["import_errors"]
    assert [e["filename"] for e in errors] == [f"pipelines/{BROKEN}.py"], errors
    trace = errors[0]["stack_trace"]
    assert f"{BROKEN}.yaml: datasets[1].target.mode (dataset 'account_changes')" in trace
    assert "Input should be 'append', 'merge', 'replace' or 'interval'" in trace
    migration = c.get("/api/v2/dags/bulksync__migration/details")
    assert f"`{BROKEN}.yaml`: datasets[1].target.mode" in migration["doc_md"]


def _task_log(c: Cluster, run_id: str, task_id: str) -> list[dict[str, Any]]:
    """The first try's log of a task as the UI reads it (structured entries)."""
    body = c.get(f"/api/v2/dags/acme__nightly/dagRuns/{run_id}/taskInstances/{task_id}/logs/1?map_index=-1")
    assert body is not None, f"no log for {task_id}"
    return [e if isinstance(e, dict) else {"event": str(e)} for e in body.get("content", [])]


def _text(entries: list[dict[str, Any]]) -> str:
    return "\n".join(str(e.get("event", "")) for e in entries)


def test_the_demo_runs_on_another_port_with_readable_logs_and_sane_durations(standalone: Cluster) -> None:
    c = standalone
    c.wait("acme__nightly to be parsed", lambda: c.get("/api/v2/dags/acme__nightly"), 240, every=2)
    unpaused_at = dt.datetime.now(dt.UTC)
    c.call("PATCH", "/api/v2/dags/acme__nightly", {"is_paused": False})

    def finished() -> dict[str, Any] | None:
        runs = c.runs("acme__nightly")
        done = [r for r in runs if r["state"] in ("success", "failed")]
        return done[0] if done else None

    run = c.wait("the scheduled run of acme__nightly to finish", finished, 600, every=3)
    tis = c.task_instances("acme__nightly", run["dag_run_id"])
    states = {(t["task_id"], t["map_index"]): t["state"] for t in tis}
    assert run["state"] == "success", f"{states}\n{c.failure()}"
    started = dt.datetime.fromisoformat(run["start_date"])
    ended = dt.datetime.fromisoformat(run["end_date"])
    assert unpaused_at - dt.timedelta(minutes=1) <= started <= ended <= dt.datetime.now(dt.UTC)
    assert ended - started < dt.timedelta(minutes=15)

    validate = _task_log(c, run["dag_run_id"], "orders.validate")
    text = _text(validate)
    assert "quality quarantined for orders" in text, text[-3000:]
    assert "Skipping registering function" not in text
    noise = [
        e
        for e in validate
        if e.get("logger") and not str(e["logger"]).startswith(("bulksync", "airflow", "task"))
        and str(e.get("level", "info")).lower() in ("debug", "info")
    ]
    assert not noise, noise[:5]
    load = _text(_task_log(c, run["dag_run_id"], "accounts.load"))
    assert "loaded accounts" in load or "accounts" in load, load[-2000:]


def test_a_run_missing_a_connection_fails_at_its_first_task_naming_it(standalone: Cluster) -> None:
    """Preflight in the DAG (item 12): acme__salesforce's connection is not defined in this deployment."""
    c = standalone
    c.call("PATCH", "/api/v2/dags/acme__salesforce", {"is_paused": False})

    def failed() -> dict[str, Any] | None:
        done = [r for r in c.runs("acme__salesforce") if r["state"] in ("success", "failed")]
        return done[0] if done else None

    run = c.wait("the run of acme__salesforce to fail", failed, 300, every=3)
    assert run["state"] == "failed"
    tis = {t["task_id"]: t for t in c.task_instances("acme__salesforce", run["dag_run_id"])}
    assert tis["sf_accounts.extract"]["state"] == "failed" and tis["sf_accounts.extract"]["try_number"] == 1
    assert tis["sf_accounts.load"]["state"] in ("upstream_failed", None)
    body = c.get(
        f"/api/v2/dags/acme__salesforce/dagRuns/{run['dag_run_id']}/taskInstances/sf_accounts.extract/logs/1?map_index=-1"
    )
    text = "\n".join(json.dumps(e) for e in body["content"])  # the exception is in the entry's error_detail
    assert "thing(s) the run needs are missing; nothing was extracted" in text, text[-3000:]
    assert "sf_accounts: source (salesforce) connection 'acme_salesforce': not defined" in text
    assert "AIRFLOW_CONN_ACME_SALESFORCE" in text
