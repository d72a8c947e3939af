"""The ``salesforce`` target against the sandbox over real HTTPS, through bulksync's stages.

The client stack is unmodified: bulksync's hook (the provider's ``SalesforceHook``) logs in with
OAuth client credentials and simple_salesforce's session carries every request. What the target
wrote is read back through the org's own APIs — REST ``query`` with the unmodified
``simple_salesforce`` client and a Bulk API 2.0 query job — and compared with the staged data field
by field; quarantine and reconciliation are checked record by record.
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from bulksync import stages
from bulksync.staging.partition import Window
from bulksync.staging.reader import read_manifest
from tests.helpers import pipeline

D = decimal.Decimal
ACCOUNT_COLUMNS = [
    {"name": "acme_id", "type": "string", "nullable": False},
    {"name": "name", "type": "string"},
    {"name": "industry", "type": "string"},
    {"name": "rating", "type": "string"},
    {"name": "revenue", "type": "decimal(18,0)"},
    {"name": "employees", "type": "int64"},
    {"name": "active", "type": "bool"},
    {"name": "credit", "type": "decimal(16,2)"},
    {"name": "discount", "type": "decimal(5,2)"},
    {"name": "notes", "type": "string"},
]
ACCOUNT_FIELDS = {
    "Acme_Id__c": "acme_id",
    "Name": "name",
    "Industry": "industry",
    "Rating": "rating",
    "AnnualRevenue": "revenue",
    "NumberOfEmployees": "employees",
    "Active__c": "active",
    "Credit_Limit__c": "credit",
    "Discount__c": "discount",
    "Description": "notes",
}
NOTES = ['Said "ship it"\nthen left.', "Ünïcödé, commas, ; semicolons", "", "plain"]


def account_rows(n: int, start: int = 0, name: str = "Company") -> list[dict[str, Any]]:
    """``n`` staged accounts with every kind of value (nulls, newlines, quotes, non-ASCII, decimals)."""
    return [
        {
            "acme_id": f"ACME-{i:05d}",
            "name": f"{name} {i} & Söhne, \"Ltd\"",
            "industry": ["Banking", "Retail", None, "Energy"][i % 4],
            "rating": ["Hot", "Warm", "Cold", None][i % 4],
            "revenue": None if i % 5 == 0 else str(1_000_000 + i * 1_234),
            "employees": None if i % 7 == 0 else str(10 + i),
            "active": ["true", "false"][i % 2],
            "credit": f"{1000 + i}.{i % 100:02d}",
            "discount": f"{i % 40}.5",
            "notes": NOTES[i % 4] or None,
        }
        for i in range(start, start + n)
    ]


def write_csv(folder: Path, rows: list[dict[str, Any]], columns: list[dict[str, Any]], name: str = "a.csv") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.csv"):
        old.unlink()
    with open(folder / name, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow([c["name"] for c in columns])
        for r in rows:
            w.writerow(["" if r.get(c["name"]) is None else r[c["name"]] for c in columns])


def account_spec(folder: Path, **target: Any) -> Any:
    tgt = {
        "kind": "salesforce",
        "conn_id": "salesforce_sandbox",
        "object": "Account",
        "operation": "upsert",
        "external_id": "Acme_Id__c",
        "fields": ACCOUNT_FIELDS,
        "poll_interval_seconds": 0.05,
        "retry_initial_wait_seconds": 0.01,
        "retry_max_wait_seconds": 0.2,
        **target,
    }
    source = {"kind": "csv_files", "options": {"path": str(folder), "columns": ACCOUNT_COLUMNS}}
    return pipeline([{"name": "accounts", "source": source, "target": tgt}])


def run(spec: Any, run_id: str, window: Window | None = None) -> tuple[Any, dict[str, Any]]:
    """extract → transform → load → reconcile, as the DAG's tasks do."""
    ds = spec.datasets[0]
    ctx = stages.RunContext(run_id=run_id, window=window or Window())
    stages.extract(spec, ds, ctx)
    stages.transform(spec, ds, ctx)
    loaded = stages.load(spec, ds, ctx)
    return loaded, stages.reconcile(spec, ds, ctx)


def quarantined(spec: Any, window: Window | None = None) -> list[dict[str, Any]]:
    part = stages.partition_for(spec, spec.datasets[0], window or Window())
    manifest = read_manifest(part, "target_quarantine")
    folder = part.stage_path("target_quarantine")
    rows: list[dict[str, Any]] = []
    for f in manifest.files:
        rows.extend(pq.read_table(folder / f.path).to_pylist())
    return sorted(rows, key=lambda r: r["_bulksync_row"])


def org_accounts(sb: Any) -> dict[str, dict[str, Any]]:
    """Every live Account with an Acme id, read back through REST query (unmodified simple_salesforce)."""
    sf = sb.client()
    fields = ", ".join(["Id", *ACCOUNT_FIELDS])
    records = sf.query_all(f"SELECT {fields} FROM Account WHERE Acme_Id__c != null")["records"]
    return {r["Acme_Id__c"]: {k: v for k, v in r.items() if k != "attributes"} for r in records}


def expected(row: dict[str, Any]) -> dict[str, Any]:
    """The REST JSON values Salesforce should hold for a staged row."""

    def num(v: Any) -> Any:
        return None if v is None else float(D(v))

    return {
        "Acme_Id__c": row["acme_id"],
        "Name": row["name"],
        "Industry": row["industry"],
        "Rating": row["rating"],
        "AnnualRevenue": num(row["revenue"]),
        "NumberOfEmployees": None if row["employees"] is None else int(row["employees"]),
        "Active__c": row["active"] == "true",
        "Credit_Limit__c": num(row["credit"]),
        "Discount__c": num(row["discount"]),
        "Description": row["notes"],
    }


def test_upsert_writes_every_field_read_back_by_rest_and_bulk_and_a_rerun_changes_nothing(
    salesforce_sandbox: Any, env: Any, tmp_path: Path
) -> None:
    rows = account_rows(40)
    write_csv(tmp_path / "in", rows, ACCOUNT_COLUMNS)
    spec = account_spec(tmp_path / "in", max_records_per_job=15)  # three jobs
    loaded, rec = run(spec, "r1")
    assert (loaded.inserted, loaded.updated, loaded.failed, loaded.unprocessed) == (40, 0, 0, 0)
    assert rec["status"] == "success" and rec["staged"] == 40 and rec["loaded"] == 40
    assert len(loaded.extra["jobs"]) == 3
    org = org_accounts(salesforce_sandbox)
    assert {k: {f: v for f, v in r.items() if f != "Id"} for k, r in org.items()} == {
        r["acme_id"]: expected(r) for r in rows
    }
    # the same records through a Bulk API 2.0 query job of the unmodified client
    sf = salesforce_sandbox.client()
    bulk = "".join(sf.bulk2.Account.query("SELECT Acme_Id__c, Name, Description FROM Account WHERE Acme_Id__c != null", wait=0.1))
    parsed = {r["Acme_Id__c"]: r for r in csv.DictReader(bulk.splitlines(keepends=True))}
    assert {k: (v["Name"], v["Description"] or None) for k, v in parsed.items()} == {
        r["acme_id"]: (r["name"], r["notes"]) for r in rows
    }
    before = org_accounts(salesforce_sandbox)
    jobs = len(salesforce_sandbox.admin.ingest.jobs)
    # a rerun of the interval with the same staged data: a no-op reported as such, the org unchanged
    loaded2, rec2 = run(spec, "r2")
    assert loaded2.extra["already_loaded"] is True and rec2["status"] == "success" and rec2["loaded"] == 40
    assert len(salesforce_sandbox.admin.ingest.jobs) == jobs and org_accounts(salesforce_sandbox) == before
    # forced to send again (as `bulksync sf load --force` does): every record matched by its key, none added
    from bulksync.targets.salesforce.load import load_partition

    forced = load_partition(spec, spec.datasets[0], stages.RunContext(run_id="r2b", window=Window()), force=True)
    assert (forced.inserted, forced.updated, forced.failed) == (0, 40, 0)
    assert org_accounts(salesforce_sandbox) == before
    # changed input: only the values change, ids stay
    changed = account_rows(40, name="Renamed")
    write_csv(tmp_path / "in", changed, ACCOUNT_COLUMNS)
    loaded3, _ = run(spec, "r3")
    after = org_accounts(salesforce_sandbox)
    assert loaded3.updated == 40 and {k: v["Id"] for k, v in after.items()} == {k: v["Id"] for k, v in before.items()}
    assert {k: {f: v for f, v in r.items() if f != "Id"} for k, r in after.items()} == {
        r["acme_id"]: expected(r) for r in changed
    }
