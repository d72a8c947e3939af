"""The Salesforce sandbox on the stand-in framework: the framework's fault kinds and schedule reach
Salesforce clients in Salesforce's shapes, and the wire details clients rely on are kept."""

from __future__ import annotations

import socket
import ssl
import time
from typing import Any

import pytest
import requests
from simple_salesforce.exceptions import SalesforceExpiredSession

from tests.sandbox_salesforce import SandboxHandle


def raw_get(sf: Any, path: str) -> requests.Response:
    return sf.session.get(f"{sf.base_url}{path}", headers=sf.headers, timeout=30)


def test_scheduled_framework_faults_in_salesforce_shapes(salesforce_sandbox: SandboxHandle) -> None:
    sb = salesforce_sandbox
    sf = sb.client()
    start = sb.admin.faults.requests
    sb.admin.faults.configure(schedule={start + 1: "reset", start + 2: "html", start + 4: "expire"})
    with pytest.raises(requests.exceptions.ChunkedEncodingError):  # headers, then the connection closed
        raw_get(sf, "limits")
    page = raw_get(sf, "limits")
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert raw_get(sf, "limits").json()["DailyApiRequests"]["Max"] == 100_000  # request 3: no fault
    with pytest.raises(SalesforceExpiredSession):  # request 4: every token expired before it was served
        sf.limits()
    assert sb.admin.faults.state()["faults_served"] == {**dict.fromkeys(sb.admin.faults.kinds, 0), "reset": 1,
                                                        "html": 1, "expire": 1}  # fmt: skip
    with pytest.raises(TypeError, match="unknown fault kinds"):
        sb.admin.faults.configure(schedule={1: "meltdown"})


def test_wire_details_clients_rely_on(salesforce_sandbox: SandboxHandle) -> None:
    """Headers exactly as the ``http.server`` sandbox sent them (no charset added to CSV, usage on errors)."""
    sb = salesforce_sandbox
    sf = sb.client()
    ok = raw_get(sf, "limits")
    assert ok.headers["Content-Type"] == "application/json;charset=UTF-8"
    assert ok.headers["Sforce-Limit-Info"].startswith("api-usage=") and ok.headers["Server"] == "sandbox"
    assert ok.text.startswith('{"DailyApiRequests": {"Max": 100000, ')  # json.dumps, as before
    gone = raw_get(sf, "sobjects/Nope/describe")
    assert gone.status_code == 404 and "Sforce-Limit-Info" in gone.headers
    job = sf.bulk2.Account._client.create_job("query", "SELECT Id FROM Account")
    while sf.bulk2.Account._client.get_job(job["id"], True)["state"] != "JobComplete":
        time.sleep(0.05)
    page = raw_get(sf, f"jobs/query/{job['id']}/results?maxRecords=5")
    assert page.headers["Content-Type"] == "text/csv" and page.headers["Sforce-NumberOfRecords"] == "5"
    assert int(page.headers["Content-Length"]) == len(page.content) and page.text.count("\n") == 6
    unauthenticated = sb.session().get(sb.instance_url + "/services/data/v59.0/limits", timeout=30)
    assert unauthenticated.status_code == 401
    assert unauthenticated.json() == [{"errorCode": "INVALID_SESSION_ID", "message": "Session expired or invalid"}]


def test_a_constructed_sandbox_already_accepts_connections(tmp_path: Any) -> None:
    """``bulksync sandbox salesforce --env-file`` writes the file before serving: clients must not be refused."""
    from bulksync.sandbox.salesforce import SalesforceSandbox, SandboxConfig

    sandbox = SalesforceSandbox(SandboxConfig(workdir=tmp_path, records_per_object=1))
    try:
        early = socket.create_connection(("127.0.0.1", sandbox.port), timeout=5)  # queued, not refused
        sandbox.start()
        context = ssl.create_default_context(cafile=str(sandbox.ca_bundle))
        with context.wrap_socket(early, server_hostname="127.0.0.1") as tls:
            tls.sendall(b"GET /services/data/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            assert tls.recv(64).startswith(b"HTTP/1.1 200")
    finally:
        sandbox.stop()
