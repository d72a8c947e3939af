"""The Salesforce hook's OAuth grants, built from a connection's extras (no network).

The token requests themselves run against the sandbox in tests/integration/test_salesforce_*.py.
"""

from __future__ import annotations

import json
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from bulksync.errors import ConfigurationError
from bulksync.hooks.salesforce import JWT_GRANT, BulksyncSalesforceHook


def hook(monkeypatch: pytest.MonkeyPatch, login: str | None = None, **extra: Any) -> BulksyncSalesforceHook:
    conn = {"conn_type": "salesforce", "extra": {"login_url": "https://127.0.0.1:8443/", **extra}}
    if login:
        conn["login"] = login
    monkeypatch.setenv("AIRFLOW_CONN_SF_TEST", json.dumps(conn))
    return BulksyncSalesforceHook("sf_test")


def test_client_credentials_and_refresh_token(monkeypatch: pytest.MonkeyPatch) -> None:
    h = hook(monkeypatch, consumer_key="ck", consumer_secret="s3cret", ca_bundle="/tmp/ca.pem")
    assert h.login_url == "https://127.0.0.1:8443"
    assert h.grant() == {"grant_type": "client_credentials", "client_id": "ck", "client_secret": "s3cret"}
    assert h.http_session.verify == "/tmp/ca.pem"
    h = hook(monkeypatch, consumer_key="ck", refresh_token="rt-1")
    assert h.grant() == {"grant_type": "refresh_token", "refresh_token": "rt-1", "client_id": "ck"}


def test_jwt_bearer_is_signed_with_the_private_key(monkeypatch: pytest.MonkeyPatch) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    h = hook(monkeypatch, login="integration@acme.example", consumer_key="ck", private_key=pem)
    form = h.grant()
    assert form["grant_type"] == JWT_GRANT
    claims = jwt.decode(form["assertion"], key.public_key(), algorithms=["RS256"], audience="https://127.0.0.1:8443")
    assert (claims["iss"], claims["sub"]) == ("ck", "integration@acme.example")


def test_missing_or_bad_credentials_are_clear_and_secret_free(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigurationError, match="has login_url but no OAuth credentials: set extras"):
        hook(monkeypatch, consumer_key="ck").grant()
    h = hook(monkeypatch, login="u", consumer_key="ck", private_key="not-a-key-s3cret")
    with pytest.raises(ConfigurationError) as info:
        h.grant()
    assert "cannot sign a JWT" in str(info.value) and "s3cret" not in str(info.value)
