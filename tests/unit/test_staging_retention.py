"""Staging retention and `bulksync staging prune` (issue 14 item 15): old partitions go; the latest
committed one of each dataset and any a running task uses stay, whatever the policy says."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bulksync.cli import app
from bulksync.spec.loader import parse_spec
from bulksync.staging.retention import plan_prune, prune

NOW = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)
SPEC = {
    "tenant": "t1",
    "pipeline": "p1",
    "start_date": "2026-01-01",
    "staging": {"retention": {"keep_last": 3, "keep_days": 10}},
    "datasets": [
        {
            "name": name,
            "source": {"kind": "sql", "conn_id": "src", "options": {"table": name}},
            "target": {"kind": "sqlite", "conn_id": "wh", "table": name},
        }
        for name in ("orders", "accounts")
    ],
}


def key(day: dt.date) -> str:
    return f"{day:%Y%m%d}T000000Z_{day + dt.timedelta(days=1):%Y%m%d}T000000Z"


def commit(root: Path, dataset: str, interval: str, committed: dt.datetime) -> Path:
    part = root / "t1/p1" / dataset / interval
    (part / "transformed").mkdir(parents=True)
    (part / "part-00000.parquet").write_bytes(b"x" * 1000)
    (part / "_manifest.json").write_text(json.dumps({"rows": 1, "created_at": committed.isoformat()}))
    return part


@pytest.fixture
def staged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("BULKSYNC_STAGING_ROOT", str(tmp_path / "staging"))
    root = tmp_path / "staging"
    for i in range(20):  # 20 nightly partitions, day i committed the night after
        day = dt.date(2026, 2, 9) + dt.timedelta(days=i)
        commit(root, "orders", key(day), dt.datetime.combine(day, dt.time(3), dt.UTC) + dt.timedelta(days=1))
    # accounts: one old full snapshot only, and an extract being written (no manifest)
    commit(root, "accounts", "full", NOW - dt.timedelta(days=90))
    (root / "t1/p1/accounts" / key(dt.date(2026, 2, 28)) / "part-00000.parquet").parent.mkdir(parents=True)
    return root


def spec() -> object:
    return parse_spec(SPEC, "p1.yaml")


def test_policy_keeps_newest_and_recent_removes_the_rest(staged: Path) -> None:
    plan = plan_prune(spec(), now=NOW)  # type: ignore[arg-type]
    removed = sorted(d.interval for d in plan.removed)
    # keep_days 10: committed before 2026-02-19T12:00 goes, i.e. days 2026-02-09 .. 2026-02-18
    assert removed == [key(dt.date(2026, 2, 9) + dt.timedelta(days=i)) for i in range(10)]
    kept = {(d.dataset, d.interval): d.reason for d in plan.kept}
    assert kept[("orders", key(dt.date(2026, 2, 28)))] == "latest committed partition"
    assert kept[("accounts", "full")] == "latest committed partition"  # 90 days old, the only one
    assert kept[("accounts", key(dt.date(2026, 2, 28)))] == "not committed"
    done = prune(plan, spec())  # type: ignore[arg-type]
    assert len(done) == 10
    left = sorted(p.name for p in (staged / "t1/p1/orders").iterdir())
    assert left == [key(dt.date(2026, 2, 19) + dt.timedelta(days=i)) for i in range(10)]
    assert (staged / "t1/p1/accounts/full/_manifest.json").exists()


def test_the_latest_partition_stays_even_with_the_tightest_policy(staged: Path) -> None:
    plan = plan_prune(spec(), now=NOW + dt.timedelta(days=365), keep_last=1, keep_days=0.001)  # type: ignore[arg-type]
    kept = sorted((d.dataset, d.interval) for d in plan.kept)
    assert ("orders", key(dt.date(2026, 2, 28))) in kept and ("accounts", "full") in kept
    assert len(plan.removed) == 19


def test_a_partition_a_running_task_uses_is_kept_until_the_task_is_gone(staged: Path, tmp_path: Path) -> None:
    """A real process holds the in-use mark of a partition (as every stage task does); SIGKILL it."""
    interval = key(dt.date(2026, 2, 10))
    ready = tmp_path / "ready"
    code = (
        "import sys, time, pathlib\n"
        "from bulksync.spec.loader import parse_spec\n"
        "from bulksync.staging.retention import in_use\n"
        f"spec = parse_spec({SPEC!r}, 'p1.yaml')\n"
        f"with in_use(spec, 'orders', {interval!r}, 'scheduled__x'):\n"
        f"    pathlib.Path({str(ready)!r}).write_text('1')\n"
        "    time.sleep(600)\n"
    )
    env = {**os.environ, "BULKSYNC_STAGING_ROOT": str(staged)}
    proc = subprocess.Popen([sys.executable, "-c", code], env=env)
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.1)
        plan = plan_prune(spec(), now=NOW)  # type: ignore[arg-type]
        reason = next(d.reason for d in plan.decisions if d.interval == interval)
        assert reason.startswith("in use by ") and f"pid {proc.pid} run scheduled__x" in reason
        prune(plan, spec())  # type: ignore[arg-type]
        assert (staged / "t1/p1/orders" / interval / "_manifest.json").exists()
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    # the killed task left its mark behind: a dead pid on this host no longer protects the partition
    plan = plan_prune(spec(), now=NOW)  # type: ignore[arg-type]
    assert next(d for d in plan.decisions if d.interval == interval).remove
    prune(plan, spec())  # type: ignore[arg-type]
    assert not (staged / "t1/p1/orders" / interval).exists()


def test_cli_prune_dry_run_then_prune(staged: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import yaml

    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "p1.yaml").write_text(yaml.safe_dump(SPEC))
    monkeypatch.setenv("BULKSYNC_SPECS_DIR", str(tmp_path / "specs"))
    runner = CliRunner()
    before = sorted(p.name for p in (staged / "t1/p1/orders").iterdir())
    res = runner.invoke(app, ["staging", "prune", "--dry-run", "--keep-days", "0.001"], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert "t1__p1: would remove 17 partition(s)" in res.output
    assert sorted(p.name for p in (staged / "t1/p1/orders").iterdir()) == before
    res = runner.invoke(app, ["staging", "prune", "t1__p1", "--keep-days", "0.001"], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert "t1__p1: removed 17 partition(s)" in res.output
    assert len(list((staged / "t1/p1/orders").iterdir())) == 3
    res = runner.invoke(app, ["staging", "prune", "nope"])
    assert res.exit_code == 2 and "no pipeline 'nope'" in res.output


def test_retention_is_validated_in_the_spec() -> None:
    from bulksync.errors import SpecError

    bad = {**SPEC, "staging": {"retention": {"keep_last": 0}}}
    with pytest.raises(SpecError, match=r"staging.retention.keep_last"):
        parse_spec(bad, "p1.yaml")
    assert parse_spec({k: v for k, v in SPEC.items() if k != "staging"}, "p1.yaml").staging.retention.keep_last == 7


def test_the_in_use_mark_leaves_nothing_behind(staged: Path) -> None:
    from bulksync.staging.retention import in_use

    dataset_dir = staged / "t1/p1/orders"
    before = sorted(p.name for p in dataset_dir.iterdir())
    with in_use(spec(), "orders", key(dt.date(2026, 2, 10)), "r1"):  # type: ignore[arg-type]
        assert len(list((dataset_dir / ".in_use").iterdir())) == 1
    assert sorted(p.name for p in dataset_dir.iterdir()) == before
