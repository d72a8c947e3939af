"""Salesforce extracts that outlive tokens, read Java-style numbers, or hit the 24-hour request limit
(issue 15, items 12-14), against the sandbox over real HTTPS."""

from __future__ import annotations

import decimal
from typing import Any

import pyarrow as pa
import pytest

from bulksync.errors import DataError
from bulksync.sources.salesforce import SalesforceSource
from bulksync.sources.salesforce.bulk import parse_page
from bulksync.sources.salesforce.errors import SalesforceDailyLimitError
from bulksync.staging.partition import Window
from tests.integration.test_salesforce_extract import spec, truth

D = decimal.Decimal


def source(obj: str = "Account", **options: Any) -> SalesforceSource:
    s = spec({"object": obj, **options})
    return SalesforceSource(s.datasets[0].source, Window())


@pytest.mark.salesforce_sandbox(counts={"Account": 1200})
def test_every_token_expiry_of_one_extract_is_renewed(salesforce_sandbox: Any) -> None:
    """Three expiries in one extract: each is renewed (before: the second one failed the task)."""
    src = source(max_records=100)
    batches = []
    try:
        for i, batch in enumerate(src.read()):
            batches.append(batch)
            if i in (1, 4, 8):
                salesforce_sandbox.admin.auth.expire_all()
    finally:
        src.close()
    table = pa.Table.from_batches(batches, schema=src.schema())
    assert table.sort_by("Id").to_pylist() == truth(salesforce_sandbox, table.schema, True)
    assert src.stats["reauthentications"] == 3 and src.stats["reauthenticated"] is True


@pytest.mark.salesforce_sandbox(counts={"Opportunity": 400, "Account": 300})
def test_java_style_numbers_are_read_exactly(salesforce_sandbox: Any) -> None:
    """Bulk CSV writes percent(3,0) 100 as ``100.0`` and large currency values as ``2.395146966E9``."""
    for obj, fields in (("Opportunity", ["Id", "Probability", "Amount"]), ("Account", ["Id", "AnnualRevenue"])):
        src = source(obj, fields=fields)
        try:
            table = pa.Table.from_batches(list(src.read()), schema=src.schema())
        finally:
            src.close()
        want = salesforce_sandbox.admin.records(obj, fields, include_deleted=True)
        expected = {r["Id"]: r for r in want.to_pylist()}
        got = table.to_pylist()
        assert len(got) == len(expected)
        for row in got:
            for name in fields[1:]:
                value = expected[row["Id"]][name]
                assert row[name] == (None if value is None else D(repr(value)).quantize(row[name] or D(1))), (obj, name)
        assert any(v == D(100) for v in table.column(fields[1]).to_pylist()) or obj == "Account"


def test_a_true_overflow_names_the_field() -> None:
    schema = pa.schema([pa.field("Id", pa.string()), pa.field("Probability", pa.decimal128(3, 0))])
    data = b'"Id","Probability"\n"006A","100.0"\n"006B","1.0E3"\n'
    with pytest.raises(DataError) as info:
        list(parse_page(data, schema, where="Opportunity job 750X page 1"))
    assert str(info.value).startswith(
        "Opportunity job 750X page 1: field Probability holds 1.0E3, which does not fit its describe type "
        "decimal(3,0) (at most 3 integer digits)"
    )
    ok = b'"Id","Probability"\n"006A","100.0"\n"006B","1.2345678E2"\n'
    (batch,) = parse_page(ok, schema, where="x")
    assert batch.column(1).to_pylist() == [D(100), D(123)]


@pytest.mark.salesforce_sandbox(counts={"Account": 600})
def test_the_24_hour_request_limit_fails_at_once_with_the_reset_time(salesforce_sandbox: Any) -> None:
    sb = salesforce_sandbox.admin
    src = source(max_records=50, min_remaining_api_requests=0)
    src.source_count()  # logged in, job complete
    sb.faults.configure(daily_api_max=sb.faults.api_used + 2)  # two more requests, then TotalRequests exceeded
    calls = sb.faults.api_used
    with pytest.raises(SalesforceDailyLimitError) as info:
        try:
            list(src.read())
        finally:
            src.close()
    text = str(info.value)
    assert "has used up its 24-hour API request limit (REQUEST_LIMIT_EXCEEDED: TotalRequests Limit exceeded.)" in text
    assert "rolling 24-hour window" in text and "UTC at the latest" in text and info.value.reset_at is not None
    assert src.api.retries == 0  # not retried as if it could clear in seconds
    assert sb.faults.api_used - calls <= 5


@pytest.mark.salesforce_sandbox(counts={"Account": 10_000_000}, records_per_object=10)
def test_pk_chunk_planning_over_10_million_records_reads_no_ordered_ids(salesforce_sandbox: Any) -> None:
    """Planning counts equal Id ranges with REST COUNT() queries; no Bulk job orders the object's Ids."""
    import datetime as dt

    from bulksync.sandbox.salesforce import engine, soql

    sb = salesforce_sandbox.admin
    window = Window(dt.datetime(2025, 11, 25, tzinfo=dt.UTC), dt.datetime(2025, 12, 23, tzinfo=dt.UTC))
    s = spec({"incremental": True, "chunking": {"chunk_size": 1_250_000}})
    src = SalesforceSource(s.datasets[0].source, window)
    try:
        chunks = src.plan_chunks()
    finally:
        src.close()
    assert sb.jobs.created == 0  # no Bulk query job at all, so no ORDER BY Id over the object
    assert src.api.calls < 40
    assert chunks[0]["lo"] is None and chunks[-1]["hi"] is None
    where = "SystemModstamp >= 2025-11-25T00:00:00Z AND SystemModstamp < 2025-12-23T00:00:00Z"

    def count(extra: str = "") -> int:  # the sandbox's own count, not the client's
        return engine.count(sb.store, soql.parse(f"SELECT COUNT() FROM Account WHERE {where}{extra}"), True)

    total = count()
    sizes = [
        count((f" AND Id > '{c['lo']}'" if c["lo"] else "") + (f" AND Id <= '{c['hi']}'" if c["hi"] else ""))
        for c in chunks
    ]
    assert sum(sizes) == total and 4_500_000 < total < 5_500_000 and len(chunks) == -(-total // 1_250_000)
    assert all(abs(n - total / len(chunks)) < 0.05 * total / len(chunks) for n in sizes), sizes


# The 57 properties of a field in describeSObjects / REST describe ("Field" of DescribeSObjectResult, SOAP API
# Developer Guide; the same keys jsforce's Field type lists).
FIELD_KEYS = sorted(
    [
        "aggregatable",
        "aiPredictionField",
        "autoNumber",
        "byteLength",
        "calculated",
        "calculatedFormula",
        "cascadeDelete",
        "caseSensitive",
        "compoundFieldName",
        "controllerName",
        "createable",
        "custom",
        "defaultValue",
        "defaultValueFormula",
        "defaultedOnCreate",
        "dependentPicklist",
        "deprecatedAndHidden",
        "digits",
        "displayLocationInDecimal",
        "encrypted",
        "externalId",
        "extraTypeInfo",
        "filterable",
        "filteredLookupInfo",
        "formulaTreatNullNumberAsZero",
        "groupable",
        "highScaleNumber",
        "htmlFormatted",
        "idLookup",
        "inlineHelpText",
        "label",
        "length",
        "mask",
        "maskType",
        "name",
        "nameField",
        "namePointing",
        "nillable",
        "permissionable",
        "picklistValues",
        "polymorphicForeignKey",
        "precision",
        "queryByDistance",
        "referenceTargetField",
        "referenceTo",
        "relationshipName",
        "relationshipOrder",
        "restrictedDelete",
        "restrictedPicklist",
        "scale",
        "searchPrefilterable",
        "soapType",
        "sortable",
        "type",
        "unique",
        "updateable",
        "writeRequiresMasterRead",
    ]
)


def test_describe_fields_carry_every_documented_key(salesforce_sandbox: Any) -> None:
    sf = salesforce_sandbox.client()
    assert len(FIELD_KEYS) == 57
    for obj in ("Account", "Contact", "Opportunity", "Lead", "Invoice__c"):
        for field in getattr(sf, obj).describe()["fields"]:
            assert sorted(field) == FIELD_KEYS, (obj, field["name"], set(FIELD_KEYS) ^ set(field))
    acme = next(f for f in sf.Account.describe()["fields"] if f["name"] == "Acme_Id__c")
    assert (acme["externalId"], acme["unique"], acme["idLookup"]) == (True, True, True)
    rating = next(f for f in sf.Account.describe()["fields"] if f["name"] == "Rating")
    assert rating["restrictedPicklist"] is True


@pytest.mark.salesforce_sandbox(counts={"Account": 10}, job_seconds=1.0)
def test_jobs_report_in_progress_while_processing_even_when_the_result_is_ready(salesforce_sandbox: Any) -> None:
    import time

    sf = salesforce_sandbox.client()
    session, base = sf.session, sf.base_url
    headers = {**sf.headers}
    body = {"operation": "query", "query": "SELECT Id FROM Account"}

    def poll(job_id: str) -> list[str]:
        states = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            states.append(session.get(base + f"jobs/query/{job_id}", headers=headers).json()["state"])
            if states[-1] == "JobComplete":
                break
            time.sleep(0.1)
        return states

    poll(session.post(base + "jobs/query", json=body, headers=headers).json()["id"])
    # the same query again: its result is reused at once, yet the job is InProgress for its processing time
    states = poll(session.post(base + "jobs/query", json=body, headers=headers).json()["id"])
    assert "InProgress" in states and states[-1] == "JobComplete"
    deadline = time.monotonic() + 10
    ingest = session.post(
        base + "jobs/ingest", json={"object": "Account", "operation": "insert"}, headers=headers
    ).json()
    put = session.put(base + f"jobs/ingest/{ingest['id']}/batches", data=b"Name\nA\n",
                      headers={**headers, "Content-Type": "text/csv"})  # fmt: skip
    assert put.status_code == 201
    session.patch(base + f"jobs/ingest/{ingest['id']}", json={"state": "UploadComplete"}, headers=headers)
    seen = []
    while time.monotonic() < deadline + 10:
        info = session.get(base + f"jobs/ingest/{ingest['id']}", headers=headers).json()
        seen.append(info["state"])
        if info["state"] == "JobComplete":
            break
        time.sleep(0.1)
    assert "InProgress" in seen and seen[-1] == "JobComplete" and info["numberRecordsProcessed"] == 1
