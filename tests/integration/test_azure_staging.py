"""Staging on Azure (Azurite, real SDK through adlfs): the whole pipeline from PostgreSQL through
staging in a container into PostgreSQL, and an upload killed mid-way (SIGKILL of a real process):
without a manifest the attempt does not count, and the rerun replaces it and clears its parts."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import sqlalchemy as sa

from bulksync import stages
from bulksync.errors import StagingError
from bulksync.staging.reader import iter_batches, read_manifest
from tests.helpers import DAY, kill_child_at_flag, pipeline

ROOT = Path(__file__).resolve().parents[2]
ROWS = 20_011
SOURCE_COLUMNS = "id, customer_no, amount, placed_at, note"


def spec_for(container: str, *, chunking: bool = False, transforms: bool = True) -> Any:
    options: dict[str, Any] = {"table": "orders", "batch_size": 3000}
    if chunking:
        options["chunking"] = {"column": "id", "chunks": 3}
    return pipeline(
        [
            {
                "name": "orders",
                "source": {"kind": "sql", "conn_id": "test_pg", "options": options},
                "transforms": [{"rename": {"note": "remark"}}] if transforms else [],
                "target": {"kind": "postgres", "conn_id": "test_pg", "table": "orders_copy", "mode": "replace"},
            }
        ],
        staging={"root": f"abfs://{container}/staging", "conn_id": "azurite"},
    )


@pytest.fixture
def orders(pg_url: str, env: pytest.MonkeyPatch) -> str:
    with sa.create_engine(pg_url).begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE orders (id bigint PRIMARY KEY, customer_no integer, amount numeric(12,2), "
            "placed_at timestamptz, note text)"
        )
        conn.exec_driver_sql(
            "INSERT INTO orders SELECT g, CASE WHEN mod(g, 13) = 0 THEN NULL ELSE mod(g, 997) END, g * 1.25, "
            "timestamptz '2026-01-01 00:00:00+00' + g * interval '1 second', "
            f"CASE WHEN mod(g, 17) = 0 THEN NULL ELSE 'note ' || g || ' ü' END FROM generate_series(1, {ROWS}) g"
        )
    return pg_url


def table_rows(url: str, table: str, columns: str) -> list[tuple[Any, ...]]:
    with sa.create_engine(url).connect() as conn:
        return [tuple(r) for r in conn.exec_driver_sql(f"SELECT {columns} FROM {table} ORDER BY id")]


def blob_names(azurite: Any, container: str) -> list[str]:
    return sorted(b.name for b in azurite.service_client().get_container_client(container).list_blobs())


def ctx(run: str) -> stages.RunContext:
    return stages.RunContext(run_id=run, window=DAY, try_number=1)


def run_all(spec: Any, run: str) -> None:
    ds = spec.datasets[0]
    stages.extract_all(spec, ds, ctx(run))
    stages.transform(spec, ds, ctx(run))
    stages.load(spec, ds, ctx(run))
    stages.reconcile(spec, ds, ctx(run))


def referenced_blobs(spec: Any, stage_names: list[str]) -> set[str]:
    """Every blob the committed manifests name (manifests, parts, linked parts)."""
    part = stages.partition_for(spec, spec.datasets[0], DAY)
    out = set()
    for stage in stage_names:
        folder = part.stage_location(stage)
        out.add(folder.child("_manifest.json").path.split("/", 1)[1])
        for f in read_manifest(part, stage).files:
            out.add(folder.child(f.path).path.split("/", 1)[1])
    return out


@pytest.mark.parametrize("chunking", [False, True], ids=["single", "chunked"])
def test_pipeline_with_staging_on_azure(
    orders: str, azurite: Any, container: str, tmp_path: Path, chunking: bool
) -> None:
    spec = spec_for(container, chunking=chunking)
    run_all(spec, "r1")
    assert table_rows(orders, "orders_copy", "id, customer_no, amount, placed_at, remark") == table_rows(
        orders, "orders", SOURCE_COLUMNS
    )
    names = blob_names(azurite, container)
    prefix = f"staging/acme/test/orders/{DAY.key}/"
    assert f"{prefix}_manifest.json" in names and f"{prefix}transformed/_manifest.json" in names
    assert f"{prefix}_load.json" in names
    assert not (tmp_path / "staging").exists()  # nothing staged locally
    # the rerun replaces the partition: same target, and only what the new manifests list is left
    with sa.create_engine(orders).begin() as conn:
        conn.exec_driver_sql("UPDATE orders SET note = 'changed' WHERE id <= 10")
    run_all(spec, "r2")
    assert table_rows(orders, "orders_copy", "id, customer_no, amount, placed_at, remark") == table_rows(
        orders, "orders", SOURCE_COLUMNS
    )
    partition_blobs = {n for n in blob_names(azurite, container) if n.startswith(prefix)}
    expected = referenced_blobs(spec, ["extract", "transform"]) | {f"{prefix}_load.json"}
    assert partition_blobs == expected


def test_passthrough_transform_links_the_extracted_parts(orders: str, azurite: Any, container: str) -> None:
    spec = spec_for(container, transforms=False)
    ds = spec.datasets[0]
    stages.extract_all(spec, ds, ctx("r1"))
    manifest = stages.transform(spec, ds, ctx("r1"))
    assert all(f.path.startswith("../_parts/") for f in manifest.files)
    part = stages.partition_for(spec, ds, DAY)
    staged = pa.Table.from_batches(list(iter_batches(part, manifest)))
    assert staged.num_rows == ROWS
    assert sorted(staged.column("id").to_pylist()) == list(range(1, ROWS + 1))


CHILD = textwrap.dedent(
    """
    import sys, time, pathlib
    sys.path.insert(0, {root!r})
    from bulksync import stages
    from bulksync.staging import remote
    from tests.helpers import DAY
    from tests.integration.test_azure_staging import spec_for

    flag = pathlib.Path({flag!r})
    real_close = remote.RemoteStage.close_part
    closed = []

    def slow_close(self):
        out = real_close(self)
        closed.append(out)
        if len(closed) == 2:  # two parts uploaded, the manifest not yet written
            flag.write_text("uploaded")
            time.sleep(120)
        return out

    remote.RemoteStage.close_part = slow_close
    import bulksync.staging.writer as w
    orig_init = w.PartitionWriter.__init__
    def init(self, *a, **k):
        k["rows_per_file"] = 4000
        k["row_group_rows"] = 2000
        orig_init(self, *a, **k)
    w.PartitionWriter.__init__ = init
    spec = spec_for({container!r})
    stages.extract(spec, spec.datasets[0], stages.RunContext(run_id="killed", window=DAY, try_number=1))
    """
)


@pytest.mark.parametrize("committed_before", [False, True], ids=["first-upload", "rerun-upload"])
def test_interrupted_upload_is_ignored_and_rewritten(
    orders: str, azurite: Any, container: str, tmp_path: Path, committed_before: bool
) -> None:
    spec = spec_for(container)
    ds = spec.datasets[0]
    part = stages.partition_for(spec, ds, DAY)
    if committed_before:
        first = stages.extract_all(spec, ds, ctx("r1"))
        before = pa.Table.from_batches(list(iter_batches(part, first)))
    flag = tmp_path / "flag"
    script = CHILD.format(root=str(ROOT), flag=str(flag), container=container)
    kill_child_at_flag(script, flag, ROOT, timeout=90)

    prefix = f"staging/acme/test/orders/{DAY.key}/"
    stale = [n for n in blob_names(azurite, container) if n.startswith(prefix + "_parts/")]
    if committed_before:
        # the killed attempt's parts are there, but the old manifest still describes the old parts only
        again = read_manifest(part, "extract")
        assert again.run_id == "r1"
        assert pa.Table.from_batches(list(iter_batches(part, again))).equals(before)
        assert len(stale) == len(first.files) + 2
    else:
        with pytest.raises(StagingError, match=r"no committed extract output at abfs://.*rerun it"):
            read_manifest(part, "extract")
        assert len(stale) == 2
    # the rerun commits the partition and removes the parts of the killed attempt
    manifest = stages.extract_all(spec, ds, ctx("r2"))
    assert manifest.rows == manifest.source_count == ROWS
    staged = pa.Table.from_batches(list(iter_batches(part, manifest)))
    assert sorted(staged.column("id").to_pylist()) == list(range(1, ROWS + 1))
    left = {n for n in blob_names(azurite, container) if n.startswith(prefix)}
    assert left == referenced_blobs(spec, ["extract"])


def test_pipeline_into_the_lake(orders: str, azurite: Any, container: str) -> None:
    """PostgreSQL → staging on Azure → azure_lake target, reconciled; the lake holds the whole table."""
    from decimal import Decimal

    from bulksync.storage.hive import read_committed
    from bulksync.storage.location import open_location

    spec = pipeline(
        [
            {
                "name": "orders",
                "source": {"kind": "sql", "conn_id": "test_pg", "options": {"table": "orders", "batch_size": 5000}},
                "transforms": [{"derive": {"bucket": "id % 3"}}],
                "target": {
                    "kind": "azure_lake",
                    "conn_id": "azurite",
                    "path": f"abfs://{container}/lake",
                    "table": "orders",
                    "partition_by": ["bucket"],
                },
            }
        ],
        staging={"root": f"abfs://{container}/staging", "conn_id": "azurite"},
    )
    run_all(spec, "r1")
    run_all(spec, "r2")  # the rerun of the interval replaces its files: no duplicates
    lake = read_committed(open_location(f"abfs://{container}/lake", "azurite").child("orders"))
    assert lake is not None
    got = sorted(
        (r["id"], r["customer_no"], r["amount"], r["placed_at"], r["note"], r["bucket"]) for r in lake.to_pylist()
    )
    want = [(*r, str(r[0] % 3)) for r in table_rows(orders, "orders", SOURCE_COLUMNS)]
    assert got == want
    assert all(isinstance(r[2], Decimal) for r in got[:5])
    report = stages.load_report(stages.partition_for(spec, spec.datasets[0], DAY))
    assert report is not None and (report["rows"], report["deleted"]) == (ROWS, ROWS)


def gated_spec(container: str, tmp_path: Path, env: pytest.MonkeyPatch) -> Any:
    """An ``orders`` spec with a quality gate (note not null, quarantine), staged in ``container``."""
    import json

    (tmp_path / "expectations").mkdir()
    (tmp_path / "expectations" / "orders.json").write_text(
        json.dumps(
            {
                "name": "orders",
                "expectations": [{"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "note"}}],
            }
        )
    )
    env.setenv("BULKSYNC_EXPECTATIONS_DIR", str(tmp_path / "expectations"))
    env.setenv("BULKSYNC_REPORTS_ROOT", str(tmp_path / "reports"))
    return pipeline(
        [
            {
                "name": "orders",
                "source": {"kind": "sql", "conn_id": "test_pg", "options": {"table": "orders", "primary_key": ["id"]}},
                "quality": {"suite": "orders", "on_failure": "quarantine"},
                "target": {"kind": "postgres", "conn_id": "test_pg", "table": "orders_copy", "mode": "replace"},
            }
        ],
        staging={"root": f"abfs://{container}/staging", "conn_id": "azurite"},
    )


def test_quality_gate_quarantines_on_azure_staging(
    orders: str, azurite: Any, container: str, tmp_path: Path, env: pytest.MonkeyPatch
) -> None:
    """The gate reads the staged partition from the container and commits validated/ and quarantine/ there."""
    spec = gated_spec(container, tmp_path, env)
    ds = spec.datasets[0]
    stages.extract_all(spec, ds, ctx("r1"))
    stages.validate(spec, ds, ctx("r1"))
    stages.transform(spec, ds, ctx("r1"))
    stages.load(spec, ds, ctx("r1"))
    result = stages.reconcile(spec, ds, ctx("r1"))
    nulls = ROWS // 17
    assert (result["status"], result["quarantined"]) == ("quarantined", nulls)
    part = stages.partition_for(spec, ds, DAY)
    quarantined = pa.Table.from_batches(list(iter_batches(part, read_manifest(part, "quarantine"))))
    assert sorted(quarantined.column("id").to_pylist()) == [i for i in range(1, ROWS + 1) if i % 17 == 0]
    with sa.create_engine(orders).connect() as conn:
        want = [
            tuple(r)
            for r in conn.exec_driver_sql(f"SELECT {SOURCE_COLUMNS} FROM orders WHERE note IS NOT NULL ORDER BY id")
        ]
    assert table_rows(orders, "orders_copy", SOURCE_COLUMNS) == want
