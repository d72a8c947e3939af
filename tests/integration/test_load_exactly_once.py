"""Exactly once under retries, clears, concurrent runs and zombies, with real processes.

Every test compares the whole target table with what the source holds. The load ledger
(:mod:`bulksync.targets.ledger`) and the load locks (:mod:`bulksync.targets.locks`) are what make
these hold; before them a retried ``append`` loaded its rows twice and two ``interval`` loads of
one window at once kept both copies.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from bulksync import stages
from bulksync.spec.loader import load_spec
from bulksync.staging.partition import Window
from tests.loadkit import (
    DAY1,
    DAY2,
    Child,
    in_window,
    source_rows,
    spec_dict,
    target_rows,
    waiting_for_advisory_lock,
    write_source,
    write_spec,
)

N = 1200  # rows in the window: three batches of 500, so a child can pause inside the COPY


@pytest.fixture
def world(request: pytest.FixtureRequest, env: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, Any]:
    """Source database, target database (``request.param``: postgres or sqlite), staging, reports."""
    kind = request.param
    source = tmp_path / "source.db"
    env.setenv("AIRFLOW_CONN_TEST_SOURCE", f"sqlite:///{source}")
    env.setenv("BULKSYNC_REPORTS_ROOT", str(tmp_path / "reports"))
    if kind == "postgres":
        url = request.getfixturevalue("pg_url")
        conn_id = "test_pg"
    else:
        path = request.getfixturevalue("sqlite_conn")
        url, conn_id = f"sqlite:///{path}", "test_sqlite"
    return {"kind": kind, "url": url, "conn_id": conn_id, "source": source, "tmp": tmp_path}


def make_spec(world: dict[str, Any], mode: str) -> Path:
    folder = world["tmp"] / "specs"
    folder.mkdir(exist_ok=True)
    return write_spec(folder, spec_dict(world["kind"], world["conn_id"], mode))


def ctx(window: tuple[dt.datetime, dt.datetime], run_id: str) -> stages.RunContext:
    return stages.RunContext(run_id=run_id, window=Window(*window), try_number=1)


def run_inline(
    spec_path: Path, window: tuple[dt.datetime, dt.datetime], run_id: str, *, load_result: bool = False
) -> dict[str, Any]:
    """Every stage of the dataset in this process; returns the reconcile result (or the load's)."""
    spec = load_spec(spec_path)
    ds = spec.datasets[0]
    c = ctx(window, run_id)
    stages.extract(spec, ds, c)
    stages.transform(spec, ds, c)
    loaded = stages.load(spec, ds, c)
    rec = stages.reconcile(spec, ds, c)
    assert rec["status"] == "success"
    return loaded.to_json() if load_result else rec


def ledger_rows(world: dict[str, Any]) -> list[tuple[Any, ...]]:
    table = "bulksync_audit.loads" if world["kind"] == "postgres" else "bulksync_loads"
    engine = sa.create_engine(world["url"])
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(f"SELECT dataset, interval, mode, inserted, updated FROM {table}").fetchall()
    engine.dispose()
    return sorted(tuple(r) for r in rows)


def expected_table(mode: str, loads: list[list[tuple[Any, ...]]]) -> list[tuple[Any, ...]]:
    """What the table must hold of a window after these loads of it (each one extract's rows): the
    last extract's rows, except for ``merge``, which upserts (keys gone from the source stay)."""
    if mode == "merge":
        by_key: dict[int, tuple[Any, ...]] = {}
        for rows in loads:
            by_key.update({r[0]: r for r in rows})
        return sorted(by_key.values())
    return sorted(loads[-1])


# -- a task retried after its load committed ---------------------------------------------------


@pytest.mark.parametrize(
    ("world", "mode"),
    [("postgres", m) for m in ("append", "merge", "replace", "interval")] + [("sqlite", "append"), ("sqlite", "merge")],
    indirect=["world"],
)
def test_load_retried_after_its_commit_is_a_noop(world: dict[str, Any], mode: str) -> None:
    rows = source_rows(N, 1) + source_rows(40, 2, start_id=5000)
    write_source(world["source"], rows)
    spec_path = make_spec(world, mode)
    spec = load_spec(spec_path)
    ds = spec.datasets[0]
    c = ctx(DAY1, "scheduled__2026-01-01")
    stages.extract(spec, ds, c)
    stages.transform(spec, ds, c)

    # the worker commits the load, then is lost before the task is marked successful
    worker = Child(spec_path, "load,pause_after_commit", DAY1, c.run_id, world["tmp"] / "try1")
    worker.wait_flag("committed")
    worker.kill()
    want = in_window(rows, DAY1)
    assert target_rows(world["url"]) == want
    assert stages.load_report(stages.partition_for(spec, ds, c.window)) is None

    # Airflow retries the task: the ledger says the partition is in the table already
    retry = stages.load(spec, ds, stages.RunContext(run_id=c.run_id, window=c.window, try_number=2))
    assert (retry.already_loaded, retry.noop_reason, retry.inserted + retry.updated) == (True, "already_loaded", N)
    assert target_rows(world["url"]) == want
    rec = stages.reconcile(spec, ds, c)
    assert (rec["status"], rec["staged"], rec["loaded"]) == ("success", N, N)
    assert ledger_rows(world) == [("accounts", Window(*DAY1).key, mode, N, 0)]


# -- a cleared run: every task again, with a new extract of the window --------------------------


@pytest.mark.parametrize(
    ("world", "mode"),
    [(k, m) for k in ("postgres", "sqlite") for m in ("append", "merge", "replace", "interval")],
    indirect=["world"],
)
def test_cleared_run_replaces_what_the_previous_extract_loaded(world: dict[str, Any], mode: str) -> None:
    first = source_rows(N, 1)
    day2 = source_rows(30, 2, start_id=5000)
    write_source(world["source"], first + day2)
    spec_path = make_spec(world, mode)
    if mode != "replace":
        run_inline(spec_path, DAY2, "scheduled__2026-01-02")
    run_inline(spec_path, DAY1, "scheduled__2026-01-01")

    # the source changed meanwhile: rows edited, rows gone, rows new; then the day-1 run is cleared
    second = [(i, n.replace("v1", "v2") if i % 3 == 0 else n, t) for i, n, t in first if i % 10 != 0]
    second += source_rows(25, 1, version="new", start_id=3000)
    write_source(world["source"], second + day2)
    if world["kind"] == "postgres":  # the cleared tasks run in a new process, as on another worker
        cleared = Child(
            spec_path, "extract,transform,load,reconcile", DAY1, "scheduled__2026-01-01", world["tmp"] / "c"
        )
        assert cleared.finish() == 0, cleared.output()
        result = cleared.result()
    else:
        result = run_inline(spec_path, DAY1, "scheduled__2026-01-01", load_result=True)
    assert result["already_loaded"] is False

    loads = [in_window(first, DAY1), in_window(second, DAY1)]
    want = expected_table(mode, loads) if mode == "replace" else sorted(expected_table(mode, loads) + day2)
    assert target_rows(world["url"]) == want
    if mode in ("append", "interval"):
        assert result["deleted"] == len(loads[0]) and result["replaced_load_id"]

    # cleared once more with nothing changed at the source: the table stays as it is
    assert run_inline(spec_path, DAY1, "scheduled__2026-01-01")["status"] == "success"
    assert target_rows(world["url"]) == want


# -- two runs of one interval at once ------------------------------------------------------------


@pytest.mark.parametrize(
    ("world", "mode"),
    [("postgres", "interval"), ("postgres", "merge"), ("sqlite", "interval")],
    indirect=["world"],
)
def test_two_runs_of_one_window_at_once_load_it_once(world: dict[str, Any], mode: str) -> None:
    rows = source_rows(N, 1)
    write_source(world["source"], rows)
    spec_path = make_spec(world, mode)
    if mode == "merge":  # a table to merge into, holding some of the keys already
        run_inline(spec_path, DAY1, "scheduled__2026-01-01")
    tmp = world["tmp"]
    # two workers with their own staging (two extracts of the window), the first held inside its COPY
    first = Child(
        spec_path,
        "extract,transform,load,pause_in_copy",
        DAY1,
        "manual__1",
        tmp / "a",
        BULKSYNC_STAGING_ROOT=str(tmp / "sa"),
    )
    first.wait_flag("in_copy")
    second = Child(
        spec_path, "extract,transform,load", DAY1, "manual__2", tmp / "b", BULKSYNC_STAGING_ROOT=str(tmp / "sb")
    )
    second.wait_flag("loading")
    deadline = time.monotonic() + 20
    if world["kind"] == "postgres":
        while waiting_for_advisory_lock(world["url"]) < 1:
            assert second.proc.poll() is None, second.output()
            assert time.monotonic() < deadline, "the second load never waited for the first"
            time.sleep(0.05)
    else:
        time.sleep(1.5)
    assert second.proc.poll() is None, "the second load did not wait for the first: " + second.output()
    first.go()
    assert first.finish() == 0, first.output()
    assert second.finish() == 0, second.output()
    assert target_rows(world["url"]) == in_window(rows, DAY1)
    if mode != "merge":
        assert second.result()["deleted"] == N and second.result()["replaced_load_id"] == first.result()["load_id"]


# -- a zombie task beside its retry: the same partition loaded by two processes -----------------


@pytest.mark.parametrize(
    ("world", "mode", "zombie"),
    [
        ("postgres", "append", "finishes"),
        ("postgres", "merge", "killed"),
        ("postgres", "interval", "finishes"),
        ("sqlite", "append", "killed"),
    ],
    indirect=["world"],
)
def test_zombie_beside_its_retry_loads_once(world: dict[str, Any], mode: str, zombie: str) -> None:
    rows = source_rows(N, 1)
    write_source(world["source"], rows)
    spec_path = make_spec(world, mode)
    spec = load_spec(spec_path)
    c = ctx(DAY1, "scheduled__2026-01-01")
    stages.extract(spec, spec.datasets[0], c)
    stages.transform(spec, spec.datasets[0], c)
    tmp = world["tmp"]
    old = Child(spec_path, "load,pause_in_copy", DAY1, c.run_id, tmp / "zombie")
    old.wait_flag("in_copy")
    retry = Child(spec_path, "load", DAY1, c.run_id, tmp / "retry")
    retry.wait_flag("loading")
    time.sleep(1.0)
    assert retry.proc.poll() is None, "the retry did not wait for the zombie: " + retry.output()
    if zombie == "killed":
        old.kill()
    else:
        old.go()
        assert old.finish() == 0, old.output()
    assert retry.finish() == 0, retry.output()
    assert target_rows(world["url"]) == in_window(rows, DAY1)
    assert retry.result()["already_loaded"] is (zombie == "finishes")
    rec = stages.reconcile(spec, spec.datasets[0], c)
    assert (rec["status"], rec["loaded"]) == ("success", N)


# -- a failed load is recorded too -------------------------------------------------------------


@pytest.mark.parametrize("world", ["postgres", "sqlite"], indirect=True)
def test_failed_load_gets_an_audit_row_replaced_by_its_successful_retry(world: dict[str, Any]) -> None:
    write_source(world["source"], source_rows(50, 1))
    spec_path = make_spec(world, "append")
    spec = load_spec(spec_path)
    ds = spec.datasets[0]
    c = ctx(DAY1, "scheduled__2026-01-01")
    stages.extract(spec, ds, c)
    stages.transform(spec, ds, c)
    engine = sa.create_engine(world["url"])
    with engine.begin() as conn:  # a table whose 'name' cannot hold text
        conn.exec_driver_sql("CREATE TABLE accounts (id bigint, name date, updated_at timestamp)")
    with pytest.raises(Exception, match="cannot hold the new data"):
        stages.load(spec, ds, c)
    runs = "bulksync_audit.runs" if world["kind"] == "postgres" else "bulksync_runs"
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(f"SELECT run_id, dataset, status, error FROM {runs}").fetchall()
    assert [r[:3] for r in rows] == [("scheduled__2026-01-01", "accounts", "failed")]
    assert "load failed (terminal): TargetSchemaError" in rows[0][3] and "'name' is DATE" in rows[0][3]

    with engine.begin() as conn:  # the engineer fixes the table; the retry loads and reconciles
        conn.exec_driver_sql("DROP TABLE accounts")
    stages.load(spec, ds, c)
    stages.reconcile(spec, ds, c)
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(f"SELECT run_id, status, loaded FROM {runs}").fetchall()
    engine.dispose()
    assert [tuple(r) for r in rows] == [("scheduled__2026-01-01", "success", 50)]
