"""The api hook builds on the HTTP provider's connection type: base URL as the provider computes it,
transport extras, extras-as-headers as the provider does, and auth options never sent as headers."""

from __future__ import annotations

import json

import httpx
import pytest

from bulksync.errors import ConfigurationError
from bulksync.hooks.api import ApiHook


def hook(monkeypatch: pytest.MonkeyPatch, **conn: object) -> ApiHook:
    monkeypatch.setenv("AIRFLOW_CONN_H", json.dumps({"conn_type": "http", **conn}))
    return ApiHook("h")


def test_base_url_headers_and_auth_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    h = hook(
        monkeypatch,
        host="api.example.com",
        schema="https",
        port=8443,
        password="s3cret-key",
        extra={
            "auth_kind": "api_key",
            "api_key_header": "X-Key",
            "X-Tenant": "acme",
            "headers": {"X-Trace": "1"},
            "client_secret": "never-a-header",
            "timeout": 12,
        },
    )
    assert h.api_base_url == "https://api.example.com:8443"
    assert isinstance(h, __import__("airflow.providers.http.hooks.http", fromlist=["HttpHook"]).HttpHook)
    assert h.conn_type == "http" and h.transport["timeout"] == 12.0
    with h.client() as client:
        request = client.build_request("GET", "/v1/x")
        h.authenticator.apply(request)
    assert request.headers["X-Key"] == "s3cret-key" and request.headers["X-Tenant"] == "acme"
    assert request.headers["X-Trace"] == "1" and "client_secret" not in {k.lower() for k in request.headers}
    assert "s3cret" not in h.describe()


def test_api_key_in_the_query_and_basic(monkeypatch: pytest.MonkeyPatch) -> None:
    h = hook(
        monkeypatch, host="https://x.example", password="k", extra={"auth_kind": "api_key", "api_key_param": "key"}
    )
    request = httpx.Request("GET", "https://x.example/a?b=1")
    h.authenticator.apply(request)
    assert str(request.url) == "https://x.example/a?b=1&key=k"
    h = hook(monkeypatch, host="x.example", login="u", password="p", extra={"auth_kind": "basic"})
    request = httpx.Request("GET", "https://x.example/")
    h.authenticator.apply(request)
    assert request.headers["Authorization"] == "Basic dTpw"


def test_unknown_or_incomplete_auth_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigurationError, match="auth_kind 'oauth3'; use one of none, api_key"):
        _ = hook(monkeypatch, host="x", extra={"auth_kind": "oauth3"}).authenticator
    auth = hook(monkeypatch, host="x", extra={"auth_kind": "oauth1_tba", "account": "A"}).authenticator
    with pytest.raises(ConfigurationError, match="lacks consumer_key, consumer_secret, token_id, token_secret"):
        auth.apply(httpx.Request("GET", "https://x/"))
    with pytest.raises(ConfigurationError, match="is not defined"):
        _ = ApiHook("missing_conn").connection
