"""Task overhead: one dataset's task group under a real scheduler against ``airflow dags test``.

``airflow dags test`` runs every task of a DAG in one process, so Great Expectations, pandas and
pyarrow are imported once; under a real scheduler each task is a process of its own, started by
the LocalExecutor, that parses its DAG file and imports what its stage needs, and the scheduler
decides when the next task may start. This bench runs the same DAG both ways and says where the
time goes, per task:

- ``before stage``: from the task process's start to the stage's first line (process start, DAG
  parsing, imports), logged by every bulksync task as "the task process had run … before it";
- ``stage``: the stage itself (bulksync's own timing of it);
- ``task``: the task instance's duration as Airflow records it;
- ``gap``: from the previous task's end to this task's start (scheduling and executor latency).

The DAG: one dataset of ``--rows`` demo orders (CSV, the ``orders`` suite with quarantine, three
transforms, merge into SQLite), i.e. ``extract → validate → transform → load → reconcile``.
The real scheduler is ``airflow api-server``, ``scheduler`` and ``dag-processor`` as processes
(LocalExecutor, SQLite metadata, Airflow's default scheduler settings), as ``make airflow`` runs them.

    .venv/bin/python bench/task_overhead_bench.py [--rows 5000]

Writes ``bench/RESULTS-task-overhead.md`` (with the load average: the machine is shared).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bulksync.operators.task_logs import THIRD_PARTY

from common import run_on

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
WORK = BENCH / ".data" / "task_overhead"
BIN = Path(sys.executable).parent
DAG_ID = "bench__overhead"
LOGICAL = "2026-01-02T00:00:00+00:00"
STAGES = ("extract", "validate", "transform", "load", "reconcile")
AGE = re.compile(r"orders\.(\w+): stage ([\d.]+) s; the task process had run ([\d.]+) s before it")


def spec(drops: Path) -> dict[str, Any]:
    orders = next(d for d in _demo_spec()["datasets"] if d["name"] == "orders")
    orders["source"]["options"]["path"] = str(drops)
    return {
        "tenant": "bench",
        "pipeline": "overhead",
        "schedule": "@daily",
        "start_date": "2026-01-01",
        "catchup": False,
        "tasks": {"retries": 0},
        "datasets": [orders],
    }


def _demo_spec() -> dict[str, Any]:
    import yaml

    return dict(yaml.safe_load((REPO / "dags/pipelines/acme__nightly.yaml").read_text()))


def prepare(rows: int) -> dict[str, str]:
    """A fresh work folder: order drops, the spec and its DAG file, and the environment."""
    import yaml
    from bulksync.factory.dag_files import sync_dag_files
    from bulksync.sandbox.demo import build_order_drops

    shutil.rmtree(WORK, ignore_errors=True)
    (WORK / "dags/pipelines").mkdir(parents=True)
    build_order_drops(WORK / "drops", files=1, per_file=rows)
    (WORK / f"dags/pipelines/{DAG_ID}.yaml").write_text(yaml.safe_dump(spec(WORK / "drops")), encoding="utf-8")
    sync_dag_files(WORK / "dags/pipelines")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "BULKSYNC"))}
    env.update(
        {
            "AIRFLOW__CORE__DAGS_FOLDER": str(WORK / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(WORK / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "BULKSYNC_HOME": str(REPO),
            "BULKSYNC_EXPECTATIONS_DIR": str(REPO / "expectations"),
            "AIRFLOW_CONN_ACME_WAREHOUSE": f"sqlite:///{WORK}/warehouse.db",
        }
    )
    (WORK / "plugins").mkdir()
    return env


def home_env(env: dict[str, str], name: str) -> dict[str, str]:
    home = WORK / name
    (home / "airflow").mkdir(parents=True)
    out = {
        **env,
        "AIRFLOW_HOME": str(home / "airflow"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow/airflow.db",
        "BULKSYNC_STAGING_ROOT": str(home / "staging"),
        "BULKSYNC_REPORTS_ROOT": str(home / "reports"),
        "AIRFLOW_CONN_ACME_WAREHOUSE": f"sqlite:///{home}/warehouse.db",  # each run loads into an empty table
    }
    subprocess.run([str(BIN / "airflow"), "db", "migrate"], env=out, check=True, capture_output=True, timeout=900)
    return out


def task_rows(env: dict[str, str], run_id: str | None = None) -> list[dict[str, Any]]:
    db = env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].removeprefix("sqlite:///")
    con = sqlite3.connect(db)
    try:
        rows = con.execute(
            "SELECT task_id, state, start_date, end_date, duration FROM task_instance "
            "WHERE dag_id = ? AND (? IS NULL OR run_id = ?)",
            (DAG_ID, run_id, run_id),
        ).fetchall()
    finally:
        con.close()
    out = []
    for task_id, state, start, end, duration in rows:
        out.append(
            {
                "stage": task_id.split(".", 1)[1],
                "state": state,
                "start": dt.datetime.fromisoformat(start) if start else None,
                "end": dt.datetime.fromisoformat(end) if end else None,
                "task": float(duration or 0),
            }
        )
    return sorted(out, key=lambda r: STAGES.index(r["stage"]))


def add_log_figures(rows: list[dict[str, Any]], text: str) -> None:
    figures = {m.group(1): (float(m.group(2)), float(m.group(3))) for m in AGE.finditer(text)}
    previous_end = None
    for r in rows:
        r["stage_s"], r["before_s"] = figures.get(r["stage"], (None, None))
        r["gap"] = (r["start"] - previous_end).total_seconds() if previous_end and r["start"] else 0.0
        previous_end = r["end"]


def group_seconds(rows: list[dict[str, Any]]) -> float:
    return (max(r["end"] for r in rows) - min(r["start"] for r in rows)).total_seconds()


def run_dags_test(env: dict[str, str], name: str = "dags_test") -> tuple[list[dict[str, Any]], float]:
    env = home_env(env, name)
    started = time.monotonic()
    proc = subprocess.run(
        [str(BIN / "airflow"), "dags", "test", DAG_ID, LOGICAL], env=env, capture_output=True, text=True, timeout=1800
    )
    wall = time.monotonic() - started
    out = proc.stdout + proc.stderr
    (WORK / f"{name}.log").write_text(out)
    if "state=success" not in out:
        sys.exit(f"airflow dags test failed; see {WORK / 'dags_test.log'}")
    rows = task_rows(env)
    add_log_figures(rows, out)
    return rows, wall


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_scheduler(
    env: dict[str, str], name: str = "scheduler", timeout: float = 1800
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Two runs under a real scheduler: the (warm, cold) task rows."""
    env = home_env(env, name)
    port = _free_port()
    env.update(
        {
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__API__WORKERS": "1",
        }
    )
    procs = []
    for name in ("api-server", "scheduler", "dag-processor"):
        log = (WORK / f"{name}.log").open("w")
        procs.append(
            subprocess.Popen(
                [str(BIN / "airflow"), name], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        )
        if name == "api-server":  # tasks report to its execution API: it must answer before one is queued
            up = time.monotonic() + timeout
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), 1).close()
                    break
                except OSError:
                    if time.monotonic() > up or procs[0].poll() is not None:
                        sys.exit("the api-server did not start; see bench/.data/task_overhead/api-server.log")
                    time.sleep(0.5)
    db = env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].removeprefix("sqlite:///")

    def runs() -> list[tuple[str, str]]:
        con = sqlite3.connect(db)
        try:
            return list(con.execute("SELECT run_id, state FROM dag_run WHERE dag_id = ? ORDER BY id", (DAG_ID,)))
        finally:
            con.close()

    def wait(count: int, deadline: float) -> None:
        while True:
            states = [state for _, state in runs()]
            if len(states) >= count and all(s in ("success", "failed") for s in states):
                if states != ["success"] * len(states):
                    sys.exit(f"a run ended {states}; see the task logs under {env['AIRFLOW_HOME']}/logs")
                return
            dead = [n for n, p in zip(("api-server", "scheduler", "dag-processor"), procs, strict=True) if p.poll()]
            if dead:
                sys.exit(f"{', '.join(dead)} exited; see bench/.data/task_overhead/{dead[0]}.log")
            if time.monotonic() > deadline:
                sys.exit("the run did not finish in time; see the component logs in bench/.data/task_overhead/")
            time.sleep(1)

    try:
        deadline = time.monotonic() + timeout
        # the DAG is active from its first parse (catchup off): the scheduler runs its latest interval on
        # freshly started LocalExecutor workers (cold); a second, manual run finds them warm, as a scheduler
        # that has been up for a while does
        wait(1, deadline)
        subprocess.run(
            [str(BIN / "airflow"), "dags", "trigger", DAG_ID], env=env, check=True, capture_output=True, timeout=300
        )
        wait(2, deadline)
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
    (cold_id, _), (warm_id, _) = runs()[:2]
    cold, warm = task_rows(env, cold_id), task_rows(env, warm_id)
    for rows, run_id in ((cold, cold_id), (warm, warm_id)):
        texts = {}
        for path in Path(env["AIRFLOW_HOME"], "logs", f"dag_id={DAG_ID}", f"run_id={run_id}").rglob("*.log"):
            task = next((p.split(".", 1)[1] for p in path.parts if p.startswith("task_id=")), None)
            if task:
                texts[task] = [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]
        add_log_figures(rows, "\n".join(str(e.get("event", "")) for lines in texts.values() for e in lines))
        for r in rows:
            entries = texts.get(r["stage"], [])
            r["log_lines"] = len(entries)
            r["third_party_lines"] = sum(
                1 for e in entries if e.get("logger") and str(e["logger"]).split(".", 1)[0] in THIRD_PARTY
            )
    return warm, cold


def _f(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"


def report(
    rows: int,
    test: list[dict[str, Any]],
    sched: list[dict[str, Any]],
    loads: list[str],
    all_test: list[float],
    all_sched: list[float],
    all_cold: list[float],
) -> str:
    t_group, s_group = group_seconds(test), group_seconds(sched)
    lines = [
        "# Task overhead: one dataset's task group under a real scheduler vs `airflow dags test`",
        "",
        f"{run_on()}. Load average before / after: {loads[0]} / {loads[1]} (a shared machine: wall times are noisy).",
        "",
        f"Dataset: {rows:,} demo orders (CSV → `orders` suite, quarantine → dedupe, filter, derive → SQLite merge).",
        "Real scheduler: `airflow api-server`, `scheduler`, `dag-processor`, LocalExecutor, default settings.",
        "",
        f"**Whole task group: {s_group:.1f} s under the scheduler, {t_group:.1f} s in `dags test`: "
        f"{s_group / t_group:.2f}×** (goal: under 2×). The fastest of {len(all_sched)} interleaved runs each way "
        f"(all runs: scheduler {', '.join(f'{x:.1f}' for x in all_sched)} s; "
        f"dags test {', '.join(f'{x:.1f}' for x in all_test)} s); the table shows the fastest runs.",
        "",
        "Under the scheduler, each measured run is the second after the scheduler started (its LocalExecutor "
        "workers warm, as in a deployment that has been up a while). The first run, on cold workers, took "
        f"{', '.join(f'{x:.1f}' for x in all_cold)} s ({min(all_cold) / t_group:.2f}× at best): the first task of a "
        "fresh worker spends 3–4 s importing Airflow's task runner.",
        "",
        "| task | dags test: task s | before stage s | stage s "
        "| scheduler: task s | before stage s | stage s | gap before s | log lines (third-party) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    by_stage = {r["stage"]: r for r in sched}
    for r in test:
        s = by_stage.get(r["stage"], {})
        lines.append(
            f"| {r['stage']} | {_f(r['task'])} | {_f(r['before_s'])} | {_f(r['stage_s'])} | {_f(s.get('task'))} | "
            f"{_f(s.get('before_s'))} | {_f(s.get('stage_s'))} | {_f(s.get('gap'))} | "
            f"{s.get('log_lines', '–')} ({s.get('third_party_lines', '–')}) |"
        )
    lines += [
        "",
        "`before stage` is the task process's age when the stage began (process start, DAG parsing,",
        "imports); in `dags test` every task runs in the one process, so it grows from task to task.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the Airflow components on the way out
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=5000, help="orders in the dataset (default 5,000)")
    parser.add_argument("--out", type=Path, default=BENCH / "RESULTS-task-overhead.md", help="results file")
    parser.add_argument(
        "--third-party-log-level",
        default=None,
        help="BULKSYNC_THIRD_PARTY_LOG_LEVEL of the tasks (INFO: Great Expectations' import noise back in the logs)",
    )
    parser.add_argument("--repeat", type=int, default=3, help="interleaved runs each way; the fastest counts")
    args = parser.parse_args()
    loads = [" ".join(f"{x:.2f}" for x in os.getloadavg())]
    env = prepare(args.rows)
    if args.third_party_log_level:
        env["BULKSYNC_THIRD_PARTY_LOG_LEVEL"] = args.third_party_log_level
    tests, scheds, colds = [], [], []
    for i in range(args.repeat):
        tests.append(run_dags_test(env, f"dags_test_{i}")[0])
        warm, cold = run_scheduler(env, f"scheduler_{i}")
        scheds.append(warm)
        colds.append(cold)
    loads.append(" ".join(f"{x:.2f}" for x in os.getloadavg()))
    test, sched = min(tests, key=group_seconds), min(scheds, key=group_seconds)
    times = [[group_seconds(r) for r in rs] for rs in (tests, scheds, colds)]
    text = report(args.rows, test, sched, loads, *times)
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
