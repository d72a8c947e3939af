"""The SOQL subset: parsing, Salesforce's errors, and filter semantics checked against Python."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pyarrow as pa
import pytest

from bulksync.sandbox.salesforce import soql
from bulksync.sandbox.salesforce.errors import ApiError

ROWS: list[dict[str, Any]] = [
    {"Name": "Acme Corp", "Industry": "Banking", "AnnualRevenue": 100.0, "Active__c": True,
     "LastActivityDate": dt.date(2026, 1, 1), "SystemModstamp": dt.datetime(2026, 1, 1, 10, tzinfo=dt.UTC)},
    {"Name": "acme ltd", "Industry": None, "AnnualRevenue": None, "Active__c": False,
     "LastActivityDate": None, "SystemModstamp": dt.datetime(2026, 1, 1, 23, 59, 59, tzinfo=dt.UTC)},
    {"Name": "Globex", "Industry": "Retail", "AnnualRevenue": 5000.0, "Active__c": True,
     "LastActivityDate": dt.date(2025, 12, 1), "SystemModstamp": dt.datetime(2026, 1, 2, tzinfo=dt.UTC)},
    {"Name": "O'Hara & Sons", "Industry": "Energy", "AnnualRevenue": 50.0, "Active__c": False,
     "LastActivityDate": dt.date(2026, 1, 2), "SystemModstamp": dt.datetime(2025, 12, 31, tzinfo=dt.UTC)},
]  # fmt: skip
TABLE = pa.Table.from_pylist(
    ROWS,
    pa.schema(
        [
            ("Name", pa.string()),
            ("Industry", pa.string()),
            ("AnnualRevenue", pa.float64()),
            ("Active__c", pa.bool_()),
            ("LastActivityDate", pa.date32()),
            ("SystemModstamp", pa.timestamp("ms", tz="UTC")),
        ]
    ),
)
NOW = dt.datetime(2026, 1, 2, 12, tzinfo=dt.UTC)


def names(where: str) -> list[str]:
    query = soql.parse(f"SELECT Name FROM Account WHERE {where}", NOW)
    assert query.where is not None
    return list(TABLE.filter(query.where)["Name"].to_pylist())


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("Name LIKE 'acme%'", ["Acme Corp", "acme ltd"]),
        ("Name LIKE '%\\'Hara%'", ["O'Hara & Sons"]),
        ("Industry = null", ["acme ltd"]),
        ("Industry != null", ["Acme Corp", "Globex", "O'Hara & Sons"]),
        ("Industry != 'Banking'", ["acme ltd", "Globex", "O'Hara & Sons"]),  # nulls included, as in Salesforce
        ("Industry IN ('Banking', 'Retail')", ["Acme Corp", "Globex"]),
        ("Industry NOT IN ('Banking')", ["acme ltd", "Globex", "O'Hara & Sons"]),
        ("AnnualRevenue >= 100 AND Active__c = true", ["Acme Corp", "Globex"]),
        ("NOT (AnnualRevenue > 60) AND AnnualRevenue != null", ["O'Hara & Sons"]),
        ("(Industry = 'Energy' OR Industry = 'Retail') AND AnnualRevenue < 1000", ["O'Hara & Sons"]),
        ("Active__c = false OR AnnualRevenue > 1000", ["acme ltd", "Globex", "O'Hara & Sons"]),
        ("SystemModstamp >= 2026-01-01T00:00:00Z AND SystemModstamp < 2026-01-02T00:00:00Z", ["Acme Corp", "acme ltd"]),
        ("SystemModstamp > 2026-01-01T12:00:00+01:00", ["acme ltd", "Globex"]),
        ("SystemModstamp < 2026-01-01T10:00:00.000Z", ["O'Hara & Sons"]),
        ("LastActivityDate = 2026-01-01", ["Acme Corp"]),
        ("LastActivityDate < 2026-01-02", ["Acme Corp", "Globex"]),
        ("SystemModstamp = TODAY", ["Globex"]),
        ("SystemModstamp = YESTERDAY", ["Acme Corp", "acme ltd"]),
        ("LastActivityDate = LAST_N_DAYS:1", ["Acme Corp", "O'Hara & Sons"]),
    ],
)
def test_where_semantics(where: str, expected: list[str]) -> None:
    assert names(where) == expected


def test_parse_fields_order_limit_and_id_bounds() -> None:
    q = soql.parse(
        "select id, NAME, billingaddress from ACCOUNT where Id >= '0015J0000000001' and Id < '0015J000000000A' "
        "order by Name desc nulls last, Id limit 10 offset 5"
    )
    assert [f.name for f in q.fields] == ["Id", "Name", "BillingAddress"]
    assert [f.name for f in q.compound_fields] == ["BillingAddress"]
    assert q.order == [("Name", True, True), ("Id", False, False)]
    assert (q.limit, q.offset) == (10, 5)
    assert (q.id_lower, q.id_upper) == ("0015J0000000001QAA", "0015J000000000AQAQ")
    assert "BillingCity" in q.columns() and "BillingAddress" not in q.columns()
    assert soql.parse("SELECT COUNT() FROM Lead").count_only
    # an OR at the top level gives no Id range to narrow the scan with
    q = soql.parse("SELECT Id FROM Account WHERE Id > '0015J0000000001' OR Name = 'x'")
    assert q.id_lower is None and q.id_upper is None


@pytest.mark.parametrize(
    ("text", "code", "fragment"),
    [
        ("SELECT Id, Nmae FROM Account", "INVALID_FIELD", "No such column 'Nmae' on entity 'Account'"),
        ("SELECT Id FROM Acount", "INVALID_TYPE", "sObject type 'Acount' is not supported"),
        ("SELECT Id FROM Account WHERE Foo__c = 1", "INVALID_FIELD", "No such column 'Foo__c'"),
        ("SELECT Id FROM Account WHERE SystemModstamp > '2026-01-01'", "INVALID_FIELD", "must be of type dateTime"),
        ("SELECT Id FROM Account WHERE LastActivityDate > 2026-01-01T00:00:00Z", "INVALID_FIELD", "of type date"),
        ("SELECT Id FROM Account WHERE Name = 5", "MALFORMED_QUERY", "should be enclosed in quotes"),
        ("SELECT Id FROM Account WHERE", "MALFORMED_QUERY", "unexpected end"),
        ("SELECT Id FROM Account LIMIT x", "MALFORMED_QUERY", "integer"),
        ("SELECT Id FROM Account WHERE Name ~ 'a'", "MALFORMED_QUERY", "unexpected token"),
        ("SELECT Id Account", "MALFORMED_QUERY", "expected FROM"),
    ],
)
def test_errors_like_salesforce(text: str, code: str, fragment: str) -> None:
    with pytest.raises(ApiError) as info:
        soql.parse(text)
    assert info.value.code == code
    assert fragment in info.value.message
    assert info.value.status == 400


def test_invalid_field_message_points_at_the_column() -> None:
    with pytest.raises(ApiError) as info:
        soql.parse("SELECT Id, Nmae FROM Account")
    lines = info.value.message.splitlines()
    assert lines[1] == "SELECT Id, Nmae FROM Account"
    assert lines[2] == "           ^"
    assert lines[3] == "ERROR at Row:1:Column:12"
