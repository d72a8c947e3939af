"""Spec → DAG: defaults, timetable, task groups (built in-process, no scheduler)."""

from __future__ import annotations

import datetime as dt

from bulksync.factory.callbacks import on_task_failure, on_task_retry
from bulksync.factory.dags import build_dag, default_args
from tests.helpers import pipeline

DS = {"name": "a", "source": {"kind": "sql", "conn_id": "c", "options": {"table": "t"}},
      "target": {"kind": "postgres", "conn_id": "w", "table": "a"}}


def test_default_args_follow_the_spec() -> None:
    spec = pipeline([DS], owner="ops", tasks={"retries": 5, "retry_delay_minutes": 1, "max_retry_delay_minutes": 9,
                                                "execution_timeout_minutes": 30, "retry_exponential_backoff": False})
    assert default_args(spec) == {
        "owner": "ops", "retries": 5, "retry_delay": dt.timedelta(minutes=1), "retry_exponential_backoff": 0,
        "max_retry_delay": dt.timedelta(minutes=9), "execution_timeout": dt.timedelta(minutes=30),
        "on_failure_callback": on_task_failure, "on_retry_callback": on_task_retry}


def test_dag_shape_and_settings() -> None:
    spec = pipeline([DS, {**DS, "name": "b", "target": {**DS["target"], "table": "b"}}], schedule="@daily",
                    max_active_runs=2, tags=["x"], timezone="Europe/Berlin", catchup=True)
    dag = build_dag(spec)
    assert dag.dag_id == "acme__test"
    assert sorted(dag.task_ids) == ["a.extract", "a.load", "a.reconcile", "a.transform",
                                    "b.extract", "b.load", "b.reconcile", "b.transform"]
    assert dag.max_active_runs == 2 and dag.catchup is True
    assert set(dag.tags) == {"bulksync", "tenant:acme", "x"}
    assert dag.timetable.expression == "0 0 * * *"
    assert dag.start_date == dt.datetime(2025, 12, 31, 23, tzinfo=dt.UTC)  # midnight in Berlin
    assert all(t.retries == 3 for t in dag.tasks)
    assert dag.get_task("a.extract").spec == spec.model_dump(mode="json")


def test_no_schedule_means_triggered_only() -> None:
    dag = build_dag(pipeline([DS], schedule=None))
    assert dag.timetable.__class__.__name__ == "NullTimetable"


CHUNKED = {**DS, "source": {"kind": "sql", "conn_id": "c", "options": {"table": "t", "chunking": {"column": "id"}}}}


def test_chunked_dataset_maps_its_extract_over_the_plan() -> None:
    dag = build_dag(pipeline([CHUNKED]))
    assert sorted(dag.task_ids) == ["a.commit_extract", "a.extract", "a.load", "a.plan_extract", "a.reconcile",
                                    "a.transform"]
    extract = dag.get_task("a.extract")
    assert type(extract).__name__ == "MappedOperator"
    assert dag.get_task("a.plan_extract").downstream_task_ids == {"a.extract"}
    assert extract.downstream_task_ids == {"a.commit_extract"}
    assert dag.get_task("a.commit_extract").downstream_task_ids == {"a.transform"}


def test_unchunked_dataset_keeps_a_single_extract() -> None:
    dag = build_dag(pipeline([DS]))
    assert type(dag.get_task("a.extract")).__name__ == "ExtractOperator"
    assert dag.get_task("a.extract").pool == "default_pool"
