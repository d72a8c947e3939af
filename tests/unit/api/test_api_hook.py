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


def test_the_client_keeps_and_sends_the_cookies_answers_set(monkeypatch: pytest.MonkeyPatch) -> None:
    """The client's jar skips answers without Set-Cookie; answers with it are stored and sent as before."""
    from bulksync.hooks.api import ApiClientSession

    assert isinstance(hook(monkeypatch, host="x.example").client(), ApiClientSession)

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/login":
            return httpx.Response(200, headers=[("Set-Cookie", "sid=abc; Path=/"), ("Set-Cookie", "n=1; Path=/")])
        return httpx.Response(200, json={"cookie": request.headers.get("cookie")})

    for session in (httpx.Client, ApiClientSession):
        with session(transport=httpx.MockTransport(answer), base_url="https://x.example", cookies={"z": "3"}) as c:
            assert c.get("/page").json() == {"cookie": "z=3"}
            c.get("/login")
            assert c.get("/page").json() == {"cookie": "z=3; sid=abc; n=1"} and c.cookies["sid"] == "abc"
            c.cookies = {"y": "2"}  # type: ignore[assignment]
            assert c.get("/page").json() == {"cookie": "y=2"}


@pytest.mark.parametrize("base", ["https://x.example", "https://x.example/api/v2", "https://x.example:8443/api/"])
def test_request_urls_are_the_ones_httpx_builds(monkeypatch: pytest.MonkeyPatch, base: str) -> None:
    """The client joins each path to the base URL once and reuses it: the URLs sent are httpx's own."""
    from bulksync.sources.api.client import ApiClient, Call
    from bulksync.spec.api import Limits

    monkeypatch.setenv("AIRFLOW_CONN_H", json.dumps({"conn_type": "http", "host": base}))
    client = ApiClient(ApiHook("h"), Limits(), "h")
    plain = httpx.Client(base_url=client.hook.api_base_url)
    for url, params in [
        ("/crm/v3/objects/contacts", {"limit": 100, "properties": "a,b", "after": "x y/z"}),
        ("crm/v3/objects/contacts", {"limit": 100}),
        ("/users/delta?$select=id,mail", None),
        ("/users/delta?$select=id,mail", {"$top": 5}),
        ("/a b/ü", {"q": "ü&="}),
        (f"{client.hook.api_base_url}/next?$skiptoken=abc%3D", None),
    ]:
        call = Call("GET", url, "x", 1, params)
        for _ in range(2):  # the second time from the cache
            ours = client.http.build_request("GET", client._url(call), params=params)
            assert str(ours.url) == str(plain.build_request("GET", url, params=params).url)
    client.close()
