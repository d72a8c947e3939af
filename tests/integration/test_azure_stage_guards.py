"""Guards of the stages on Azure (Azurite, the real Azure SDK; real child processes where two loads race):

* the quality gate (``validate``) reading staging on ``abfs://`` with a refused key gives the same
  :class:`StorageAccessError` as every other stage, naming account, container and connection, never the key —
  also when the key is refused while it streams a staged part (before: a raw ``HttpResponseError``);
* reconcile of an Azure drop zone compares the ledger's per-file counts with the partition: a file whose rows
  are missing from staging is named and no file becomes ``loaded``; the rerun replays it from the archive;
* the lake's per-interval lock (a blob lease) across processes: a second load of an interval waits while a live
  process holds it — also one that has just taken the lease — writes nothing meanwhile, then either proceeds
  after the release or stops with ``StorageLockHeldError`` after its wait; the lake ends exact, row for row.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import traceback
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from bulksync import stages
from bulksync.errors import StagingError, StorageAccessError, TerminalError
from bulksync.staging.reader import iter_batches, read_manifest
from bulksync.staging.writer import PartitionWriter
from bulksync.storage.hive import committed_partitions
from bulksync.storage.location import open_location
from bulksync.targets.registry import make_target
from tests.azure_drops import PG_TARGET, blob_drop_spec, blobs, put
from tests.azurite import ACCOUNT_KEY, CONN_ID, Azurite
from tests.file_drop_corpus import csv_text, query
from tests.file_drop_runs import ledger, output, result, wait_flag, wait_log
from tests.helpers import DAY, batches
from tests.integration.test_azure_lake import SCHEMA, expected, lake, lake_rows, orders
from tests.integration.test_azure_lake_commit import plain_reader_rows
from tests.integration.test_azure_staging import ROWS, ctx, gated_spec
from tests.integration.test_azure_staging import orders as source_orders
from tests.integration.test_azure_storage_errors import WRONG, refused

ROOT = Path(__file__).resolve().parents[2]
__all__ = ["source_orders"]  # the fixture
_CHILDREN: list[subprocess.Popen[str]] = []


@pytest.fixture(autouse=True)
def _no_orphans() -> Iterator[None]:
    """Children a failed test left paused are killed, not left waiting."""
    yield
    while _CHILDREN:
        proc = _CHILDREN.pop()
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


def assert_no_secret(*texts: str) -> None:
    """Neither the refused key nor the account's key, nor a recognisable piece of either, is in any text."""
    for text in texts:
        for secret in (WRONG, ACCOUNT_KEY):
            assert secret not in text and secret[:16] not in text and secret[-20:] not in text


def exception_text(exc: BaseException) -> str:
    """Everything an exception shows: message, repr, and the whole formatted chain."""
    return "\n".join([str(exc), repr(exc), *traceback.format_exception(exc)])


# -- 1. the quality gate with a refused key ---------------------------------------------------------------------


@pytest.fixture
def gated(source_orders: str, azurite: Azurite, container: str, tmp_path: Path, env: pytest.MonkeyPatch) -> Any:
    """A spec with a quality gate, staged on Azure, whose extract committed with the right key."""
    spec = gated_spec(container, tmp_path, env)
    assert stages.extract_all(spec, spec.datasets[0], ctx("run-1")).rows == ROWS
    return spec


def assert_not_validated(spec: Any) -> None:
    """The gate committed nothing: no ``validated/`` manifest (the load cannot run on unchecked rows)."""
    with pytest.raises(StagingError, match="no committed validate output"):
        read_manifest(stages.partition_for(spec, spec.datasets[0], DAY), "validate")


def test_validate_with_a_refused_key_names_the_connection_never_the_key(
    gated: Any, azurite: Azurite, container: str, env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The key was rotated after the extract: the gate fails in this process (whose check of the container
    passed already, as in ``bulksync run``) and in a process of its own (as an Airflow task)."""
    from tests.file_drop_runs import spawn

    caplog.set_level(logging.DEBUG, logger="bulksync")
    env.setenv("AIRFLOW_CONN_AZURITE", azurite.key_conn(WRONG))
    with pytest.raises(StorageAccessError) as info:
        stages.validate(gated, gated.datasets[0], ctx("run-1"))
    assert str(info.value).startswith(refused(container)), str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__
    assert_no_secret(exception_text(info.value), caplog.text)

    out = result(spawn(gated, DAY, "run-1", stages=["validate"]))
    assert not out["ok"]
    assert out["error"].startswith(f"StorageAccessError: {refused(container)}"), out["error"]
    assert "HttpResponseError" not in out["stderr"]
    assert_no_secret(out["error"], out["stderr"])

    env.setenv("AIRFLOW_CONN_AZURITE", azurite.airflow_conn())
    assert_not_validated(gated)


@pytest.mark.parametrize("stage", ["validate", "load"])
def test_a_key_refused_while_a_stage_streams_a_staged_part_names_the_connection(
    gated: Any,
    pg_url: str,
    azurite: Azurite,
    container: str,
    env: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    stage: str,
) -> None:
    """The manifest was read and each part's size checked with a good key; the account then refuses it (a SAS
    that expired, a key rotated) while the part's rows are read. Before, the gate and the load let the SDK's raw
    ``HttpResponseError`` (with the whole XML reply) through. The refusal is the service's own 403 (Azurite)."""
    from adlfs.spec import AzureBlobFile
    from azure.storage.blob import BlobServiceClient

    ds = gated.datasets[0]
    if stage == "load":
        stages.validate(gated, ds, ctx("run-1"))
        stages.transform(gated, ds, ctx("run-1"))
    revoked = BlobServiceClient(
        azurite.blob_endpoint, credential={"account_name": azurite.account, "account_key": WRONG}
    )
    real_fetch = AzureBlobFile._fetch_range
    fetched: dict[int, int] = {}

    def fetch(self: Any, start: int, end: int | None = None, **kwargs: Any) -> Any:
        n = fetched[id(self)] = fetched.get(id(self), 0) + 1
        if "/_parts/" in self.path and n > 1:  # the footer was read: the rows are refused
            blob = revoked.get_blob_client(container, self.path.split("/", 1)[1])
            blob.download_blob(offset=start, length=(end or self.size) - start).readall()  # raises the 403
            raise AssertionError("Azurite accepted a wrong key")
        return real_fetch(self, start, end, **kwargs)

    env.setattr(AzureBlobFile, "_fetch_range", fetch)
    caplog.set_level(logging.DEBUG, logger="bulksync")
    with pytest.raises(StorageAccessError) as info:
        getattr(stages, stage)(gated, ds, ctx("run-1"))
    assert str(info.value).startswith(refused(container)), exception_text(info.value)[-3000:]
    assert info.value.__cause__ is None and info.value.__suppress_context__
    assert "HttpResponseError" not in exception_text(info.value)
    assert any(n > 1 for n in fetched.values())  # it did get as far as the rows
    assert_no_secret(exception_text(info.value), caplog.text)
    env.setattr(AzureBlobFile, "_fetch_range", real_fetch)
    if stage == "validate":
        assert_not_validated(gated)
    else:
        assert stages.load_report(stages.partition_for(gated, ds, DAY)) is None  # no load reported done
        assert query(pg_url, "SELECT to_regclass('orders_copy')") == [(None,)]  # nothing was loaded


# -- 2. reconcile's per-file check on an Azure drop zone -------------------------------------------------------

A = [(1, "Anna", "10.50"), (2, "Bob", "-3.00")]
B = [(3, "Chloé", "0.01")]


@pytest.fixture
def zone(env: pytest.MonkeyPatch, azurite: Azurite, container: str, pg_url: str) -> tuple[Any, str]:
    """A drop zone on the container into PostgreSQL, staged in the same container; two files dropped."""
    env.setenv("BULKSYNC_STAGING_ROOT", f"abfs://{container}/staging")
    env.setenv("BULKSYNC_STAGING_CONN_ID", CONN_ID)
    for name, rows in (("orders_a.csv", A), ("orders_b.csv", B)):
        put(azurite, container, name, csv_text(rows))
        put(azurite, container, f"{name}.done", "")
    spec = blob_drop_spec(
        container, {**PG_TARGET, "mode": "merge", "keys": ["id"]}, pattern="orders_*.csv", arrival={"mode": "trigger"}
    )
    return spec, pg_url


def run(spec: Any, run_id: str, *names: str) -> Any:
    out = None
    for name in names:
        out = getattr(stages, name)(spec, spec.datasets[0], ctx(run_id))
    return out


def target_rows(pg_url: str) -> list[tuple[Any, ...]]:
    return query(pg_url, "SELECT id, name, amount FROM drops ORDER BY id")


@pytest.mark.parametrize("how", ["file_left_out", "rows_cut_short", "rows_dropped"])
def test_reconcile_names_a_file_whose_rows_are_missing_from_azure_staging(
    zone: tuple[Any, str], azurite: Azurite, container: str, how: str
) -> None:
    """After an extract from the drop zone, the partition in the container is replaced by a commit that lacks
    rows of ``orders_a.csv``: its entry and rows gone (another run's commit), its rows cut to one with the entry
    saying so, or its rows gone while the entry still lists them. Reconcile fails, nothing becomes ``loaded``."""
    spec, pg_url = zone
    ds = spec.datasets[0]
    assert run(spec, "run-1", "extract").rows == 3
    part = stages.partition_for(spec, ds, DAY)
    assert part.is_remote
    first = read_manifest(part, "extract")
    stats = first.extra["source_stats"]
    files = {f["name"]: f for f in stats["files"]}
    keep = {"file_left_out": [3], "rows_cut_short": [1, 3], "rows_dropped": [3]}[how]
    if how == "file_left_out":
        stats = {**stats, "files": [files["orders_b.csv"]]}
    elif how == "rows_cut_short":
        stats = {**stats, "files": [{**files["orders_a.csv"], "rows": 1}, files["orders_b.csv"]]}
    rows = list(iter_batches(part, first))
    with PartitionWriter(part, "extract", first.read_schema(), run_id="run-other") as w:
        for batch in rows:
            w.write_batch(batch.filter(pc.is_in(batch.column("id"), value_set=pa.array(keep, pa.int64()))))
        w.commit(window=DAY.to_json(), extra={**first.extra, "source_stats": stats})
    run(spec, "run-1", "transform", "load")

    ledger_id = next(r[0] for r in query(pg_url, "SELECT id FROM bulksync_audit.files WHERE file_name='orders_a.csv'"))
    want = {
        "file_left_out": (
            rf"orders_a.csv \(2 rows, ledger row {ledger_id}, staged by run run-1\) is not in the partition "
            r"\(written by run run-other\)"
        ),
        "rows_cut_short": r"orders_a.csv: the ledger counted 2 rows, the partition holds 1 of it",
        "rows_dropped": r"the partition's files add up to 3 rows but it holds 1",
    }[how]
    with pytest.raises(TerminalError, match=want) as info:
        run(spec, "run-1", "reconcile")
    assert str(info.value).startswith("reconciliation of drops failed")
    assert [r[:2] for r in ledger(pg_url)] == [("orders_a.csv", "staged"), ("orders_b.csv", "staged")]
    assert query(pg_url, "SELECT status FROM bulksync_audit.runs") == [("failed",)]
    assert sorted(r[0] for r in target_rows(pg_url)) == sorted(keep)
    day = dt.datetime.now(dt.UTC).date()
    assert sorted(n for n in blobs(azurite, container) if not n.endswith(".done")) == [
        f"archive/{day:%Y/%m/%d}/orders_a.csv",
        f"archive/{day:%Y/%m/%d}/orders_b.csv",
    ]

    # the rerun of the interval replays both files from the archive and reconciles
    assert run(spec, "run-2", "extract").rows == 3
    assert run(spec, "run-2", "transform", "load", "reconcile")["status"] == "success"
    assert target_rows(pg_url) == sorted((i, n, Decimal(a)) for i, n, a in A + B)
    assert [r[:4] for r in ledger(pg_url)] == [
        ("orders_a.csv", "loaded", DAY.key, 2),
        ("orders_b.csv", "loaded", DAY.key, 1),
    ]


# -- 3. the lake's per-interval lock across processes ------------------------------------------------------------

LAKE_CHILD = textwrap.dedent(
    """
    import json, logging, sys, time, pathlib
    sys.path.insert(0, {root!r})
    args = json.loads({args!r})
    logging.getLogger("bulksync").setLevel(logging.INFO)
    from azure.storage.blob import BlobClient
    from bulksync.errors import BulksyncError
    from bulksync.storage import lock
    from bulksync.targets import azure_lake
    from bulksync.targets.registry import make_target
    from tests.helpers import DAY
    from tests.integration.test_azure_lake import SCHEMA, lake, orders

    events = pathlib.Path(args["events"])
    def event(what, **more):
        with events.open("a") as f:
            f.write(json.dumps({{"who": args["run_id"], "event": what, "t": time.time(), **more}}) + "\\n")

    def pause():
        pathlib.Path(args["flag"]).write_text("here")
        while not pathlib.Path(args["go"]).exists():
            time.sleep(0.02)

    interval_lock = f"{{DAY.key}}.lock"
    real_acquire, real_release = lock.StorageLock.acquire, lock.StorageLock.release
    def acquire(self, wait=True):
        got = real_acquire(self, wait)
        if got and self.location.name == interval_lock:
            event("acquired")
        return got
    def release(self):
        held = self._lease is not None or self._fd is not None
        real_release(self)
        if held and self.location.name == interval_lock:
            event("released")
    lock.StorageLock.acquire, lock.StorageLock.release = acquire, release

    if args.get("pause") == "leased":  # the lease is taken, nothing else done yet
        real_lease = BlobClient.acquire_lease
        def acquire_lease(self, *a, **k):
            lease = real_lease(self, *a, **k)
            if self.blob_name.endswith(interval_lock) and not events.with_suffix(".paused").exists():
                events.with_suffix(".paused").write_text(args["run_id"])
                pause()
            return lease
        BlobClient.acquire_lease = acquire_lease
    if args.get("wait_seconds") is not None:
        class Waiting(lock.StorageLock):
            def __init__(self, location, what, wait_seconds=600):
                super().__init__(location, what, args["wait_seconds"])
        azure_lake.StorageLock = Waiting

    def gen():
        event("reading")
        for i, b in enumerate(orders(range(1, 301), tag=args["tag"]).to_batches(max_chunksize=50)):
            if args.get("pause") == "stream" and i == 3:
                pause()
            yield b

    out = {{"ok": True}}
    try:
        res = make_target(lake(args["container"], row_group_rows=1000)).load(
            gen, SCHEMA, window=DAY, run_id=args["run_id"])
        out.update(rows=res.rows, deleted=res.deleted)
    except BulksyncError as exc:
        out = {{"ok": False, "error": f"{{type(exc).__name__}}: {{exc}}"}}
    print(json.dumps(out), flush=True)
    """
)


def spawn_load(container: str, tmp_path: Path, run_id: str, tag: str, **args: Any) -> subprocess.Popen[str]:
    """A load of 300 orders (``tag`` in their notes) into the lake's interval ``DAY``, in a fresh interpreter.

    ``pause``: ``stream`` (after three batches, holding the interval's lock) or ``leased`` (right after the lock's
    lease was taken); it creates ``flag`` and waits for ``go``. ``wait_seconds``: how long it waits for the lock.
    Every take and release of the interval's lock, and the start of reading its rows, go into ``events``.
    """
    payload = {"container": container, "run_id": run_id, "tag": tag, "events": str(tmp_path / "events.jsonl"), **args}
    script = LAKE_CHILD.format(root=str(ROOT), args=json.dumps(payload))
    log = tempfile.NamedTemporaryFile("w+", prefix=f"bulksync-{run_id}-", suffix=".log", delete=False)  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    log.close()
    proc.log_path = log.name  # type: ignore[attr-defined]
    _CHILDREN.append(proc)
    return proc


def events(tmp_path: Path) -> dict[tuple[str, str], float]:
    """``(run, event) → time`` of the children's lock events (each happens once per run here)."""
    path = tmp_path / "events.jsonl"
    lines = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    out: dict[tuple[str, str], float] = {}
    for e in lines:
        assert (e["who"], e["event"]) not in out, lines
        out[(e["who"], e["event"])] = e["t"]
    return out


def lake_blobs(azurite: Azurite, container: str) -> dict[str, str]:
    """Every blob of the lake table (name under ``lake/orders/`` → ETag)."""
    client = azurite.service_client().get_container_client(container)
    return {
        b.name.removeprefix("lake/orders/"): str(b.etag) for b in client.list_blobs(name_starts_with="lake/orders/")
    }


def waiting(proc: subprocess.Popen[str]) -> None:
    """Wait until a child logs that it waits for the interval's lock (fails if it got it instead)."""
    seen = wait_log(proc, "waiting for the load of interval", "breaking its lease", timeout=60)
    assert seen == "waiting for the load of interval", output(proc)[-3000:]


def assert_exact(azurite: Azurite, container: str, tag: str) -> None:
    """The lake holds exactly the 300 orders of one load, row for row, for marker and plain readers alike."""
    loc = open_location(f"abfs://{container}/lake", CONN_ID).child("orders")
    want = orders(range(1, 301), tag=tag)
    assert lake_rows(loc) == expected(want)
    assert sorted(plain_reader_rows(loc)) == sorted(
        (r["id"], r["note"], r["region"], r["day"].isoformat()) for r in want.to_pylist()
    )
    committed = committed_partitions(loc)
    assert len(committed) == 6 and sum(m["rows"] for m in committed.values()) == 300
    assert not [n for n in lake_blobs(azurite, container) if n.startswith("_tmp/")]


def test_a_second_load_of_an_interval_waits_for_the_live_holder_in_another_process(
    azurite: Azurite, container: str, tmp_path: Path, env: pytest.MonkeyPatch
) -> None:
    """The holder is paused mid-stream holding the interval's lease. One load waits with a short limit and stops
    with ``StorageLockHeldError``; another waits with the default limit and proceeds once the holder let go.
    Neither writes a blob while the holder holds the lock; the lake ends with the last load's rows, exact."""
    flag, go = tmp_path / "flag", tmp_path / "go"
    holder = spawn_load(container, tmp_path, "holder", "a", pause="stream", flag=str(flag), go=str(go))
    wait_flag(holder, flag, timeout=60)
    held = lake_blobs(azurite, container)  # the lock blob (the holder's open files are still in its memory)
    assert f"_locks/{DAY.key}.lock" in held and all(n.startswith(("_locks/", f"_tmp/{DAY.key}-")) for n in held)

    impatient = spawn_load(container, tmp_path, "impatient", "c", wait_seconds=2)
    patient = spawn_load(container, tmp_path, "patient", "b")
    waiting(patient)
    gave_up = result(impatient, timeout=60)
    assert not gave_up["ok"]
    assert gave_up["error"].startswith(
        f"StorageLockHeldError: another load holds the load of interval {DAY.key} into abfs://{container}/lake/orders "
        f"(abfs://{container}/lake/orders/_locks/{DAY.key}.lock); this one waited 2s and stops without writing"
    ), gave_up["error"]
    time.sleep(1)  # the patient one keeps polling meanwhile
    assert lake_blobs(azurite, container) == held  # nothing of theirs was written: not a blob, not a marker
    assert patient.poll() is None and ("patient", "acquired") not in events(tmp_path)

    go.write_text("go")
    done = [result(holder, timeout=60), result(patient, timeout=60)]
    assert done == [
        {"ok": True, "rows": 300, "deleted": 0, "stderr": done[0]["stderr"]},
        {"ok": True, "rows": 300, "deleted": 300, "stderr": done[1]["stderr"]},  # it replaced the holder's rows
    ]
    seen = events(tmp_path)
    assert seen[("patient", "acquired")] >= seen[("holder", "released")]
    assert seen[("patient", "reading")] >= seen[("holder", "released")]
    assert ("impatient", "acquired") not in seen and ("impatient", "reading") not in seen
    assert_exact(azurite, container, "b")

    # the impatient load's retry, once nobody holds the lock, proceeds at once
    make_target(lake(container, row_group_rows=1000)).load(
        batches(orders(range(1, 301), tag="c")), SCHEMA, window=DAY, run_id="impatient-retry"
    )
    assert_exact(azurite, container, "c")


def test_a_holder_that_has_just_taken_the_lease_is_not_taken_for_a_dead_one(
    azurite: Azurite, container: str, tmp_path: Path, env: pytest.MonkeyPatch
) -> None:
    """An earlier load of the interval ran in a process that has exited (as every Airflow task does), so the lock
    blob names a process that is gone. A new holder has just taken the lease: a second load must wait for it, not
    read the earlier holder's name, take the live lease for a dead one's and break it (before: it did, and both
    wrote the interval at once)."""
    earlier = result(spawn_load(container, tmp_path, "earlier", "e"), timeout=60)
    assert earlier["ok"], earlier["stderr"][-3000:]
    flag, go = tmp_path / "flag", tmp_path / "go"
    holder = spawn_load(container, tmp_path, "holder", "a", pause="leased", flag=str(flag), go=str(go))
    wait_flag(holder, flag, timeout=60)
    before = lake_blobs(azurite, container)
    second = spawn_load(container, tmp_path, "second", "b")
    waiting(second)
    time.sleep(1)
    assert lake_blobs(azurite, container) == before
    assert second.poll() is None and ("second", "acquired") not in events(tmp_path)

    go.write_text("go")
    done = [result(holder, timeout=60), result(second, timeout=60)]
    assert [d["ok"] for d in done] == [True, True], [d.get("error") or d["stderr"][-3000:] for d in done]
    assert [(d["rows"], d["deleted"]) for d in done] == [(300, 300), (300, 300)]
    seen = events(tmp_path)
    assert seen[("second", "acquired")] >= seen[("holder", "released")]
    assert seen[("second", "reading")] >= seen[("holder", "released")]
    assert "breaking its lease" not in done[1]["stderr"]
    assert_exact(azurite, container, "b")
