"""Staging on a full or read-only volume, and folders of killed extracts, with real filesystems.

A 1 MiB tmpfs is a real full disk and a read-only tmpfs a real read-only volume (mounting needs
root, as CI runs; elsewhere the tests skip, or fail when services are required).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sqlite3
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bulksync import stages
from bulksync.errors import StagingError, StagingSpaceError
from bulksync.staging.partition import Window
from bulksync.staging.reader import read_manifest
from bulksync.staging.writer import PartitionWriter
from tests.conftest import service_missing
from tests.helpers import kill_child_at_flag, pipeline
from tests.loadkit import DAY1

ROOT = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def tmpfs(path: Path, options: str) -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True, text=True)
    if done.returncode != 0:
        service_missing(f"cannot mount a tmpfs (needs root): {done.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def source_db(path: Path, rows: int) -> None:
    con = sqlite3.connect(path)
    with con:
        con.execute("CREATE TABLE accounts (id BIGINT, blob TEXT)")
        # random hex does not compress: ~32 bytes of Parquet per row
        con.executemany("INSERT INTO accounts VALUES (?, ?)", ((i, secrets.token_hex(16)) for i in range(rows)))
    con.close()


def spec_for(root: Path) -> Any:
    return pipeline(
        [
            {
                "name": "accounts",
                "source": {
                    "kind": "sql",
                    "conn_id": "test_source",
                    "options": {"table": "accounts", "batch_size": 5000},
                },
                "target": {"kind": "sqlite", "conn_id": "w", "table": "accounts"},
            }
        ],
        staging={"root": str(root)},
    )


def ctx(run_id: str = "r1") -> stages.RunContext:
    return stages.RunContext(run_id=run_id, window=Window(*DAY1))


def leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.rglob(".*") if ".tmp-" in p.name or ".old-" in p.name)


def test_full_staging_volume_is_a_transient_error_naming_dataset_and_path(
    env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    env.setenv("AIRFLOW_CONN_TEST_SOURCE", f"sqlite:///{tmp_path / 'small.db'}")
    source_db(tmp_path / "small.db", 100)
    source_db(tmp_path / "big.db", 120_000)  # ~4 MiB of Parquet
    with tmpfs(tmp_path / "full", "size=1m") as root:
        spec = spec_for(root)
        ds = spec.datasets[0]
        first = stages.extract(spec, ds, ctx())
        env.setenv("AIRFLOW_CONN_TEST_SOURCE", f"sqlite:///{tmp_path / 'big.db'}")
        with pytest.raises(StagingSpaceError) as info:
            stages.extract(spec, ds, ctx("r2"))
        msg = str(info.value)
        assert info.value.terminal is False
        assert "acme/test/accounts" in msg and str(root) in msg and "no space left" in msg and "retry" in msg
        # the committed partition is untouched and nothing of the failed attempt is left
        part = stages.partition_for(spec, ds, Window(*DAY1))
        assert read_manifest(part, "extract").model_dump() == first.model_dump()
        assert leftovers(root) == []


def test_read_only_staging_is_a_terminal_error_naming_dataset_and_path(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env.setenv("AIRFLOW_CONN_TEST_SOURCE", f"sqlite:///{tmp_path / 'small.db'}")
    source_db(tmp_path / "small.db", 100)
    with tmpfs(tmp_path / "ro", "ro,size=1m") as root:
        spec = spec_for(root)
        with pytest.raises(StagingError) as info:
            stages.extract(spec, spec.datasets[0], ctx())
        msg = str(info.value)
        assert info.value.terminal is True
        assert "acme/test/accounts" in msg and str(root) in msg and "not writable" in msg


KILLED_EXTRACT = textwrap.dedent("""
    import sys, time, pathlib
    from bulksync import stages
    from bulksync.staging import writer
    from tests.integration.test_staging_faults import spec_for, ctx
    root, flag = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    original = writer.PartitionWriter.write_batch
    def slow(self, batch):
        original(self, batch)
        flag.write_text("writing")
        time.sleep(60)
    writer.PartitionWriter.write_batch = slow
    spec = spec_for(root)
    stages.extract(spec, spec.datasets[0], ctx())
""")


def test_folders_of_killed_extracts_are_removed_by_the_next_run(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env.setenv("AIRFLOW_CONN_TEST_SOURCE", f"sqlite:///{tmp_path / 'src.db'}")
    source_db(tmp_path / "src.db", 20_000)
    root = tmp_path / "staging"
    flag = tmp_path / "flag"
    script = KILLED_EXTRACT.replace("sys.argv[1]", repr(str(root))).replace("sys.argv[2]", repr(str(flag)))
    kill_child_at_flag(script, flag, ROOT, timeout=60)
    (killed,) = leftovers(root)

    # a writer that is alive keeps its folder while the next run cleans up the dead ones
    spec = spec_for(root)
    ds = spec.datasets[0]
    part = stages.partition_for(spec, ds, Window(*DAY1))
    live = PartitionWriter(part, "extract", __import__("pyarrow").schema([("id", "int64")]), run_id="live")
    manifest = stages.extract(spec, ds, ctx("next"))
    assert manifest.rows == 20_000
    assert leftovers(root) == [live.tmp.name] and killed != live.tmp.name
    live.abort()
    assert leftovers(root) == []
    assert sorted(os.listdir(part.path)) == ["_manifest.json", "part-00000.parquet"]
