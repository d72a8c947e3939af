"""Auth kinds of ``api`` connections against a stand-in: OAuth 2.0 grants (rotating refresh tokens
shared by two real processes), JWT bearer, OAuth 1.0a, Basic, API key in the query, mutual TLS; and
no secret in logs, errors or manifests."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from bulksync.errors import ConfigurationError
from bulksync.sandbox.asgi import StandIn
from bulksync.sources.api.errors import ApiRetriesExhausted
from tests.conftest import ROOT
from tests.integration.api.conftest import api_dataset, api_pipeline, extract, window

COLS = [{"name": "id", "type": "int64", "nullable": False}, {"name": "name"}]


def spec(**extra: Any) -> Any:
    return api_pipeline(
        api_dataset(
            "items",
            "acme",
            {
                "endpoint": {"path": "/v1/items/cursor"},
                "records": {"path": "data", "columns": COLS},
                "paginate": {
                    "kind": "cursor",
                    "next_path": "meta.next_cursor",
                    "cursor_param": "cursor",
                    "limit_param": "limit",
                    "limit": 10,
                },
                "limits": {"initial_wait_seconds": 0.01, "max_wait_seconds": 0.2, **extra.pop("limits", {})},
                **extra,
            },
        )
    )


def use(monkeypatch: pytest.MonkeyPatch, s: StandIn, extra: dict[str, Any], **fields: Any) -> None:
    conn = {
        "conn_type": "http",
        "host": "127.0.0.1",
        "schema": "https",
        "port": s.port,
        **fields,
        "extra": {"verify": str(s.tls.ca_bundle), **extra},
    }
    monkeypatch.setenv("AIRFLOW_CONN_ACME", json.dumps(conn))


def test_client_credentials_basic_and_query_key(standin: Any, env: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    s = standin("acme_rest", "acme", counts={"items": 25}, options={"auth": "oauth"})
    c = s.credentials
    use(
        monkeypatch,
        s,
        {"auth_kind": "oauth2_client_credentials", "token_url": s.token_url, "client_auth": "basic"},
        login=c.client_id,
        password=c.client_secret,
    )
    assert extract(spec(), "items", window(None, None))[0].rows == 25
    for mode, extra, fields in (
        ("basic", {"auth_kind": "basic"}, {"login": c.username, "password": c.password}),
        ("api_key_query", {"auth_kind": "api_key", "api_key_param": "api_key"}, {"password": c.api_key}),
    ):
        s.config.options["auth"] = mode
        use(monkeypatch, s, extra, **fields)
        assert extract(spec(), "items", window(None, None), run_id=mode)[0].rows == 25


def test_jwt_bearer_assertion_signed_with_the_connection_key(
    standin: Any, env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = standin("acme_rest", "acme", counts={"items": 15}, options={"auth": "oauth"})
    use(
        monkeypatch,
        s,
        {
            "auth_kind": "jwt_bearer",
            "token_url": s.token_url,
            "client_email": s.credentials.client_id,
            "private_key_file": str(s.credentials.private_key_file),
            "scope": "items.read",
        },
    )
    assert extract(spec(), "items", window(None, None))[0].rows == 15
    assert s.auth.counts["issued"] == 1


def test_oauth1_token_based_auth_signs_every_request(standin: Any, env: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    s = standin("acme_rest", "acme", counts={"items": 35}, options={"auth": "oauth1"})
    c = s.credentials
    fields = {
        "auth_kind": "oauth1_tba",
        "account": "ACME_SB1",
        "consumer_key": c.consumer_key,
        "consumer_secret": c.consumer_secret,
        "token_id": c.token_id,
        "token_secret": c.token_secret,
    }
    use(monkeypatch, s, fields)
    assert extract(spec(), "items", window(None, None))[0].rows == 35  # 4 signed pages, cursor in the query
    use(monkeypatch, s, {**fields, "token_secret": "wrong"})
    with pytest.raises(ConfigurationError, match="refused the credentials of connection 'acme'"):
        extract(spec(), "items", window(None, None), run_id="bad")


def test_mutual_tls_needs_the_client_certificate(standin: Any, env: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    s = standin("acme_rest", "acme", counts={"items": 12}, client_cert=True)
    use(
        monkeypatch,
        s,
        {"auth_kind": "api_key", "cert": str(s.tls.client_cert), "client_key": str(s.tls.client_key)},
        password=s.credentials.api_key,
    )
    assert extract(spec(), "items", window(None, None))[0].rows == 12
    use(monkeypatch, s, {"auth_kind": "api_key"}, password=s.credentials.api_key)
    with pytest.raises(ApiRetriesExhausted):
        extract(spec(limits={"max_attempts": 1}), "items", window(None, None), run_id="nocert")


SHARED = textwrap.dedent("""
    import json, os, sys, time, random
    import httpx
    from bulksync.hooks.api_auth import make_authenticator  # no Airflow import: the child starts fast
    conn = json.loads(os.environ["AIRFLOW_CONN_ACME"])
    fields = {**conn["extra"], "login": conn["login"], "password": conn["password"]}
    base = f"https://127.0.0.1:{conn['port']}"
    for i in range(int(sys.argv[1])):
        auth = make_authenticator("acme", fields, {"verify": conn["extra"]["verify"]})  # a new task
        with httpx.Client(verify=conn["extra"]["verify"]) as client:
            for page in range(3):
                request = client.build_request("GET", base + "/v1/items/cursor", params={"limit": 5})
                auth.apply(request)
                assert client.send(request).status_code == 200
        time.sleep(0.3 + random.random() * 0.3)  # 5 tasks: over 1.5 s per process, tokens last 1 s
""")


def _two_processes(s: StandIn, tmp_path: Path, rotating: bool) -> list[subprocess.CompletedProcess[str]]:
    c = s.credentials
    conn = {
        "conn_type": "http",
        "host": "127.0.0.1",
        "schema": "https",
        "port": s.port,
        "login": c.client_id,
        "password": c.client_secret,
        "extra": {
            "auth_kind": "oauth2_refresh_token",
            "token_url": s.token_url,
            "refresh_token": c.refresh_token,
            "rotating_refresh_token": rotating,
            "verify": str(s.tls.ca_bundle),
        },
    }
    env = {
        **os.environ,
        "AIRFLOW_CONN_ACME": json.dumps(conn),
        "BULKSYNC_TOKEN_DIR": str(tmp_path / "shared-tokens"),
        "PYTHONPATH": str(ROOT),
    }
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", SHARED, "5"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=300)
        out.append(subprocess.CompletedProcess(p.args, p.returncode, stdout, stderr))
    return out


def test_a_rotating_refresh_token_shared_by_two_processes_is_never_lost(standin: Any, env: Any, tmp_path: Path) -> None:
    # tokens live 31 s and are renewed 30 s before they expire: about one refresh a second per process
    s = standin(
        "acme_rest", "acme", counts={"items": 20}, options={"auth": "oauth"}, rotate_refresh=True, token_lifetime=31.0
    )
    results = _two_processes(s, tmp_path, rotating=True)
    assert [r.returncode for r in results] == [0, 0], [r.stderr[-2000:] for r in results]
    assert s.auth.counts["refreshed"] >= 2 and s.auth.counts["reused_refresh_token"] == 0
    saved = json.loads((tmp_path / "shared-tokens" / "acme.json").read_text())
    assert saved["refresh_token"] in s.auth.refresh_tokens  # the live token of the chain is the saved one
    assert oct((tmp_path / "shared-tokens" / "acme.json").stat().st_mode & 0o777) == "0o600"


def test_without_persistence_the_second_refresh_fails_and_says_why(standin: Any, env: Any, tmp_path: Path) -> None:
    s = standin(
        "acme_rest", "acme", counts={"items": 20}, options={"auth": "oauth"}, rotate_refresh=True, token_lifetime=31.0
    )
    results = _two_processes(s, tmp_path, rotating=False)
    assert any(r.returncode != 0 for r in results)
    assert "rotating_refresh_token: true" in "".join(r.stderr for r in results)
    assert s.auth.counts["reused_refresh_token"] >= 1


def test_no_secret_in_logs_errors_or_manifests(
    standin: Any, env: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    s = standin(
        "acme_rest", "acme", counts={"items": 30}, options={"auth": "oauth"}, faults={"schedule": {2: "expire"}}
    )
    c = s.credentials
    use(
        monkeypatch,
        s,
        {"auth_kind": "oauth2_refresh_token", "token_url": s.token_url, "refresh_token": c.refresh_token},
        login=c.client_id,
        password=c.client_secret,
    )
    caplog.set_level(logging.DEBUG)
    manifest, _ = extract(spec(), "items", window(None, None))
    use(
        monkeypatch,
        s,
        {"auth_kind": "oauth2_refresh_token", "token_url": s.token_url, "refresh_token": "rt-wrong-secret-value"},
        login=c.client_id,
        password=c.client_secret,
    )
    with pytest.raises(ConfigurationError) as failed:
        extract(spec(), "items", window(None, None), run_id="bad")
    issued = list(s.auth.tokens)
    text = (
        caplog.text
        + str(failed.value)
        + json.dumps(manifest.to_json() if hasattr(manifest, "to_json") else vars(manifest), default=str)
    )
    for secret in (c.client_secret, c.refresh_token, "rt-wrong-secret-value", *issued):
        assert secret not in text
    assert "invalid_grant" in str(failed.value) and manifest.extra["source_stats"]["reauthentications"] == 1
