"""Salesforce describe → fields and Arrow types, SOQL building and CSV page parsing (no services).

The describe below is a hand-written subset in Salesforce's shape (name, type, precision, scale,
calculated, compoundFieldName …); the integration tests check the same against the sandbox.
"""

from __future__ import annotations

import datetime as dt
import decimal
from typing import Any

import pyarrow as pa
import pytest

from bulksync.errors import ConfigurationError, DataError
from bulksync.sources.salesforce.bulk import parse_page
from bulksync.sources.salesforce.describe import schema_of, select_fields
from bulksync.sources.salesforce.source import SalesforceSource
from bulksync.spec.salesforce import SalesforceOptions, SalesforceSourceSpec
from bulksync.staging.partition import Window


def f(name: str, typ: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": typ, "nillable": True, "calculated": False, "compoundFieldName": None, **extra}


DESCRIBE: dict[str, Any] = {
    "name": "Account",
    "queryable": True,
    "fields": [
        f("Id", "id", nillable=False),
        f("IsDeleted", "boolean", nillable=False),
        f("Name", "string", nillable=False),
        f("ParentId", "reference", referenceTo=["Account"]),
        f("BillingStreet", "textarea", compoundFieldName="BillingAddress"),
        f("BillingCity", "string", compoundFieldName="BillingAddress"),
        f("BillingAddress", "address"),
        f("Industry", "picklist"),
        f("AnnualRevenue", "currency", precision=18, scale=2),
        f("Share__c", "percent", precision=5, scale=2),
        f("NumberOfEmployees", "int"),
        f("Score__c", "double", precision=10, scale=4),
        f("Founded__c", "date"),
        f("OpensAt__c", "time"),
        f("IsActive__c", "boolean"),
        f("Logo__c", "base64"),
        f("Upper__c", "string", calculated=True),
        f("SystemModstamp", "datetime", nillable=False),
    ],
}


def opts(**kw: Any) -> SalesforceOptions:
    return SalesforceOptions(object="Account", **kw)


def names(fields: list[dict[str, Any]]) -> list[str]:
    return [x["name"] for x in fields]


def test_all_fields_replace_compound_by_components_and_skip_formula() -> None:
    got = select_fields(DESCRIBE, opts(), ["Id", "IsDeleted"])
    assert names(got) == [
        "Id", "IsDeleted", "Name", "ParentId", "BillingStreet", "BillingCity", "Industry", "AnnualRevenue",
        "Share__c", "NumberOfEmployees", "Score__c", "Founded__c", "OpensAt__c", "IsActive__c", "SystemModstamp",
    ]  # fmt: skip
    with_formula = select_fields(DESCRIBE, opts(include_formula=True, exclude_fields=["Industry"]), ["Id"])
    assert "Upper__c" in names(with_formula) and "Industry" not in names(with_formula)


def test_schema_has_the_describe_types() -> None:
    got = schema_of(select_fields(DESCRIBE, opts(), ["Id"]))
    assert [(x.name, x.type) for x in got] == [
        ("Id", pa.string()),
        ("IsDeleted", pa.bool_()),
        ("Name", pa.string()),
        ("ParentId", pa.string()),
        ("BillingStreet", pa.string()),
        ("BillingCity", pa.string()),
        ("Industry", pa.string()),
        ("AnnualRevenue", pa.decimal128(18, 2)),
        ("Share__c", pa.decimal128(5, 2)),
        ("NumberOfEmployees", pa.int64()),
        ("Score__c", pa.float64()),
        ("Founded__c", pa.date32()),
        ("OpensAt__c", pa.time64("us")),
        ("IsActive__c", pa.bool_()),
        ("SystemModstamp", pa.timestamp("us", tz="UTC")),
    ]


def test_explicit_fields_keep_order_and_add_required_ones() -> None:
    got = select_fields(DESCRIBE, opts(fields=["name", "AnnualRevenue"]), ["Id", "SystemModstamp"])
    assert names(got) == ["Name", "AnnualRevenue", "Id", "SystemModstamp"]


def test_compound_field_is_refused_with_its_components() -> None:
    with pytest.raises(ConfigurationError) as info:
        select_fields(DESCRIBE, opts(fields=["Name", "BillingAddress"]), ["Id"])
    assert str(info.value) == (
        "field 'BillingAddress' of Account is a compound address field, and Bulk API 2.0 refuses compound fields "
        "(Selecting compound data not supported in Bulk Query): list its components instead: BillingStreet, "
        "BillingCity"
    )


def test_unknown_and_base64_fields_are_refused() -> None:
    with pytest.raises(ConfigurationError, match=r"Account has no field 'Nmae'; did you mean Name\?"):
        select_fields(DESCRIBE, opts(fields=["Nmae"]), ["Id"])
    with pytest.raises(ConfigurationError, match="'Logo__c' of Account has type base64"):
        select_fields(DESCRIBE, opts(fields=["Logo__c"]), ["Id"])
    with pytest.raises(ConfigurationError, match=r"Account has no field 'LastModified' \(is required by the spec\)"):
        select_fields(DESCRIBE, opts(), ["Id", "LastModified"])


SCHEMA = pa.schema(
    [
        ("Id", pa.string()),
        ("Name", pa.string()),
        ("AnnualRevenue", pa.decimal128(18, 2)),
        ("IsActive__c", pa.bool_()),
        ("Founded__c", pa.date32()),
        ("OpensAt__c", pa.time64("us")),
        ("SystemModstamp", pa.timestamp("us", tz="UTC")),
        ("NumberOfEmployees", pa.int64()),
    ]
)
PAGE = (
    '"Id","Name","AnnualRevenue","IsActive__c","Founded__c","OpensAt__c","SystemModstamp","NumberOfEmployees"\n'
    '"001A","Acme ""Intl"", Ltd\nsecond line","1234.50","true","2020-02-29","09:30:00.000Z",'
    '"2026-01-02T03:04:05.123Z","12"\n'
    '"001B","Zürich AG","","false","","","2026-01-03T00:00:00.000Z",""\n'
).encode()


def test_page_parses_into_the_declared_schema_with_nulls() -> None:
    batches = list(parse_page(PAGE, SCHEMA, where="test"))
    table = pa.Table.from_batches(batches)
    assert table.schema == SCHEMA
    assert table.to_pylist() == [
        {
            "Id": "001A",
            "Name": 'Acme "Intl", Ltd\nsecond line',
            "AnnualRevenue": decimal.Decimal("1234.50"),
            "IsActive__c": True,
            "Founded__c": dt.date(2020, 2, 29),
            "OpensAt__c": dt.time(9, 30),
            "SystemModstamp": dt.datetime(2026, 1, 2, 3, 4, 5, 123000, tzinfo=dt.UTC),
            "NumberOfEmployees": 12,
        },
        {
            "Id": "001B",
            "Name": "Zürich AG",
            "AnnualRevenue": None,
            "IsActive__c": False,
            "Founded__c": None,
            "OpensAt__c": None,
            "SystemModstamp": dt.datetime(2026, 1, 3, tzinfo=dt.UTC),
            "NumberOfEmployees": None,
        },
    ]


def test_page_header_order_may_differ_and_bad_values_name_the_page() -> None:
    two = pa.schema([("Id", pa.string()), ("NumberOfEmployees", pa.int64())])
    got = pa.Table.from_batches(list(parse_page(b'"NumberOfEmployees","Id"\n"7","001A"\n', two, where="p")))
    assert got.to_pylist() == [{"Id": "001A", "NumberOfEmployees": 7}]
    with pytest.raises(DataError, match=r"Account job 750 page 3: .*lacks the queried fields \['NumberOfEmployees'\]"):
        list(parse_page(b'"Id"\n"001A"\n', two, where="Account job 750 page 3"))
    with pytest.raises(DataError, match=r"Account job 750 page 3: .*many"):
        list(parse_page(b'"Id","NumberOfEmployees"\n"001A","many"\n', two, where="Account job 750 page 3"))
    assert list(parse_page(b"", two, where="p")) == []


def source(window: Window = Window(), chunk: dict[str, Any] | None = None, **kw: Any) -> SalesforceSource:
    spec = SalesforceSourceSpec(kind="salesforce", conn_id="sf", options=opts(**kw))
    src = SalesforceSource(spec, window, chunk)
    src.__dict__["describe"] = DESCRIBE  # the cached describe: no connection needed to build SOQL
    return src


def test_soql_of_a_window_and_a_chunk() -> None:
    day = Window(dt.datetime(2026, 1, 1, tzinfo=dt.UTC), dt.datetime(2026, 1, 2, tzinfo=dt.UTC))
    src = source(day, {"lo": "001A", "hi": "001Z"}, fields=["Name"], incremental=True, overlap_minutes=30)
    assert src.soql() == (
        "SELECT Name, Id, SystemModstamp, IsDeleted FROM Account WHERE SystemModstamp >= 2025-12-31T23:30:00Z "
        "AND SystemModstamp < 2026-01-02T00:00:00Z AND Id > '001A' AND Id <= '001Z'"
    )
    assert src.operation == "queryAll"
    full = source(fields=["Name"], deletes="ignore")
    assert (full.soql(), full.operation) == ("SELECT Name, Id FROM Account", "query")
    assert source(chunk={"lo": None, "hi": "001K"}, fields=["Name"]).soql(["Id"], order_by="Id") == (
        "SELECT Id FROM Account WHERE Id <= '001K' ORDER BY Id"
    )


def test_pool_name_is_per_connection() -> None:
    assert (
        SalesforceSourceSpec(kind="salesforce", conn_id="acme_sf", options=opts()).pool_name() == "salesforce__acme_sf"
    )
