"""The ``salesforce`` target's guards, against the sandbox over real HTTPS with the unmodified client stack.

- the org's limits (``/limits``) are checked before any upload: a refused load names the limit and
  what to do, and leaves the org exactly as it was (no ingest job, no record written);
- the API calls a load makes are counted exactly (the sandbox's own request counter is the truth);
- an ``update`` rerun of an interval leaves every field of every record as it was;
- a second ``insert`` of a committed interval is refused; ``bulksync sf load … --force`` (the real CLI)
  sends again;
- the migration form's dry run reports what it would send and the invalid records, writing nothing;
- ``bulksync sf retry`` updates the counts the data-quality report page shows.

What the org holds is read back through its own APIs (REST ``query`` of every describe field with the
unmodified ``simple_salesforce`` client) and the sandbox's job and request counters.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pytest
import yaml
from typer.testing import CliRunner

from bulksync import stages
from bulksync.cli import app
from bulksync.sources.salesforce.errors import SalesforceDailyLimitError, SalesforceLimitError
from bulksync.staging.partition import Window
from bulksync.staging.reader import read_manifest
from bulksync.targets.salesforce.load import load_partition
from bulksync.targets.salesforce.target import MAX_RECORDS_PER_DAY, InsertAlreadyLoadedError
from tests.integration.test_salesforce_writeback import (
    ACCOUNT_COLUMNS,
    ACCOUNT_FIELDS,
    account_rows,
    account_spec,
    quarantined,
    run,
    simple_spec,
    write_csv,
)
from tests.sandbox_salesforce import SandboxHandle

COLUMNS = cast(list[dict[str, Any]], ACCOUNT_COLUMNS)  # the imported literal is inferred as list[object]
AUDIT_STAMPS = ("LastModifiedDate", "SystemModstamp")
INSERT_FIELDS = {k: v for k, v in ACCOUNT_FIELDS.items() if k != "Acme_Id__c"}  # inserts may repeat these rows
Snapshot = dict[str, dict[str, Any]]


def org_snapshot(sb: SandboxHandle, obj: str = "Account") -> Snapshot:
    """Every field describe lists, of every live record of ``obj``, through REST query (by Id)."""
    sf = sb.client()
    names = [f["name"] for f in getattr(sf, obj).describe()["fields"]]
    records = sf.query_all(f"SELECT {', '.join(names)} FROM {obj}")["records"]
    return {r["Id"]: {k: v for k, v in r.items() if k != "attributes"} for r in records}


def org_state(sb: SandboxHandle) -> tuple[int, int, int]:
    """Ingest jobs ever created, records ever uploaded, and the store's write version."""
    ingest = sb.admin.ingest
    return ingest.created, ingest.records_uploaded, sb.admin.store.version


def listed_ingest_jobs(sb: SandboxHandle) -> list[dict[str, Any]]:
    """``GET /jobs/ingest`` (the org's job list) with the unmodified client's session."""
    sf = sb.client()
    resp = sf.session.get(sf.base_url + "jobs/ingest", headers=sf.headers, timeout=30)
    resp.raise_for_status()
    return list(resp.json()["records"])


def stage(spec: Any, run_id: str, window: Window | None = None) -> stages.RunContext:
    """extract → transform of the dataset, as the DAG's tasks do (nothing is sent to Salesforce)."""
    ds = spec.datasets[0]
    ctx = stages.RunContext(run_id=run_id, window=window or Window())
    stages.extract(spec, ds, ctx)
    stages.transform(spec, ds, ctx)
    return ctx


def load_report(spec: Any, window: Window | None = None) -> dict[str, Any]:
    part = stages.partition_for(spec, spec.datasets[0], window or Window())
    return dict(json.loads((part.path / "_load.json").read_text()))


def write_specs(spec: Any, folder: Path, env: pytest.MonkeyPatch) -> None:
    """The spec as the YAML file the CLI and the migration DAG read."""
    folder.mkdir(exist_ok=True)
    (folder / "test.yaml").write_text(yaml.safe_dump(spec.model_dump(mode="json", by_alias=True)))
    env.setenv("BULKSYNC_SPECS_DIR", str(folder))
    env.setenv("COLUMNS", "300")  # rich wraps at the terminal width


# -- 1. limits, before any upload ----------------------------------------------------------------------------


def _floor(sb: SandboxHandle) -> None:  # 300 requests left of the day, below the default floor of 1,000
    sb.admin.faults.configure(daily_api_max=sb.admin.faults.requests + 300)


def _requests_used_up(sb: SandboxHandle) -> None:  # the next request is beyond DailyApiRequests.Max
    sb.admin.faults.configure(daily_api_max=sb.admin.faults.requests)


def _bulk_used_up(sb: SandboxHandle) -> None:  # 150M records uploaded in the rolling 24 hours: 0 batches left
    sb.admin.ingest.records_uploaded = MAX_RECORDS_PER_DAY


def _bulk_one_batch_left(sb: SandboxHandle) -> None:  # 10,000 records left: a load of 10,001 needs 2 batches
    sb.admin.ingest.records_uploaded = MAX_RECORDS_PER_DAY - 10_000


def _recover(sb: SandboxHandle) -> None:
    sb.admin.faults.configure(daily_api_max=sb.admin.faults.requests + 100_000)
    sb.admin.ingest.records_uploaded = 0


LIMITS: dict[str, tuple[Callable[[SandboxHandle], None], int, type[Exception], list[str]]] = {
    "api_requests_below_floor": (
        _floor,
        8,
        SalesforceLimitError,
        [
            r"has \d+ of \d+ daily API requests left, below min_remaining_api_requests=1000; the write-back to "
            r"Account did not start",
            r"Wait for the rolling 24-hour limit to recover, or lower the floor if that is safe",
        ],
    ),
    "api_requests_used_up": (
        _requests_used_up,
        8,
        SalesforceDailyLimitError,
        [
            r"has used up its 24-hour API request limit \(REQUEST_LIMIT_EXCEEDED: TotalRequests Limit exceeded\.\)",
            r"nothing more is sent and retrying now cannot help",
            r"Rerun the task later \(check /limits DailyApiRequests\.Remaining first\)",
        ],
    ),
    "bulk_batches_used_up": (
        _bulk_used_up,
        8,
        SalesforceLimitError,
        [
            r"the write-back of 8 records to Account needs about 1 Bulk API batches \(10,000 records each\) but the "
            r"org has 0 of 15000 left in its rolling 24 hours \(DailyBulkApiBatches\); nothing was sent",
            r"Wait, or split the load",
        ],
    ),
    "bulk_batches_short_by_one": (
        _bulk_one_batch_left,
        10_001,
        SalesforceLimitError,
        [r"10001 records to Account needs about 2 Bulk API batches .* the org has 1 of 15000 left"],
    ),
}


@pytest.mark.salesforce_sandbox(counts={"Account": 20})
@pytest.mark.parametrize("case", list(LIMITS))
def test_limits_refuse_the_load_before_any_upload_and_the_org_is_unchanged(
    salesforce_sandbox: SandboxHandle, env: pytest.MonkeyPatch, tmp_path: Path, case: str
) -> None:
    sb = salesforce_sandbox
    squeeze, records, error, messages = LIMITS[case]
    rows = account_rows(records)
    write_csv(tmp_path / "in", rows, COLUMNS)
    # an insert: the guard that matters most (a refused insert must not leave the interval "claimed")
    spec = account_spec(tmp_path / "in", operation="insert", external_id=None, fields=INSERT_FIELDS)
    ds = spec.datasets[0]
    ctx = stage(spec, "nightly")
    before, state = org_snapshot(sb), org_state(sb)
    squeeze(sb)
    with pytest.raises(error) as info:
        stages.load(spec, ds, ctx)
    for message in messages:
        assert re.search(message, str(info.value)), (message, str(info.value))
    _recover(sb)  # to read the org back
    assert org_state(sb) == state  # no ingest job created, no record uploaded, nothing written
    assert listed_ingest_jobs(sb) == []
    assert org_snapshot(sb) == before
    if records > 1_000:
        return
    # doing what the message says (wait for the limit to recover) then rerunning the task works
    loaded = stages.load(spec, ds, stages.RunContext(run_id="nightly_retry", window=Window()))
    assert (loaded.inserted, loaded.failed) == (records, 0)
    names = {r["Name"] for r in org_snapshot(sb).values()}
    assert {r["name"] for r in rows} <= names


@pytest.mark.salesforce_sandbox(counts={"Account": 5})
def test_lowering_the_floor_lets_the_load_start(
    salesforce_sandbox: SandboxHandle, env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    sb = salesforce_sandbox
    write_csv(tmp_path / "in", account_rows(4), COLUMNS)
    spec = account_spec(tmp_path / "in", min_remaining_api_requests=100)
    ctx = stage(spec, "r")
    _floor(sb)  # 300 left: above this spec's floor
    assert stages.load(spec, spec.datasets[0], ctx).inserted == 4


# -- 2. API calls counted exactly ----------------------------------------------------------------------------


@pytest.mark.salesforce_sandbox(counts={"Account": 5})
def test_api_calls_in_the_load_result_match_the_sandboxs_request_count(
    salesforce_sandbox: SandboxHandle, env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    sb = salesforce_sandbox
    rows = account_rows(30)
    rows[4]["name"] = "N" * 300  # refused before upload: quarantined, not sent
    write_csv(tmp_path / "in", rows, COLUMNS)
    spec = account_spec(tmp_path / "in", max_records_per_job=10, max_parallel_jobs=1, invalid_rows="quarantine")
    ds = spec.datasets[0]
    ctx = stage(spec, "r1")
    start = sb.admin.faults.requests
    # two requests answered 429 and retried: each attempt is a request the org counts
    sb.admin.faults.configure(schedule={start + 3: "throttle", start + 9: "throttle"}, retry_after=0)
    loaded = stages.load(spec, ds, ctx)
    made = sb.admin.faults.requests - start
    assert sb.admin.faults.served["throttle"] == 2
    assert (loaded.inserted, loaded.failed, len(loaded.extra["jobs"])) == (29, 1, 3)
    # limits + describe, then per job: create, upload, UploadComplete, ≥ 1 poll, 3 result sets, delete
    assert made >= 2 + 3 * 8 + 2
    assert loaded.extra["api_calls"] == made
    assert load_report(spec)["extra"]["api_calls"] == made  # the load report (_load.json)
    part = stages.partition_for(spec, ds, Window())
    assert read_manifest(part, "target_quarantine").extra["api_calls"] == made  # the quarantine's manifest
    # the same staged data loaded again: a no-op that makes no call, and says so
    again = stage(spec, "r2")
    start = sb.admin.faults.requests
    noop = stages.load(spec, ds, again)
    assert noop.extra["already_loaded"] is True and sb.admin.faults.requests == start
    assert noop.extra["api_calls"] == 0 and load_report(spec)["extra"]["api_calls"] == 0


# -- 3. an update rerun changes nothing --------------------------------------------------------------------

UPDATE_COLUMNS = [
    {"name": "Id", "type": "string"},
    {"name": "Name", "type": "string"},
    {"name": "Industry", "type": "string"},
    {"name": "Rating", "type": "string"},
    {"name": "NumberOfEmployees", "type": "int64"},
    {"name": "Description", "type": "string"},
]


@pytest.mark.salesforce_sandbox(counts={"Account": 40})
def test_an_update_rerun_of_the_interval_leaves_every_field_of_every_record_unchanged(
    salesforce_sandbox: SandboxHandle, env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    sb = salesforce_sandbox
    original = org_snapshot(sb)
    ids = sorted(original)[::2]  # 20 of the 40
    updates = [
        {
            "Id": rid,
            "Name": f'Renamed {i}, "quoted"\nnext line',
            "Industry": ["Banking", "Retail", None][i % 3],  # a staged null leaves the field alone (nulls: ignore)
            "Rating": ["Hot", "Warm", "Cold"][i % 3],
            "NumberOfEmployees": str(100 + i),
            "Description": "Ünïcödé" if i % 2 else None,
        }
        for i, rid in enumerate(ids)
    ]
    write_csv(tmp_path / "upd", updates, UPDATE_COLUMNS)
    spec = simple_spec(tmp_path / "upd", UPDATE_COLUMNS, "Account", "update", max_records_per_job=8)
    ds = spec.datasets[0]
    loaded, rec = run(spec, "nightly")
    assert (loaded.inserted, loaded.updated, loaded.failed, rec["status"]) == (0, 20, 0, "success")
    first = org_snapshot(sb)
    assert set(first) == set(original)
    for i, rid in enumerate(ids):
        want = {k: v for k, v in updates[i].items() if v is not None and k != "NumberOfEmployees"}
        assert {k: first[rid][k] for k in want} == want and first[rid]["NumberOfEmployees"] == 100 + i
        if updates[i]["Industry"] is None:
            assert first[rid]["Industry"] == original[rid]["Industry"]
    assert {k: v for k, v in first.items() if k not in ids} == {k: v for k, v in original.items() if k not in ids}
    # the interval rerun (re-extracted, same data): nothing is sent and every field of every record is as it was
    state = org_state(sb)
    loaded2, rec2 = run(spec, "nightly_rerun")
    assert loaded2.extra["already_loaded"] is True and (rec2["status"], rec2["loaded"]) == ("success", 20)
    assert org_state(sb) == state and org_snapshot(sb) == first
    # forced to send every record again (`bulksync sf load --force`): Salesforce re-writes them — their
    # audit stamps move to the org's clock — but every other field of every record is unchanged
    stamp = dt.datetime(2030, 5, 6, 7, 8, 9, tzinfo=dt.UTC)
    sb.admin.set_clock(stamp)
    try:
        forced = load_partition(spec, ds, stages.RunContext(run_id="forced", window=Window()), force=True)
    finally:
        sb.admin.set_clock(None)
    assert (forced.updated, forced.failed, len(forced.extra["jobs"])) == (20, 0, 3)
    assert org_state(sb)[0] == state[0] + 3
    again = org_snapshot(sb)

    def without_stamps(snap: Snapshot) -> Snapshot:
        return {k: {f: v for f, v in r.items() if f not in AUDIT_STAMPS} for k, r in snap.items()}

    assert without_stamps(again) == without_stamps(first)
    moved = {k for k in again if any(again[k][f] != first[k][f] for f in AUDIT_STAMPS)}
    assert moved == set(ids)
    assert {again[k]["SystemModstamp"] for k in ids} == {"2030-05-06T07:08:09.000+0000"}


# -- 4. a second insert: refused, then forced through the CLI ----------------------------------------------


@pytest.mark.salesforce_sandbox(counts={"Account": 10})
def test_a_second_insert_is_refused_and_sf_load_force_sends_again(
    salesforce_sandbox: SandboxHandle, env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    sb = salesforce_sandbox
    sf = sb.client()

    def names() -> list[str]:
        return sorted(r["Name"] for r in sf.query_all("SELECT Name FROM Account WHERE Name LIKE '%Söhne%'")["records"])

    first_rows = account_rows(5)
    write_csv(tmp_path / "in", first_rows, COLUMNS)
    spec = account_spec(tmp_path / "in", operation="insert", external_id=None, fields=INSERT_FIELDS)
    write_specs(spec, tmp_path / "specs", env)
    ds = spec.datasets[0]
    loaded, _ = run(spec, "nightly")
    assert loaded.inserted == 5 and names() == sorted(r["name"] for r in first_rows)
    # the task rerun with the same staged data: a no-op
    assert stages.load(spec, ds, stage(spec, "rerun")).extra["already_loaded"] is True
    # re-extracted with other data: refused, naming the command that forces it
    other_rows = account_rows(5, name="Other")
    write_csv(tmp_path / "in", other_rows, COLUMNS)
    ctx = stage(spec, "second")
    state = org_state(sb)
    with pytest.raises(InsertAlreadyLoadedError, match="already committed"):
        stages.load(spec, ds, ctx)
    assert org_state(sb) == state and len(names()) == 5
    runner = CliRunner()
    res = runner.invoke(app, ["sf", "load", "acme__test", "accounts", "--window", "full"])
    assert res.exit_code == 1, res.output
    said = " ".join(res.output.split())  # rich wraps long lines
    assert "already committed (run nightly" in said and "inserting again would duplicate records in Salesforce" in said
    assert "bulksync sf load acme__test accounts --window full --force" in said
    assert org_state(sb) == state and len(names()) == 5
    res = runner.invoke(app, ["sf", "load", "acme__test", "accounts", "--window", "full", "--force"])
    assert res.exit_code == 0, res.output
    assert "accounts full: 5 inserted, 0 updated, 0 deleted, 0 failed, 0 unprocessed (success)" in res.output
    assert names() == sorted(r["name"] for r in first_rows + other_rows)  # 10: the forced insert sent again
    assert org_state(sb)[0] == state[0] + 1
    report = load_report(spec)
    assert (report["forced"], report["inserted"]) == (True, 5)


# -- 5. the migration form's dry run -------------------------------------------------------------------------


@pytest.mark.salesforce_sandbox(counts={"Account": 10})
def test_the_migration_dry_run_reports_what_it_would_send_and_the_invalid_records_writing_nothing(
    salesforce_sandbox: SandboxHandle, env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from bulksync import migration

    sb = salesforce_sandbox
    rows = account_rows(12)
    rows[2]["rating"] = "Lukewarm"  # not a value of the restricted picklist
    rows[5]["notes"] = "x" * 32_001  # Description takes 32,000
    rows[8]["name"] = None  # Name is required on a new record
    write_csv(tmp_path / "in", rows, COLUMNS)
    spec = account_spec(tmp_path / "in", operation="insert", external_id=None)
    write_specs(spec, tmp_path / "specs", env)
    before, state = org_snapshot(sb), org_state(sb)
    # as the bulksync__migration DAG's tasks call it (factory/migration.py: plan, then run_slice per slice)
    specs = migration.load_pipeline_specs(tmp_path / "specs")
    req = migration.MigrationRequest.from_params(
        {"pipeline": "acme__test", "datasets": ["accounts"], "full_history": True, "dry_run": True}
    )
    (piece,) = migration.plan(specs, req)
    result = migration.run_slice(specs, req, piece, "manual__dry", 1)
    assert {k: result[k] for k in ("dataset", "dry_run", "source_rows", "extracted", "would_send", "invalid")} == {
        "dataset": "accounts",
        "dry_run": True,
        "source_rows": 12,
        "extracted": 12,
        "would_send": 9,
        "invalid": 3,
    }
    assert (result["object"], result["operation"], set(result["columns"])) == ("Account", "insert", set(ACCOUNT_FIELDS))
    assert sorted(result["problems"]) == [
        "row 3, column 'rating' (Rating): INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST: 'Lukewarm' is not a value of the "
        "restricted picklist (values: Hot, Warm, Cold)",
        "row 6, column 'notes' (Description): STRING_TOO_LONG: 32001 characters, the field takes at most 32000",
        "row 9, column 'name' (Name): REQUIRED_FIELD_MISSING: Name is required on a new Account and the value is empty",
    ]
    assert migration.summarize([result])["accounts"]["invalid"] == 3
    # nothing reached the org: no job, no upload, no write; the records read back are the ones before
    assert org_state(sb) == state and listed_ingest_jobs(sb) == [] and org_snapshot(sb) == before
    # and nothing claims the interval: the real run afterwards is not refused as a second insert
    assert not list((tmp_path / "staging").rglob(".salesforce-ledger/*"))


# -- 6. the data-quality report after `sf retry` -------------------------------------------------------------

HEADING = re.compile(
    r"<h3>Write-back · (\w+) into (\w+) · ([\d,]+) succeeded, ([\d,]+) failed, ([\d,]+) unprocessed · (\d+) jobs</h3>"
)
ERROR_ROW = re.compile(r'<tr><td><code>([A-Z_]+)</code></td><td class="num">([\d,]+)</td>')
COUNT_ROW = re.compile(r'<tr><th>([^<]+)</th><td class="num">([^<]+)</td></tr>')
STATUS = re.compile(r'<h2>accounts <span class="badge s-(\w+)"')


def report_page(tmp_path: Path) -> dict[str, Any]:
    """What the static report page (``{reports}/acme/test/index.html``) shows of the write-back."""
    from bulksync.settings import reports_root

    page = reports_root() / "acme" / "test" / "index.html"
    assert page.is_relative_to(tmp_path)
    html = page.read_text()
    heading = HEADING.search(html)
    status = STATUS.search(html)
    assert heading and status, html
    section = html[heading.end() :]
    return {
        "heading": heading.groups(),
        "errors": {code: int(n.replace(",", "")) for code, n in ERROR_ROW.findall(section)},
        "counts": dict(COUNT_ROW.findall(html)),
        "status": status.group(1),
        "all_accepted": "✓ Salesforce accepted every record." in section,
    }


def test_the_data_quality_report_shows_the_counts_after_sf_retry(
    salesforce_sandbox: SandboxHandle, env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    sb = salesforce_sandbox
    env.setenv("BULKSYNC_REPORTS_ROOT", str(tmp_path / "reports"))  # this test's pages, whatever ran before

    def rule(threshold: int) -> dict[str, str]:
        return {"name": "Big_Credit_Needs_Rating", "condition": f"Credit_Limit__c > {threshold} AND Rating = null",
                "message": "A credit limit above the threshold needs a rating", "field": "Rating"}  # fmt: skip

    sb.admin.set_validation_rules("Account", [rule(5000)])
    rows = account_rows(30)
    for i, r in enumerate(rows):  # 10 refused: 5 above 8,000 and 5 between 5,000 and 8,000
        big = i % 3 == 0
        r.update(credit=("9000.00" if i % 2 else "6000.00") if big else "10.00", rating=None if big else "Hot")
    write_csv(tmp_path / "in", rows, COLUMNS)
    spec = account_spec(tmp_path / "in")
    write_specs(spec, tmp_path / "specs", env)
    loaded, rec = run(spec, "nightly")
    assert (loaded.inserted, loaded.failed, rec["status"]) == (20, 10, "quarantined")
    shown = report_page(tmp_path)
    assert shown["heading"] == ("upsert", "Account", "20", "10", "0", "1")
    assert shown["errors"] == {"FIELD_CUSTOM_VALIDATION_EXCEPTION": 10}
    assert (shown["counts"]["Loaded"], shown["counts"]["Failed in the target"]) == ("20", "10")
    assert shown["status"] == "quarantined" and not shown["all_accepted"]
    runner = CliRunner()
    # the rule relaxed half-way: 5 of the 10 go through, 5 still fail (exit code 3)
    sb.admin.set_validation_rules("Account", [rule(8000)])
    res = runner.invoke(app, ["sf", "retry", "acme__test", "accounts", "--window", "full"])
    assert res.exit_code == 3, res.output
    assert "re-sent 10 quarantined records to Account (upsert): 5 succeeded, 5 still failed" in res.output
    shown = report_page(tmp_path)
    assert shown["heading"] == ("upsert", "Account", "25", "5", "0", "2")
    assert shown["errors"] == {"FIELD_CUSTOM_VALIDATION_EXCEPTION": 5}
    assert (shown["counts"]["Loaded"], shown["counts"]["Failed in the target"]) == ("25", "5")
    assert shown["status"] == "quarantined"
    assert len(quarantined(spec)) == 5
    # the cause removed: the last 5 go through and the page shows the interval complete
    sb.admin.set_validation_rules("Account", [])
    res = runner.invoke(app, ["sf", "retry", "acme__test", "accounts", "--window", "full"])
    assert res.exit_code == 0, res.output
    shown = report_page(tmp_path)
    assert shown["heading"] == ("upsert", "Account", "30", "0", "0", "3")
    assert shown["errors"] == {} and shown["all_accepted"]
    assert shown["counts"]["Loaded"] == "30" and "Failed in the target" not in shown["counts"]
    assert shown["status"] == "nosuite"  # success (the dataset has no quality suite)
