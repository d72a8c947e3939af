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
