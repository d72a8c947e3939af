"""Salesforce extraction against the local sandbox over real HTTPS, loaded into real PostgreSQL.

The client side is unmodified: bulksync's hook (the provider's ``SalesforceHook`` subclass) logs in
with the OAuth client-credentials flow, simple_salesforce's session carries every call, and changes
between runs are made through the sandbox's REST API with the unmodified simple_salesforce client.
Every test compares whole tables: the target (or the staged Parquet) against the sandbox's own
records (``SalesforceSandbox.records``), row by row and column by column.
"""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from bulksync import stages
from bulksync.errors import ConfigurationError
from bulksync.staging.partition import Window
from bulksync.staging.reader import read_manifest
from tests.helpers import pipeline

UTC = dt.UTC
TABLE = "sf_account"


def spec(options: dict[str, Any], **target: Any) -> Any:
    """A one-dataset pipeline: the sandbox's Account into PostgreSQL (merge on Id)."""
    tgt = {"kind": "postgres", "conn_id": "test_pg", "table": TABLE, "mode": "merge", "keys": ["Id"], **target}
    if options.get("deletes", "soft") == "delete":
        tgt["delete_flag"] = "IsDeleted"
    opts = {"object": "Account", "poll_interval_seconds": 0.1, "retry_initial_wait_seconds": 0.05, **options}
    return pipeline(
        [
            {
                "name": "accounts",
                "source": {"kind": "salesforce", "conn_id": "salesforce_sandbox", "options": opts},
                "target": tgt,
            }
        ]
    )


def run(s: Any, window: Window, run_id: str) -> tuple[Any, Any]:
    """extract → transform → load through bulksync.stages, as the DAG's tasks do."""
    ds = s.datasets[0]
    ctx = stages.RunContext(run_id=run_id, window=window)
    manifest = stages.extract_all(s, ds, ctx)
    stages.transform(s, ds, ctx)
    return manifest, stages.load(s, ds, ctx)


def staged(s: Any, window: Window) -> pa.Table:
    part = stages.partition_for(s, s.datasets[0], window)
    manifest = read_manifest(part, "extract")
    return pa.concat_tables(pq.read_table(part.path / f.path) for f in manifest.files)


def truth(sb: Any, schema: pa.Schema, include_deleted: bool) -> list[dict[str, Any]]:
    """The sandbox's records of the extracted fields, typed like the extract, in Id order."""
    table = sb.admin.records("Account", schema.names, include_deleted=include_deleted)
    table = pa.table([table[f.name].cast(f.type) for f in schema], schema=pa.schema([(f.name, f.type) for f in schema]))
    return table.sort_by("Id").to_pylist()


def target_rows(pg_url: str, names: list[str]) -> list[dict[str, Any]]:
    cols = ", ".join(f'"{n}"' for n in names)
    with sa.create_engine(pg_url).connect() as conn:
        rows = conn.exec_driver_sql(f'SELECT {cols} FROM {TABLE} ORDER BY "Id" COLLATE "C"').mappings().all()
    return [dict(r) for r in rows]


def modstamp_after_data(sb: Any) -> dt.datetime:
    """Midnight after the newest SystemModstamp of the seeded Accounts: the first interval starts there."""
    newest = max(sb.admin.records("Account", ["SystemModstamp"], include_deleted=True)["SystemModstamp"].to_pylist())
    return dt.datetime.combine(newest.date() + dt.timedelta(days=1), dt.time(), UTC)


def change(sb: Any, client: Any, at: dt.datetime, n: int, live: list[str]) -> list[str]:
    """Through the REST API, stamped at ``at``: 3 inserts, 3 updates, 2 deletes; returns the live ids."""
    sb.admin.set_clock(at)
    try:
        for i in range(3):
            created = client.Account.create(
                {"Name": f'Interval {n} "new" {i}, Zürich', "Industry": "Energy", "Credit_Limit__c": 1000.5 + i}
            )
            live.append(created["id"])
        for i, rid in enumerate(live[-4:-1]):  # including one created in this interval
            client.Account.update(rid, {"Name": f"Updated in {n}\nline two", "NumberOfEmployees": 10 * n + i})
        for rid in (live[n], live[-6]):  # a seeded record and one an earlier interval touched
            client.Account.delete(rid)
            live.remove(rid)
    finally:
        sb.admin.set_clock(None)
    return live


FAULTS = {"unavailable_share": 0.07, "throttle_share": 0.07, "drop_share": 0.06, "retry_after": 0, "seed": 11}


@pytest.mark.salesforce_sandbox(counts={"Account": 300})
@pytest.mark.parametrize(
    ("deletes", "faults"), [("delete", None), ("delete", FAULTS), ("soft", None)], ids=["delete", "faults", "soft"]
)
def test_full_then_three_incremental_intervals_equal_the_sandbox(
    salesforce_sandbox: Any, pg_url: str, env: Any, deletes: str, faults: dict[str, Any] | None
) -> None:
    sb = salesforce_sandbox
    client = sb.client()
    options = {"deletes": deletes, "max_records": 70, "max_attempts": 12, "retry_max_wait_seconds": 0.5}
    keep_deleted = deletes == "soft"
    if faults:
        sb.admin.faults.configure(**faults)
    manifest, _ = run(spec(options), Window(), "full")
    sb.admin.faults.clear()
    retries = manifest.extra["source_stats"]["retries"]
    schema = manifest.read_schema()
    assert target_rows(pg_url, schema.names) == truth(sb, schema, keep_deleted)

    live = [r["Id"] for r in truth(sb, schema, False)]
    start = modstamp_after_data(sb)
    incremental = spec({**options, "incremental": True})
    for n in (1, 2, 3):
        window = Window(start + dt.timedelta(days=n - 1), start + dt.timedelta(days=n))
        live = change(sb, client, window.start + dt.timedelta(hours=n), n, live)
        if faults:
            sb.admin.faults.configure(**faults)
        manifest, result = run(incremental, window, f"interval-{n}")
        sb.admin.faults.clear()
        retries += manifest.extra["source_stats"]["retries"]
        # 3 inserted (2 of them updated too), 1 older record updated, 2 deleted: 6 records changed, nothing else
        assert manifest.rows == manifest.source_count == 6
        assert target_rows(pg_url, schema.names) == truth(sb, schema, keep_deleted), f"after interval {n}"
        if deletes == "delete":
            assert (result.applied_deletes, result.deleted) == (2, 2)
    if faults:  # about 20% of some 60 requests failed and were retried
        assert retries > 0


@pytest.mark.salesforce_sandbox(counts={"Account": 500})
def test_many_small_pages_lose_and_repeat_no_row(salesforce_sandbox: Any, env: Any) -> None:
    s = spec({"max_records": 37, "deletes": "soft"})
    manifest = stages.extract_all(s, s.datasets[0], stages.RunContext(run_id="pages", window=Window()))
    table = staged(s, Window())
    assert table.num_rows == manifest.source_count == 500
    assert table.sort_by("Id").to_pylist() == truth(salesforce_sandbox, table.schema, True)
    # limits + describe + create + polls + 14 pages (500 / 37) + delete
    assert manifest.extra["source_stats"]["api_calls"] >= 2 + 1 + 1 + 14


@pytest.mark.salesforce_sandbox(counts={"Account": 500})
def test_pk_chunked_extract_equals_the_full_one(salesforce_sandbox: Any, env: Any) -> None:
    full_spec = spec({"max_records": 200})
    chunked_spec = spec({"max_records": 200, "chunking": {"chunks": 4}})
    full = stages.extract_all(full_spec, full_spec.datasets[0], stages.RunContext(run_id="full", window=Window()))
    full_table = staged(full_spec, Window()).sort_by("Id")
    chunks = stages.plan_extract(chunked_spec, chunked_spec.datasets[0], stages.RunContext(run_id="c", window=Window()))
    assert len(chunks) == 4 and chunks[0]["lo"] is None and chunks[-1]["hi"] is None
    assert all(a["hi"] == b["lo"] for a, b in itertools.pairwise(chunks))
    chunked = stages.extract_all(chunked_spec, chunked_spec.datasets[0], stages.RunContext(run_id="c", window=Window()))
    assert chunked.extra["chunk_rows"] == [125, 125, 125, 125]
    assert chunked.source_count == chunked.rows == full.rows == 500
    assert staged(chunked_spec, Window()).sort_by("Id").equals(full_table)


# The types the issue asks for, applied independently to the sandbox's describe over REST.
ISSUE_TYPES = {
    "boolean": pa.bool_(),
    "int": pa.int64(),
    "double": pa.float64(),
    "date": pa.date32(),
    "datetime": pa.timestamp("us", tz="UTC"),
    "time": pa.time64("us"),
}


@pytest.mark.salesforce_sandbox(counts={"Account": 50})
@pytest.mark.parametrize("obj", ["Account", "Contact", "Opportunity", "Lead", "Invoice__c"])
def test_parquet_schema_matches_describe(salesforce_sandbox: Any, env: Any, obj: str) -> None:
    describe = salesforce_sandbox.client().__getattr__(obj).describe()
    want = []
    for f in describe["fields"]:
        if f["type"] in ("address", "location", "base64"):
            continue
        if f["type"] in ("currency", "percent"):
            typ = pa.decimal128(f["precision"], f["scale"])
        else:
            typ = ISSUE_TYPES.get(f["type"], pa.string())
        want.append((f["name"], typ))
    s = spec({"object": obj, "include_formula": True})
    s = s.model_copy(update={"datasets": [s.datasets[0].model_copy(update={"name": "x"})]})
    stages.extract_all(s, s.datasets[0], stages.RunContext(run_id="schema", window=Window()))
    part = stages.partition_for(s, s.datasets[0], Window())
    got = pq.read_schema(next(part.path.glob("part-*.parquet")))
    assert [(f.name, f.type) for f in got] == want
    assert any(f["calculated"] for f in describe["fields"]) or obj != "Account"


@pytest.mark.salesforce_sandbox(counts={"Account": 20})
def test_compound_field_selection_is_a_clear_error(salesforce_sandbox: Any, env: Any) -> None:
    s = spec({"fields": ["Name", "BillingAddress"]})
    with pytest.raises(ConfigurationError) as info:
        stages.extract_all(s, s.datasets[0], stages.RunContext(run_id="r", window=Window()))
    assert str(info.value) == (
        "field 'BillingAddress' of Account is a compound address field, and Bulk API 2.0 refuses compound fields "
        "(Selecting compound data not supported in Bulk Query): list its components instead: BillingStreet, "
        "BillingCity, BillingState, BillingPostalCode, BillingCountry, BillingLatitude, BillingLongitude"
    )
    assert not stages.partition_for(s, s.datasets[0], Window()).manifest_path("extract").exists()
