"""Pytest plugin: the Salesforce sandbox started in-process on a free port, over real HTTPS.

Loaded from ``tests/conftest.py`` (``pytest_plugins``). Use the ``salesforce_sandbox`` fixture;
configure it per test with ``@pytest.mark.salesforce_sandbox(counts={"Account": 500}, token_lifetime=2)``
(any :class:`~bulksync.sandbox.salesforce.SandboxConfig` field). The fixture also sets the Airflow
connection ``salesforce_sandbox`` (``AIRFLOW_CONN_SALESFORCE_SANDBOX``) for the test.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from bulksync.sandbox.salesforce import SalesforceSandbox, SandboxConfig
from bulksync.sandbox.salesforce.auth import Credentials

CONN_ID = "salesforce_sandbox"


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker."""
    config.addinivalue_line("markers", "salesforce_sandbox(**config): SandboxConfig fields for the sandbox fixture")


@dataclass
class SandboxHandle:
    """What a test needs: URLs, credentials, the CA bundle, an admin handle and ready clients."""

    sandbox: SalesforceSandbox
    conn_id: str = CONN_ID

    @property
    def login_url(self) -> str:
        """OAuth login URL (``https://localhost:PORT``)."""
        return self.sandbox.login_url

    @property
    def instance_url(self) -> str:
        """Instance URL (``https://127.0.0.1:PORT``)."""
        return self.sandbox.instance_url

    @property
    def credentials(self) -> Credentials:
        """Client id/secret, user, password, refresh token, JWT key file."""
        return self.sandbox.credentials

    @property
    def ca_bundle(self) -> Path:
        """The CA certificate to trust."""
        return self.sandbox.ca_bundle

    @property
    def admin(self) -> SalesforceSandbox:
        """The sandbox itself: ``store`` (create/update/delete records), ``faults``, ``auth``, ``set_clock``."""
        return self.sandbox

    def session(self) -> requests.Session:
        """A ``requests.Session`` trusting the sandbox's CA.

        ``trust_env`` is off: requests lets ``REQUESTS_CA_BUNDLE`` override ``Session.verify``.
        """
        session = requests.Session()
        session.verify = str(self.ca_bundle)
        session.trust_env = False
        return session

    def token(self, session: requests.Session | None = None) -> dict[str, Any]:
        """A client-credentials token response."""
        resp = (session or self.session()).post(
            self.login_url + "/services/oauth2/token",
            data={
                "grant_type": "client_credentials",
                "client_id": self.credentials.client_id,
                "client_secret": self.credentials.client_secret,
            },
            timeout=30,
        )
        resp.raise_for_status()
        return dict(resp.json())

    def client(self, version: str = "59.0") -> Any:
        """The unmodified ``simple_salesforce.Salesforce`` client, logged in (client credentials)."""
        from simple_salesforce import Salesforce

        session = self.session()
        token = self.token(session)
        return Salesforce(
            session_id=token["access_token"], instance_url=token["instance_url"], session=session, version=version
        )


@pytest.fixture
def salesforce_sandbox(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[SandboxHandle]:
    """A running sandbox (200 records per object unless the marker says otherwise)."""
    marker = request.node.get_closest_marker("salesforce_sandbox")
    options: dict[str, Any] = {"records_per_object": 200, "job_seconds": 0.05, "workdir": tmp_path / "sf-sandbox"}
    if marker:
        options.update(marker.kwargs)
    with SalesforceSandbox(SandboxConfig(**options)) as sandbox:
        monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", sandbox.connection_uri())
        yield SandboxHandle(sandbox)
