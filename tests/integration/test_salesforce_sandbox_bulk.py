"""Bulk API 2.0 query jobs and faults of the Salesforce sandbox, through the unmodified simple_salesforce
client over real HTTPS (sandbox started in-process by the ``salesforce_sandbox`` fixture; no mocks)."""

from __future__ import annotations

import csv
import io
import time
from typing import Any

import pytest
import requests
from simple_salesforce.bulk2 import Operation
from simple_salesforce.exceptions import (
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceOperationError,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)

from tests.helpers import java_double_text
from tests.sandbox_salesforce import SandboxHandle

pytestmark = pytest.mark.timeout(120)
ACCOUNT_FIELDS = [
    "Id", "IsDeleted", "Name", "BillingStreet", "BillingCity", "BillingLatitude", "AnnualRevenue", "NumberOfEmployees",
    "Description", "SystemModstamp", "LastActivityDate", "Region__c", "Credit_Limit__c", "Active__c",
    "Revenue_Per_Employee__c",
]  # fmt: skip


def as_text(value: Any, ftype: str) -> str:
    """A typed value as Bulk CSV writes it (null is the empty string)."""
    if value is None:
        return ""
    if ftype == "datetime":
        return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
    if ftype == "boolean":
        return "true" if value else "false"
    if isinstance(value, float) and ftype in ("double", "currency", "percent"):
        return java_double_text(value)
    return str(value)


def truth(sb: SandboxHandle, obj: str, fields: list[str], include_deleted: bool = False) -> list[list[str]]:
    """The sandbox's records as CSV text rows."""
    types = {f.name: f.type for f in _fields(obj)}
    table = sb.admin.records(obj, fields, include_deleted)
    return [[as_text(row[f], types[f]) for f in fields] for row in table.to_pylist()]


def _fields(obj: str) -> list[Any]:
    from bulksync.sandbox.salesforce.schema import find_object

    found = find_object(obj)
    assert found is not None
    return list(found.fields)


def parse_pages(pages: list[str], delimiter: str = ",") -> tuple[list[str], list[list[str]]]:
    """Header and records of Bulk CSV pages (each page repeats the header)."""
    header: list[str] = []
    rows: list[list[str]] = []
    for page in pages:
        parsed = list(csv.reader(io.StringIO(page, newline=""), delimiter=delimiter))
        header = parsed[0]
        rows += parsed[1:]
    return header, rows


@pytest.mark.salesforce_sandbox(counts={"Account": 2500})
def test_bulk2_query_pages_equal_the_records(salesforce_sandbox: SandboxHandle) -> None:
    sb = salesforce_sandbox
    sf = sb.client()
    soql = f"SELECT {', '.join(ACCOUNT_FIELDS)} FROM Account"
    pages = list(sf.bulk2.Account.query(soql, max_records=333, wait=0.05))
    header, rows = parse_pages(pages)
    assert header == ACCOUNT_FIELDS
    assert rows == truth(sb, "Account", ACCOUNT_FIELDS)
    assert len(pages) == -(-len(rows) // 333)
    all_pages = list(sf.bulk2.Account.query_all(soql, max_records=1000, wait=0.05))
    assert parse_pages(all_pages)[1] == truth(sb, "Account", ACCOUNT_FIELDS, include_deleted=True)
    assert len(parse_pages(all_pages)[1]) > len(rows)


def test_bulk2_result_headers_and_locators(salesforce_sandbox: SandboxHandle) -> None:
    sb = salesforce_sandbox
    sf = sb.client()
    client = sf.bulk2.Contact._client
    job = client.create_job(Operation.query, "SELECT Id, Name, MailingStreet FROM Contact")
    assert job["state"] == "UploadComplete" and job["object"] == "Contact" and job["id"].startswith("750")
    client.wait_for_job(job["id"], True, 0.05)
    info = client.get_job(job["id"], True)
    expected = truth(sb, "Contact", ["Id", "Name", "MailingStreet"])
    assert info["state"] == "JobComplete" and info["numberRecordsProcessed"] == len(expected)
    url = f"{sf.bulk2_url}query/{job['id']}/results"
    locator, seen, counts = "", [], []
    while True:
        params: dict[str, Any] = {"maxRecords": 64}
        if locator:
            params["locator"] = locator
        resp = sf.session.get(url, headers=sf.headers, params=params)
        assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("text/csv")
        counts.append(int(resp.headers["Sforce-NumberOfRecords"]))
        page_rows = parse_pages([resp.content.decode()])[1]
        assert len(page_rows) == counts[-1]
        seen += page_rows
        locator = resp.headers["Sforce-Locator"]
        if locator == "null":
            break
    assert seen == expected
    assert counts[:-1] == [64] * (len(counts) - 1)
    listed = client.get_job("", True)  # GET /jobs/query
    assert job["id"] in [j["id"] for j in listed["records"]]


def test_bulk2_delimiters_and_line_endings(salesforce_sandbox: SandboxHandle) -> None:
    sb = salesforce_sandbox
    sf = sb.client()
    fields = ["Id", "Street", "Company", "Email"]
    for delimiter, char in (("TAB", "\t"), ("SEMICOLON", ";"), ("PIPE", "|")):
        pages = list(
            sf.bulk2.Lead.query(
                f"SELECT {', '.join(fields)} FROM Lead", column_delimiter=delimiter, line_ending="CRLF", wait=0.05
            )
        )
        assert all(p.endswith("\r\n") for p in pages)
        assert parse_pages(pages, char)[1] == truth(sb, "Lead", fields)


def test_bulk2_errors(salesforce_sandbox: SandboxHandle) -> None:
    sf = salesforce_sandbox.client()
    client = sf.bulk2.Account._client
    cases = {
        "SELECT Id, BillingAddress FROM Account": ("API_ERROR", "Selecting compound data not supported in Bulk Query"),
        "SELECT Id, Nmae FROM Account": ("INVALID_FIELD", "No such column 'Nmae' on entity 'Account'"),
        "SELECT Id FROM Acount": ("INVALID_TYPE", "sObject type 'Acount' is not supported"),
        "SELECT Id FROM Account WHERE": ("MALFORMED_QUERY", "unexpected end of query"),
    }
    for soql, (code, message) in cases.items():
        with pytest.raises(SalesforceMalformedRequest) as info:
            client.create_job(Operation.query, soql)
        assert info.value.status == 400
        assert info.value.content[0]["errorCode"] == code and message in info.value.content[0]["message"]
    with pytest.raises(SalesforceResourceNotFound) as missing:
        client.get_job("750000000000000AAA", True)
    assert missing.value.content[0]["errorCode"] == "NOT_FOUND"


def test_bulk2_abort_and_delete(salesforce_sandbox: SandboxHandle) -> None:
    sb = salesforce_sandbox
    sb.admin.jobs.min_seconds = 30  # keep the job in progress
    sf = sb.client()
    client = sf.bulk2.Account._client
    job = client.create_job(Operation.query, "SELECT Id FROM Account")
    assert client.abort_job(job["id"], True)["state"] == "Aborted"
    assert client.get_job(job["id"], True)["state"] == "Aborted"
    with pytest.raises(SalesforceMalformedRequest):
        client.get_query_results(job["id"])
    resp = sf.session.delete(f"{sf.bulk2_url}query/{job['id']}", headers=sf.headers)
    assert resp.status_code == 204
    with pytest.raises(SalesforceResourceNotFound):
        client.get_job(job["id"], True)


def test_bulk2_sees_rest_changes(salesforce_sandbox: SandboxHandle) -> None:
    sb = salesforce_sandbox
    sf = sb.client()
    soql = "SELECT Id, Name, IsDeleted FROM Account"
    before = parse_pages(list(sf.bulk2.Account.query_all(soql, wait=0.05)))[1]
    new = sf.Account.create({"Name": 'He said "hi", then\nleft'})
    sf.Account.delete(before[0][0])
    after = parse_pages(list(sf.bulk2.Account.query_all(soql, wait=0.05)))[1]
    assert after == [
        [before[0][0], before[0][1], "true"],
        *before[1:],
        [new["id"], 'He said "hi", then\nleft', "false"],
    ]


# -- faults ---------------------------------------------------------------------------------------


def raw_get(sb: SandboxHandle, sf: Any, path: str) -> requests.Response:
    return sf.session.get(f"{sf.base_url}{path}", headers=sf.headers, timeout=30)


def test_fault_kinds(salesforce_sandbox: SandboxHandle) -> None:
    sb = salesforce_sandbox
    sf = sb.client()
    faults = sb.admin.faults
    faults.configure(unavailable_share=1.0, retry_after=7)
    resp = raw_get(sb, sf, "limits")
    assert resp.status_code == 503 and resp.headers["Retry-After"] == "7"
    assert resp.json()[0]["errorCode"] == "SERVER_UNAVAILABLE"
    faults.configure(unavailable_share=0.0, throttle_share=1.0)
    resp = raw_get(sb, sf, "limits")
    assert resp.status_code == 429 and resp.headers["Retry-After"] == "7"
    faults.configure(throttle_share=0.0, limit_share=1.0)
    with pytest.raises(SalesforceRefusedRequest) as info:
        sf.limits()
    assert info.value.content[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"
    faults.configure(limit_share=0.0, drop_share=1.0)
    with pytest.raises(requests.exceptions.ConnectionError):
        raw_get(sb, sf, "limits")
    faults.configure(drop_share=0.0, truncate_share=1.0)
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        raw_get(sb, sf, "sobjects/Account/describe")
    faults.configure(truncate_share=0.0, slow_share=1.0, slow_seconds=0.6)
    started = time.monotonic()
    assert raw_get(sb, sf, "limits").status_code == 200
    assert time.monotonic() - started >= 0.6
    faults.clear()
    started = time.monotonic()
    assert raw_get(sb, sf, "limits").status_code == 200
    assert time.monotonic() - started < 0.6
    # token requests never get faults
    faults.configure(unavailable_share=1.0)
    assert sb.token()["access_token"]


def test_daily_limit_exhausted(salesforce_sandbox: SandboxHandle) -> None:
    sb = salesforce_sandbox
    sb.admin.faults.configure(daily_api_max=3)
    sf = sb.client()
    for _ in range(3):
        sf.query("SELECT Id FROM Lead LIMIT 1")
    with pytest.raises(SalesforceRefusedRequest) as info:
        sf.query("SELECT Id FROM Lead LIMIT 1")
    assert info.value.content == [{"errorCode": "REQUEST_LIMIT_EXCEEDED", "message": "TotalRequests Limit exceeded."}]


def test_jobs_that_fail(salesforce_sandbox: SandboxHandle) -> None:
    sb = salesforce_sandbox
    sb.admin.faults.configure(fail_jobs=1)
    sf = sb.client()
    with pytest.raises(SalesforceOperationError) as info:
        list(sf.bulk2.Account.query("SELECT Id FROM Account", wait=0.05))
    assert "UNKNOWN_EXCEPTION" in str(info.value)
    pages = list(sf.bulk2.Account.query("SELECT Id FROM Account", wait=0.05))  # the next job succeeds
    assert parse_pages(pages)[1] == truth(sb, "Account", ["Id"])


@pytest.mark.salesforce_sandbox(counts={"Account": 1500})
def test_a_fifth_of_requests_failing_loses_nothing_for_a_retrying_client(salesforce_sandbox: SandboxHandle) -> None:
    """Every failure is transient: a client that retries each call gets exactly the records."""
    sb = salesforce_sandbox
    sb.admin.faults.configure(
        unavailable_share=0.06, throttle_share=0.05, drop_share=0.05, truncate_share=0.04, retry_after=0, seed=42
    )
    sf = sb.client()
    client = sf.bulk2.Account._client
    failures = 0

    def retry(call: Any, *args: Any) -> Any:
        nonlocal failures
        for _ in range(30):
            try:
                return call(*args)
            except (
                SalesforceGeneralError,
                requests.exceptions.ConnectionError,
                requests.exceptions.ChunkedEncodingError,
            ):
                failures += 1
        raise AssertionError("too many failures")

    job = retry(client.create_job, Operation.query, "SELECT Id, Name, Description FROM Account")
    while retry(client.get_job, job["id"], True)["state"] != "JobComplete":
        time.sleep(0.05)
    pages, locator = [], ""
    while True:
        result = retry(client.get_query_results, job["id"], locator, 100)
        pages.append(result["records"])
        locator = result["locator"]
        if not locator:
            break
    assert parse_pages(pages)[1] == truth(sb, "Account", ["Id", "Name", "Description"])
    assert failures >= 3


def test_admin_endpoints_over_https(salesforce_sandbox: SandboxHandle) -> None:
    sb = salesforce_sandbox
    session = sb.session()
    admin = sb.instance_url + "/__admin/"
    key = {"X-Sandbox-Admin-Key": sb.admin.admin_key}
    refused = session.post(admin + "faults", json={"unavailable_share": 1.0}, timeout=30)
    assert refused.status_code == 403 and refused.json()[0]["errorCode"] == "INSUFFICIENT_ACCESS"
    assert sb.admin.faults.settings.unavailable_share == 0.0
    bad = session.post(admin + "faults", json={"unavailabel_share": 1.0}, headers=key, timeout=30)
    assert bad.status_code == 400 and "unavailabel_share" in bad.json()[0]["message"]
    ok = session.post(admin + "faults", json={"throttle_share": 1.0, "retry_after": 3}, headers=key, timeout=30)
    assert ok.status_code == 200 and ok.json()["settings"]["throttle_share"] == 1.0
    sf = sb.client()
    assert raw_get(sb, sf, "limits").status_code == 429
    assert session.post(admin + "faults/clear", headers=key, timeout=30).status_code == 200
    assert raw_get(sb, sf, "limits").status_code == 200
    assert (
        session.post(admin + "clock", json={"now": "2026-01-04T05:06:07Z"}, headers=key, timeout=30).status_code == 204
    )
    new_id = sf.Lead.create({"LastName": "Clock", "Company": "Time Inc", "Status": "Open - Not Contacted"})["id"]
    assert sf.Lead.get(new_id)["SystemModstamp"] == "2026-01-04T05:06:07.000+0000"
    assert session.post(admin + "expire-tokens", headers=key, timeout=30).status_code == 204
    assert raw_get(sb, sf, "limits").status_code == 401
    state = session.get(admin + "state", headers=key, timeout=30).json()
    assert state["records"]["Lead"] == 201 and state["api_used"] >= 4
