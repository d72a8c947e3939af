"""The quality gate on real staged data: every severity and mode, quarantine, reconciliation, audit.

A CSV drop is extracted by the real source into real staging, validated by Great Expectations,
transformed, loaded into SQLite and reconciled; each test checks what the engineer would see: the
task's error message, the quarantine file's rows, the target's rows and the audit tables.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from bulksync import stages
from bulksync.errors import TerminalError
from bulksync.quality.gate import QualityGateError
from bulksync.spec.loader import parse_spec
from bulksync.staging.reader import read_manifest
from tests.helpers import DAY

CSV = (
    "id,email,status,qty\n"
    "1,ann@example.com,open,5\n"
    "2,bob@example.com,open,50\n"  # qty out of range
    "3,,closed,7\n"  # email null
    "4,dan@example.com,bogus,8\n"  # status not in set
    "5,eve@example.com,open,60\n"  # qty out of range
    "6,fay@example.com,closed,1\n"
)
NOT_NULL_EMAIL = {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "email"}}
QTY_RANGE = {"type": "expect_column_values_to_be_between", "kwargs": {"column": "qty", "min_value": 1, "max_value": 10}}
STATUS_SET = {
    "type": "expect_column_values_to_be_in_set",
    "kwargs": {"column": "status", "value_set": ["open", "closed"]},
}
UNIQUE_STATUS = {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "status"}}


def sev(exp: dict[str, Any], severity: str) -> dict[str, Any]:
    return {**exp, "meta": {"severity": severity}}


@pytest.fixture
def project(env: pytest.MonkeyPatch, tmp_path: Path, sqlite_conn: Path) -> Path:
    (tmp_path / "drops").mkdir()
    (tmp_path / "drops" / "orders.csv").write_text(CSV)
    (tmp_path / "expectations").mkdir()
    env.setenv("BULKSYNC_EXPECTATIONS_DIR", str(tmp_path / "expectations"))
    env.setenv("BULKSYNC_REPORTS_ROOT", str(tmp_path / "reports"))
    return tmp_path


def make_spec(project: Path, expectations: list[dict[str, Any]], on_failure: str, **quality: Any) -> Any:
    (project / "expectations" / "orders.json").write_text(json.dumps({"name": "orders", "expectations": expectations}))
    return parse_spec(
        {
            "tenant": "acme",
            "pipeline": "gate",
            "start_date": "2026-01-01",
            "datasets": [
                {
                    "name": "orders",
                    "source": {
                        "kind": "csv_files",
                        "options": {
                            "path": "drops",
                            "columns": [
                                {"name": "id", "type": "int64"},
                                {"name": "email", "type": "string"},
                                {"name": "status", "type": "string"},
                                {"name": "qty", "type": "int64"},
                            ],
                        },
                    },
                    "quality": {"suite": "orders", "on_failure": on_failure, **quality},
                    "transforms": [{"filter": "id != 6"}],
                    "target": {
                        "kind": "sqlite",
                        "conn_id": "test_sqlite",
                        "table": "orders",
                        "mode": "merge",
                        "keys": ["id"],
                    },
                }
            ],
        },
        "gate.yaml",
    )


def run_all(spec: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    ds = spec.datasets[0]
    ctx = stages.RunContext(run_id="manual__1", window=DAY, try_number=1)
    stages.extract(spec, ds, ctx)
    verdict = stages.validate(spec, ds, ctx)
    stages.transform(spec, ds, ctx)
    stages.load(spec, ds, ctx)
    return verdict, stages.reconcile(spec, ds, ctx)


def target_ids(db: Path) -> list[int]:
    return [r[0] for r in sqlite3.connect(db).execute("SELECT id FROM orders ORDER BY id")]


def audit(db: Path) -> list[tuple[Any, ...]]:
    return (
        sqlite3.connect(db)
        .execute(
            "SELECT dataset, status, quality_status, source_count, staged, quarantined, rejected, loaded, reconciled "
            "FROM bulksync_runs"
        )
        .fetchall()
    )


def test_pass_loads_everything_and_records_the_run(project: Path, sqlite_conn: Path) -> None:
    spec = make_spec(
        project, [sev({**QTY_RANGE, "kwargs": {**QTY_RANGE["kwargs"], "max_value": 100}}, "error")], "fail"
    )
    verdict, rec = run_all(spec)
    assert verdict == {
        "dataset": "orders",
        "status": "pass",
        "rows_checked": 6,
        "rows_quarantined": 0,
        "failed_expectations": 0,
    }
    assert target_ids(sqlite_conn) == [1, 2, 3, 4, 5]
    assert rec["ok"] is True and (rec["staged"], rec["loaded"], rec["quarantined"], rec["rejected"]) == (6, 5, 0, 1)
    assert audit(sqlite_conn) == [("orders", "success", "pass", None, 6, 0, 1, 5, 1)]


def test_error_failure_stops_the_load_with_every_failure_named(project: Path, sqlite_conn: Path) -> None:
    spec = make_spec(
        project,
        [sev(QTY_RANGE, "error"), sev(NOT_NULL_EMAIL, "error"), sev(STATUS_SET, "warn")],
        "fail",
        pii_columns=["email"],
    )
    ds = spec.datasets[0]
    ctx = stages.RunContext(run_id="manual__1", window=DAY, try_number=1)
    stages.extract(spec, ds, ctx)
    with pytest.raises(QualityGateError) as info:
        stages.validate(spec, ds, ctx)
    msg = str(info.value)
    assert "quality gate failed for dataset 'orders' (suite 'orders', on_failure: fail); nothing was loaded" in msg
    assert "[error] expect_column_values_to_be_between on column 'qty': 2 unexpected (33.33%), e.g. [50, 60]" in msg
    assert "[error] expect_column_values_to_not_be_null on column 'email': 1 unexpected (16.67%)" in msg
    assert "[warn] expect_column_values_to_be_in_set on column 'status': 1 unexpected (16.67%), e.g. ['bogus']" in msg
    assert info.value.terminal  # no retries
    with pytest.raises(TerminalError, match="no committed validate output"):
        stages.transform(spec, ds, ctx)
    assert not sqlite_conn.exists() or sqlite3.connect(sqlite_conn).execute(
        "SELECT count(*) FROM sqlite_master WHERE name = 'orders'"
    ).fetchone() == (0,)
    assert audit(sqlite_conn) == [("orders", "failed", "failed", None, None, 0, None, None, None)]
    reports = project / "reports" / "acme" / "gate"
    assert len(list((reports / "gx" / "validations" / "orders" / "manual__1").glob("*/orders-*.json"))) == 1
    assert len(list((reports / "data_docs" / "validations" / "orders" / "manual__1").glob("*/orders-*.html"))) == 1


def test_pii_samples_are_masked(project: Path, sqlite_conn: Path) -> None:
    spec = make_spec(
        project,
        [sev({"type": "expect_column_values_to_match_regex", "kwargs": {"column": "email", "regex": "^a"}}, "error")],
        "fail",
        pii_columns=["email"],
    )
    with pytest.raises(QualityGateError) as info:
        run_all(spec)
    assert "bob@example.com" not in str(info.value) and "'b***'" in str(info.value)


def test_warn_severity_loads_and_flags_the_run(project: Path, sqlite_conn: Path) -> None:
    spec = make_spec(project, [sev(QTY_RANGE, "warn")], "fail")
    verdict, _ = run_all(spec)
    assert verdict["status"] == "warn" and verdict["rows_quarantined"] == 0
    assert target_ids(sqlite_conn) == [1, 2, 3, 4, 5]
    assert audit(sqlite_conn) == [("orders", "warn", "warn", None, 6, 0, 1, 5, 1)]


def test_on_failure_warn_turns_errors_into_warnings(project: Path, sqlite_conn: Path) -> None:
    spec = make_spec(project, [sev(QTY_RANGE, "error")], "warn")
    verdict, _ = run_all(spec)
    assert verdict["status"] == "warn" and target_ids(sqlite_conn) == [1, 2, 3, 4, 5]


def test_quarantine_sets_aside_exactly_the_failing_rows(project: Path, sqlite_conn: Path) -> None:
    spec = make_spec(
        project, [sev(QTY_RANGE, "error"), sev(NOT_NULL_EMAIL, "error"), sev(STATUS_SET, "warn")], "quarantine"
    )
    verdict, rec = run_all(spec)
    assert verdict == {
        "dataset": "orders",
        "status": "quarantined",
        "rows_checked": 6,
        "rows_quarantined": 3,
        "failed_expectations": 3,
    }
    assert target_ids(sqlite_conn) == [1, 4]  # 6 filtered by the transform; 4 only failed a warn expectation
    part = stages.partition_for(spec, spec.datasets[0], DAY)
    q = read_manifest(part, "quarantine")
    rows = pq.read_table(part.stage_path("quarantine") / q.files[0].path).to_pylist()
    assert [(r["id"], r["_bulksync_failed_expectations"]) for r in sorted(rows, key=lambda r: r["id"])] == [
        (2, ["expect_column_values_to_be_between(qty)"]),
        (3, ["expect_column_values_to_not_be_null(email)"]),
        (5, ["expect_column_values_to_be_between(qty)"]),
    ]
    assert rec["ok"] is True
    assert (rec["staged"], rec["loaded"], rec["quarantined"], rec["rejected"]) == (6, 2, 3, 1)
    assert audit(sqlite_conn) == [("orders", "quarantined", "quarantined", None, 6, 3, 1, 2, 1)]


def test_aggregate_failure_cannot_quarantine_and_fails(project: Path, sqlite_conn: Path) -> None:
    spec = make_spec(project, [sev(QTY_RANGE, "error"), sev(UNIQUE_STATUS, "error")], "quarantine")
    with pytest.raises(QualityGateError, match=r"expect_column_values_to_be_unique on column 'status'"):
        run_all(spec)


def test_suite_column_missing_from_data_is_named(project: Path, sqlite_conn: Path) -> None:
    spec = make_spec(
        project,
        [sev({"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "customer_no"}}, "error")],
        "fail",
    )
    with pytest.raises(QualityGateError) as info:
        run_all(spec)
    assert "column 'customer_no' is not in the staged data (columns: ['id', 'email', 'status', 'qty'])" in str(
        info.value
    )


def test_reconciliation_catches_an_injected_mismatch(project: Path, sqlite_conn: Path) -> None:
    spec = make_spec(project, [sev(QTY_RANGE, "warn")], "fail")
    ds = spec.datasets[0]
    ctx = stages.RunContext(run_id="manual__1", window=DAY, try_number=1)
    for stage in (stages.extract, stages.validate, stages.transform, stages.load):
        stage(spec, ds, ctx)
    part = stages.partition_for(spec, ds, DAY)
    report = json.loads((part.path / stages.LOAD_REPORT).read_text())
    (part.path / stages.LOAD_REPORT).write_text(json.dumps({**report, "inserted": report["inserted"] - 1}))
    with pytest.raises(TerminalError) as info:
        stages.reconcile(spec, ds, ctx)
    assert (
        "staged 6 != loaded 4 + quarantined 0 + rejected by transforms 1 (source n/a, staged 6, loaded 4, "
        "quarantined 0, rejected by transforms 1)"
    ) in str(info.value)
    assert audit(sqlite_conn) == [("orders", "failed", "warn", None, 6, 0, 1, 4, 0)]


def test_memory_limit_refuses_with_advice(project: Path, sqlite_conn: Path, env: pytest.MonkeyPatch) -> None:
    env.setenv("BULKSYNC_QUALITY_MAX_BYTES", "10")
    spec = make_spec(project, [sev(QTY_RANGE, "error")], "fail")
    with pytest.raises(
        TerminalError,
        match=r"validating orders needs about .* MiB for columns \['qty'\].*"
        r"BULKSYNC_QUALITY_MAX_BYTES",
    ):
        run_all(spec)
