"""``bulksync sandbox salesforce`` as a user runs it: a real process, its printed lines, its env file."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests
from simple_salesforce import Salesforce

BIN = Path(sys.executable).parent / "bulksync"


def read_env(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        name, _, value = shlex.split(line.removeprefix("export "))[0].partition("=")
        values[name] = value
    return values


def test_cli_prints_credentials_and_serves_until_terminated(tmp_path: Path) -> None:
    env_file = tmp_path / "sf.env"
    proc = subprocess.Popen(
        [str(BIN), "sandbox", "salesforce", "--port", "0", "--records-per-object", "50", "--count", "Account=75",
         "--workdir", str(tmp_path / "work"), "--env-file", str(env_file), "--conn-id", "acme_sf",
         "--modstamp-end", "2025-06-01T00:00:00+00:00", "--job-seconds", "0.05"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, "COLUMNS": "250"},
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not env_file.exists():
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            assert time.monotonic() < deadline, "the sandbox did not start within 60 s"
            time.sleep(0.1)
        env = read_env(env_file)
        from airflow.models.connection import Connection

        conn = Connection(conn_id="acme_sf", uri=env["AIRFLOW_CONN_ACME_SF"])
        extras = conn.extra_dejson
        assert conn.conn_type == "salesforce"
        assert extras["login_url"] == env["SF_SANDBOX_LOGIN_URL"]
        assert extras["client_id"] == env["SF_SANDBOX_CLIENT_ID"]
        assert extras["client_secret"] == env["SF_SANDBOX_CLIENT_SECRET"]
        assert Path(extras["ca_bundle"]) == tmp_path / "work" / "tls" / "ca.pem"
        session = requests.Session()
        session.verify, session.trust_env = extras["ca_bundle"], False
        token = session.post(
            extras["login_url"] + "/services/oauth2/token",
            data={"grant_type": "client_credentials", "client_id": extras["client_id"],
                  "client_secret": extras["client_secret"]},
            timeout=30,
        ).json()  # fmt: skip
        sf = Salesforce(session_id=token["access_token"], instance_url=token["instance_url"], session=session)
        assert sf.query("SELECT COUNT() FROM Account", include_deleted=True)["totalSize"] == 75
        assert sf.query("SELECT COUNT() FROM Lead", include_deleted=True)["totalSize"] == 50
        window = "SystemModstamp >= 2025-04-06T00:00:00Z AND SystemModstamp < 2025-06-01T00:00:00Z"
        assert sf.query(f"SELECT COUNT() FROM Lead WHERE {window}", include_deleted=True)["totalSize"] == 50
        state = session.get(
            env["SF_SANDBOX_INSTANCE_URL"] + "/__admin/state",
            headers={"X-Sandbox-Admin-Key": env["SF_SANDBOX_ADMIN_KEY"]},
            timeout=30,
        ).json()
        assert state["records"]["Account"] == 75
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert not env_file.exists()
    assert env["SF_SANDBOX_LOGIN_URL"] in out and env["SF_SANDBOX_CLIENT_SECRET"] in out
    assert "export 'AIRFLOW_CONN_ACME_SF=salesforce://" in out


def _sandbox_cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN), "sandbox", "salesforce", *args, "--workdir", str(tmp_path)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_cli_refuses_a_bad_count(tmp_path: Path) -> None:
    result = _sandbox_cli(tmp_path, "--count", "Account=lots")
    assert result.returncode == 2
    assert "expected OBJECT=N" in result.stderr


def test_cli_refuses_a_bad_modstamp_end(tmp_path: Path) -> None:
    result = _sandbox_cli(tmp_path, "--modstamp-end", "yesterday")
    assert result.returncode == 2
    assert "expected an ISO date-time" in result.stderr


def test_public_host_names_the_urls_and_the_certificate(tmp_path: Path) -> None:
    """In compose the sandbox binds all addresses and is reached by its service name."""
    from cryptography import x509

    from bulksync.sandbox.salesforce import SalesforceSandbox, SandboxConfig

    sandbox = SalesforceSandbox(
        SandboxConfig(host="0.0.0.0", public_host="salesforce-sandbox", workdir=tmp_path, records_per_object=1)
    )
    try:
        assert sandbox.address[0] == "0.0.0.0"
        assert sandbox.login_url == f"https://salesforce-sandbox:{sandbox.port}"
        assert sandbox.instance_url == f"https://salesforce-sandbox:{sandbox.port}"
        cert = x509.load_pem_x509_certificate(sandbox.tls.cert.read_bytes())
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert set(names.get_values_for_type(x509.DNSName)) == {"localhost", "salesforce-sandbox"}
    finally:
        sandbox.stop()
