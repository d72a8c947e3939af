"""The Salesforce sandbox driven by the unmodified simple_salesforce client over real HTTPS.

No mocks: every test talks to a sandbox started in-process on a free port (fixture
``salesforce_sandbox`` from ``tests/sandbox_salesforce.py``) through TLS verified against the
sandbox's own CA, and compares what the client sees with the sandbox's records.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import jwt
import pytest
import requests
from simple_salesforce.exceptions import (
    SalesforceExpiredSession,
    SalesforceMalformedRequest,
    SalesforceResourceNotFound,
)

from bulksync.sandbox.salesforce import ids
from bulksync.sandbox.salesforce.schema import ACCOUNT
from tests.sandbox_salesforce import SandboxHandle

pytestmark = pytest.mark.timeout(120)


def token_request(sb: SandboxHandle, **form: str) -> requests.Response:
    return sb.session().post(sb.login_url + "/services/oauth2/token", data=form, timeout=30)


# -- OAuth --------------------------------------------------------------------------------------


def test_oauth_grants(salesforce_sandbox: SandboxHandle) -> None:
    sb = salesforce_sandbox
    creds = sb.credentials
    cc = token_request(
        sb, grant_type="client_credentials", client_id=creds.client_id, client_secret=creds.client_secret
    )
    assert cc.status_code == 200
    body = cc.json()
    assert set(body) >= {"access_token", "instance_url", "token_type", "issued_at", "signature", "id"}
    assert body["instance_url"] == sb.instance_url and body["token_type"] == "Bearer"
    pw = token_request(
        sb, grant_type="password", client_id=creds.client_id, client_secret=creds.client_secret,
        username=creds.username, password=creds.password,
    )  # fmt: skip
    assert pw.status_code == 200 and pw.json()["refresh_token"] == creds.refresh_token
    refresh = token_request(
        sb, grant_type="refresh_token", client_id=creds.client_id, refresh_token=creds.refresh_token
    )
    assert refresh.status_code == 200
    claims = {"iss": creds.client_id, "sub": creds.username, "aud": sb.login_url, "exp": int(time.time()) + 60}
    assertion = jwt.encode(claims, creds.jwt_key.read_text(), algorithm="RS256")
    bearer = token_request(sb, grant_type="urn:ietf:params:oauth:grant-type:jwt-bearer", assertion=assertion)
    assert bearer.status_code == 200
    tokens = {r.json()["access_token"] for r in (cc, pw, refresh, bearer)}
    assert len(tokens) == 4
    for token in tokens:  # every token works with the unmodified client
        from simple_salesforce import Salesforce

        sf = Salesforce(session_id=token, instance_url=sb.instance_url, session=sb.session())
        assert sf.query("SELECT COUNT() FROM Account")["totalSize"] == sb.admin.records("Account").num_rows


@pytest.mark.parametrize(
    ("form", "error"),
    [
        ({"grant_type": "client_credentials", "client_id": "nope", "client_secret": "x"}, "invalid_client_id"),
        ({"grant_type": "client_credentials", "client_secret": "wrong"}, "invalid_client"),
        ({"grant_type": "refresh_token", "refresh_token": "stolen"}, "invalid_grant"),
        ({"grant_type": "authorization_code", "code": "x"}, "unsupported_grant_type"),
    ],
)
def test_oauth_refusals(salesforce_sandbox: SandboxHandle, form: dict[str, str], error: str) -> None:
    form = {"client_id": salesforce_sandbox.credentials.client_id, **form}
    resp = token_request(salesforce_sandbox, **form)
    assert resp.status_code == 400 and resp.json()["error"] == error


def test_jwt_with_wrong_key_or_claims_is_refused(salesforce_sandbox: SandboxHandle, tmp_path: Any) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    sb = salesforce_sandbox
    creds = sb.credentials
    good = {"iss": creds.client_id, "sub": creds.username, "aud": sb.login_url, "exp": int(time.time()) + 60}
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    cases = [
        (jwt.encode(good, other_key, algorithm="RS256"), "invalid_grant"),
        (jwt.encode({**good, "sub": "someone@else"}, creds.jwt_key.read_text(), algorithm="RS256"), "invalid_grant"),
        (jwt.encode({**good, "aud": "https://evil"}, creds.jwt_key.read_text(), algorithm="RS256"), "invalid_grant"),
        (
            jwt.encode({**good, "exp": int(time.time()) - 5}, creds.jwt_key.read_text(), algorithm="RS256"),
            "invalid_grant",
        ),
        (jwt.encode({**good, "iss": "other-app"}, creds.jwt_key.read_text(), algorithm="RS256"), "invalid_client_id"),
    ]
    for assertion, error in cases:
        resp = token_request(sb, grant_type="urn:ietf:params:oauth:grant-type:jwt-bearer", assertion=assertion)
        assert (resp.status_code, resp.json()["error"]) == (400, error)


@pytest.mark.salesforce_sandbox(token_lifetime=1.0)
def test_expired_and_unknown_tokens_get_invalid_session_id(salesforce_sandbox: SandboxHandle) -> None:
    sf = salesforce_sandbox.client()
    sf.query("SELECT Id FROM Account LIMIT 1")
    time.sleep(1.2)
    with pytest.raises(SalesforceExpiredSession) as info:
        sf.query("SELECT Id FROM Account LIMIT 1")
    assert info.value.status == 401
    assert info.value.content == [{"errorCode": "INVALID_SESSION_ID", "message": "Session expired or invalid"}]
    resp = salesforce_sandbox.session().get(
        salesforce_sandbox.instance_url + "/services/data/v59.0/limits", headers={"Authorization": "Bearer forged"}
    )
    assert resp.status_code == 401 and resp.json()[0]["errorCode"] == "INVALID_SESSION_ID"


def test_admin_can_expire_every_token(salesforce_sandbox: SandboxHandle) -> None:
    sf = salesforce_sandbox.client()
    sf.limits()
    salesforce_sandbox.admin.auth.expire_all()
    with pytest.raises(SalesforceExpiredSession):
        sf.limits()


def test_tls_is_real(salesforce_sandbox: SandboxHandle) -> None:
    """Without the CA bundle the client refuses the sandbox's certificate."""
    session = requests.Session()
    session.trust_env = False
    with pytest.raises(requests.exceptions.SSLError):
        session.get(salesforce_sandbox.instance_url + "/services/data/", timeout=10)
    assert salesforce_sandbox.session().get(salesforce_sandbox.login_url + "/services/data/", timeout=10).ok


# -- REST ---------------------------------------------------------------------------------------


def test_describe_shape(salesforce_sandbox: SandboxHandle) -> None:
    sf = salesforce_sandbox.client()
    names = {o["name"] for o in sf.describe()["sobjects"]}
    assert names == {"Account", "Contact", "Opportunity", "Lead", "Invoice__c"}
    desc = sf.Account.describe()
    fields = {f["name"]: f for f in desc["fields"]}
    order = [f["name"] for f in desc["fields"]]
    assert order[:4] == ["Id", "IsDeleted", "MasterRecordId", "Name"]
    assert order.index("BillingAddress") == order.index("BillingLongitude") + 1
    assert fields["Id"]["type"] == "id" and fields["Id"]["length"] == 18 and not fields["Id"]["nillable"]
    assert fields["BillingAddress"]["type"] == "address" and fields["BillingAddress"]["compoundFieldName"] is None
    components = [n for n, f in fields.items() if f["compoundFieldName"] == "BillingAddress"]
    assert components == [
        f"Billing{p}" for p in ("Street", "City", "State", "PostalCode", "Country", "Latitude", "Longitude")
    ]
    assert fields["Revenue_Per_Employee__c"]["calculated"] is True
    assert fields["Revenue_Per_Employee__c"]["calculatedFormula"] == "AnnualRevenue / NumberOfEmployees"
    assert (
        fields["Credit_Limit__c"]["type"],
        fields["Credit_Limit__c"]["precision"],
        fields["Credit_Limit__c"]["scale"],
    ) == ("currency", 16, 2)
    assert (fields["Discount__c"]["type"], fields["Discount__c"]["precision"], fields["Discount__c"]["scale"]) == (
        "percent",
        5,
        2,
    )
    assert [v["value"] for v in fields["Rating"]["picklistValues"]] == ["Hot", "Warm", "Cold"]
    assert fields["Region__c"]["type"] == "multipicklist"
    assert fields["ParentId"]["referenceTo"] == ["Account"] and fields["ParentId"]["relationshipName"] == "Parent"
    for name in ("SystemModstamp", "CreatedDate", "LastModifiedDate"):
        assert fields[name]["type"] == "datetime" and fields[name]["updateable"] is False
    assert fields["NumberOfEmployees"]["type"] == "int" and fields["Description"]["type"] == "textarea"
    assert sf.Invoice__c.describe()["custom"] is True
    with pytest.raises(SalesforceResourceNotFound):
        sf.Nope__c.describe()


@pytest.mark.salesforce_sandbox(counts={"Account": 4500})
def test_query_and_query_all_paging(salesforce_sandbox: SandboxHandle) -> None:
    sb = salesforce_sandbox
    sf = sb.client()
    first = sf.query("SELECT Id, Name FROM Account")
    live = sb.admin.records("Account", ["Id", "Name"])
    everything = sb.admin.records("Account", ["Id", "Name", "IsDeleted"], include_deleted=True)
    assert first["totalSize"] == live.num_rows and first["done"] is False and len(first["records"]) == 2000
    assert first["nextRecordsUrl"].startswith("/services/data/v59.0/query/")
    assert first["records"][0]["attributes"]["type"] == "Account"
    got = sf.query_all("SELECT Id, Name FROM Account")
    assert [(r["Id"], r["Name"]) for r in got["records"]] == [(r["Id"], r["Name"]) for r in live.to_pylist()]
    got_all = sf.query_all("SELECT Id, Name, IsDeleted FROM Account", include_deleted=True)
    assert [(r["Id"], r["IsDeleted"]) for r in got_all["records"]] == [
        (r["Id"], r["IsDeleted"]) for r in everything.to_pylist()
    ]
    assert 0 < sum(r["IsDeleted"] for r in got_all["records"]) < everything.num_rows
    assert sf.query("SELECT COUNT() FROM Account WHERE IsDeleted = true", include_deleted=True)["totalSize"] == sum(
        r["IsDeleted"] for r in got_all["records"]
    )


def test_rest_values_and_compound_fields(salesforce_sandbox: SandboxHandle) -> None:
    sb = salesforce_sandbox
    sf = sb.client()
    rec = sf.query(
        "SELECT Id, BillingAddress, SystemModstamp, LastActivityDate FROM Account "
        "WHERE LastActivityDate != null LIMIT 1"
    )["records"][0]
    truth = sb.admin.store.get(ACCOUNT, rec["Id"])
    assert (
        rec["BillingAddress"]["city"] == truth["BillingCity"]
        and rec["BillingAddress"]["street"] == truth["BillingStreet"]
    )
    assert rec["SystemModstamp"] == truth["SystemModstamp"].strftime("%Y-%m-%dT%H:%M:%S.000+0000")
    assert rec["LastActivityDate"] == truth["LastActivityDate"].isoformat()


def test_limits_and_usage_header(salesforce_sandbox: SandboxHandle) -> None:
    sb = salesforce_sandbox
    sb.admin.faults.configure(daily_api_max=5000)
    sf = sb.client()
    sf.query("SELECT Id FROM Lead LIMIT 1")
    sf.query("SELECT Id FROM Lead LIMIT 1")
    assert sf.api_usage["api-usage"].used == 2 and sf.api_usage["api-usage"].total == 5000
    limits = sf.limits()
    assert limits["DailyApiRequests"] == {"Max": 5000, "Remaining": 5000 - 3}
    assert limits["DailyBulkV2QueryJobs"]["Max"] == 10_000


def test_crud_changes_show_in_queries_with_the_sandbox_clock(salesforce_sandbox: SandboxHandle) -> None:
    sb = salesforce_sandbox
    sf = sb.client()
    stamp = dt.datetime(2026, 1, 3, 4, 5, 6, tzinfo=dt.UTC)
    sb.admin.set_clock(stamp)
    created = sf.Account.create({"Name": "Fresh & Co", "AnnualRevenue": 900, "NumberOfEmployees": 3})
    assert created["success"] is True and ids.index_of("001", created["id"]) == 200
    victim = sb.admin.records("Account", ["Id"]).to_pylist()[5]["Id"]
    updated = sb.admin.records("Account", ["Id"]).to_pylist()[6]["Id"]
    assert sf.Account.update(updated, {"Industry": "Energy"}) == 204
    assert sf.Account.delete(victim) == 204
    window = "SystemModstamp >= 2026-01-03T00:00:00Z AND SystemModstamp < 2026-01-04T00:00:00Z"
    rows = sf.query_all(
        f"SELECT Id, IsDeleted, Industry, Revenue_Per_Employee__c FROM Account WHERE {window}", include_deleted=True
    )
    assert sorted((r["Id"], r["IsDeleted"]) for r in rows["records"]) == sorted(
        [(created["id"], False), (updated, False), (victim, True)]
    )
    by_id = {r["Id"]: r for r in rows["records"]}
    assert by_id[updated]["Industry"] == "Energy" and by_id[created["id"]]["Revenue_Per_Employee__c"] == 300.0
    assert sf.Account.get(created["id"])["SystemModstamp"] == "2026-01-03T04:05:06.000+0000"
    with pytest.raises(SalesforceResourceNotFound):
        sf.Account.get(victim)
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.Account.create({"Industry": "Energy"})
    assert info.value.content[0]["errorCode"] == "REQUIRED_FIELD_MISSING"


@pytest.mark.salesforce_sandbox(counts={"Account": 3000})
def test_soql_subset_through_rest_matches_python(salesforce_sandbox: SandboxHandle) -> None:
    sb = salesforce_sandbox
    sf = sb.client()
    rows = sb.admin.records("Account", ["Id", "Name", "Industry", "AnnualRevenue", "SystemModstamp"]).to_pylist()
    cut = dt.datetime(2025, 12, 15, tzinfo=dt.UTC)
    got = sf.query_all(
        "SELECT Id FROM Account WHERE (Industry IN ('Banking', 'Retail') OR Name LIKE 'acme%') "
        "AND SystemModstamp >= 2025-12-15T00:00:00Z AND NOT (AnnualRevenue < 1000000000)"
    )["records"]
    expected = [
        r["Id"] for r in rows
        if (r["Industry"] in ("Banking", "Retail") or r["Name"].lower().startswith("acme"))
        and r["SystemModstamp"] >= cut and r["AnnualRevenue"] is not None and not r["AnnualRevenue"] < 1e9
    ]  # fmt: skip
    assert [r["Id"] for r in got] == expected and expected
    top = sf.query("SELECT Id, AnnualRevenue FROM Account ORDER BY AnnualRevenue DESC NULLS LAST, Id LIMIT 5")
    ranked = sorted((r for r in rows if r["AnnualRevenue"] is not None), key=lambda r: (-r["AnnualRevenue"], r["Id"]))
    assert [r["Id"] for r in top["records"]] == [r["Id"] for r in ranked[:5]]
    # PK chunking: Id ranges partition the object
    bounds = [rows[0]["Id"], rows[1000]["Id"], rows[2000]["Id"]]
    parts = [
        sf.query_all(f"SELECT Id FROM Account WHERE Id >= '{bounds[0]}' AND Id < '{bounds[1]}'")["records"],
        sf.query_all(f"SELECT Id FROM Account WHERE Id >= '{bounds[1][:15]}' AND Id < '{bounds[2]}'")["records"],
        sf.query_all(f"SELECT Id FROM Account WHERE Id >= '{bounds[2]}'")["records"],
    ]
    assert [r["Id"] for part in parts for r in part] == [r["Id"] for r in rows]
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.query("SELECT Id, Nmae FROM Account")
    assert info.value.content[0]["errorCode"] == "INVALID_FIELD"
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.query("SELECT Id FROM Acount")
    assert info.value.content[0]["errorCode"] == "INVALID_TYPE"


def test_versions_and_unknown_resources(salesforce_sandbox: SandboxHandle) -> None:
    sb = salesforce_sandbox
    session = sb.session()
    versions = session.get(sb.instance_url + "/services/data/", timeout=30).json()
    assert [v["version"] for v in versions] == ["58.0", "59.0", "60.0", "61.0", "62.0"]
    assert versions[1]["url"] == "/services/data/v59.0"
    headers = {"Authorization": "Bearer " + sb.token(session)["access_token"]}
    for path in ("/services/data/v20.0/limits", "/services/data/v59.0/nothing", "/somewhere"):
        resp = session.get(sb.instance_url + path, headers=headers, timeout=30)
        assert resp.status_code == 404 and resp.json()[0]["errorCode"] == "NOT_FOUND", path
    sf = sb.client()
    with pytest.raises(SalesforceResourceNotFound):
        sf.Account.get(ids.make_id("001", 99_999))
    assert sf.restful("")["sobjects"] == "/services/data/v59.0/sobjects"


@pytest.mark.salesforce_sandbox(counts={"Lead": 1100})
def test_query_batches_can_be_retried_and_sized(salesforce_sandbox: SandboxHandle) -> None:
    """A client retrying a nextRecordsUrl (after a cut-short answer) gets the same batch again."""
    sb = salesforce_sandbox
    sf = sb.client()
    expected = [r["Id"] for r in sb.admin.records("Lead", ["Id"]).to_pylist()]
    first = sf.query("SELECT Id FROM Lead", headers={"Sforce-Query-Options": "batchSize=500"})
    assert len(first["records"]) == 500 and first["totalSize"] == len(expected)
    second = sf.query_more(first["nextRecordsUrl"], identifier_is_url=True)
    again = sf.query_more(first["nextRecordsUrl"], identifier_is_url=True)
    assert again["records"] == second["records"] and len(second["records"]) == 500
    third = sf.query_more(second["nextRecordsUrl"], identifier_is_url=True)
    assert third["done"] is True and "nextRecordsUrl" not in third
    ids_seen = [r["Id"] for page in (first, second, third) for r in page["records"]]
    assert ids_seen == expected
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.query_more(first["nextRecordsUrl"], identifier_is_url=True)  # an old batch is gone
    assert info.value.content[0]["errorCode"] == "INVALID_QUERY_LOCATOR"
