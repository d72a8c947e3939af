"""Two runs of one interval on an Azure drop zone (Azurite, real SDK, real child processes): the interval's
lease makes the second wait and replay, so no blob's rows vanish from staging; a staging commit never
replaces a partition another run committed while it was writing (ETag condition on the manifest).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from bulksync.staging.partition import Partition
from bulksync.staging.reader import iter_batches, read_manifest
from bulksync.staging.remote import StagingConflictError
from bulksync.staging.writer import PartitionWriter
from tests.azure_drops import PG_TARGET, blob_drop_spec, blobs, put
from tests.azurite import CONN_ID, Azurite
from tests.file_drop_corpus import csv_text, query
from tests.file_drop_runs import STAGES, reap, result, spawn, wait_flag, wait_log
from tests.helpers import DAY


@pytest.fixture(autouse=True)
def _no_orphans() -> Iterator[None]:
    """Children a failed test left paused are killed, not left waiting."""
    yield
    reap()


@pytest.fixture
def zone(env: pytest.MonkeyPatch, azurite: Azurite, container: str, pg_url: str) -> tuple[Azurite, str, str]:
    return azurite, container, pg_url


def test_two_runs_of_one_interval_at_once_lose_no_blob(zone: tuple[Azurite, str, str], tmp_path: Path) -> None:
    """Before the lease, the later run read blobs the other had just claimed as left over, and its staging
    commit replaced the earlier one: rows of archived, 'loaded' blobs were missing from the target."""
    azurite, container, pg_url = zone
    rows = {f"f{i:02d}.csv": [(i * 100 + j, f"n{i}-{j}", f"{i}.{j:02d}") for j in range(50)] for i in range(10)}
    for name, r in rows.items():
        put(azurite, container, name, csv_text(r))
    spec = blob_drop_spec(container, {**PG_TARGET, "mode": "merge", "keys": ["id"]}, primary_key=["id"])

    flag, go = tmp_path / "flag", tmp_path / "go"
    first = spawn(spec, DAY, "run-0", stages=STAGES, pause={"at": "accept", "nth": 3, "flag": str(flag), "go": str(go)})
    wait_flag(first, flag)  # run-0 claimed every blob into processing/ and is reading them
    second = spawn(spec, DAY, "run-1", stages=STAGES)
    # run-1 starts meanwhile: it waits for the lease (before it, it read run-0's claimed blobs as left over)
    assert wait_log(second, "waiting for interval", "file(s) to read for interval") == "waiting for interval"
    go.write_text("go")
    results = [result(first), result(second)]

    assert [r["ok"] for r in results] == [True, True], [r.get("error") or r["stderr"][-3000:] for r in results]
    assert [r["rows"] for r in results] == [500, 500]  # the second replayed exactly what the first claimed
    want = sorted((i, n, Decimal(a)) for rs in rows.values() for i, n, a in rs)
    assert query(pg_url, "SELECT id, name, amount FROM drops ORDER BY id") == want
    ledger = query(pg_url, "SELECT file_name, status, rows FROM bulksync_audit.files ORDER BY file_name, id")
    assert ledger == [(n, "loaded", 50) for n in sorted(rows)]
    after = blobs(azurite, container)
    day = dt.datetime.now(dt.UTC).date()
    assert sorted(after) == sorted(f"archive/{day:%Y/%m/%d}/{n}" for n in rows)
    props = azurite.service_client().get_blob_client(container, f"drops/archive/{day:%Y/%m/%d}/f00.csv")
    assert props.get_blob_properties().metadata["bulksync_claimed_by"].startswith("run-")


def _partition(container: str) -> Partition:
    return Partition(f"abfs://{container}/staging", "acme", "test", "d", DAY, CONN_ID)


def test_a_staging_commit_never_replaces_what_another_run_committed_meanwhile(azurite: Azurite, container: str) -> None:
    schema = pa.schema([("id", pa.int64())])
    part = _partition(container)
    slow = PartitionWriter(part, "extract", schema, run_id="run-slow")  # starts first, commits last
    slow.write_batch(pa.record_batch([pa.array([1, 2, 3])], schema=schema))
    with PartitionWriter(part, "extract", schema, run_id="run-fast") as fast:
        fast.write_batch(pa.record_batch([pa.array([7, 8])], schema=schema))
        fast.commit(window=DAY.to_json())

    with pytest.raises(StagingConflictError, match=r"was committed by run run-fast \(try None, at .*\) while this"):
        slow.commit(window=DAY.to_json())

    kept = read_manifest(part, "extract")
    assert kept.run_id == "run-fast" and [b.column(0).to_pylist() for b in iter_batches(part, kept)] == [[7, 8]]
    names = [n for n in blobs(azurite, container, prefix="staging") if "/_parts/" in n]
    assert len(names) == 1 and names[0].endswith(kept.files[0].path)  # the refused attempt's parts are gone

    # a new attempt (the retry) started after that commit may replace it
    with PartitionWriter(part, "extract", schema, run_id="run-slow", try_number=2) as retry:
        retry.write_batch(pa.record_batch([pa.array([1, 2, 3])], schema=schema))
        retry.commit(window=DAY.to_json())
    assert read_manifest(part, "extract").run_id == "run-slow"


def test_first_commit_of_a_stage_is_refused_when_another_run_created_it_meanwhile(
    azurite: Azurite, container: str
) -> None:
    schema = pa.schema([("id", pa.int64())])
    part = _partition(container)
    slow = PartitionWriter(part, "transform", schema, run_id="a")
    with PartitionWriter(part, "transform", schema, run_id="b") as fast:
        fast.commit(window=DAY.to_json())
    with pytest.raises(StagingConflictError):
        slow.commit(window=DAY.to_json())
    assert read_manifest(part, "transform").run_id == "b"
