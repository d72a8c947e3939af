"""Reconciliation and the report with a write-back's refused records (no network)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from bulksync.quality.model import Reconciliation, RunRecord
from bulksync.quality.reconcile import reconcile
from bulksync.staging.manifest import Manifest

EVIL = "<script>alert('owned')</script>"


def manifest(rows: int, **extra: Any) -> Manifest:
    return Manifest(
        tenant="acme", pipeline="p", dataset="d", stage="extract", interval="full", window={}, rows=rows, files=[],
        columns=[], arrow_schema="", created_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC), duration_seconds=0,
        extra=extra,
    )  # fmt: skip


def test_staged_equals_succeeded_plus_failed_plus_unprocessed() -> None:
    report = {"inserted": 60, "updated": 25, "failed": 10, "unprocessed": 5}
    rec = reconcile(manifest(100), None, manifest(100, rows_in=100), report)
    assert (rec.ok, rec.loaded, rec.failed, rec.unprocessed) == (True, 85, 10, 5)
    short = reconcile(manifest(100), None, manifest(100, rows_in=100), {**report, "unprocessed": 4})
    assert not short.ok
    assert short.problems == [
        "staged 100 != loaded 85 + failed 10 + unprocessed 4 + quarantined 0 + rejected by transforms 0"
    ]
    sql = reconcile(manifest(10), None, manifest(10, rows_in=10), {"inserted": 10, "updated": 0})
    assert sql.ok and sql.problems == [] and (sql.failed, sql.unprocessed) == (0, 0)


def test_the_report_shows_the_write_back_errors_by_code_escaped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bulksync.quality.publish import write_run_record
    from bulksync.quality.report import render_pipeline_report

    monkeypatch.setenv("BULKSYNC_REPORTS_ROOT", str(tmp_path))
    record = RunRecord(
        tenant="acme", pipeline="wb", dataset="accounts", run_id="r1", interval="full", window_start=None,
        window_end=None, status="quarantined", inserted=85, failed=10, unprocessed=5, target="salesforce:org/Account",
        finished_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        reconciliation=Reconciliation(source_count=100, staged=100, quarantined=0, rejected=0, loaded=85, failed=10,
                                      unprocessed=5, ok=True),
        writeback={"object": "Account", "operation": "upsert", "jobs": ["750a", "750b"], "succeeded": 85, "failed": 10,
                   "unprocessed": 5, "errors_by_code": [
                       {"code": "FIELD_CUSTOM_VALIDATION_EXCEPTION", "count": 7, "fields": ["Rating"], "sample": EVIL},
                       {"code": "UNPROCESSED", "count": 5, "fields": [], "sample": "never processed"}]},
    )  # fmt: skip
    write_run_record(record)
    page = render_pipeline_report("acme", "wb")
    assert "Write-back · upsert into Account · 85 succeeded, 10 failed, 5 unprocessed · 2 jobs" in page
    assert '<code>FIELD_CUSTOM_VALIDATION_EXCEPTION</code></td><td class="num">7</td><td>Rating</td>' in page
    assert EVIL not in page and "&lt;script&gt;" in page
    assert "Failed in the target" in page and "Unprocessed by the target" in page


def test_values_are_encoded_as_salesforce_expects() -> None:
    import decimal

    import pyarrow as pa

    from bulksync.targets.salesforce.encode import encode
    from bulksync.targets.salesforce.plan import Column, WritePlan

    berlin = dt.timezone(dt.timedelta(hours=1))
    batch = pa.table(
        {
            "key": ["K1", "K2"],
            "when": pa.array(
                [dt.datetime(2026, 1, 1, 10, 0, 0, 123456, tzinfo=berlin), None], pa.timestamp("us", tz="+01:00")
            ),
            "naive": pa.array([dt.datetime(2026, 1, 1, 10, 0), None], pa.timestamp("ms")),
            "day": pa.array([dt.date(2026, 2, 28), None]),
            "amount": pa.array([decimal.Decimal("12.50"), None], pa.decimal128(10, 2)),
            "ratio": [0.1, None],
            "flag": [True, None],
            "text": ['say "hi",\nthen go', None],
            "parent": ["P-1", None],
        }
    )  # fmt: skip
    columns = [Column(n, n, {"name": n, "type": "string"}) for n in batch.column_names if n != "parent"]
    plan = WritePlan(
        "Account", "upsert", "Acme_Id__c", [*columns, Column("Parent.Acme_Id__c", "parent", {}, True)], "key"
    )
    cleared = encode(plan, batch, "clear", header=True).decode()
    assert cleared == (
        '"key","when","naive","day","amount","ratio","flag","text","Parent.Acme_Id__c"\n'
        '"K1","2026-01-01T09:00:00.123Z","2026-01-01T10:00:00.000Z","2026-02-28","12.50","0.1","true",'
        '"say ""hi"",\nthen go","P-1"\n'
        '"K2","#N/A","#N/A","#N/A","#N/A","#N/A","#N/A","#N/A","#N/A"\n'
    )
    ignored = encode(plan, batch, "ignore", header=False).decode()
    assert ignored.splitlines()[-1] == '"K2","","","","","","","",""'
