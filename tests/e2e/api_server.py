"""A real ``airflow api-server`` with the bulksync plugin serving a reports root, for browser tests.

SQLite metadata in a temporary AIRFLOW_HOME, the project's plugins folder, an empty dags folder and
the simple auth manager with everyone admin. Shared by the end-to-end tests that look at bulksync's
pages inside the Airflow UI.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
PLUGINS = REPO / "plugins"
AIRFLOW = Path(sys.executable).parent / "airflow"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str) -> tuple[int, str]:
    """The status and text body of a GET (an HTTP error status included)."""
    try:
        with urllib.request.urlopen(url, timeout=30) as res:
            return res.status, res.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def stop(proc: subprocess.Popen[Any]) -> None:
    """Terminate a process started in its own session, with all its children."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    except ProcessLookupError:
        pass


@contextlib.contextmanager
def api_server(home: Path, reports: Path) -> Iterator[str]:
    """Run an api-server with the bulksync plugin serving ``reports``, its home in ``home``.

    Args:
        home: an empty folder for AIRFLOW_HOME, the dags folder, BULKSYNC_HOME and the server log.
        reports: the reports root the plugin serves.

    Yields:
        The server's base URL, once ``/api/v2/version`` answers; the server is stopped on exit.
    """
    (home / "dags").mkdir(exist_ok=True)
    (home / "airflow").mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "BULKSYNC"))}
    env.update(
        {
            "AIRFLOW_HOME": str(home / "airflow"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(PLUGINS),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow/airflow.db",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__API__WORKERS": "1",
            "BULKSYNC_REPORTS_ROOT": str(reports),
            "BULKSYNC_HOME": str(home),
        }
    )
    migrate = subprocess.run(
        [str(AIRFLOW), "db", "migrate"], env=env, cwd=home, capture_output=True, text=True, timeout=300
    )
    assert migrate.returncode == 0, migrate.stdout[-3000:] + migrate.stderr[-3000:]

    port = free_port()
    log_path = home / "api-server.log"
    log = log_path.open("w")
    proc = subprocess.Popen(
        [str(AIRFLOW), "api-server", "--apps", "core", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        env=env,
        cwd=home,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            assert proc.poll() is None, f"api-server exited:\n{log_path.read_text()[-4000:]}"
            try:
                if get(f"{base}/api/v2/version")[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, f"api-server not up:\n{log_path.read_text()[-4000:]}"
            time.sleep(0.5)
        yield base
    finally:
        stop(proc)
        log.close()
