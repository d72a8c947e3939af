"""The ``salesforce`` target's refusals and recoveries: bad input caught before any upload, faults,
expired tokens, a second insert of an interval, and a load killed half-way (real processes)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from bulksync import stages
from bulksync.errors import ConfigurationError, DataError, SpecError, TargetSchemaError
from bulksync.staging.partition import Window
from bulksync.targets.salesforce.target import InsertAlreadyLoadedError
from tests.integration.test_salesforce_writeback import (
    ACCOUNT_COLUMNS,
    ACCOUNT_FIELDS,
    account_rows,
    account_spec,
    expected,
    org_accounts,
    quarantined,
    run,
    write_csv,
)

ROOT = Path(__file__).resolve().parents[2]


def no_jobs(sb: Any) -> bool:
    return not sb.admin.ingest.jobs


def load_only(spec: Any, run_id: str = "r") -> Any:
    ds = spec.datasets[0]
    ctx = stages.RunContext(run_id=run_id, window=Window())
    stages.extract(spec, ds, ctx)
    stages.transform(spec, ds, ctx)
    return stages.load(spec, ds, ctx)


def test_bad_records_are_named_before_any_upload(salesforce_sandbox: Any, env: Any, tmp_path: Path) -> None:
    rows = account_rows(12)
    rows[2]["name"] = "x" * 300
    rows[4]["rating"] = "Lukewarm"
    rows[6]["acme_id"] = rows[8]["acme_id"] = "ACME-TWICE"
    write_csv(tmp_path / "in", rows, ACCOUNT_COLUMNS)
    with pytest.raises(DataError) as info:
        load_only(account_spec(tmp_path / "in"))
    text = str(info.value)
    assert text.startswith("4 staged records of Account cannot be written as they are (checked against describe")
    assert "row 3, column 'name' (Name): STRING_TOO_LONG: 300 characters, the field takes at most 255" in text
    assert "row 5, column 'rating' (Rating): INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST: 'Lukewarm' is not a value" in text
    assert "row 7, column 'acme_id' (Acme_Id__c): DUPLICATE_KEY: the key 'ACME-TWICE' appears 2 times" in text
    assert "row 9, column 'acme_id'" in text and "set invalid_rows: quarantine" in text
    assert no_jobs(salesforce_sandbox) and org_accounts(salesforce_sandbox) == {}


def test_a_record_larger_than_one_upload_is_refused(salesforce_sandbox: Any, env: Any, tmp_path: Path) -> None:
    rows = account_rows(3)
    rows[1]["notes"] = "é" * 3000  # 6,000 bytes of UTF-8
    write_csv(tmp_path / "in", rows, ACCOUNT_COLUMNS)
    with pytest.raises(
        DataError, match=r"row 2, column 'notes' \(Description\): RECORD_TOO_LARGE: the record is \d+ bytes"
    ):
        load_only(account_spec(tmp_path / "in", max_bytes_per_job=4000))
    assert no_jobs(salesforce_sandbox)


@pytest.mark.parametrize(
    ("target", "message"),
    [
        (
            {"fields": None},
            "staged column 'acme_id' has no field on Account and no mapping; did you mean Acme_Id__c?: map it "
            "(fields: {<Field>: acme_id}), leave it out (exclude_columns: [acme_id]) or drop it in a transform",
        ),
        (
            {
                "fields": {
                    **{k: v for k, v in ACCOUNT_FIELDS.items() if v != "credit"},
                    "Revenue_Per_Employee__c": "credit",
                }
            },
            "Account.Revenue_Per_Employee__c (from staged column 'credit') is not createable (a formula field)",
        ),
        (
            {"external_id": "Name"},
            "Account.Name is not an external id (externalId: false in describe), so it cannot be the upsert key",
        ),
        (
            {"fields": {**{k: v for k, v in ACCOUNT_FIELDS.items() if v != "name"}, "Nmae": "name"}},
            "Account has no field 'Nmae' (mapped from staged column 'name'); did you mean Name?",
        ),
        (
            {
                "fields": {k: v for k, v in ACCOUNT_FIELDS.items() if k != "Name"},
                "operation": "insert",
                "external_id": None,
            },
            "Account requires Name on every new record (nillable: false, no default) but no staged column maps to it",
        ),
        (
            {
                "relationships": {
                    "Parent": {"object": "Contact", "external_id": "Acme_Contact_Id__c", "from": "notes"}
                },
                "fields": {k: v for k, v in ACCOUNT_FIELDS.items() if k != "Description"},
            },
            "relationship Parent of Account (ParentId) points to Account, not Contact",
        ),
    ],
)
def test_spec_refused_against_describe_before_upload(
    salesforce_sandbox: Any, env: Any, tmp_path: Path, target: dict[str, Any], message: str
) -> None:
    write_csv(tmp_path / "in", account_rows(3), ACCOUNT_COLUMNS)
    with pytest.raises((TargetSchemaError, ConfigurationError)) as info:
        load_only(account_spec(tmp_path / "in", **target))
    assert message in str(info.value)
    assert no_jobs(salesforce_sandbox)


def test_hard_delete_needs_an_explicit_allow(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="set 'allow_hard_delete: true' to confirm"):
        account_spec(tmp_path, operation="hardDelete", external_id=None, fields={"Id": "acme_id"})


@pytest.mark.salesforce_sandbox(counts={"Account": 50})
def test_twenty_percent_faults_and_failed_jobs_end_with_the_exact_org(
    salesforce_sandbox: Any, env: Any, tmp_path: Path
) -> None:
    sb = salesforce_sandbox
    rows = account_rows(300)
    write_csv(tmp_path / "in", rows, ACCOUNT_COLUMNS)
    sb.admin.faults.configure(
        unavailable_share=0.05, throttle_share=0.05, drop_share=0.05, truncate_share=0.05, retry_after=0, seed=7,
        fail_ingest_jobs=3, ingest_fail_after=20,
    )  # fmt: skip
    spec = account_spec(tmp_path / "in", max_records_per_job=50, max_parallel_jobs=3, max_attempts=10)
    loaded, rec = run(spec, "faulty")
    sb.admin.faults.clear()
    assert (loaded.inserted, loaded.updated, loaded.failed, loaded.unprocessed) == (300, 0, 0, 0)
    assert rec["ok"] and rec["status"] == "success"
    org = org_accounts(sb)
    assert {k: {f: v for f, v in r.items() if f != "Id"} for k, r in org.items()} == {
        r["acme_id"]: expected(r) for r in rows
    }
    assert quarantined(spec) == []
    assert len(loaded.extra["jobs"]) > 6  # failed jobs' unprocessed records went out again in new jobs


def test_unprocessed_records_left_after_resubmitting_are_quarantined_and_reconciled(
    salesforce_sandbox: Any, env: Any, tmp_path: Path
) -> None:
    rows = account_rows(30)
    write_csv(tmp_path / "in", rows, ACCOUNT_COLUMNS)
    salesforce_sandbox.admin.faults.configure(fail_ingest_jobs=3, ingest_fail_after=5)
    loaded, rec = run(account_spec(tmp_path / "in"), "r")
    # job 1 did 5 of 30; resubmitted twice, 5 of 25 and 5 of 20: the last 15 stay unprocessed
    assert (loaded.inserted, loaded.unprocessed) == (15, 15)
    assert (rec["staged"], rec["loaded"], rec["unprocessed"], rec["ok"], rec["status"]) == (
        30,
        15,
        15,
        True,
        "quarantined",
    )
    q = quarantined(account_spec(tmp_path / "in"))
    assert {r["_sf_result"] for r in q} == {"unprocessed"} and len(q) == 15
    assert {r["acme_id"] for r in q} | set(org_accounts(salesforce_sandbox)) == {r["acme_id"] for r in rows}


# 6 jobs, 2 at a time, 1 s each: at least 3 s of load with 1 s tokens (a shorter life fails under load: a fresh
# token can expire before the request that carries it reaches the org)
@pytest.mark.salesforce_sandbox(token_lifetime=1.0, job_seconds=1.0)
def test_tokens_expiring_several_times_in_one_load_are_renewed_each_time(
    salesforce_sandbox: Any, env: Any, tmp_path: Path
) -> None:
    rows = account_rows(60)
    write_csv(tmp_path / "in", rows, ACCOUNT_COLUMNS)
    spec = account_spec(tmp_path / "in", max_records_per_job=10, max_parallel_jobs=2)
    ds = spec.datasets[0]
    ctx = stages.RunContext(run_id="r", window=Window())
    stages.extract(spec, ds, ctx)
    stages.transform(spec, ds, ctx)
    from bulksync.targets.salesforce.load import load_partition
    from bulksync.targets.salesforce.target import SalesforceTarget

    renewals: list[int] = []
    original = SalesforceTarget.close

    def spy(self: SalesforceTarget) -> None:
        renewals.append(self.api.reauthentications)
        original(self)

    SalesforceTarget.close = spy  # type: ignore[method-assign]
    try:
        loaded = load_partition(spec, ds, ctx)
    finally:
        SalesforceTarget.close = original  # type: ignore[method-assign]
    assert loaded.inserted == 60 and renewals[0] >= 2
    assert set(org_accounts(salesforce_sandbox)) == {r["acme_id"] for r in rows}


def test_a_second_insert_of_an_interval_is_refused_unless_forced(
    salesforce_sandbox: Any, env: Any, tmp_path: Path
) -> None:
    from bulksync.targets.salesforce.load import load_partition

    rows = account_rows(5)
    write_csv(tmp_path / "in", rows, ACCOUNT_COLUMNS)
    spec = account_spec(tmp_path / "in", operation="insert", external_id=None,
                        fields={k: v for k, v in ACCOUNT_FIELDS.items() if k != "Acme_Id__c"})  # fmt: skip
    assert load_only(spec, "r1").inserted == 5
    write_csv(tmp_path / "in", account_rows(5, name="Other"), ACCOUNT_COLUMNS)  # re-extracted, different data
    with pytest.raises(InsertAlreadyLoadedError) as info:
        load_only(spec, "r2")
    assert "inserting again would duplicate records in Salesforce" in str(info.value)
    assert "bulksync sf load acme__test accounts --window full --force" in str(info.value)
    sf = salesforce_sandbox.client()
    count = "SELECT COUNT() FROM Account WHERE Name LIKE '%Söhne%'"
    assert sf.query(count)["totalSize"] == 5
    ds = spec.datasets[0]
    assert load_partition(spec, ds, stages.RunContext(run_id="r3", window=Window()), force=True).inserted == 5
    assert sf.query(count)["totalSize"] == 10


KILL_SCRIPT = """
import os, sys
from bulksync import stages
from bulksync.staging.partition import Window
from tests.integration.test_salesforce_writeback import account_spec
from pathlib import Path
op = sys.argv[2]
key = None if op == "insert" else "Acme_Id__c"
spec = account_spec(Path(sys.argv[1]), operation=op, external_id=key, max_records_per_job=20, max_parallel_jobs=1)
ds = spec.datasets[0]
ctx = stages.RunContext(run_id="killed", window=Window())
stages.load(spec, ds, ctx)
"""


@pytest.mark.salesforce_sandbox(job_seconds=0.3)
@pytest.mark.parametrize("operation", ["upsert", "insert"])
def test_a_load_killed_half_way(salesforce_sandbox: Any, env: Any, tmp_path: Path, operation: str) -> None:
    """SIGKILL after the first job: an upsert's rerun ends exact; an insert's rerun is refused (no duplicates)."""
    sb = salesforce_sandbox
    rows = account_rows(100)
    write_csv(tmp_path / "in", rows, ACCOUNT_COLUMNS)
    key = None if operation == "insert" else "Acme_Id__c"
    spec = account_spec(
        tmp_path / "in", operation=operation, external_id=key, max_records_per_job=20, max_parallel_jobs=1
    )
    ds = spec.datasets[0]
    ctx = stages.RunContext(run_id="killed", window=Window())
    stages.extract(spec, ds, ctx)
    stages.transform(spec, ds, ctx)
    script = KILL_SCRIPT.replace("sys.argv[1]", repr(str(tmp_path / "in"))).replace("sys.argv[2]", repr(operation))
    proc = subprocess.Popen([sys.executable, "-c", script], env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT,
                            stderr=subprocess.PIPE)  # fmt: skip
    deadline = time.monotonic() + 60
    while len(sb.admin.store.overlay["Account"]) < 20:  # the first job's records are in the org
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        assert time.monotonic() < deadline, "the load never got past its first job"
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    written = len(org_accounts(sb))
    assert 0 < written < 100
    if operation == "insert":
        with pytest.raises(InsertAlreadyLoadedError, match="already started"):
            stages.load(spec, ds, stages.RunContext(run_id="retry", window=Window()))
        assert len(org_accounts(sb)) == written
        return
    loaded = stages.load(spec, ds, stages.RunContext(run_id="retry", window=Window()))
    assert loaded.inserted + loaded.updated == 100
    org = org_accounts(sb)
    assert {k: {f: v for f, v in r.items() if f != "Id"} for k, r in org.items()} == {
        r["acme_id"]: expected(r) for r in rows
    }


@pytest.mark.salesforce_sandbox(job_seconds=0.5)
def test_two_inserts_of_one_interval_at_once_write_the_records_once(
    salesforce_sandbox: Any, env: Any, tmp_path: Path
) -> None:
    rows = account_rows(40)
    write_csv(tmp_path / "in", rows, ACCOUNT_COLUMNS)
    spec = account_spec(
        tmp_path / "in", operation="insert", external_id=None, max_records_per_job=20, max_parallel_jobs=1
    )
    ds = spec.datasets[0]
    ctx = stages.RunContext(run_id="both", window=Window())
    stages.extract(spec, ds, ctx)
    stages.transform(spec, ds, ctx)
    script = KILL_SCRIPT.replace("sys.argv[1]", repr(str(tmp_path / "in"))).replace("sys.argv[2]", repr("insert"))
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script],
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for _ in range(2)
    ]
    outcomes = [(p.wait(timeout=120), p.stderr.read().decode() if p.stderr else "") for p in procs]
    assert sorted(code for code, _ in outcomes) == [0, 1], outcomes
    refused = next(err for code, err in outcomes if code)
    assert "InsertAlreadyLoadedError" in refused
    assert salesforce_sandbox.client().query("SELECT COUNT() FROM Account WHERE Name LIKE '%Söhne%'")["totalSize"] == 40
