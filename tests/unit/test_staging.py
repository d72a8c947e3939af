"""Staging partitions: window keys, atomic commits with manifests and checksums, reruns, and refusing bad reads."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bulksync.errors import DataError, StagingError
from bulksync.staging import (
    Partition,
    PartitionWriter,
    Window,
    iter_batches,
    read_manifest,
)

UTC = dt.UTC
SCHEMA = pa.schema(
    [
        pa.field("id", pa.int64(), nullable=False),
        pa.field("amount", pa.decimal128(18, 2)),
        pa.field("updated_at", pa.timestamp("us", tz="UTC")),
        pa.field("name", pa.string()),
    ]
)
WINDOW = Window(dt.datetime(2026, 1, 1, tzinfo=UTC), dt.datetime(2026, 1, 2, tzinfo=UTC))


def rows_batch(start: int, count: int) -> pa.RecordBatch:
    ids = list(range(start, start + count))
    return pa.record_batch(
        [
            pa.array(ids, pa.int64()),
            pa.array([Decimal(i) / 100 for i in ids], pa.decimal128(18, 2)),
            pa.array(
                [dt.datetime(2026, 1, 1, tzinfo=UTC) + dt.timedelta(minutes=i) for i in ids],
                pa.timestamp("us", tz="UTC"),
            ),
            pa.array([None if i % 3 == 0 else f"n{i}" for i in ids]),
        ],
        schema=SCHEMA,
    )


@pytest.fixture
def partition(tmp_path: Path) -> Partition:
    return Partition(str(tmp_path / "staging"), "acme", "nightly", "accounts", WINDOW)


def commit(partition: Partition, *batches: pa.RecordBatch, stage: str = "extract", **kwargs: int) -> None:
    with PartitionWriter(partition, stage, SCHEMA, run_id="manual__1", try_number=2, **kwargs) as w:
        for b in batches:
            w.write_batch(b)
        w.commit(window=partition.window.to_json(), source_count=sum(b.num_rows for b in batches))


def read_back(partition: Partition, stage: str = "extract") -> pa.Table:
    manifest = read_manifest(partition, stage)
    return pa.Table.from_batches(list(iter_batches(partition, manifest)), schema=manifest.read_schema())


@pytest.mark.parametrize(
    ("window", "key"),
    [
        (Window(), "full"),
        (WINDOW, "20260101T000000Z_20260102T000000Z"),
        (
            Window(
                dt.datetime(2026, 3, 29, 1, 30, tzinfo=ZoneInfo("Europe/Berlin")),  # CET, +01:00
                dt.datetime(2026, 3, 29, 12, 0, 5, tzinfo=ZoneInfo("Europe/Berlin")),
            ),  # CEST, +02:00
            "20260329T003000Z_20260329T100005Z",
        ),
        (Window(start=dt.datetime(2026, 1, 1, 6, tzinfo=dt.timezone(dt.timedelta(hours=-5)))), "20260101T110000Z_open"),
        (Window(end=dt.datetime(2026, 1, 1, tzinfo=UTC)), "open_20260101T000000Z"),
    ],
    ids=["full", "utc", "berlin", "open_end", "open_start"],
)
def test_window_key(window: Window, key: str) -> None:
    assert window.key == key
    assert window.is_full == (key == "full")


def test_window_refuses_naive_and_reversed_bounds() -> None:
    with pytest.raises(ValueError, match="window bounds must be timezone-aware"):
        Window(dt.datetime(2026, 1, 1), None)
    with pytest.raises(ValueError, match="is after its end"):
        Window(WINDOW.end, WINDOW.start)


def test_window_widened_and_json_round_trip() -> None:
    wide = WINDOW.widened(90)
    assert (wide.start, wide.end) == (dt.datetime(2025, 12, 31, 22, 30, tzinfo=UTC), WINDOW.end)
    assert WINDOW.widened(0) is WINDOW
    assert Window().widened(30) == Window()
    assert WINDOW.to_json() == {"start": "2026-01-01T00:00:00+00:00", "end": "2026-01-02T00:00:00+00:00"}
    assert Window.from_json(WINDOW.to_json()) == WINDOW
    assert Window.from_json(Window().to_json()) == Window()


def test_partition_paths(partition: Partition, tmp_path: Path) -> None:
    folder = tmp_path / "staging/acme/nightly/accounts/20260101T000000Z_20260102T000000Z"
    assert partition.path == folder
    assert partition.stage_path("extract") == folder
    assert partition.stage_path("transform") == folder / "transformed"
    assert partition.manifest_path("transform") == folder / "transformed/_manifest.json"


def test_commit_writes_parts_and_manifest_with_checksums(partition: Partition) -> None:
    commit(partition, rows_batch(0, 5), rows_batch(5, 3))

    assert sorted(p.name for p in partition.path.iterdir()) == ["_manifest.json", "part-00000.parquet"]
    manifest = read_manifest(partition, "extract")
    assert (manifest.tenant, manifest.pipeline, manifest.dataset, manifest.stage) == (
        "acme",
        "nightly",
        "accounts",
        "extract",
    )
    assert (manifest.interval, manifest.rows, manifest.source_count) == ("20260101T000000Z_20260102T000000Z", 8, 8)
    assert (manifest.run_id, manifest.try_number) == ("manual__1", 2)
    assert manifest.window == WINDOW.to_json()
    assert manifest.created_at.tzinfo is not None
    part = partition.path / "part-00000.parquet"
    assert [f.model_dump() for f in manifest.files] == [
        {
            "path": "part-00000.parquet",
            "rows": 8,
            "bytes": part.stat().st_size,
            "sha256": hashlib.sha256(part.read_bytes()).hexdigest(),
        }
    ]
    assert manifest.columns == [
        {"name": "id", "type": "int64", "nullable": False},
        {"name": "amount", "type": "decimal128(18, 2)", "nullable": True},
        {"name": "updated_at", "type": "timestamp[us, tz=UTC]", "nullable": True},
        {"name": "name", "type": "string", "nullable": True},
    ]
    assert manifest.read_schema() == SCHEMA
    assert pq.read_metadata(part).row_group(0).column(0).compression == "ZSTD"
    on_disk = json.loads((partition.path / "_manifest.json").read_text())
    assert on_disk["rows"] == 8
    assert on_disk["files"][0]["sha256"] == manifest.files[0].sha256
    assert manifest.summary() == {
        "dataset": "accounts",
        "stage": "extract",
        "interval": manifest.interval,
        "rows": 8,
        "files": 1,
        "bytes": part.stat().st_size,
        "source_count": 8,
        "duration_seconds": round(manifest.duration_seconds, 3),
    }


def test_committed_data_reads_back_exactly(partition: Partition) -> None:
    commit(partition, rows_batch(0, 5), rows_batch(5, 3))
    expected = pa.Table.from_batches([rows_batch(0, 5), rows_batch(5, 3)])
    assert read_back(partition).equals(expected)
    assert read_back(partition).column("amount").to_pylist()[:3] == [Decimal("0.00"), Decimal("0.01"), Decimal("0.02")]


def test_rows_per_file_rollover(partition: Partition) -> None:
    commit(partition, rows_batch(0, 3), rows_batch(3, 3), rows_batch(6, 4), rows_per_file=4, row_group_rows=2)
    manifest = read_manifest(partition, "extract")
    assert [(f.path, f.rows) for f in manifest.files] == [
        ("part-00000.parquet", 4),
        ("part-00001.parquet", 4),
        ("part-00002.parquet", 2),
    ]
    assert sum(f.rows for f in manifest.files) == manifest.rows == 10
    for f in manifest.files:
        path = partition.path / f.path
        assert pq.read_metadata(path).num_rows == f.rows
        assert f.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert read_back(partition).column("id").to_pylist() == list(range(10))


def test_empty_commit_keeps_the_schema(partition: Partition) -> None:
    commit(partition, rows_batch(0, 0))
    manifest = read_manifest(partition, "extract")
    assert (manifest.rows, [(f.path, f.rows) for f in manifest.files]) == (0, [("part-00000.parquet", 0)])
    assert pq.read_schema(partition.path / "part-00000.parquet").remove_metadata() == SCHEMA
    assert read_back(partition).num_rows == 0


def test_batches_are_cast_to_the_staged_schema_when_safe(partition: Partition) -> None:
    narrow = rows_batch(0, 2).set_column(0, "id", pa.array([1, 2], pa.int32()))
    commit(partition, narrow)
    assert read_back(partition).column("id").type == pa.int64()


def test_batches_with_other_columns_or_lossy_types_are_refused(partition: Partition) -> None:
    with PartitionWriter(partition, "extract", SCHEMA) as w:
        with pytest.raises(DataError, match=r"batch columns \['id', 'amount', 'updated_at', 'nom'\] differ"):
            w.write_batch(rows_batch(0, 2).rename_columns(["id", "amount", "updated_at", "nom"]))
        lossy = rows_batch(0, 1).set_column(1, "amount", pa.array([Decimal("1.005")], pa.decimal128(18, 3)))
        with pytest.raises(DataError, match="cannot stage batch as"):
            w.write_batch(lossy)
        w.abort()


def test_rerun_replaces_the_partition_and_its_transformed_output(partition: Partition) -> None:
    commit(partition, rows_batch(0, 9), rows_per_file=4)
    commit(partition, rows_batch(0, 9), stage="transform")
    assert (partition.path / "transformed/_manifest.json").exists()

    commit(partition, rows_batch(100, 2))
    assert sorted(p.name for p in partition.path.iterdir()) == ["_manifest.json", "part-00000.parquet"]
    assert read_back(partition).column("id").to_pylist() == [100, 101]
    with pytest.raises(StagingError, match="no committed transform output"):
        read_manifest(partition, "transform")
    assert [p.name for p in partition.path.parent.iterdir()] == [partition.path.name]  # no .tmp / .old left


def test_transform_stage_commits_into_a_sub_folder_and_can_link_extract_files(partition: Partition) -> None:
    commit(partition, rows_batch(0, 4))
    extract = read_manifest(partition, "extract")
    with PartitionWriter(partition, "transform", SCHEMA) as w:
        w.link(extract.files, partition.stage_path("extract"))
        manifest = w.commit(window=WINDOW.to_json())
    assert [(f.path, f.rows, f.sha256) for f in manifest.files] == [
        ("../part-00000.parquet", 4, extract.files[0].sha256)
    ]
    assert manifest.rows == 4
    assert read_back(partition, "transform").equals(read_back(partition))


def test_exception_inside_writer_leaves_no_partition(partition: Partition) -> None:
    writer = PartitionWriter(partition, "extract", SCHEMA, rows_per_file=2)
    with pytest.raises(RuntimeError, match="source went away"), writer as w:
        w.write_batch(rows_batch(0, 5))
        w.write_batch(rows_batch(5, 5))
        raise RuntimeError("source went away")
    assert not partition.path.exists()
    assert list(partition.path.parent.iterdir()) == []
    with pytest.raises(StagingError, match="no committed extract output"):
        read_manifest(partition, "extract")


def test_exception_inside_writer_keeps_the_previous_commit(partition: Partition) -> None:
    commit(partition, rows_batch(0, 3))
    before = (partition.path / "_manifest.json").read_bytes()
    with pytest.raises(RuntimeError), PartitionWriter(partition, "extract", SCHEMA) as w:
        w.write_batch(rows_batch(50, 7))
        raise RuntimeError("killed")
    assert (partition.path / "_manifest.json").read_bytes() == before
    assert read_back(partition).column("id").to_pylist() == [0, 1, 2]
    assert [p.name for p in partition.path.parent.iterdir()] == [partition.path.name]


def test_exception_after_commit_keeps_the_new_commit(partition: Partition) -> None:
    with pytest.raises(RuntimeError), PartitionWriter(partition, "extract", SCHEMA) as w:
        w.write_batch(rows_batch(0, 2))
        w.commit(window=WINDOW.to_json())
        raise RuntimeError("xcom push failed")
    assert read_back(partition).column("id").to_pylist() == [0, 1]


def test_reader_refuses_an_uncommitted_partition(partition: Partition) -> None:
    partition.path.mkdir(parents=True)
    pq.write_table(pa.Table.from_batches([rows_batch(0, 2)]), partition.path / "part-00000.parquet")
    with pytest.raises(StagingError) as info:
        read_manifest(partition, "extract")
    assert str(info.value) == (
        f"no committed extract output at {partition.path} (no _manifest.json); "
        "the extract task did not finish for this interval: rerun it"
    )


def test_reader_refuses_an_uncommitted_transform(partition: Partition) -> None:
    commit(partition, rows_batch(0, 2))
    with pytest.raises(StagingError) as info:
        read_manifest(partition, "transform")
    assert str(info.value) == (
        f"no committed transform output at {partition.path / 'transformed'} (no _manifest.json); "
        "the transform task did not finish for this interval: rerun it"
    )


def test_reader_refuses_a_truncated_part(partition: Partition) -> None:
    commit(partition, rows_batch(0, 50))
    part = partition.path / "part-00000.parquet"
    size = part.stat().st_size
    part.write_bytes(part.read_bytes()[: size - 10])
    manifest = read_manifest(partition, "extract")
    with pytest.raises(StagingError) as info:
        list(iter_batches(partition, manifest))
    assert str(info.value) == f"{part} has {size - 10} bytes but the manifest says {size}; rerun the extract"


def test_reader_refuses_a_missing_part(partition: Partition) -> None:
    commit(partition, rows_batch(0, 6), rows_per_file=3)
    (partition.path / "part-00001.parquet").unlink()
    manifest = read_manifest(partition, "extract")
    with pytest.raises(StagingError, match=r"part-00001\.parquet listed in the extract manifest is missing"):
        list(iter_batches(partition, manifest))


def test_reader_refuses_a_corrupt_manifest(partition: Partition) -> None:
    commit(partition, rows_batch(0, 1))
    (partition.path / "_manifest.json").write_text('{"rows": "many"}')
    with pytest.raises(StagingError, match=r"^corrupt manifest .*_manifest.json: .*; rerun the extract task$"):
        read_manifest(partition, "extract")
