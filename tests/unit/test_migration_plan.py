"""Migration Params → slices and targets (no Airflow run; the e2e test runs the DAG)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from bulksync.factory.migration import DAG_ID, build_migration_dag
from bulksync.migration import MigrationParamsError, MigrationRequest, cut, plan, target_for
from bulksync.spec.models import PipelineSpec
from bulksync.staging.partition import Window
from tests.conftest import ROOT
from tests.helpers import pipeline

UTC = dt.UTC
INCREMENTAL = {
    "name": "changes",
    "source": {
        "kind": "sql",
        "conn_id": "c",
        "options": {"table": "t", "incremental": True, "cursor_field": "updated_at", "primary_key": ["id"]},
    },
    "target": {"kind": "postgres", "conn_id": "w", "table": "changes", "mode": "merge", "keys": ["id"]},
}
SNAPSHOT = {
    "name": "accounts",
    "source": {"kind": "sql", "conn_id": "c", "options": {"table": "a"}},
    "target": {"kind": "postgres", "conn_id": "w", "table": "accounts"},
}


def specs() -> list[PipelineSpec]:
    return [pipeline([INCREMENTAL, SNAPSHOT])]


def req(**params: Any) -> MigrationRequest:
    return MigrationRequest.from_params({"pipeline": "acme__test", **params})


def d(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def test_cut_follows_calendar_boundaries() -> None:
    assert cut(d(2025, 1, 15), d(2025, 3, 2), "month") == [
        Window(d(2025, 1, 15), d(2025, 2, 1)),
        Window(d(2025, 2, 1), d(2025, 3, 1)),
        Window(d(2025, 3, 1), d(2025, 3, 2)),
    ]
    assert cut(d(2025, 12, 30), d(2026, 1, 2), "day") == [
        Window(d(2025, 12, 30), d(2025, 12, 31)),
        Window(d(2025, 12, 31), d(2026, 1, 1)),
        Window(d(2026, 1, 1), d(2026, 1, 2)),
    ]
    weeks = cut(d(2025, 1, 1), d(2025, 1, 20), "week")  # 2025-01-01 is a Wednesday
    assert [w.start.day for w in weeks if w.start] == [1, 6, 13]
    assert cut(d(2024, 6, 1), d(2026, 2, 1), "year")[1] == Window(d(2025, 1, 1), d(2026, 1, 1))


def test_plan_slices_incremental_datasets_and_runs_snapshots_whole() -> None:
    slices = plan(specs(), req(from_date="2025-11-15", to_date="2026-01-10", slice="month", load_mode="replace"))
    assert [(s["dataset"], s["start"], s["end"], s["index"], s["of"]) for s in slices] == [
        ("changes", "2025-11-15T00:00:00+00:00", "2025-12-01T00:00:00+00:00", 1, 3),
        ("changes", "2025-12-01T00:00:00+00:00", "2026-01-01T00:00:00+00:00", 2, 3),
        ("changes", "2026-01-01T00:00:00+00:00", "2026-01-10T00:00:00+00:00", 3, 3),
        ("accounts", None, None, 1, 1),
    ]


def test_full_history_covers_before_the_start_date_and_after_today() -> None:
    slices = plan(specs(), req(datasets=["changes"], full_history=True, slice="year"), now=d(2027, 3, 5, 13))
    windows = [(s["start"], s["end"]) for s in slices]
    assert windows == [
        (None, "2026-01-01T00:00:00+00:00"),
        ("2026-01-01T00:00:00+00:00", "2027-01-01T00:00:00+00:00"),
        ("2027-01-01T00:00:00+00:00", "2027-03-05T00:00:00+00:00"),
        ("2027-03-05T00:00:00+00:00", None),
    ]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"pipeline": "acme__nope"}, "Param pipeline='acme__nope' is not a pipeline; choose one of: acme__test"),
        (
            {"datasets": ["changes", "bogus"]},
            "Param datasets names 'bogus', not in pipeline acme__test; it has: changes, accounts",
        ),
        (
            {"from_date": "2026-02-01", "to_date": "2026-01-01"},
            "Param from_date=2026-02-01 is after to_date=2026-01-01",
        ),
        (
            {"from_date": "2026-02-30", "to_date": "2026-03-01"},
            "Param from_date='2026-02-30' is not a date; use YYYY-MM-DD",
        ),
        ({"from_date": None}, "set both from_date and to_date"),
        ({"slice": "hour"}, "Param slice='hour' is not one of day, week, month, year"),
        ({"target_table": "x"}, "Param target_table='x' needs exactly one dataset, but 2 are chosen"),
        ({"datasets": ["changes"], "target_table": "x; drop"}, "Param target_table='x; drop' is not usable"),
        ({"target_suffix": "-new"}, "Param target_suffix='-new' is not usable in a table name"),
        ({"datasets": ["accounts"]}, "Param load_mode='merge' needs keys, but dataset accounts has no target keys"),
    ],
)
def test_bad_params_name_the_param_and_what_to_do(params: dict[str, Any], message: str) -> None:
    base = {"from_date": "2026-01-01", "to_date": "2026-02-01"}
    with pytest.raises(MigrationParamsError) as err:
        plan(specs(), req(**{**base, **params}))
    assert message in str(err.value)
    assert err.value.terminal


def test_targets_take_the_override_and_the_mode() -> None:
    spec = specs()[0]
    changes, accounts = spec.datasets
    merged = target_for(changes, req(target_suffix="_mig"), sliced=True)
    assert (merged.table, merged.mode, merged.keys) == ("changes_mig", "merge", ["id"])
    replaced = target_for(changes, req(load_mode="replace", target_table="hist"), sliced=True)
    assert (replaced.table, replaced.mode, replaced.interval_column) == ("hist", "interval", "updated_at")
    whole = target_for(accounts, req(load_mode="replace"), sliced=False)
    assert (whole.table, whole.mode) == ("accounts", "replace")


def test_the_dag_offers_the_specs_in_its_form() -> None:
    from bulksync.spec.loader import load_specs

    dag = build_migration_dag(ROOT / "dags" / "pipelines")
    assert dag.dag_id == DAG_ID and dag.schedule is None
    p = dag.params
    specs = load_specs(ROOT / "dags" / "pipelines")
    assert p.get_param("pipeline").schema["examples"] == sorted(s.dag_id for s in specs)
    assert "acme__nightly" in p.get_param("pipeline").schema["examples"]
    assert p.get_param("datasets").schema["examples"] == sorted({d.name for s in specs for d in s.datasets})
    assert {"account_changes", "accounts", "orders"} <= set(p.get_param("datasets").schema["examples"])
    assert p.get_param("load_mode").schema["enum"] == ["merge", "replace"]
    assert p["dry_run"] is False and p["full_history"] is False
    assert [t.task_id for t in dag.tasks] == ["check_params", "prepare_targets", "migrate", "summary"]
    assert dag.get_task("check_params").retries == 0
