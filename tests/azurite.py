"""Azurite (Microsoft's Azure Storage emulator, npm package ``azurite``) as a pytest fixture.

``make test`` installs it into ``.local/tools/node_modules`` (``make azurite``). The session fixture
starts ``azurite-blob`` on 127.0.0.1 on a free port with telemetry off and its data in a temporary
folder (removed afterwards). Tests get the well-known development account and an Airflow ``wasb``
connection to it. Without Node.js or the package, the tests skip with the reason, unless
``BULKSYNC_REQUIRE_SERVICES=1`` (CI), where they fail.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
AZURITE_BIN = Path(
    os.environ.get("BULKSYNC_AZURITE", ROOT / ".local" / "tools" / "node_modules" / ".bin" / "azurite-blob")
)
ACCOUNT = "devstoreaccount1"
# The documented, public development key of Azurite's default account (not a secret).
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
CONN_ID = "azurite"


@dataclass(frozen=True)
class Azurite:
    """A running Azurite blob service."""

    host: str
    port: int
    location: Path

    @property
    def account(self) -> str:
        return ACCOUNT

    @property
    def account_key(self) -> str:
        return ACCOUNT_KEY

    @property
    def blob_endpoint(self) -> str:
        """``http://127.0.0.1:PORT/devstoreaccount1`` (path-style, as Azurite serves it)."""
        return f"http://{self.host}:{self.port}/{ACCOUNT}"

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
            f"BlobEndpoint={self.blob_endpoint};"
        )

    def airflow_conn(self, **extra: str) -> str:
        """An Airflow ``wasb`` connection as JSON (for ``AIRFLOW_CONN_<ID>``), by connection string
        unless ``extra`` gives other fields."""
        return json.dumps({"conn_type": "wasb", "extra": extra or {"connection_string": self.connection_string}})

    def key_conn(self, key: str = ACCOUNT_KEY) -> str:
        """A ``wasb`` connection by account name (login), account key (password) and account URL (host)."""
        return json.dumps({"conn_type": "wasb", "login": ACCOUNT, "password": key, "host": self.blob_endpoint})

    def service_client(self):  # type: ignore[no-untyped-def]
        """A ``BlobServiceClient`` of the real SDK."""
        from azure.storage.blob import BlobServiceClient

        return BlobServiceClient.from_connection_string(self.connection_string)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_ready(proc: subprocess.Popen[bytes], host: str, port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"azurite-blob exited with {proc.returncode}: {proc.stderr.read().decode() if proc.stderr else ''}"
            )
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"azurite-blob did not listen on {host}:{port} within {timeout:.0f}s")


def azurite_missing() -> str | None:
    """Why Azurite cannot start here, or ``None`` when it can."""
    if shutil.which("node") is None:
        return "Node.js is not installed (Azurite needs it): apt-get install nodejs npm, then make azurite"
    if not AZURITE_BIN.exists():
        return f"Azurite is not installed at {AZURITE_BIN}: run make azurite"
    return None


@contextlib.contextmanager
def start_azurite() -> Iterator[Azurite]:
    """Run ``azurite-blob`` on 127.0.0.1 on a free port, telemetry off, data in a temporary folder
    that is removed afterwards (also used by ``bench/azure_bench.py``)."""
    location = Path(tempfile.mkdtemp(prefix="bulksync-azurite-"))
    host, port = "127.0.0.1", _free_port()
    cmd = [
        str(AZURITE_BIN),
        "--blobHost", host,
        "--blobPort", str(port),
        "--location", str(location),
        "--disableTelemetry",
        "--skipApiVersionCheck",
        "--silent",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_ready(proc, host, port)
        yield Azurite(host, port, location)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(location, ignore_errors=True)


@pytest.fixture(scope="session")
def azurite_service() -> Iterator[Azurite]:
    """One Azurite blob service per test session, its data removed afterwards."""
    from tests.conftest import service_missing

    reason = azurite_missing()
    if reason:
        service_missing(reason)
    with start_azurite() as service:
        yield service


@pytest.fixture
def azurite(azurite_service: Azurite, monkeypatch: pytest.MonkeyPatch) -> Azurite:
    """The session's Azurite, also as Airflow connection ``azurite`` (connection string)."""
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", azurite_service.airflow_conn())
    return azurite_service


@pytest.fixture
def container(azurite: Azurite) -> Iterator[str]:
    """A fresh container (deleted afterwards)."""
    name = f"test-{uuid.uuid4().hex[:12]}"
    client = azurite.service_client()
    client.create_container(name)
    yield name
    client.delete_container(name)
