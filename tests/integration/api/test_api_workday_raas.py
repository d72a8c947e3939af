"""The workday_raas preset against the Workday RaaS stand-in (real HTTPS, real staging, real PostgreSQL).

RaaS has no paging, no totals and no deletes: what is checked is the report's entries value by value,
the prompt window on both boundaries, missing aliases as nulls, both empty-report shapes, Basic and
OAuth auth, faults, and the public example payloads replayed through the preset's objects.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from bulksync import stages
from bulksync.sandbox.apis.workday_raas import DOC_EXAMPLES
from bulksync.sandbox.asgi import StandIn
from bulksync.sources.api.errors import ApiRequestError
from tests.integration.api import recorded
from tests.integration.api.conftest import api_dataset, api_pipeline, extract, rows_by, window
from tests.integration.api.recorded import recording

replay = recorded.replay  # the fixture
FAST = {"requests_per_second": 1000, "initial_wait_seconds": 0.01, "max_wait_seconds": 0.5}
UTC = dt.UTC


def worker_truth(
    s: StandIn, start: dt.datetime | None = None, end: dt.datetime | None = None
) -> dict[str, dict[str, Any]]:
    out = {}
    for r in s.records("workers", include_deleted=False):
        if start is not None and not start <= r["updated"] < end:  # type: ignore[operator]
            continue
        out[r["id"]] = {
            "Employee_ID": r["id"],
            "Worker": r["Worker"],
            "Email_Work": r["Email_Work"],
            "Hire_Date": r["Hire_Date"],
            "Job_Profile": r["Job_Profile"],
            "Location": r["Location"],
            "Annual_Base_Pay": Decimal(r["Annual_Base_Pay"]),
            "Active": r["Active"],
            "Cost_Centers_group": orjson.dumps(r["Cost_Centers_group"]).decode(),
            "Last_Updated": r["updated"],
        }
    return out


def workers_spec(obj: str = "workers", conn: str = "wd", **options: Any) -> Any:
    return api_pipeline(
        api_dataset(
            obj,
            conn,
            {"preset": "workday_raas", "object": obj, "limits": FAST, **options},
            {"kind": "postgres", "conn_id": "test_pg", "table": f"wd_{obj}", "mode": "merge", "keys": ["Employee_ID"]},
        )
    )


def test_full_and_incremental_reports_equal_the_standin_value_by_value(standin: Any, env: Any) -> None:
    s = standin("workday_raas", "wd", counts={"workers": 1440})
    manifest, table = extract(workers_spec(), "workers", window(None, None))
    assert rows_by(table, "Employee_ID") == worker_truth(s)
    assert manifest.rows == 1440 and manifest.source_count is None  # RaaS states no total
    assert table.column("Email_Work").null_count == sum(1 for r in s.records("workers") if r["Email_Work"] is None) > 0
    assert s.requests_by_path == {
        "/ccx/service/customreport2/acme/ISU_bulksync/Worker_Changes": 1
    }  # one answer, no paging

    start, end = dt.datetime(2026, 1, 1, 12, tzinfo=UTC), dt.datetime(2026, 1, 1, 13, tzinfo=UTC)
    _, table = extract(workers_spec(incremental=True), "workers", window("2026-01-01T12:00", "2026-01-01T13:00"))
    got = rows_by(table, "Employee_ID")
    assert got == worker_truth(s, start, end) and len(got) == 60
    stamps = sorted(r["Last_Updated"] for r in got.values())
    assert stamps[0] == start and stamps[-1] < end  # the entry on the start is in, the one on the end is out
    assert any(r["updated"] == end for r in s.records("workers"))


def test_changed_workers_merge_into_postgres(standin: Any, env: Any, pg_url: str) -> None:
    s = standin("workday_raas", "wd", counts={"workers": 200})
    for run, win, spec in (
        ("full", window(None, None), workers_spec()),
        ("inc", window("2026-01-02T00:00", "2026-01-02T06:00"), workers_spec(incremental=True)),
    ):
        if run == "inc":
            s.clock.set(dt.datetime(2026, 1, 2, 5, tzinfo=UTC))
            t = s.tables["workers"]
            t.upsert("210010", {"Job_Profile": "Director", "Annual_Base_Pay": "150000.00"}, s.clock.now(), lambda: "x")
            new = {k: v for k, v in t.make(3).items() if k not in ("id", "created", "updated", "deleted")}
            t.upsert(None, {**new, "Worker": "New Hire", "Email_Work": None}, s.clock.now(), lambda: "299999")
        ds = spec.dataset("workers")
        ctx = stages.RunContext(run_id=run, window=win, try_number=1)
        manifest = stages.extract(spec, ds, ctx)
        stages.transform(spec, ds, ctx)
        stages.load(spec, ds, ctx)
    assert manifest.rows == 2
    engine = sa.create_engine(pg_url)
    with engine.connect() as conn:
        got = {
            r[0]: (r[1], r[2], r[3])
            for r in conn.execute(
                sa.text('SELECT "Employee_ID", "Worker", "Job_Profile", "Annual_Base_Pay" FROM wd_workers')
            )
        }
    engine.dispose()
    truth = worker_truth(s)
    assert (
        got == {k: (v["Worker"], v["Job_Profile"], v["Annual_Base_Pay"]) for k, v in truth.items()} and len(got) == 201
    )


def test_twenty_percent_faults_still_give_the_exact_report(standin: Any, env: Any) -> None:
    faults = {
        "throttle_share": 0.06,
        "unavailable_share": 0.05,
        "reset_share": 0.04,
        "truncate_share": 0.05,
        "seed": 11,
        "retry_after": 0.01,
    }
    s = standin("workday_raas", "wd", counts={"workers": 300}, faults=faults)
    total_retries = 0
    for h in range(0, 24, 2):  # twelve two-hour windows: twelve report runs, some of them failing first
        a, b = dt.datetime(2026, 1, 1, h, tzinfo=UTC), dt.datetime(2026, 1, 1, h, tzinfo=UTC) + dt.timedelta(hours=2)
        manifest, table = extract(
            workers_spec(incremental=True), "workers", window(a.isoformat()[:16], b.isoformat()[:16]), run_id=f"r{h}"
        )
        assert rows_by(table, "Employee_ID") == worker_truth(s, a, b)
        total_retries += manifest.extra["source_stats"].get("retries", 0)
    assert sum(s.faults.served.values()) >= 2 and total_retries == sum(s.faults.served.values()), s.faults.served


def test_oauth_refresh_token_client_and_a_token_expiring_twice(standin: Any, env: Any) -> None:
    s = standin(
        "workday_raas",
        "wd",
        counts={"workers": 50},
        options={"auth": "oauth"},
        faults={"schedule": {1: "expire", 2: "expire"}},
    )
    manifest, table = extract(workers_spec(), "workers", window(None, None))
    assert rows_by(table, "Employee_ID") == worker_truth(s)
    stats = manifest.extra["source_stats"]
    assert stats["reauthentications"] == 2 and stats["http_401"] == 2 and s.auth.counts["refreshed"] == 3


def test_job_profiles_keep_the_multi_instance_field_as_json(standin: Any, env: Any) -> None:
    s = standin("workday_raas", "wd", counts={"job_profiles": 30})
    _, table = extract(workers_spec("job_profiles"), "job_profiles", window(None, None))
    got = rows_by(table, "Job_Profile_Ref_ID")
    assert {k: json.loads(v["Job_Family_Groups_for_Job_Profile_group"]) for k, v in got.items()} == {
        r["id"]: r["Job_Family_Groups_for_Job_Profile_group"] for r in s.records("job_profiles")
    }
    assert {k: v["Job_Profile"] for k, v in got.items()} == {
        r["id"]: r["Job_Profile"] for r in s.records("job_profiles")
    }


@pytest.mark.parametrize("without_member", [False, True])
def test_an_empty_report_in_either_shape_is_an_empty_extract(standin: Any, env: Any, without_member: bool) -> None:
    standin("workday_raas", "wd", counts={"workers": 100}, options={"empty_without_member": without_member})
    manifest, table = extract(workers_spec(incremental=True), "workers", window("2027-01-01T00:00", "2027-01-02T00:00"))
    assert table.num_rows == 0 and manifest.rows == 0


def test_an_unknown_report_fails_naming_it_and_commits_nothing(standin: Any, env: Any) -> None:
    standin("workday_raas", "wd", counts={"workers": 10})
    spec = workers_spec(endpoint={"path": "/ISU_bulksync/No_Such_Report"})
    with pytest.raises(ApiRequestError, match=r"No_Such_Report.*HTTP 404: Invalid report"):
        extract(spec, "workers", window(None, None))


def test_the_standin_entries_have_the_documented_shape(standin: Any) -> None:
    s = standin("workday_raas", "wd", counts={"job_profiles": 3})
    doc = DOC_EXAMPLES["airbyte_report_2"]["Report_Entry"][0]
    mine = s.render("job_profiles", s.tables["job_profiles"].make(0))
    assert set(mine) == set(doc) - {"PLN_ESI_Job_Profile_Job_Family"}  # a tenant-specific alias of that report
    assert all(isinstance(v, str) for k, v in mine.items() if not k.endswith("_group"))
    assert isinstance(mine["Job_Family_Groups_for_Job_Profile_group"], list)


# -- the public example payloads replayed (tests/fixtures/api_recordings/workday) ------------------


def test_airbyte_fixture_report_through_the_report_object(replay: Any, env: Any) -> None:
    rec = recording("workday/mock_airbyte_report_entry.json")
    s = replay(rec["exchanges"], "wdr")
    cols = [
        {"name": "Job_Profile_Ref_ID", "nullable": False},
        {"name": "Management_Level"},
        {"name": "Job_Family_Groups_for_Job_Profile_group"},
        {"name": "Family_Group", "path": "Job_Family_Groups_for_Job_Profile_group[0].Job_Family_Group_Ref_ID"},
    ]
    spec = api_pipeline(
        api_dataset(
            "r",
            "wdr",
            {
                "preset": "workday_raas",
                "object": "report",
                "endpoint": {"path": "/owner/report"},
                "records": {"columns": cols},
            },
        )
    )
    _, table = extract(spec, "r", window(None, None))
    entries = rec["exchanges"][0]["response"]["body"]["Report_Entry"]
    assert table.to_pylist() == [
        {
            "Job_Profile_Ref_ID": e["Job_Profile_Ref_ID"],
            "Management_Level": e["Management_Level"],
            "Job_Family_Groups_for_Job_Profile_group": orjson.dumps(
                e["Job_Family_Groups_for_Job_Profile_group"]
            ).decode(),
            "Family_Group": e["Job_Family_Groups_for_Job_Profile_group"][0]["Job_Family_Group_Ref_ID"],
        }
        for e in entries
    ]
    assert s.seen[0]["url"] == "/owner/report?format=json"  # the documented URL shape, format=json added by the preset


def test_faros_fixture_with_inferred_columns(replay: Any, env: Any) -> None:
    rec = recording("workday/mock_faros_customreports.json")
    replay([{"response": {"status": 200, "body": rec["body"]}}] * 3, "wdr")
    spec = api_pipeline(
        api_dataset("r", "wdr", {"preset": "workday_raas", "object": "report", "endpoint": {"path": "/o/r"}})
    )
    _, table = extract(spec, "r", window(None, None))
    assert sorted(table.column_names) == ["A", "C", "foo"]
    assert sorted(table.to_pylist(), key=lambda r: r["A"]) == rec["body"]["Report_Entry"]  # text stays text


def test_doc_examples_embedded_in_the_standin_are_the_recorded_ones() -> None:
    rec = recording("workday/mock_airbyte_report_entry.json")["exchanges"][0]["response"]["body"]["Report_Entry"][0]
    assert DOC_EXAMPLES["airbyte_report_2"]["Report_Entry"][0] == rec
    assert DOC_EXAMPLES["faros_customreports"] == recording("workday/mock_faros_customreports.json")["body"]
