"""Whole file-drop pipelines into real PostgreSQL: ledger in ``bulksync_audit.files``, retries, reruns, replays,
``bulksync files`` and two concurrent claimers.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing as mp
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bulksync import stages
from bulksync.cli import app
from bulksync.staging.partition import Window
from bulksync.staging.writer import PartitionWriter
from tests.file_drop_corpus import COLUMNS, csv_text, query, write
from tests.helpers import DAY, pipeline

NEXT_DAY = Window(DAY.end, DAY.end + dt.timedelta(days=1))  # type: ignore[operator]


def spec_for(landing: Path, tmp_path: Path, mode: str = "merge") -> Any:
    specs = tmp_path / "specs"
    specs.mkdir(exist_ok=True)
    data = {
        "tenant": "acme",
        "pipeline": "drops",
        "start_date": "2026-01-01",
        "datasets": [
            {
                "name": "orders",
                "source": {
                    "kind": "file_drop",
                    "options": {
                        "landing": str(landing),
                        "pattern": "orders_*.csv",
                        "arrival": {"mode": "trigger"},
                        "columns": COLUMNS,
                        "primary_key": ["id"],
                    },
                },
                "transforms": [{"derive": {"amount_x2": "amount * 2"}}],
                "target": {
                    "kind": "postgres",
                    "conn_id": "test_pg",
                    "table": "orders",
                    "mode": mode,
                    **({"keys": ["id"]} if mode == "merge" else {}),
                },
            }
        ],
    }
    import yaml

    (specs / "acme__drops.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    return pipeline(data["datasets"], pipeline="drops")


def drop(landing: Path, name: str, rows: list[tuple[Any, ...]]) -> None:
    write(landing / name, csv_text(rows))
    write(landing / f"{name}.done", "")


def run_all(spec: Any, window: Window, run_id: str) -> dict[str, Any]:
    ds = spec.datasets[0]
    ctx = stages.RunContext(run_id=run_id, window=window, try_number=1)
    stages.extract(spec, ds, ctx)
    stages.transform(spec, ds, ctx)
    stages.load(spec, ds, ctx)
    return stages.reconcile(spec, ds, ctx)


def table(pg_url: str) -> list[tuple[Any, ...]]:
    return query(pg_url, "SELECT id, name, amount, amount_x2 FROM orders ORDER BY id")


def files(pg_url: str) -> list[tuple[Any, ...]]:
    return query(pg_url, "SELECT file_name, status, interval, rows, reason FROM bulksync_audit.files ORDER BY id")


def expected(*rows: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    return sorted((i, n, Decimal(a), Decimal(a) * 2) for i, n, a in rows)


A = [(1, "Anna", "10.50"), (2, "Bob", "-3.00")]
B = [(3, "Chloé", "0.01")]
C = [(4, "Dan", "4.00")]


@pytest.fixture
def landing(env: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    path = tmp_path / "landing"
    path.mkdir()
    return path


def test_pipeline_into_postgres_with_ledger(landing: Path, tmp_path: Path, pg_url: str) -> None:
    spec = spec_for(landing, tmp_path)
    drop(landing, "orders_a.csv", A)
    drop(landing, "orders_b.csv", B)
    write(landing / "orders_bad.csv", "id,name,amount\nx,y,1\n")
    write(landing / "orders_bad.csv.done", "")

    result = run_all(spec, DAY, "run-1")

    assert result["status"] == "success" and result["staged"] == 3 and result["loaded"] == 3
    assert table(pg_url) == expected(*A, *B)
    assert files(pg_url) == [
        ("orders_a.csv", "loaded", DAY.key, 2, None),
        ("orders_b.csv", "loaded", DAY.key, 1, None),
        ("orders_bad.csv", "quarantined", DAY.key, None, "bad_value"),
    ]
    assert sorted(p.name for p in (landing / "quarantine").iterdir()) == [
        "orders_bad.csv",
        "orders_bad.csv.done",
        "orders_bad.csv.reason.json",
    ]


def test_retry_after_a_crash_before_the_commit_reads_the_claimed_files_again(
    landing: Path, tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = spec_for(landing, tmp_path)
    drop(landing, "orders_a.csv", A)
    real_commit = PartitionWriter.commit

    def crash(self: PartitionWriter, **kwargs: Any) -> Any:
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(PartitionWriter, "commit", crash)
    ctx = stages.RunContext(run_id="run-1", window=DAY, try_number=1)
    with pytest.raises(OSError, match="disk full"):
        stages.extract(spec, spec.datasets[0], ctx)
    # claimed, accepted but not staged: the file waits in processing/ for the retry
    assert files(pg_url) == [("orders_a.csv", "pending", DAY.key, 2, None)]
    assert (landing / f"processing/{DAY.key}/orders_a.csv").exists()
    drop(landing, "orders_b.csv", B)  # arrives before the retry: the retry takes it too

    monkeypatch.setattr(PartitionWriter, "commit", real_commit)
    run_all(spec, DAY, "run-1")

    assert table(pg_url) == expected(*A, *B)
    assert files(pg_url) == [("orders_a.csv", "loaded", DAY.key, 2, None), ("orders_b.csv", "loaded", DAY.key, 1, None)]
    assert not list((landing / "processing").rglob("*.csv"))


def test_rerun_of_a_committed_interval_replays_its_files_and_claims_nothing(
    landing: Path, tmp_path: Path, pg_url: str
) -> None:
    spec = spec_for(landing, tmp_path)
    drop(landing, "orders_a.csv", A)
    run_all(spec, DAY, "run-1")
    drop(landing, "orders_c.csv", C)  # tonight's file arrives while yesterday is rerun

    rerun = run_all(spec, DAY, "run-1-rerun")

    assert rerun["staged"] == 2
    assert table(pg_url) == expected(*A)
    assert (landing / "orders_c.csv").exists()
    run_all(spec, NEXT_DAY, "run-2")
    assert table(pg_url) == expected(*A, *C)
    assert files(pg_url) == [
        ("orders_a.csv", "loaded", DAY.key, 2, None),
        ("orders_c.csv", "loaded", NEXT_DAY.key, 1, None),
    ]


def test_files_list_and_reprocess_force_a_replay(landing: Path, tmp_path: Path, pg_url: str) -> None:
    spec = spec_for(landing, tmp_path, mode="append")
    drop(landing, "orders_a.csv", A)
    run_all(spec, DAY, "run-1")
    runner = CliRunner()
    specs = str(tmp_path / "specs")

    listed = runner.invoke(app, ["files", "list", "acme__drops", "orders", "--specs", specs])
    assert listed.exit_code == 0, listed.output
    assert "orders_a.csv" in listed.output and "loaded" in listed.output and DAY.key in listed.output

    replay = runner.invoke(app, ["files", "reprocess", "acme__drops", "orders", "orders_a.csv", "--specs", specs])
    assert replay.exit_code == 0, replay.output
    assert "orders_a.csv (ledger row 1, was loaded) is back in the landing folder" in " ".join(replay.output.split())
    assert (landing / "orders_a.csv").exists() and (landing / "orders_a.csv.done").exists()

    run_all(spec, NEXT_DAY, "run-2")  # the identical file is loaded again, not skipped as a duplicate
    assert table(pg_url) == sorted(expected(*A) * 2)
    assert files(pg_url) == [
        ("orders_a.csv", "replaced", DAY.key, 2, None),
        ("orders_a.csv", "loaded", NEXT_DAY.key, 2, None),
    ]

    missing = runner.invoke(app, ["files", "reprocess", "acme__drops", "orders", "nope.csv", "--specs", specs])
    assert missing.exit_code == 1 and "no processed, quarantined or duplicate file 'nope.csv'" in missing.output


def _claimer(spec_json: dict[str, Any], window: tuple[str, str], run_id: str, barrier: Any, out: Any) -> None:
    from bulksync.spec.models import PipelineSpec

    spec = PipelineSpec.model_validate(spec_json)
    w = Window(dt.datetime.fromisoformat(window[0]), dt.datetime.fromisoformat(window[1]))
    barrier.wait()
    manifest = stages.extract(spec, spec.datasets[0], stages.RunContext(run_id=run_id, window=w, try_number=1))
    out.put((run_id, manifest.rows, [f["name"] for f in manifest.extra["source_stats"]["files"]]))


def test_two_concurrent_claimers_process_each_file_exactly_once(landing: Path, tmp_path: Path, pg_url: str) -> None:
    spec = spec_for(landing, tmp_path)
    names = [f"orders_{i:03d}.csv" for i in range(40)]
    for i, name in enumerate(names):
        drop(landing, name, [(1000 + 2 * i, f"n{i}", "1.00"), (1001 + 2 * i, f"m{i}", "2.00")])
    ctx = mp.get_context("fork")
    barrier, out = ctx.Barrier(2), ctx.Queue()
    windows = [(DAY.start.isoformat(), DAY.end.isoformat()), (NEXT_DAY.start.isoformat(), NEXT_DAY.end.isoformat())]
    procs = [
        ctx.Process(target=_claimer, args=(spec.model_dump(mode="json"), w, f"run-{i}", barrier, out))
        for i, w in enumerate(windows)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    results = [out.get(timeout=5) for _ in procs]

    read = [n for _, _, got in results for n in got]
    assert sorted(read) == names  # every file read by exactly one of the two runs
    assert sum(rows for _, rows, _ in results) == 80
    ledger = files(pg_url)
    assert sorted(r[0] for r in ledger) == names and {r[1] for r in ledger} == {"staged"}
    assert not [p for p in landing.glob("orders_*.csv")]


def test_crash_between_ledger_update_and_archive_move_is_healed_by_the_retry(
    landing: Path, tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bulksync.sources.file_drop.store import LocalLandingStore

    spec = spec_for(landing, tmp_path)
    drop(landing, "orders_a.csv", A)
    real_move = LocalLandingStore.move

    def crash(self: LocalLandingStore, name: str, dest: str) -> None:
        if dest.startswith("archive/"):
            raise OSError("killed while archiving (simulated)")
        real_move(self, name, dest)

    monkeypatch.setattr(LocalLandingStore, "move", crash)
    with pytest.raises(OSError, match="killed while archiving"):
        stages.extract(spec, spec.datasets[0], stages.RunContext(run_id="run-1", window=DAY, try_number=1))
    assert files(pg_url) == [("orders_a.csv", "staged", DAY.key, 2, None)]  # committed, not moved yet
    assert (landing / f"processing/{DAY.key}/orders_a.csv").exists()

    monkeypatch.setattr(LocalLandingStore, "move", real_move)
    run_all(spec, DAY, "run-1")

    assert table(pg_url) == expected(*A)
    assert files(pg_url) == [("orders_a.csv", "loaded", DAY.key, 2, None)]
    assert list(landing.glob("archive/*/*/*/orders_a.csv")) and not list((landing / "processing").rglob("*"))
