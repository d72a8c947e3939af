"""The sandbox's Bulk API 2.0 ingest jobs as the Developer Guide documents them, driven by the
unmodified simple_salesforce client (``bulk2``) and plain requests over HTTPS."""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path
from typing import Any

import pytest

# accountupsert.csv of the guide's "Step 5: Bulk Upsert" walkthrough (walkthrough_upsert.htm), verbatim
WALKTHROUGH = """customExtIdField__c,name,NumberOfEmployees
123,GenePoint,800
234,"United Oil & Gas, UK",1467
345,"United Oil & Gas, Singapore",348
456,Edge Communications,10045
567,Burlington Textiles Corp of America,5876
678,Dickenson plc,67
789,Grand Hotels & Resorts Ltd,409
890,Express Logistics and Transport,243
901,University of Arizona,9506
1350,United Oil & Gas Corp.,5467
1579,sForce,40000
2690,University of The Terrific,1257
"""


def rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_the_documented_upsert_walkthrough(salesforce_sandbox: Any, tmp_path: Path) -> None:
    sf = salesforce_sandbox.client()
    path = tmp_path / "accountupsert.csv"
    path.write_text(WALKTHROUGH)
    (first,) = sf.bulk2.Account.upsert(str(path), external_id_field="customExtIdField__c", wait=0.1)
    assert (first["numberRecordsProcessed"], first["numberRecordsFailed"]) == (12, 0)
    ok = sf.bulk2.Account.get_successful_records(first["job_id"])
    assert ok.splitlines()[0] == '"sf__Id","sf__Created","customExtIdField__c","name","NumberOfEmployees"'
    created = rows(ok)
    assert {r["customExtIdField__c"]: (r["sf__Created"], r["name"]) for r in created} == {
        r["customExtIdField__c"]: ("true", r["name"]) for r in rows(WALKTHROUGH)
    }
    assert sf.bulk2.Account.get_failed_records(first["job_id"]).strip() == (
        '"sf__Id","sf__Error","customExtIdField__c","name","NumberOfEmployees"'
    )
    (second,) = sf.bulk2.Account.upsert(str(path), external_id_field="customExtIdField__c", wait=0.1)
    again = rows(sf.bulk2.Account.get_successful_records(second["job_id"]))
    assert {r["sf__Id"]: r["sf__Created"] for r in again} == {r["sf__Id"]: "false" for r in created}
    read = sf.query_all(
        "SELECT customExtIdField__c, Name, NumberOfEmployees FROM Account WHERE customExtIdField__c != null"
    )
    assert sorted((r["customExtIdField__c"], r["Name"], r["NumberOfEmployees"]) for r in read["records"]) == sorted(
        (r["customExtIdField__c"], r["name"], int(r["NumberOfEmployees"])) for r in rows(WALKTHROUGH)
    )


def api(sb: Any) -> tuple[Any, str, dict[str, str]]:
    sf = sb.client()
    return sf.session, sf.base_url + "jobs/ingest", {"Authorization": sf.headers["Authorization"]}


def run_job(sb: Any, body: dict[str, Any], data: str) -> tuple[dict[str, Any], dict[str, list[dict[str, str]]]]:
    session, jobs, headers = api(sb)
    job = session.post(jobs, json=body, headers=headers).json()
    assert job["state"] == "Open" and job["contentUrl"].endswith(f"/jobs/ingest/{job['id']}/batches")
    put = session.put(
        f"{jobs}/{job['id']}/batches", data=data.encode(), headers={**headers, "Content-Type": "text/csv"}
    )
    assert put.status_code == 201 and not put.content
    session.patch(f"{jobs}/{job['id']}", json={"state": "UploadComplete"}, headers=headers)
    for _ in range(200):
        info = session.get(f"{jobs}/{job['id']}", headers=headers).json()
        if info["state"] in ("JobComplete", "Failed", "Aborted"):
            break
        time.sleep(0.05)
    results = {
        kind: rows(session.get(f"{jobs}/{job['id']}/{kind}", headers=headers).text)
        for kind in ("successfulResults", "failedResults", "unprocessedrecords")
    }
    return info, results


def test_per_record_errors_carry_salesforces_codes(salesforce_sandbox: Any) -> None:
    sb = salesforce_sandbox
    sf = sb.client()
    taken = sf.Account.create({"Name": "Taken", "Acme_Id__c": "A-1"})["id"]
    gone = sf.Account.create({"Name": "Gone"})["id"]
    sf.Account.delete(gone)
    info, res = run_job(
        sb,
        {"object": "Account", "operation": "insert"},
        "Name,Rating,Acme_Id__c,Parent.Acme_Id__c,NumberOfEmployees\n"
        ",Hot,,,\n"  # REQUIRED_FIELD_MISSING
        "B,Lukewarm,,,\n"  # restricted picklist
        f"C,,A-1,,\n"  # unique external id of another record
        f"{'D' * 256},,,,\n"  # STRING_TOO_LONG
        "E,,,A-NOPE,\n"  # unknown parent
        "F,,,A-1,12\n",  # fine: parent found
    )
    assert (info["state"], info["numberRecordsProcessed"], info["numberRecordsFailed"]) == ("JobComplete", 6, 5)
    codes = {r["Name"][:1] or "-": r["sf__Error"].split(":", 1)[0] for r in res["failedResults"]}
    assert codes == {
        "-": "REQUIRED_FIELD_MISSING",
        "B": "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
        "C": "DUPLICATE_VALUE",
        "D": "STRING_TOO_LONG",
        "E": "INVALID_FIELD",
    }
    (ok,) = res["successfulResults"]
    assert sf.Account.get(ok["sf__Id"])["ParentId"] == taken
    info, res = run_job(
        sb, {"object": "Account", "operation": "update"}, f"Id,Name\n{gone},X\n{taken[:15]},Y\n001nope,Z\n"
    )
    assert [r["sf__Error"].split(":", 1)[0] for r in res["failedResults"]] == ["ENTITY_IS_DELETED", "MALFORMED_ID"]
    assert sf.Account.get(taken)["Name"] == "Y"  # a 15-character Id is accepted
    info, _ = run_job(sb, {"object": "Account", "operation": "insert"}, "Name,Nope__c\nA,1\n")
    assert (info["state"], info["errorMessage"]) == ("Failed", "InvalidBatch : Field name not found : Nope__c")


def test_hard_delete_removes_records_from_query_all(salesforce_sandbox: Any) -> None:
    sf = salesforce_sandbox.client()
    soft, hard = (sf.Account.create({"Name": n})["id"] for n in ("Soft", "Hard"))
    run_job(salesforce_sandbox, {"object": "Account", "operation": "delete"}, f"Id\n{soft}\n")
    run_job(salesforce_sandbox, {"object": "Account", "operation": "hardDelete"}, f"Id\n{hard}\n")
    found = sf.query_all(f"SELECT Id, IsDeleted FROM Account WHERE Id IN ('{soft}', '{hard}')", include_deleted=True)
    assert [(r["Id"], r["IsDeleted"]) for r in found["records"]] == [(soft, True)]


def test_failed_jobs_leave_unprocessed_records_and_aborted_jobs_keep_their_data(salesforce_sandbox: Any) -> None:
    sb = salesforce_sandbox
    sb.admin.faults.configure(fail_ingest_jobs=1, ingest_fail_after=3)
    data = "Name\n" + "".join(f"N{i}\n" for i in range(8))
    info, res = run_job(sb, {"object": "Account", "operation": "insert"}, data)
    assert info["state"] == "Failed" and info["numberRecordsProcessed"] == 3
    assert len(res["successfulResults"]) == 3 and [r["Name"] for r in res["unprocessedrecords"]] == [
        f"N{i}" for i in range(3, 8)
    ]
    session, jobs, headers = api(sb)
    job = session.post(jobs, json={"object": "Account", "operation": "insert"}, headers=headers).json()
    session.put(f"{jobs}/{job['id']}/batches", data=b"Name\nA\n", headers={**headers, "Content-Type": "text/csv"})
    again = session.put(
        f"{jobs}/{job['id']}/batches", data=b"Name\nB\n", headers={**headers, "Content-Type": "text/csv"}
    )
    assert again.status_code == 400 and again.json()[0]["errorCode"] == "INVALIDJOB"
    aborted = session.patch(f"{jobs}/{job['id']}", json={"state": "Aborted"}, headers=headers).json()
    assert aborted["state"] == "Aborted"
    assert session.get(f"{jobs}/{job['id']}/unprocessedrecords", headers=headers).text == "Name\nA\n"


@pytest.mark.salesforce_sandbox(max_upload_bytes=1000)
def test_uploads_over_the_limit_are_refused(salesforce_sandbox: Any) -> None:
    session, jobs, headers = api(salesforce_sandbox)
    job = session.post(jobs, json={"object": "Account", "operation": "insert"}, headers=headers).json()
    resp = session.put(
        f"{jobs}/{job['id']}/batches", data=b"Name\n" + b"x" * 2000, headers={**headers, "Content-Type": "text/csv"}
    )
    assert resp.status_code == 400 and "150 MB of base64" in resp.json()[0]["message"]
    bad = session.post(
        jobs, json={"object": "Account", "operation": "upsert", "externalIdFieldName": "Name"}, headers=headers
    )
    assert bad.status_code == 400 and "is not an External ID or indexed field" in bad.json()[0]["message"]
