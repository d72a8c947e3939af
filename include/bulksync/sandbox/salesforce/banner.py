"""What ``bulksync sandbox salesforce`` tells the user: URLs, credentials, connection lines."""

from __future__ import annotations

import os
import shlex
from pathlib import Path

from bulksync.sandbox.salesforce.server import ADMIN_HEADER, SalesforceSandbox


def env_lines(sandbox: SalesforceSandbox, conn_id: str) -> list[str]:
    """``NAME=value`` lines: the Airflow connection (URI) and the sandbox's details."""
    creds = sandbox.credentials
    return [
        f"AIRFLOW_CONN_{conn_id.upper()}={sandbox.connection_uri()}",
        f"SF_SANDBOX_LOGIN_URL={sandbox.login_url}",
        f"SF_SANDBOX_INSTANCE_URL={sandbox.instance_url}",
        f"SF_SANDBOX_CLIENT_ID={creds.client_id}",
        f"SF_SANDBOX_CLIENT_SECRET={creds.client_secret}",
        f"SF_SANDBOX_CA_BUNDLE={sandbox.ca_bundle}",
        f"SF_SANDBOX_ADMIN_KEY={sandbox.admin_key}",
    ]


def write_env_file(sandbox: SalesforceSandbox, conn_id: str, path: Path) -> None:
    """Write the env lines to ``path`` atomically (its appearance means the sandbox is serving)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text("".join(f"export {shlex.quote(line)}\n" for line in env_lines(sandbox, conn_id)))
    os.chmod(tmp, 0o600)
    tmp.replace(path)


def banner(sandbox: SalesforceSandbox, conn_id: str) -> str:
    """The text printed at start."""
    creds = sandbox.credentials
    counts = ", ".join(f"{name} {n:,}" for name, n in sandbox.store.totals.items())
    exports = "\n".join(f"  export {shlex.quote(line)}" for line in env_lines(sandbox, conn_id)[:1])
    return f"""Salesforce sandbox (REST + Bulk API 2.0, HTTPS)
  login URL      {sandbox.login_url}   (POST /services/oauth2/token)
  instance URL   {sandbox.instance_url}
  CA bundle      {sandbox.ca_bundle}
  records        {counts}

Credentials it accepts
  client_credentials   client_id={creds.client_id}
                       client_secret={creds.client_secret}
  password             username={creds.username} password={creds.password} (+ client id/secret)
  refresh_token        refresh_token={creds.refresh_token} (+ client id)
  jwt-bearer           RS256 assertion signed with {creds.jwt_key}, iss=client_id, sub={creds.username},
                       aud={sandbox.login_url}

Airflow connection '{conn_id}' (conn_type salesforce)
  {sandbox.connection_uri()}
{exports}
  export AIRFLOW_CONN_{conn_id.upper()}={shlex.quote(sandbox.connection_json())}   # same, as JSON

Admin (faults, clock, token expiry): header {ADMIN_HEADER}: {sandbox.admin_key}
  curl --cacert {sandbox.ca_bundle} -H '{ADMIN_HEADER}: {sandbox.admin_key}' {sandbox.instance_url}/__admin/state
Ctrl-C stops it."""
