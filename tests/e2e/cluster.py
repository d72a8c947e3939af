"""A real Airflow deployment as local processes, for end-to-end tests of schedulers and workers.

Each component (api-server, scheduler, dag-processor, celery workers) runs as ``airflow …`` in its
own session with its own log file; :meth:`Cluster.failure` returns the last lines of every log so
a failing wait says what each component was doing. The metadata database is a fresh PostgreSQL
database created (and dropped) by the cluster.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent

# Scheduler, dag-processor and executor settings that keep a test's runtime small.
FAST = {
    "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
    "AIRFLOW__SCHEDULER__JOB_HEARTBEAT_SEC": "2",
    "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.5",
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_SEC": "2",
    "AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL": "10",
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "20",
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "2",
    "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
    "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "30",
    "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
    "AIRFLOW__CORE__PARALLELISM": "4",
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
    "AIRFLOW__API__WORKERS": "1",
    "AIRFLOW__API_AUTH__JWT_SECRET": "e2e-cluster-jwt-secret-0123456789abcdef",
    "AIRFLOW__API__SECRET_KEY": "e2e-cluster-api-secret-0123456789abcdef",
    "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def local_executor_home(home: Path) -> Path:
    """Lay out ``home`` for a LocalExecutor cluster: empty dags/pipelines and plugins folders, the demo in ``demo``.

    Args:
        home: an empty folder.

    Returns:
        The dags folder (``<home>/dags``); the test puts its DAG files and specs there.
    """
    dags = home / "dags"
    (dags / "pipelines").mkdir(parents=True)
    (home / "plugins").mkdir()
    subprocess.run(
        [str(BIN / "bulksync"), "demo", "prepare", "--root", str(home / "demo")], check=True, capture_output=True
    )
    return dags


def local_executor_env(home: Path, meta_url: str, extra: dict[str, str]) -> dict[str, str]:
    """The environment of a LocalExecutor cluster laid out by :func:`local_executor_home`, plus ``extra``.

    DAGs are unpaused at creation (backfill runs start only for unpaused DAGs) and nothing is scheduled
    by the DAGs' own schedules: runs are only the ones a test triggers or backfills. Inherited
    ``AIRFLOW*``/``BULKSYNC*`` variables are dropped.

    Args:
        home: the cluster's home (AIRFLOW_HOME, BULKSYNC_HOME, staging and reports roots below it).
        meta_url: the metadata database's SQLAlchemy URL.
        extra: further variables (connections, BULKSYNC_SPECS_DIR …).
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "BULKSYNC"))}
    env.update(
        {
            "AIRFLOW_HOME": str(home / "airflow"),
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": meta_url,
            "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(home / "plugins"),
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
            "BULKSYNC_HOME": str(home),
            "BULKSYNC_STAGING_ROOT": str(home / "staging"),
            "BULKSYNC_REPORTS_ROOT": str(home / "reports"),
            **extra,
        }
    )
    return env


class Cluster:
    """Airflow components started as processes sharing one environment."""

    def __init__(self, home: Path, env: dict[str, str]) -> None:
        self.home = home
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {
            **FAST,
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.base}/execution/",
            "AIRFLOW__API__BASE_URL": self.base,
            **env,
        }
        self.procs: dict[str, subprocess.Popen[Any]] = {}
        self.logs = home / "logs-components"
        self.logs.mkdir(parents=True, exist_ok=True)

    # -- processes ------------------------------------------------------------------------------

    def airflow(self, *args: str, timeout: int = 300) -> str:
        """Run an ``airflow`` command to completion; fail with its output when it fails."""
        proc = subprocess.run(
            [str(BIN / "airflow"), *args],
            env=self.env,
            cwd=self.home,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        out = proc.stdout + proc.stderr
        assert proc.returncode == 0, f"airflow {' '.join(args)} failed:\n{out[-4000:]}"
        return out

    def start(self, name: str, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[Any]:
        """Start ``airflow ARGS`` as component ``name`` (log in ``logs-components/NAME.log``)."""
        log = (self.logs / f"{name}.log").open("a")
        proc = subprocess.Popen(
            [str(BIN / "airflow"), *args],
            env={**self.env, **(env or {})},
            cwd=self.home,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.procs[name] = proc
        return proc

    def start_core(self) -> None:
        """api-server, scheduler and dag-processor; returns once the REST API answers."""
        self.start("api-server", "api-server", "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1")
        self.start("scheduler", "scheduler")
        self.start("dag-processor", "dag-processor")
        self.wait("the api-server to answer", lambda: self.get("/api/v2/version") is not None, 180)

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to a component's whole process group."""
        proc = self.procs[name]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        if sig == signal.SIGKILL:
            proc.wait(timeout=30)

    def stop(self) -> None:
        """Terminate every component (SIGTERM, then SIGKILL after 20 s)."""
        for proc in self.procs.values():
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)

    # -- REST API -------------------------------------------------------------------------------

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            f"{self.base}{path}", data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as res:
                return res.status, json.loads(res.read() or b"null")
        except urllib.error.HTTPError as err:
            text = err.read().decode()
            try:
                return err.code, json.loads(text)
            except ValueError:
                return err.code, text

    def get(self, path: str) -> Any:
        """GET ``path``; the JSON body, or None when the server does not answer 200 (yet)."""
        try:
            status, body = self.request("GET", path)
        except OSError:
            return None
        return body if status == 200 else None

    def call(self, method: str, path: str, body: Any = None, expect: int = 200) -> Any:
        status, answer = self.request(method, path, body)
        assert status == expect, f"{method} {path} answered {status}: {answer}\n{self.failure()}"
        return answer

    # -- waiting --------------------------------------------------------------------------------

    def wait(self, what: str, ready: Callable[[], Any], timeout: float, every: float = 1.0) -> Any:
        """Poll ``ready()`` until truthy; fail naming ``what`` with every component's log tail."""
        deadline = time.monotonic() + timeout
        while True:
            dead = [n for n, p in self.procs.items() if p.poll() is not None and n not in self.expected_dead]
            assert not dead, f"{', '.join(dead)} exited while waiting for {what}\n{self.failure()}"
            value = ready()
            if value:
                return value
            assert time.monotonic() < deadline, f"timed out after {timeout:.0f} s waiting for {what}\n{self.failure()}"
            time.sleep(every)

    expected_dead: set[str] = set()

    def failure(self, lines: int = 40) -> str:
        """The last ``lines`` lines of every component's log."""
        out = []
        for path in sorted(self.logs.glob("*.log")):
            tail = path.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"----- {path.name} (last {len(tail)} lines) -----\n" + "\n".join(tail))
        return "\n".join(out)

    def runs(self, dag_id: str) -> list[dict[str, Any]]:
        """Every run of a DAG (REST API), oldest logical date first."""
        body = self.get(f"/api/v2/dags/{dag_id}/dagRuns?limit=100&order_by=logical_date")
        return list(body["dag_runs"]) if body else []

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        body = self.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances?limit=100")
        return list(body["task_instances"]) if body else []
