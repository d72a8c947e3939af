"""The Azure drop zone (file_drop on ``abfs://container/prefix``) against Azurite with the real SDK and the
provider's ``WasbHook``: a pipeline through the real stages into real PostgreSQL (whole table, ledger,
archive and quarantine blobs), concurrent claimers, blobs changed or deleted between listing and
reading (ETag), and the errors of a missing container, wrong credentials and a missing conn_id.
"""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal
from typing import Any

import pytest

from bulksync import stages
from bulksync.errors import LandingFileChangedError, SpecError, StorageAccessError
from bulksync.sources.file_drop import blob_store
from bulksync.sources.file_drop.blob_store import BlobLandingStore
from bulksync.sources.file_drop.store import open_store
from bulksync.staging.partition import Window
from tests.azure_drops import PG_TARGET, blob_drop_spec, blobs, landing_url, put, reason
from tests.azurite import CONN_ID, Azurite
from tests.file_drop_corpus import csv_text, query
from tests.helpers import DAY, pipeline

NEXT_DAY = Window(DAY.end, DAY.end + dt.timedelta(days=1))  # type: ignore[operator]
A = [(1, "Anna", "10.50"), (2, "Bob", "-3.00")]
B = [(3, "Chloé", "0.01")]
C = [(4, "Dan", "4.00")]


def run_all(spec: Any, window: Window, run_id: str, try_number: int = 1) -> None:
    ds = spec.datasets[0]
    ctx = stages.RunContext(run_id=run_id, window=window, try_number=try_number)
    stages.extract(spec, ds, ctx)
    stages.transform(spec, ds, ctx)
    stages.load(spec, ds, ctx)
    stages.reconcile(spec, ds, ctx)


def table(pg_url: str) -> list[tuple[Any, ...]]:
    return query(pg_url, "SELECT id, name, amount FROM drops ORDER BY id")


def files(pg_url: str) -> list[tuple[Any, ...]]:
    return query(
        pg_url, "SELECT file_name, status, interval, rows, reason, location FROM bulksync_audit.files ORDER BY id"
    )


def expected(*rows: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    return sorted((i, n, Decimal(a)) for i, n, a in rows)


def drop(azurite: Azurite, container: str, name: str, rows: list[tuple[Any, ...]]) -> None:
    put(azurite, container, name, csv_text(rows))
    put(azurite, container, f"{name}.done", "")


@pytest.fixture
def zone(env: pytest.MonkeyPatch, azurite: Azurite, container: str, pg_url: str) -> tuple[Azurite, str, str]:
    """(Azurite, an empty container, the PostgreSQL database of the target and the ledger)."""
    return azurite, container, pg_url


def test_drop_zone_pipeline_into_postgres(zone: tuple[Azurite, str, str]) -> None:
    azurite, container, pg_url = zone
    spec = blob_drop_spec(container, PG_TARGET, pattern="orders_*.csv", arrival={"mode": "trigger"})
    drop(azurite, container, "orders_a.csv", A)
    drop(azurite, container, "orders_b.csv", B)
    drop(azurite, container, "orders_bad.csv", [(5, "Eve", "not-a-number")])
    put(azurite, container, "orders_c.csv", csv_text(C))  # no trigger yet: waits

    run_all(spec, DAY, "run-1")

    assert table(pg_url) == expected(*A, *B)
    day = dt.datetime.now(dt.UTC).date()
    archive = f"archive/{day:%Y/%m/%d}"
    interval = str(DAY.key)
    assert sorted(files(pg_url)) == [
        ("orders_a.csv", "loaded", interval, 2, None, f"{archive}/orders_a.csv"),
        ("orders_b.csv", "loaded", interval, 1, None, f"{archive}/orders_b.csv"),
        ("orders_bad.csv", "quarantined", interval, None, "bad_value", "quarantine/orders_bad.csv"),
    ]
    after = blobs(azurite, container)
    assert sorted(after) == sorted(
        [
            f"{archive}/orders_a.csv",
            f"{archive}/orders_a.csv.done",
            f"{archive}/orders_b.csv",
            f"{archive}/orders_b.csv.done",
            "quarantine/orders_bad.csv",
            "quarantine/orders_bad.csv.done",
            "quarantine/orders_bad.csv.reason.json",
            "orders_c.csv",
        ]
    )
    assert after[f"{archive}/orders_a.csv"] == csv_text(A).encode()  # archived unchanged
    why = reason(azurite, container, "quarantine/orders_bad.csv")
    assert (why["file"], why["reason"]) == ("orders_bad.csv", "bad_value")
    assert "line 2, column 'amount': value 'not-a-number'" in why["message"]

    # the trigger arrives: the next interval takes orders_c only
    put(azurite, container, "orders_c.csv.done", "")
    run_all(spec, NEXT_DAY, "run-2")
    assert table(pg_url) == expected(*A, *B, *C)
    assert [(f[0], f[1], f[2]) for f in files(pg_url) if f[0] == "orders_c.csv"] == [
        ("orders_c.csv", "loaded", str(NEXT_DAY.key))
    ]
    assert not [n for n in blobs(azurite, container) if n.startswith(("orders_", "processing/"))]


def test_two_concurrent_runs_take_each_blob_once(zone: tuple[Azurite, str, str]) -> None:
    """Two runs (threads, each with its own SDK clients) for two intervals over the same container."""
    azurite, container, pg_url = zone
    rows = {f"f{i:02d}.csv": [(i, f"n{i}", f"{i}.00")] for i in range(24)}
    for name, r in rows.items():
        put(azurite, container, name, csv_text(r))
    spec = blob_drop_spec(container, PG_TARGET)
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def extract(window: Window, run_id: str) -> None:
        try:
            start.wait()
            stages.extract(spec, spec.datasets[0], stages.RunContext(run_id=run_id, window=window, try_number=1))
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=extract, args=a) for a in ((DAY, "run-a"), (NEXT_DAY, "run-b"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for window, run_id in ((DAY, "run-a"), (NEXT_DAY, "run-b")):
        ctx = stages.RunContext(run_id=run_id, window=window, try_number=1)
        stages.transform(spec, spec.datasets[0], ctx)
        stages.load(spec, spec.datasets[0], ctx)

    assert table(pg_url) == expected(*(r for rs in rows.values() for r in rs))  # each row exactly once
    ledger = files(pg_url)
    assert sorted(f[0] for f in ledger) == sorted(rows)  # each file claimed by exactly one run
    assert {f[1] for f in ledger} == {"staged"}
    archived = [n for n in blobs(azurite, container) if n.startswith("archive/")]
    assert sorted(n.rsplit("/", 1)[-1] for n in archived) == sorted(rows)


def test_racing_claimers_exactly_one_wins(zone: tuple[Azurite, str, str]) -> None:
    """Eight claimers listed the same blobs and claim them at the same moment: one wins each blob."""
    azurite, container, _ = zone
    names = [f"r{i}.csv" for i in range(5)]
    for n in names:
        put(azurite, container, n, csv_text(A))
    stores = [BlobLandingStore(landing_url(container), CONN_ID) for _ in range(8)]
    for s in stores:
        s.list()
    start = threading.Barrier(len(stores))
    won: dict[int, list[str]] = {i: [] for i in range(len(stores))}

    def claim(i: int) -> None:
        start.wait()
        for n in names:
            if stores[i].claim(n, f"processing/claimer{i}/{n}"):
                won[i].append(n)

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(len(stores))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(n for w in won.values() for n in w) == names
    assert sorted(blobs(azurite, container)) == sorted(f"processing/claimer{i}/{n}" for i, w in won.items() for n in w)


def test_blob_changed_or_deleted_after_listing_is_left_for_the_next_run(
    zone: tuple[Azurite, str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    azurite, container, pg_url = zone
    spec = blob_drop_spec(container, PG_TARGET)
    put(azurite, container, "a.csv", csv_text(A))
    put(azurite, container, "b.csv", csv_text(B))
    put(azurite, container, "c.csv", csv_text(C))
    listing = BlobLandingStore.list
    done: list[bool] = []

    def list_then_client_acts(self: BlobLandingStore, folder: str = "") -> Any:
        out = listing(self, folder)
        if not folder and not done:  # right after the extract looked: the client rewrites b and deletes c
            done.append(True)
            put(azurite, container, "b.csv", csv_text([(30, "Bea", "3.30")]))
            azurite.service_client().get_container_client(container).delete_blob("drops/c.csv")
        return out

    monkeypatch.setattr(BlobLandingStore, "list", list_then_client_acts)
    run_all(spec, DAY, "run-1")
    assert table(pg_url) == expected(*A)
    assert [f[:2] for f in files(pg_url)] == [("a.csv", "loaded")]
    assert blobs(azurite, container)["b.csv"] == csv_text([(30, "Bea", "3.30")]).encode()  # left, new version

    run_all(spec, NEXT_DAY, "run-2")  # the next run takes the new version
    assert table(pg_url) == expected(*A, (30, "Bea", "3.30"))
    assert [f[:2] for f in files(pg_url)] == [("a.csv", "loaded"), ("b.csv", "loaded")]


def test_blob_modified_while_read_fails_the_try_and_the_retry_reads_it(
    zone: tuple[Azurite, str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    azurite, container, pg_url = zone
    spec = blob_drop_spec(container, PG_TARGET)
    many = [(i, f"name {i}", f"{i}.25") for i in range(1, 200)]
    put(azurite, container, "big.csv", csv_text(many))
    monkeypatch.setattr(blob_store, "RANGE_BYTES", 256)  # many range reads of a small file
    fetch = blob_store.BlobStream._fetch
    changed: list[bool] = []

    def fetch_then_client_rewrites(self: blob_store.BlobStream, offset: int, length: int) -> bytes:
        data = fetch(self, offset, length)
        if offset and not changed:  # half-way through the claimed copy, someone rewrites it
            changed.append(True)
            client = azurite.service_client().get_container_client(container)
            client.upload_blob(f"drops/processing/{DAY.key}/big.csv", csv_text(many[:3]), overwrite=True)
        return data

    monkeypatch.setattr(blob_store.BlobStream, "_fetch", fetch_then_client_rewrites)
    ds = spec.datasets[0]
    with pytest.raises(LandingFileChangedError, match=r"big.csv in abfs://.*/drops was modified while bulksync"):
        stages.extract(spec, ds, stages.RunContext(run_id="run-1", window=DAY, try_number=1))
    assert files(pg_url) == []  # nothing accepted, nothing staged
    assert sorted(blobs(azurite, container)) == [f"processing/{DAY.key}/big.csv"]

    monkeypatch.setattr(blob_store.BlobStream, "_fetch", fetch)
    run_all(spec, DAY, "run-1", try_number=2)  # the retry reads the file as it is now
    assert table(pg_url) == expected(*many[:3])
    assert [f[:4] for f in files(pg_url)] == [("big.csv", "loaded", str(DAY.key), 3)]


def test_missing_container_is_named(azurite: Azurite) -> None:
    with pytest.raises(StorageAccessError, match=r"container 'no-such-box' does not exist .*connection 'azurite'"):
        open_store("abfs://no-such-box/drops", CONN_ID)


def test_wrong_credentials_name_account_and_connection_not_the_key(
    azurite: Azurite, container: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXktd3Jvbmcta2V5LXdyb25nLWtleQ=="
    monkeypatch.setenv("AIRFLOW_CONN_BAD_AZURE", azurite.key_conn(wrong))
    with pytest.raises(StorageAccessError) as info:
        open_store(landing_url(container), "bad_azure")
    message = str(info.value)
    assert "storage account 'devstoreaccount1' refused the credentials of Airflow connection 'bad_azure'" in message
    assert wrong not in message and wrong[:12] not in message


def test_blob_landing_needs_conn_id() -> None:
    source = {
        "kind": "file_drop",
        "options": {"landing": "abfs://some-box/x", "columns": [{"name": "a", "type": "string"}]},
    }
    with pytest.raises(SpecError, match="is a blob container: set conn_id to the Airflow connection"):
        pipeline([{"name": "d", "source": source, "target": PG_TARGET}])


def test_wait_sees_trigger_blobs_and_reprocess_puts_a_blob_back(zone: tuple[Azurite, str, str]) -> None:
    """The sensor's check on a blob landing, and ``bulksync files reprocess`` of a quarantined blob."""
    from bulksync.sources.file_drop.replay import reprocess
    from bulksync.sources.file_drop.wait import check

    azurite, container, pg_url = zone
    spec = blob_drop_spec(container, PG_TARGET, arrival={"mode": "trigger"})
    opts = spec.datasets[0].source.options
    limit = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    put(azurite, container, "a.csv", "id,name,amount\n1,Anna,oops\n")
    waiting = check(opts, limit, conn_id=CONN_ID)
    assert not waiting.ready and "a.csv (no trigger file a.csv.done yet)" in waiting.message
    put(azurite, container, "a.csv.done", "")
    assert check(opts, limit, conn_id=CONN_ID).ready

    run_all(spec, DAY, "run-1")
    assert [f[:2] for f in files(pg_url)] == [("a.csv", "quarantined")]
    put(azurite, container, "quarantine/a.csv", csv_text(A))  # the operator fixes the file in place
    reprocess(spec, spec.datasets[0], "a.csv")
    assert {"a.csv", "a.csv.done"} <= set(blobs(azurite, container))
    run_all(spec, NEXT_DAY, "run-2")
    assert table(pg_url) == expected(*A)
    assert [f[:2] for f in files(pg_url)] == [("a.csv", "replaced"), ("a.csv", "loaded")]


def test_listing_gives_size_etag_and_last_modified(zone: tuple[Azurite, str, str]) -> None:
    azurite, container, _ = zone
    put(azurite, container, "a.csv", csv_text(A))
    put(azurite, container, "sub/b.csv", csv_text(B))
    props = azurite.service_client().get_blob_client(container, "drops/a.csv").get_blob_properties()
    store = BlobLandingStore(landing_url(container), CONN_ID)
    entries = store.list()
    assert [(e.name, e.kind, e.size) for e in entries] == [("a.csv", "file", props.size), ("sub", "dir", 0)]
    assert entries[0].etag == '"' + props.etag.strip('"') + '"'
    assert entries[0].mtime == props.last_modified.timestamp()
    with store.open("a.csv") as f:
        assert f.read() == csv_text(A).encode()
    assert [e.name for e in store.list("sub")] == ["sub/b.csv"]


def test_blob_landing_must_be_an_azure_url() -> None:
    source = {
        "kind": "file_drop",
        "conn_id": "x",
        "options": {"landing": "s3://bucket/x", "columns": [{"name": "a", "type": "string"}]},
    }
    with pytest.raises(SpecError, match=r"'s3://bucket/x' is not an Azure storage URL; use abfs://container/prefix"):
        pipeline([{"name": "d", "source": source, "target": PG_TARGET}])
