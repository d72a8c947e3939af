"""File drops stay exact under SIGKILL, reruns of full windows, two runs of one interval at once and a zombie
task beside its retry: real child processes (``tests.file_drop_child``), real PostgreSQL (target, ledger and
leases), a local landing folder. Every test compares the whole target table and the whole ledger.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pytest
import sqlalchemy as sa
import yaml
from typer.testing import CliRunner

from bulksync import stages
from bulksync.cli import app
from bulksync.errors import TerminalError
from bulksync.sources.file_drop.lease import LeaseHeldError
from bulksync.staging.partition import Window
from bulksync.staging.reader import iter_batches, read_manifest
from bulksync.staging.writer import PartitionWriter
from tests.file_drop_corpus import query
from tests.file_drop_runs import (
    STAGES,
    drop,
    drop_dataset,
    drop_spec,
    expected,
    kill,
    leases,
    ledger,
    many,
    reap,
    result,
    spawn,
    table,
    wait_flag,
    wait_log,
)
from tests.helpers import DAY

FULL = Window()
A = [(1, "Anna", "10.50"), (2, "Bob", "-3.00")]
B = [(3, "Chloé", "0.01")]
C = [(4, "Dan", "4.00")]


@pytest.fixture(autouse=True)
def _no_orphans() -> Iterator[None]:
    """Children a failed test left paused are killed, not left waiting."""
    yield
    reap()


@pytest.fixture
def landing(env: pytest.MonkeyPatch, tmp_path: Path, pg_url: str) -> Path:
    path = tmp_path / "landing"
    path.mkdir()
    return path


def run_all(spec: Any, window: Window, run_id: str) -> dict[str, Any]:
    ds = spec.datasets[0]
    ctx = stages.RunContext(run_id=run_id, window=window, try_number=1)
    for stage in STAGES[:-1]:
        getattr(stages, stage)(spec, ds, ctx)
    return stages.reconcile(spec, ds, ctx)


def archived(landing: Path) -> list[str]:
    return sorted(p.name for p in landing.glob("archive/*/*/*/orders_*.csv"))


def pause(tmp_path: Path, at: str, nth: int = 1, tag: str = "") -> dict[str, Any]:
    return {"at": at, "nth": nth, "flag": str(tmp_path / f"flag-{at}{tag}"), "go": str(tmp_path / f"go-{at}{tag}")}


# -- 12.1: full windows ---------------------------------------------------------------------------


@pytest.mark.parametrize("kill_at", ["committed", "archive", "reconcile"])
def test_full_window_run_killed_after_its_extract_committed_is_rerun_without_losing_rows(
    landing: Path, tmp_path: Path, pg_url: str, kill_at: str
) -> None:
    """Before the fix the rerun claimed nothing, loaded 0 rows, reconciled and marked every file loaded."""
    spec = drop_spec(str(landing))
    drop(landing, "orders_a.csv", A)
    drop(landing, "orders_b.csv", B)
    p = pause(tmp_path, kill_at)
    child = spawn(spec, FULL, "run-1", stages=STAGES, pause=p)
    wait_flag(child, Path(p["flag"]))
    kill(child)
    assert {r[1] for r in ledger(pg_url)} <= {"pending", "staged"}  # nothing loaded yet
    drop(landing, "orders_c.csv", C)  # tonight's file arrives before the rerun

    rerun = run_all(spec, FULL, "run-2")

    assert rerun["status"] == "success" and rerun["staged"] == 4
    assert table(pg_url) == expected(A + B + C)
    assert [r[:4] for r in ledger(pg_url)] == [
        ("orders_a.csv", "loaded", "full", 2),
        ("orders_b.csv", "loaded", "full", 1),
        ("orders_c.csv", "loaded", "full", 1),
    ]
    assert archived(landing) == ["orders_a.csv", "orders_b.csv", "orders_c.csv"]
    assert not list((landing / "processing").rglob("*.csv")) and leases(pg_url) == []

    # the next full-window run takes only what is new, and reads nothing twice
    drop(landing, "orders_d.csv", [(5, "Eve", "5.00")])
    nxt = run_all(spec, FULL, "run-3")
    assert nxt["staged"] == 1 and table(pg_url) == expected([*A, *B, *C, (5, "Eve", "5.00")])
    assert [r[1] for r in ledger(pg_url)] == ["loaded"] * 4


def test_full_window_resend_of_a_loaded_file_is_a_duplicate(landing: Path, pg_url: str) -> None:
    spec = drop_spec(str(landing), mode="append")
    drop(landing, "orders_a.csv", A)
    run_all(spec, FULL, "run-1")
    drop(landing, "orders_a.csv", A)  # the client sends the same file again

    again = run_all(spec, FULL, "run-2")

    assert again["staged"] == 0 and table(pg_url) == expected(A)  # appended once, not twice
    assert [(*r[:2], r[4]) for r in ledger(pg_url)] == [
        ("orders_a.csv", "loaded", None),
        ("orders_a.csv", "duplicate", "duplicate"),
    ]


def test_reconcile_fails_and_marks_nothing_loaded_when_the_partition_lost_a_staged_file(
    landing: Path, tmp_path: Path, pg_url: str
) -> None:
    """Another run's commit replaced the partition without one file's rows (the loss of issue 18 item 1):
    reconcile compares the ledger's per-file counts with the partition and refuses."""
    spec = drop_spec(str(landing))
    ds = spec.datasets[0]
    drop(landing, "orders_a.csv", A)
    drop(landing, "orders_b.csv", B)
    ctx = stages.RunContext(run_id="run-1", window=DAY, try_number=1)
    stages.extract(spec, ds, ctx)
    part = stages.partition_for(spec, ds, DAY)
    first = read_manifest(part, "extract")
    files = [f for f in first.extra["source_stats"]["files"] if f["name"] == "orders_b.csv"]
    batches = list(iter_batches(part, first))
    with PartitionWriter(part, "extract", first.read_schema(), run_id="run-other") as w:  # the other run's commit
        for batch in batches:
            w.write_batch(batch.filter(pc.equal(batch.column("id"), 3)))
        w.commit(window=DAY.to_json(), extra={"source_stats": {"files": files}})
    stages.transform(spec, ds, ctx)
    stages.load(spec, ds, ctx)

    with pytest.raises(
        TerminalError,
        match=r"orders_a.csv \(2 rows, ledger row \d+, staged by run run-1\) is not in the partition "
        r"\(written by run run-other\)",
    ):
        stages.reconcile(spec, ds, ctx)
    assert [r[:2] for r in ledger(pg_url)] == [("orders_a.csv", "staged"), ("orders_b.csv", "staged")]
    runs = query(pg_url, "SELECT status FROM bulksync_audit.runs")
    assert runs == [("failed",)]

    rerun = run_all(spec, DAY, "run-2")  # the rerun replays both files from the archive
    assert rerun["staged"] == 3 and table(pg_url) == expected(A + B)
    assert [r[:2] for r in ledger(pg_url)] == [("orders_a.csv", "loaded"), ("orders_b.csv", "loaded")]


# -- 12.4: two runs of one interval -----------------------------------------------------------------


def test_two_runs_of_one_interval_at_once_in_two_processes(landing: Path, tmp_path: Path, pg_url: str) -> None:
    """The scheduled run is reading its claimed files when a manual rerun of the interval starts: the rerun
    waits for the lease, then replays exactly those files. Before the lease, the rerun read the other run's
    claimed files as left over by an earlier try; the two moved them under each other."""
    spec = drop_spec(str(landing))
    rows = many(landing, 20)
    p = pause(tmp_path, "accept", 3)
    first = spawn(spec, DAY, "scheduled", stages=STAGES, pause=p)
    wait_flag(first, Path(p["flag"]))
    second = spawn(spec, DAY, "manual", stages=STAGES)
    assert wait_log(second, "waiting for interval", "file(s) to read for interval") == "waiting for interval"
    Path(p["go"]).write_text("go")
    results = [result(first), result(second)]

    assert [r["ok"] for r in results] == [True, True], [r.get("error") or r["stderr"][-2000:] for r in results]
    assert [r["rows"] for r in results] == [60, 60]  # the second replayed exactly what the first claimed
    assert table(pg_url) == expected(rows)
    got = ledger(pg_url)
    assert [(r[0], r[1], r[3], r[4]) for r in got] == [(f"orders_{i:03d}.csv", "loaded", 3, None) for i in range(20)]
    assert all((landing / r[5]).is_file() for r in got)  # every archive path in the ledger exists
    assert archived(landing) == [f"orders_{i:03d}.csv" for i in range(20)]
    assert not list(landing.glob("quarantine/*")) and not list(landing.glob("processing/**/*.csv"))
    assert leases(pg_url) == []


@pytest.mark.parametrize(("kill_at", "nth"), [("claim", 7), ("committed", 1), ("archive", 5)])
def test_holder_killed_at_any_point_its_retry_takes_over_at_once(
    landing: Path, tmp_path: Path, pg_url: str, kill_at: str, nth: int
) -> None:
    """SIGKILL while holding the lease; the retry starts at once (beside a run of the next interval) and, the
    holder's process being gone on this host, takes the lease over without waiting for its expiry."""
    spec = drop_spec(str(landing), lease={"expire_seconds": 600, "wait_seconds": 60})
    rows = many(landing, 12)
    p = pause(tmp_path, kill_at, nth)
    first = spawn(spec, DAY, "run-1", pause=p)
    wait_flag(first, Path(p["flag"]))
    kill(first)
    started = time.monotonic()

    retry = result(spawn(spec, DAY, "run-1", try_number=2, stages=STAGES))

    assert retry["ok"], retry.get("error") or retry["stderr"][-3000:]
    assert time.monotonic() - started < 60  # not the 600 s expiry
    assert "took over the file-drop lease" in retry["stderr"]
    assert table(pg_url) == expected(rows)
    assert [r[:4] for r in ledger(pg_url)] == [(f"orders_{i:03d}.csv", "loaded", DAY.key, 3) for i in range(12)]
    assert archived(landing) == [f"orders_{i:03d}.csv" for i in range(12)]
    assert not list(landing.glob("quarantine/*")) and leases(pg_url) == []


def test_zombie_beside_its_retry_the_retry_waits_and_both_end_exact(landing: Path, tmp_path: Path, pg_url: str) -> None:
    """Try 1 is still alive (a zombie to Airflow) in the middle of claiming when try 2 starts."""
    spec = drop_spec(str(landing), lease={"expire_seconds": 3, "wait_seconds": 120})
    rows = many(landing, 10)
    p = pause(tmp_path, "claim", 4)
    zombie = spawn(spec, DAY, "run-1", stages=STAGES, pause=p)
    wait_flag(zombie, Path(p["flag"]))
    retry = spawn(spec, DAY, "run-1", try_number=2, stages=STAGES)
    time.sleep(8)  # longer than the lease's expiry: the zombie's heartbeat keeps it
    assert retry.poll() is None  # still waiting
    assert leases(pg_url) == [(DAY.key, "run-1")]
    assert sorted(q.name for q in (landing / "processing" / DAY.key).glob("*.csv")) == [
        f"orders_{i:03d}.csv" for i in range(4)
    ]  # only the zombie's claims
    Path(p["go"]).write_text("go")

    results = [result(zombie), result(retry)]

    assert [r["ok"] for r in results] == [True, True], [r.get("error") or r["stderr"][-2000:] for r in results]
    assert [r["rows"] for r in results] == [30, 30]
    assert table(pg_url) == expected(rows)
    assert [r[:4] for r in ledger(pg_url)] == [(f"orders_{i:03d}.csv", "loaded", DAY.key, 3) for i in range(10)]
    assert archived(landing) == [f"orders_{i:03d}.csv" for i in range(10)]


def test_second_run_refuses_after_waiting_naming_the_holder(landing: Path, tmp_path: Path, pg_url: str) -> None:
    spec = drop_spec(str(landing), lease={"wait_seconds": 1})
    many(landing, 3)
    p = pause(tmp_path, "lease")
    holder = spawn(spec, DAY, "run-1", pause=p)
    wait_flag(holder, Path(p["flag"]))
    try:
        with pytest.raises(LeaseHeldError) as info:
            stages.extract(spec, spec.datasets[0], stages.RunContext(run_id="run-2", window=DAY, try_number=1))
        message = str(info.value)
        assert f"another run is extracting interval {DAY.key} of acme/drops/orders from {landing}" in message
        assert "run run-1 on host" in message and f"process {holder.pid}" in message
        assert "waited 1s (options.lease.wait_seconds) and stops without touching any file" in message
        assert sorted(q.name for q in landing.glob("orders_*.csv")) == [f"orders_{i:03d}.csv" for i in range(3)]
        # the engineer on call sees who holds the interval
        specs = tmp_path / "specs"
        specs.mkdir()
        data = {"tenant": "acme", "pipeline": "drops", "start_date": "2026-01-01"}
        data["datasets"] = [drop_dataset(str(landing), lease={"wait_seconds": 1})]
        (specs / "acme__drops.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
        listed = CliRunner().invoke(app, ["files", "list", "acme__drops", "orders", "--specs", str(specs)])
        assert listed.exit_code == 0, listed.output
        text = " ".join(listed.output.split())
        assert f"interval {DAY.key} is being extracted: lease held by run run-1 on host" in text
        assert f"process {holder.pid}" in text
    finally:
        Path(p["go"]).write_text("go")
    assert result(holder)["ok"]


def test_lease_of_a_dead_run_on_another_host_is_taken_once_it_expires(landing: Path, pg_url: str) -> None:
    spec = drop_spec(str(landing), lease={"wait_seconds": 30})
    run_all(spec, Window(DAY.start - dt.timedelta(days=1), DAY.start), "warm-up")  # type: ignore[operator]
    rows = many(landing, 2)
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=3)
    engine = sa.create_engine(pg_url)
    with engine.begin() as conn:  # a worker on another host took the lease and died
        conn.execute(
            sa.text(
                "INSERT INTO bulksync_audit.file_leases (tenant, pipeline, dataset, interval, token, run_id, host, "
                "pid, acquired_at, expires_at) VALUES ('acme', 'drops', 'orders', :i, 'x', 'run-0', 'worker-9', 1, "
                "now(), :e)"
            ),
            {"i": DAY.key, "e": soon},
        )
    engine.dispose()
    started = time.monotonic()
    out = run_all(spec, DAY, "run-1")
    assert time.monotonic() - started >= 2  # waited for the expiry
    assert out["staged"] == 6 and table(pg_url) == expected(rows)
    assert leases(pg_url) == []


def test_a_holder_frozen_past_its_expiry_loses_the_lease_and_changes_nothing(
    landing: Path, tmp_path: Path, pg_url: str
) -> None:
    """SIGSTOP the holder (no heartbeat) past its expiry; another run takes the interval over and finishes;
    SIGCONT: the old holder's next ledger write is fenced off (LeaseLostError), the ledger stays exact."""
    import os
    import signal

    spec = drop_spec(str(landing), lease={"expire_seconds": 2, "wait_seconds": 60})
    rows = many(landing, 6)
    p = pause(tmp_path, "accept", 2)
    frozen = spawn(spec, DAY, "run-1", pause=p)
    wait_flag(frozen, Path(p["flag"]))
    os.kill(frozen.pid, signal.SIGSTOP)
    try:
        other = result(spawn(spec, DAY, "run-2", stages=STAGES))
        assert other["ok"], other.get("error") or other["stderr"][-3000:]
        assert "its lease expired" in other["stderr"]
    finally:
        Path(p["go"]).write_text("go")
        os.kill(frozen.pid, signal.SIGCONT)
    old = result(frozen)

    assert not old["ok"] and old["error"].startswith("LeaseLostError: this run (run-1) lost the file-drop lease")
    assert table(pg_url) == expected(rows)
    assert [r[:4] for r in ledger(pg_url)] == [(f"orders_{i:03d}.csv", "loaded", DAY.key, 3) for i in range(6)]
    assert archived(landing) == [f"orders_{i:03d}.csv" for i in range(6)]
    assert not list(landing.glob("quarantine/*")) and not list(landing.glob("orders_*"))


MIGRATION_CHILD = """
import json, sys, pathlib, time
from bulksync import migration, stages
from bulksync.spec.models import PipelineSpec
from bulksync.sources.file_drop.source import FileDropSource

args = json.loads(sys.argv[1])
spec = PipelineSpec.model_validate(args["spec"])
flag = pathlib.Path(args["flag"])
real = FileDropSource.committed

def committed(self, manifest):
    real(self, manifest)
    flag.write_text("extract committed")
    time.sleep(120)

FileDropSource.committed = committed
req = migration.MigrationRequest(pipeline=spec.dag_id, full_history=True, load_mode="merge")
piece = migration.plan([spec], req)[0]
migration.run_slice([spec], req, piece, "migration-1", 1)
"""


def test_migration_full_history_of_a_file_drop_killed_after_its_extract_loses_nothing(
    landing: Path, tmp_path: Path, pg_url: str
) -> None:
    """The migration DAG migrates a file drop in one full slice; its first run is SIGKILLed after the extract
    committed, a second migration run (a new run id, its own staging root) must still load every file."""
    import json
    import os
    import subprocess
    import sys

    from bulksync import migration
    from tests.file_drop_runs import ROOT, wait_flag

    spec = drop_spec(str(landing))
    drop(landing, "orders_a.csv", A)
    drop(landing, "orders_b.csv", B)
    flag = tmp_path / "flag"
    args = json.dumps({"spec": spec.model_dump(mode="json"), "flag": str(flag)})
    log = tmp_path / "migration-1.log"
    with log.open("w") as out:
        child = subprocess.Popen(
            [sys.executable, "-c", MIGRATION_CHILD, args],
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    child.log_path = str(log)  # type: ignore[attr-defined]
    wait_flag(child, flag)  # type: ignore[arg-type]
    kill(child)  # type: ignore[arg-type]
    assert [r[:3] for r in ledger(pg_url)] == [("orders_a.csv", "staged", "full"), ("orders_b.csv", "staged", "full")]

    req = migration.MigrationRequest(pipeline=spec.dag_id, full_history=True, load_mode="merge")
    pieces = migration.plan([spec], req)
    assert len(pieces) == 1 and pieces[0]["start"] is None and pieces[0]["end"] is None
    out = migration.run_slice([spec], req, pieces[0], "migration-2", 1)

    assert out["extracted"] == 3 and table(pg_url) == expected(A + B)
    assert [r[:3] for r in ledger(pg_url)] == [("orders_a.csv", "loaded", "full"), ("orders_b.csv", "loaded", "full")]


def test_reprocess_refuses_while_an_extract_holds_the_interval(landing: Path, pg_url: str) -> None:
    from bulksync.sources.file_drop.replay import reprocess

    spec = drop_spec(str(landing), lease={"wait_seconds": 0.5})
    drop(landing, "orders_a.csv", A)
    run_all(spec, DAY, "run-1")
    engine = sa.create_engine(pg_url)
    with engine.begin() as conn:  # a live extract of that interval on another worker
        conn.execute(
            sa.text(
                "INSERT INTO bulksync_audit.file_leases (tenant, pipeline, dataset, interval, token, run_id, host, "
                "pid, acquired_at, expires_at) VALUES ('acme', 'drops', 'orders', :i, 'x', 'run-2', 'worker-9', 1, "
                "now(), now() + interval '1 hour')"
            ),
            {"i": DAY.key},
        )
    engine.dispose()
    with pytest.raises(
        LeaseHeldError, match=f"another run is extracting interval {DAY.key} .*: run run-2 on host worker-9"
    ):
        reprocess(spec, spec.datasets[0], "orders_a.csv")
    assert [r[:2] for r in ledger(pg_url)] == [("orders_a.csv", "loaded")] and not (landing / "orders_a.csv").exists()


def test_full_window_file_loaded_but_left_in_processing_is_archived_not_read_again(
    landing: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The extract died between marking its files staged and moving them, and the later stages ran anyway
    (the task marked success by hand): the next full-window run archives the loaded file, never rereads it."""
    from bulksync.sources.file_drop.store import LocalLandingStore

    spec = drop_spec(str(landing), mode="append")
    ds = spec.datasets[0]
    drop(landing, "orders_a.csv", A)
    real_move = LocalLandingStore.move

    def crash(self: LocalLandingStore, name: str, dest: str) -> None:
        if dest.startswith("archive/"):
            raise OSError("killed while archiving (simulated)")
        real_move(self, name, dest)

    monkeypatch.setattr(LocalLandingStore, "move", crash)
    ctx = stages.RunContext(run_id="run-1", window=FULL, try_number=1)
    with pytest.raises(OSError, match="killed while archiving"):
        stages.extract(spec, ds, ctx)
    monkeypatch.setattr(LocalLandingStore, "move", real_move)
    for stage in ("transform", "load", "reconcile"):
        getattr(stages, stage)(spec, ds, ctx)
    assert [r[:2] for r in ledger(pg_url)] == [("orders_a.csv", "loaded")]
    assert (landing / "processing" / "full" / "orders_a.csv").is_file()
    drop(landing, "orders_c.csv", C)

    out = run_all(spec, FULL, "run-2")

    assert out["staged"] == 1 and table(pg_url) == expected(A + C)  # A appended once
    got = ledger(pg_url)
    assert [r[:2] for r in got] == [("orders_a.csv", "loaded"), ("orders_c.csv", "loaded")]
    assert all((landing / r[5]).is_file() and r[5].startswith("archive/") for r in got)
    assert not list((landing / "processing").rglob("*.csv"))
