"""Waiting for a file drop: the factory's wait task, the sensor's deadline message, the deferrable trigger."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import time
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException

from bulksync.factory.dags import build_dag
from bulksync.operators.file_drop import FileDropSensor, FileDropTrigger
from bulksync.sources.file_drop.wait import DropDeadlineError, check
from bulksync.spec.file_drop import FileDropOptions
from tests.helpers import pipeline

END = dt.datetime(2026, 1, 2, tzinfo=dt.UTC)


def options(landing: Path, **extra: Any) -> dict[str, Any]:
    return {
        "landing": str(landing),
        "pattern": "orders_*.csv",
        "columns": [{"name": "id", "type": "int64"}],
        "arrival": {"mode": "trigger"},
        "wait": {"enabled": True, "deadline_minutes": 90, "poke_interval_seconds": 5},
        **extra,
    }


def dataset(landing: Path, **extra: Any) -> dict[str, Any]:
    return {
        "name": "orders",
        "source": {"kind": "file_drop", "options": options(landing, **extra)},
        "target": {"kind": "postgres", "conn_id": "w", "table": "orders"},
    }


def test_factory_puts_a_wait_task_before_extract(tmp_path: Path) -> None:
    spec = pipeline([dataset(tmp_path)])
    dag = build_dag(spec)
    wait = dag.get_task("orders.wait")
    assert isinstance(wait, FileDropSensor)
    assert wait.mode == "reschedule" and wait.poke_interval == 5
    assert wait.deferrable is False
    assert [t.task_id for t in wait.downstream_list] == ["orders.extract"]
    assert wait.options == spec.model_dump(mode="json")["datasets"][0]["source"]["options"]


def test_no_wait_task_unless_asked(tmp_path: Path) -> None:
    dag = build_dag(pipeline([dataset(tmp_path, wait={"enabled": False})]))
    assert sorted(dag.task_ids) == ["orders.extract", "orders.load", "orders.reconcile", "orders.transform"]


def test_deferrable_mode(tmp_path: Path) -> None:
    dag = build_dag(pipeline([dataset(tmp_path, wait={"enabled": True, "mode": "deferrable"})]))
    assert dag.get_task("orders.wait").deferrable is True


def test_check_waits_for_the_trigger_file_then_is_ready(tmp_path: Path) -> None:
    opts = FileDropOptions.model_validate(options(tmp_path))
    (tmp_path / "orders_1.csv").write_text("id\n1\n")
    result = check(opts, END, now=END - dt.timedelta(hours=1))
    assert not result.ready
    assert result.found.waiting == [("orders_1.csv", "no trigger file orders_1.csv.done yet")]
    (tmp_path / "orders_1.csv.done").write_text("")
    assert check(opts, END, now=END - dt.timedelta(hours=1)).ready


def test_missing_file_fails_at_the_deadline_naming_folder_pattern_and_deadline(tmp_path: Path) -> None:
    opts = FileDropOptions.model_validate(options(tmp_path))
    with pytest.raises(DropDeadlineError) as exc:
        check(opts, END, now=END)
    assert str(exc.value).startswith(
        f"no complete file matching orders_*.csv arrived in {tmp_path} by the deadline 2026-01-02T00:00:00+00:00"
    )


def test_sensor_poke_fails_after_the_deadline(tmp_path: Path) -> None:
    sensor = FileDropSensor(task_id="wait", options=options(tmp_path))
    past = {"data_interval_end": dt.datetime.now(dt.UTC) - dt.timedelta(minutes=91)}
    with pytest.raises(AirflowFailException, match=r"DropDeadlineError: no complete file matching orders_\*\.csv"):
        sensor.poke(past)
    recent = {"data_interval_end": dt.datetime.now(dt.UTC)}
    assert sensor.poke(recent) is False
    (tmp_path / "orders_1.csv").write_text("id\n1\n")
    (tmp_path / "orders_1.done").write_text("")
    assert sensor.poke(recent) is True


def test_stable_size_rule(tmp_path: Path) -> None:
    opts = FileDropOptions.model_validate(options(tmp_path, arrival={"mode": "stable_size", "stable_seconds": 60}))
    f = tmp_path / "orders_1.csv"
    f.write_text("id\n1\n")
    now = dt.datetime.now(dt.UTC)
    later = now + dt.timedelta(hours=1)
    assert not check(opts, later, now=now).ready
    old = time.time() - 120
    os.utime(f, (old, old))
    assert check(opts, later, now=now).ready


def test_trigger_fires_when_ready_and_fails_at_deadline(tmp_path: Path) -> None:
    async def first(trigger: FileDropTrigger) -> dict[str, Any]:
        async for event in trigger.run():
            return dict(event.payload)
        raise AssertionError("no event")

    past = (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)).isoformat()
    failed = asyncio.run(first(FileDropTrigger(options(tmp_path), past, poll_seconds=0.01)))
    assert failed["status"] == "failed" and "by the deadline" in failed["message"]
    (tmp_path / "orders_1.csv").write_text("id\n1\n")
    (tmp_path / "orders_1.csv.ok").write_text("")
    future = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat()
    ready = asyncio.run(first(FileDropTrigger(options(tmp_path), future, poll_seconds=0.01)))
    assert ready == {"status": "ready", "message": f"1 complete file(s) matching orders_*.csv in {tmp_path}"}
    classpath, kwargs = FileDropTrigger(options(tmp_path), future).serialize()
    assert classpath == "bulksync.operators.file_drop.FileDropTrigger" and kwargs["limit"] == future
