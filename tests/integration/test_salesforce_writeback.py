"""The ``salesforce`` target against the sandbox over real HTTPS, through bulksync's stages.

The client stack is unmodified: bulksync's hook (the provider's ``SalesforceHook``) logs in with
OAuth client credentials and simple_salesforce's session carries every request. What the target
wrote is read back through the org's own APIs — REST ``query`` with the unmodified
``simple_salesforce`` client and a Bulk API 2.0 query job — and compared with the staged data field
by field; quarantine and reconciliation are checked record by record.
"""

from __future__ import annotations

import csv
import decimal
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

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
            "name": f'{name} {i} & Söhne, "Ltd"',
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


def account_spec(folder: Path, columns: list[dict[str, Any]] | None = None, **target: Any) -> Any:
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
    source = {"kind": "csv_files", "options": {"path": str(folder), "columns": columns or ACCOUNT_COLUMNS}}
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
    bulk = "".join(
        sf.bulk2.Account.query("SELECT Acme_Id__c, Name, Description FROM Account WHERE Acme_Id__c != null", wait=0.1)
    )
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


CONTACT_COLUMNS = [
    {"name": "last", "type": "string"},
    {"name": "first", "type": "string"},
    {"name": "email", "type": "string"},
    {"name": "born", "type": "date"},
    {"name": "account_key", "type": "string"},
]


def contact_spec(folder: Path, **target: Any) -> Any:
    tgt = {
        "kind": "salesforce",
        "conn_id": "salesforce_sandbox",
        "object": "Contact",
        "operation": "insert",
        "fields": {"LastName": "last", "FirstName": "first", "Email": "email", "Birthdate": "born"},
        "relationships": {"Account": {"object": "Account", "external_id": "Acme_Id__c", "from": "account_key"}},
        "poll_interval_seconds": 0.05,
        **target,
    }
    source = {"kind": "csv_files", "options": {"path": str(folder), "columns": CONTACT_COLUMNS}}
    return pipeline([{"name": "contacts", "source": source, "target": tgt}])


def simple_spec(folder: Path, columns: list[dict[str, Any]], obj: str, operation: str, **target: Any) -> Any:
    tgt = {"kind": "salesforce", "conn_id": "salesforce_sandbox", "object": obj, "operation": operation,
           "poll_interval_seconds": 0.05, **target}  # fmt: skip
    source = {"kind": "csv_files", "options": {"path": str(folder), "columns": columns}}
    return pipeline([{"name": f"{obj.lower()}_{operation.lower()}", "source": source, "target": tgt}])


def test_insert_with_relationships_update_with_na_delete_and_hard_delete(
    salesforce_sandbox: Any, env: Any, tmp_path: Path
) -> None:
    sb = salesforce_sandbox
    write_csv(tmp_path / "acc", account_rows(6), ACCOUNT_COLUMNS)
    run(account_spec(tmp_path / "acc"), "accounts")
    accounts = org_accounts(sb)
    # insert: Contacts linked to their Account through the Account's external id (Account.Acme_Id__c)
    contacts = [
        {
            "last": f"Müller {i}",
            "first": ["Anna", None][i % 2],
            "email": f"c{i}@example.com",
            "born": f"19{70 + i}-0{1 + i % 9}-1{i % 10}",
            "account_key": f"ACME-{i % 6:05d}",
        }
        for i in range(12)
    ]
    write_csv(tmp_path / "con", contacts, CONTACT_COLUMNS)
    loaded, rec = run(contact_spec(tmp_path / "con"), "contacts")
    assert (loaded.inserted, loaded.updated, loaded.failed, rec["status"]) == (12, 0, 0, "success")
    sf = sb.client()
    got = sf.query_all(
        "SELECT Id, LastName, FirstName, Email, Birthdate, AccountId FROM Contact WHERE Email LIKE 'c%@example.com'"
    )
    by_email = {r["Email"]: r for r in got["records"]}
    assert {e: (r["LastName"], r["FirstName"], r["Birthdate"], r["AccountId"]) for e, r in by_email.items()} == {
        c["email"]: (c["last"], c["first"], c["born"], accounts[c["account_key"]]["Id"]) for c in contacts
    }
    # update by Id: a staged null clears the field with nulls: clear (#N/A), and is left alone with ignore
    ids = sorted(accounts.values(), key=lambda r: r["Acme_Id__c"])
    cols = [
        {"name": "Id", "type": "string"},
        {"name": "Industry", "type": "string"},
        {"name": "Rating", "type": "string"},
    ]
    updates = [
        {"Id": ids[0]["Id"], "Industry": None, "Rating": "Hot"},
        {"Id": ids[1]["Id"], "Industry": "Energy", "Rating": None},
    ]
    write_csv(tmp_path / "upd", updates, cols)
    spec = simple_spec(tmp_path / "upd", cols, "Account", "update", nulls="clear")
    loaded, _ = run(spec, "update")
    assert (loaded.inserted, loaded.updated, loaded.failed) == (0, 2, 0)
    now = org_accounts(sb)
    assert (now[ids[0]["Acme_Id__c"]]["Industry"], now[ids[0]["Acme_Id__c"]]["Rating"]) == (None, "Hot")
    assert (now[ids[1]["Acme_Id__c"]]["Industry"], now[ids[1]["Acme_Id__c"]]["Rating"]) == ("Energy", None)
    write_csv(tmp_path / "upd2", [{"Id": ids[2]["Id"], "Industry": None, "Rating": "Cold"}], cols)
    run(simple_spec(tmp_path / "upd2", cols, "Account", "update"), "update2")  # nulls: ignore
    assert org_accounts(sb)[ids[2]["Acme_Id__c"]]["Industry"] == accounts[ids[2]["Acme_Id__c"]]["Industry"]
    # delete (recycle bin: queryAll still sees it) and hardDelete (gone)
    idcol = [{"name": "Id", "type": "string"}]
    write_csv(tmp_path / "del", [{"Id": ids[3]["Id"]}], idcol)
    loaded, rec = run(simple_spec(tmp_path / "del", idcol, "Account", "delete"), "delete")
    # one set of counts: a deleted record is a deletion applied, not a row loaded
    assert (loaded.deleted, loaded.applied_deletes, rec["loaded"], rec["deletions"]) == (1, 1, 0, 1)
    write_csv(tmp_path / "hard", [{"Id": ids[4]["Id"]}], idcol)
    run(simple_spec(tmp_path / "hard", idcol, "Account", "hardDelete", allow_hard_delete=True), "hard")
    everything = sf.query_all(
        f"SELECT Id, IsDeleted FROM Account WHERE Id IN ('{ids[3]['Id']}', '{ids[4]['Id']}')", include_deleted=True
    )
    assert [(r["Id"], r["IsDeleted"]) for r in everything["records"]] == [(ids[3]["Id"], True)]
    assert set(org_accounts(sb)) == {r["Acme_Id__c"] for r in ids} - {ids[3]["Acme_Id__c"], ids[4]["Acme_Id__c"]}


def test_refused_records_are_quarantined_exactly_with_salesforces_error(
    salesforce_sandbox: Any, env: Any, tmp_path: Path, pg_url: str
) -> None:
    import sqlalchemy as sa

    sb = salesforce_sandbox
    sb.admin.set_validation_rules(
        "Account",
        [
            {
                "name": "Big_Credit_Needs_Rating",
                "condition": "Credit_Limit__c > 5000 AND Rating = null",
                "message": "A credit limit above 5,000 needs a rating",
                "field": "Rating",
            }
        ],
    )
    sb.client().Account.create({"Name": "Existing", "Acme_Id__c": "ACME-TAKEN"})
    rows = account_rows(20)
    for r in rows:
        r["credit"] = "100.00"
    rows[3].update(credit="9000.00", rating=None)  # validation rule
    rows[5]["acme_id"] = "ACME-TAKEN"  # unique external id used by another record
    rows[9]["name"] = "N" * 256  # STRING_TOO_LONG (caught before upload)
    rows[11]["rating"] = "Lukewarm"  # restricted picklist (caught before upload)
    rows[13]["name"] = None  # required on insert (caught before upload)
    rows[16]["acme_id"] = rows[15]["acme_id"]  # the same unique value twice in one upload
    for r in rows:
        r["parent"] = None
    rows[7]["parent"] = "ACME-NOPE"  # parent that does not exist
    columns = [*ACCOUNT_COLUMNS, {"name": "parent", "type": "string"}]
    write_csv(tmp_path / "in", rows, columns)
    spec = account_spec(
        tmp_path / "in",
        columns,
        operation="insert",
        external_id=None,
        invalid_rows="quarantine",
        audit_conn_id="test_pg",
        relationships={"Parent": {"object": "Account", "external_id": "Acme_Id__c", "from": "parent"}},
    )
    loaded, rec = run(spec, "r1")
    q = quarantined(spec)
    assert [(r["_bulksync_row"], r["_sf_result"], r["_sf_status_code"], r["_sf_error_fields"]) for r in q] == [
        (3, "failed", "FIELD_CUSTOM_VALIDATION_EXCEPTION", ["Rating"]),
        (5, "failed", "DUPLICATE_VALUE", ["Acme_Id__c"]),
        (7, "failed", "INVALID_FIELD", ["ParentId"]),
        (9, "invalid", "STRING_TOO_LONG", ["Name"]),
        (11, "invalid", "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", ["Rating"]),
        (13, "invalid", "REQUIRED_FIELD_MISSING", ["Name"]),
        (16, "failed", "DUPLICATE_VALUE", ["Acme_Id__c"]),
    ]
    assert q[0]["_sf_error_message"] == "A credit limit above 5,000 needs a rating"
    assert (
        q[2]["_sf_error_message"]
        == "Foreign key external ID: ACME-NOPE not found for field Acme_Id__c in entity Account"
    )
    assert [r["acme_id"] for r in q] == [rows[i]["acme_id"] for i in (3, 5, 7, 9, 11, 13, 16)]  # the staged rows
    good = [r for i, r in enumerate(rows) if i not in (3, 5, 7, 9, 11, 13, 16)]
    org = org_accounts(sb)
    org.pop("ACME-TAKEN")
    assert {k: {f: v for f, v in r.items() if f != "Id"} for k, r in org.items()} == {
        r["acme_id"]: expected(r) for r in good
    }
    assert (loaded.inserted, loaded.failed, loaded.unprocessed) == (13, 7, 0)
    assert (rec["status"], rec["staged"], rec["loaded"], rec["failed"], rec["ok"]) == ("quarantined", 20, 13, 7, True)
    with sa.create_engine(pg_url).connect() as conn:
        runs = conn.exec_driver_sql("SELECT staged, loaded, failed, unprocessed, status FROM bulksync_audit.runs").all()
        errors = conn.exec_driver_sql(
            "SELECT status_code, records, fields FROM bulksync_audit.writeback_errors "
            "ORDER BY records DESC, status_code"
        ).all()
    assert runs == [(20, 13, 7, 0, "quarantined")]
    assert errors == [
        ("DUPLICATE_VALUE", 2, "Acme_Id__c"),
        ("FIELD_CUSTOM_VALIDATION_EXCEPTION", 1, "Rating"),
        ("INVALID_FIELD", 1, "ParentId"),
        ("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", 1, "Rating"),
        ("REQUIRED_FIELD_MISSING", 1, "Name"),
        ("STRING_TOO_LONG", 1, "Name"),
    ]
    from bulksync.quality.report import render_pipeline_report

    page = render_pipeline_report("acme", "test")
    assert "Write-back · insert into Account" in page and "FIELD_CUSTOM_VALIDATION_EXCEPTION" in page


def test_sf_retry_resends_only_the_quarantined_records_after_the_cause_is_fixed(
    salesforce_sandbox: Any, env: Any, tmp_path: Path, pg_url: str
) -> None:
    import json

    import sqlalchemy as sa
    import yaml
    from typer.testing import CliRunner

    from bulksync.cli import app

    sb = salesforce_sandbox
    rule = {"name": "Rating_Required_For_Big_Credit", "condition": "Credit_Limit__c > 5000 AND Rating = null",
            "message": "A credit limit above 5,000 needs a rating", "field": "Rating"}  # fmt: skip
    sb.admin.set_validation_rules("Account", [rule])
    rows = account_rows(30)
    for i, r in enumerate(rows):
        r.update(credit="9000.00" if i % 3 == 0 else "10.00", rating=None if i % 3 == 0 else r["rating"])
    write_csv(tmp_path / "in", rows, ACCOUNT_COLUMNS)
    spec = account_spec(tmp_path / "in", audit_conn_id="test_pg")
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "test.yaml").write_text(yaml.safe_dump(spec.model_dump(mode="json", by_alias=True)))
    env.setenv("BULKSYNC_SPECS_DIR", str(tmp_path / "specs"))
    env.setenv("COLUMNS", "300")  # rich wraps at the terminal width
    loaded, rec = run(spec, "nightly")
    assert (loaded.inserted, loaded.failed, rec["status"]) == (20, 10, "quarantined")
    assert {r["acme_id"] for r in quarantined(spec)} == {r["acme_id"] for i, r in enumerate(rows) if i % 3 == 0}
    jobs_before = len(sb.admin.ingest.jobs)
    runner = CliRunner()
    # still failing: the rule is unchanged, so the same 10 come back; exit code 3 says records remain
    res = runner.invoke(app, ["sf", "retry", "acme__test", "accounts", "--window", "full"])
    assert res.exit_code == 3, res.output
    assert "re-sent 10 quarantined records to Account (upsert): 0 succeeded, 10 still failed" in res.output
    assert "FIELD_CUSTOM_VALIDATION_EXCEPTION" in res.output
    # the engineer fixes the cause (the rule is relaxed); the retry sends only those 10
    sb.admin.set_validation_rules("Account", [])
    sent: list[int] = []
    original = sb.admin.ingest.upload

    def spy(job_id: str, body: bytes, content_type: str | None) -> None:
        sent.append(len(list(csv.reader(body.decode().splitlines(keepends=True)))) - 1)  # records, not lines
        original(job_id, body, content_type)

    sb.admin.ingest.upload = spy  # type: ignore[method-assign]
    res = runner.invoke(app, ["sf", "retry", "acme__test", "accounts", "--window", "full"])
    assert res.exit_code == 0, res.output
    assert sent == [10] and len(sb.admin.ingest.jobs) >= jobs_before
    assert "10 succeeded, 0 still failed, 0 unprocessed" in res.output
    assert "reconciled: staged 30 = loaded 30 + failed 0 + unprocessed 0" in res.output
    assert quarantined(spec) == []
    org = org_accounts(sb)
    assert {k: {f: v for f, v in r.items() if f != "Id"} for k, r in org.items()} == {
        r["acme_id"]: expected(r) for r in rows
    }
    with sa.create_engine(pg_url).connect() as conn:
        audit = conn.exec_driver_sql("SELECT loaded, failed, status FROM bulksync_audit.runs").all()
        errors = conn.exec_driver_sql("SELECT count(*) FROM bulksync_audit.writeback_errors").scalar_one()
    assert audit == [(30, 0, "success")] and errors == 0  # the run's audit row now shows the interval as it stands
    part = stages.partition_for(spec, spec.datasets[0], Window())
    report = json.loads((part.path / "_load.json").read_text())
    assert (report["inserted"], report["failed"], len(report["extra"]["retries"])) == (30, 0, 2)
