"""Deadline alerts, task-failure alerts, asset outlets and metric counters (in-process, no scheduler).

The webhook is a local HTTP server (a real socket standing in for Slack/Teams). The deadline
callback gets the context the scheduler builds in ``Deadline.handle_miss`` (a ``DAGRunResponse``
dumped as JSON plus the deadline), built here from Airflow's own response model.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from bulksync.factory.assets import asset_uri, dataset_asset
from bulksync.factory.callbacks import _on_task_event, deadline_alert, on_deadline_missed
from bulksync.factory.dags import build_dag
from bulksync.metrics import metric_name, stage_metrics
from tests.helpers import pipeline

DS = {
    "name": "orders",
    "source": {"kind": "sql", "conn_id": "c", "options": {"table": "t"}},
    "target": {"kind": "postgres", "conn_id": "w", "table": "orders"},
}


@pytest.fixture
def hook(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    conn = {
        "conn_type": "http",
        "host": f"http://127.0.0.1:{server.server_address[1]}/x",
        "extra": {"flavor": "generic"},
    }
    monkeypatch.setenv("AIRFLOW_CONN_OPS_HOOK", json.dumps(conn))
    yield received
    server.shutdown()


def test_the_deadline_is_an_airflow_deadline_alert_measured_from_queueing() -> None:
    from airflow.sdk.definitions.deadline import DeadlineReference

    spec = pipeline([DS], alerts={"webhooks": ["ops_hook"], "finish_within_minutes": 90})
    dag = build_dag(spec)
    [alert] = dag.deadline
    assert alert.reference == DeadlineReference.DAGRUN_QUEUED_AT
    assert alert.interval == dt.timedelta(minutes=90)
    assert alert.callback.path == "bulksync.factory.callbacks.on_deadline_missed"
    assert alert.callback.kwargs == {"tenant": "acme", "pipeline": "test", "webhooks": ["ops_hook"], "minutes": 90}
    assert build_dag(pipeline([DS])).deadline is None or build_dag(pipeline([DS])).deadline == []
    assert deadline_alert(pipeline([DS])) is None


def test_a_missed_deadline_posts_a_late_alert(hook: list[dict[str, Any]]) -> None:
    now = dt.datetime(2026, 1, 2, 2, 0, tzinfo=dt.UTC)
    context = {
        "dag_run": {
            "dag_run_id": "scheduled__2026-01-01T02:00:00+00:00",
            "dag_id": "acme__test",
            "state": "running",
            "data_interval_start": "2026-01-01T02:00:00Z",
            "data_interval_end": "2026-01-02T02:00:00Z",
            "queued_at": now.isoformat(),
            "start_date": now.isoformat(),
        },
        "deadline": {"id": "x", "deadline_time": (now + dt.timedelta(minutes=90)).isoformat()},
    }
    on_deadline_missed("acme", "test", ["ops_hook"], 90, context)
    [alert] = hook
    assert alert["event"] == "late"
    assert (alert["tenant"], alert["pipeline"], alert["interval"]) == (
        "acme",
        "test",
        "20260101T020000Z_20260102T020000Z",
    )
    assert alert["run_id"] == "scheduled__2026-01-01T02:00:00+00:00"
    assert alert["summary"] == (
        "run not finished 90 minutes after it was queued (deadline 2026-01-02T03:30:00+00:00); state running"
    )
    assert alert["log_url"].endswith("/dags/acme__test/runs/scheduled__2026-01-01T02:00:00+00:00")


def test_a_broken_deadline_context_never_raises(hook: list[dict[str, Any]]) -> None:
    on_deadline_missed("acme", "test", ["ops_hook"], 5, {"dag_run": {"data_interval_start": "not a date"}})
    assert hook == []


class _Task:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec, self.dataset, self.task_id = spec, "orders", "orders.load"


class _TI:
    task_id, try_number, max_tries, log_url = "orders.load", 2, 3, "http://af/log"


def _context(spec: dict[str, Any], exc: BaseException) -> dict[str, Any]:
    return {
        "task": _Task(spec),
        "ti": _TI(),
        "run_id": "r1",
        "exception": exc,
        "data_interval_start": dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        "data_interval_end": dt.datetime(2026, 1, 2, tzinfo=dt.UTC),
    }


def test_task_events_post_only_what_the_spec_subscribes(hook: list[dict[str, Any]]) -> None:
    spec = pipeline([DS], alerts={"webhooks": ["ops_hook"], "on": ["failed"]}).model_dump(mode="json")
    _on_task_event(_context(spec, RuntimeError("deadlock detected\nDETAIL: process 12")), "retry")
    assert hook == []
    _on_task_event(_context(spec, RuntimeError("deadlock detected\nDETAIL: process 12")), "failed")
    [alert] = hook
    assert alert["summary"] == "load failed: RuntimeError: deadlock detected"
    assert alert["details"] == ["DETAIL: process 12"]
    assert (alert["retries_left"], alert["log_url"], alert["interval"]) == (
        0,
        "http://af/log",
        "20260101T000000Z_20260102T000000Z",
    )


def test_errors_the_stage_already_announced_are_not_posted_twice(hook: list[dict[str, Any]]) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    spec = pipeline([DS], alerts={"webhooks": ["ops_hook"]}).model_dump(mode="json")
    _on_task_event(_context(spec, AirflowFailException("QualityGateError: 3 expectations failed")), "failed")
    assert hook == []


def test_reconcile_tasks_are_the_outlets_of_their_dataset_assets() -> None:
    spec = pipeline([DS, {**DS, "name": "lines", "target": {**DS["target"], "table": "lines"}}])
    dag = build_dag(spec)
    outlets = {t.task_id: [a.uri for a in t.outlets] for t in dag.tasks if t.outlets}
    assert outlets == {
        "orders.reconcile": ["bulksync://acme/test/orders"],
        "lines.reconcile": ["bulksync://acme/test/lines"],
    }
    assert dataset_asset(spec, spec.datasets[0]).uri == asset_uri("acme", "test", "orders")


def test_stage_metrics_take_the_counters_each_stage_reports() -> None:
    class Manifest:
        extra = {"source_stats": {"api_calls": 7}}

    assert stage_metrics("extract", {"rows": 10, "bytes": 2048, "files": 1}, Manifest()) == {
        "rows_extracted": 10,
        "bytes_staged": 2048,
        "api_calls": 7,
    }
    assert stage_metrics("validate", {"rows_quarantined": 3, "rows_checked": 10}) == {"rows_quarantined": 3}
    assert stage_metrics("load", {"rows": 9, "inserted": 9}) == {"rows_loaded": 9}
    assert stage_metrics("transform", {"rows": 9}) == {}
    spec = pipeline([DS])
    assert metric_name(spec, spec.datasets[0], "load.duration") == "bulksync.acme.test.orders.load.duration"


def test_an_empty_interval_says_it_loads_nothing() -> None:
    from bulksync.operators.observe import empty_interval_notice

    ds = pipeline([DS]).datasets[0]
    extract = {"stage": "extract", "interval": "20230701T000000Z_20230702T000000Z", "rows": 0}
    assert empty_interval_notice(ds, "extract", extract) == (
        "orders: no source rows in interval 20230701T000000Z_20230702T000000Z (before the source's first record, "
        "or nothing changed): this interval loads nothing"
    )
    assert empty_interval_notice(ds, "extract", {**extract, "stage": "chunk-00001"}) is None  # one empty chunk
    assert empty_interval_notice(ds, "extract", {**extract, "rows": 3}) is None
    assert "nothing was loaded" in str(empty_interval_notice(ds, "reconcile", {"staged": 0, "loaded": 0}))
