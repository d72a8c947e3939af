"""The ``azure_lake`` target against Azurite with the real Azure SDK (adlfs) and the provider's WasbHook:
Hive partition folders and ``_SUCCESS`` markers, ``replace_partition``, rerun idempotence of
``append``, and a real SIGKILL of a writing process (no half partition counts; the rerun commits)."""

from __future__ import annotations

import datetime as dt
import textwrap
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from bulksync.errors import TargetSchemaError
from bulksync.staging.partition import Window
from bulksync.storage.hive import SUCCESS, committed_partitions, read_committed
from bulksync.storage.location import open_location
from bulksync.targets.registry import make_target
from tests.helpers import DAY, batches, kill_child_at_flag, target

ROOT = Path(__file__).resolve().parents[2]
DAY2 = Window(dt.datetime(2026, 1, 2, tzinfo=dt.UTC), dt.datetime(2026, 1, 3, tzinfo=dt.UTC))
SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("region", pa.string()),
        ("day", pa.date32()),
        ("amount", pa.decimal128(12, 2)),
        ("note", pa.string()),
    ]
)


def orders(ids: range, regions: tuple[str | None, ...] = ("EU", "US", "APAC"), tag: str = "a") -> pa.Table:
    """Orders spread over regions and two days; ``tag`` marks which load wrote them."""
    n = len(ids)
    return pa.table(
        {
            "id": list(ids),
            "region": [regions[i % len(regions)] for i in range(n)],
            "day": [dt.date(2026, 1, 1 + (i // 3) % 2) for i in range(n)],
            "amount": [Decimal(i) / 4 for i in ids],
            "note": [f"{tag}-{i}" for i in ids],
        },
        schema=SCHEMA,
    )


def expected(*tables: pa.Table) -> list[tuple[Any, ...]]:
    """Rows as the lake returns them: partition values as strings, sorted by id."""
    rows = []
    for t in tables:
        for r in t.to_pylist():
            region = r["region"]
            rows.append((r["id"], r["amount"], r["note"], region, r["day"].isoformat()))
    return sorted(rows, key=lambda r: r[0])


def lake_rows(table_loc: Any) -> list[tuple[Any, ...]]:
    t = read_committed(table_loc)
    if t is None:
        return []
    return sorted(((r["id"], r["amount"], r["note"], r["region"], r["day"]) for r in t.to_pylist()), key=lambda r: r[0])


def lake(container: str, **extra: Any) -> Any:
    return target(
        "azure_lake", "azurite", "orders", path=f"abfs://{container}/lake", partition_by=["region", "day"], **extra
    )


def test_partitions_and_markers(azurite: Any, container: str) -> None:
    data = orders(range(1, 301))
    result = make_target(lake(container, row_group_rows=1000)).load(batches(data), SCHEMA, window=DAY, run_id="run-1")
    loc = open_location(f"abfs://{container}/lake", "azurite").child("orders")
    committed = committed_partitions(loc)
    assert sorted(committed) == [f"region={r}/day=2026-01-0{d}" for r in ("APAC", "EU", "US") for d in (1, 2)]
    for folder, marker in committed.items():
        region, day = (kv.split("=")[1] for kv in folder.split("/"))
        want = [r for r in data.to_pylist() if r["region"] == region and r["day"].isoformat() == day]
        assert marker["rows"] == len(want) == sum(f["rows"] for f in marker["files"])
        assert marker["run_id"] == "run-1"
        assert all(f["name"].startswith(f"part-{DAY.key}-") for f in marker["files"])
    assert lake_rows(loc) == expected(data)
    assert (result.rows, result.inserted, result.deleted) == (300, 300, 0)
    # nothing is left under the temporary prefix; the blob listing has only data files and markers
    names = [b.name for b in azurite.service_client().get_container_client(container).list_blobs()]
    assert not [n for n in names if "/_tmp/" in n]
    assert sorted(n.rsplit("/", 1)[1] for n in names if not n.endswith(".parquet")) == sorted(
        [SUCCESS] * 6 + [f"{DAY.key}.json", f"{DAY.key}.lock", "_commit.lock"]
    )


def test_null_and_escaped_partition_values(azurite: Any, container: str) -> None:
    data = orders(range(1, 31), regions=("EU/West", None, "a=b"))
    make_target(lake(container)).load(batches(data), SCHEMA, window=DAY, run_id="r")
    loc = open_location(f"abfs://{container}/lake", "azurite").child("orders")
    assert {f.split("/")[0] for f in committed_partitions(loc)} == {
        "region=EU%2FWest",
        "region=__HIVE_DEFAULT_PARTITION__",
        "region=a%3Db",
    }
    assert lake_rows(loc) == expected(data)


def test_replace_partition_replaces_only_the_folders_written(azurite: Any, container: str) -> None:
    first = orders(range(1, 61), regions=("EU", "US"))
    second = orders(range(1001, 1031), regions=("EU",), tag="b")
    tgt = lake(container, mode="replace_partition")
    make_target(tgt).load(batches(first), SCHEMA, window=DAY, run_id="r1")
    result = make_target(tgt).load(batches(second), SCHEMA, window=DAY2, run_id="r2")
    loc = open_location(f"abfs://{container}/lake", "azurite").child("orders")
    us_rows = first.filter(pa.compute.equal(first["region"], "US"))
    assert lake_rows(loc) == expected(us_rows, second)
    assert result.deleted == 30  # the EU rows of the first load


def test_append_rerun_of_an_interval_does_not_duplicate(azurite: Any, container: str) -> None:
    day1 = orders(range(1, 61))
    day2 = orders(range(101, 131), tag="d2")
    day1_again = orders(range(1, 41), regions=("EU", "US"), tag="rerun")  # APAC no longer has rows for day 1
    tgt = lake(container)
    make_target(tgt).load(batches(day1), SCHEMA, window=DAY, run_id="r1")
    make_target(tgt).load(batches(day2), SCHEMA, window=DAY2, run_id="r2")
    again = make_target(tgt).load(batches(day1_again), SCHEMA, window=DAY, run_id="r3")
    loc = open_location(f"abfs://{container}/lake", "azurite").child("orders")
    assert lake_rows(loc) == expected(day2, day1_again)
    assert again.deleted == 60
    # running the same interval twice leaves the lake as running it once
    make_target(tgt).load(batches(day1_again), SCHEMA, window=DAY, run_id="r4")
    assert lake_rows(loc) == expected(day2, day1_again)


def test_partition_column_missing_is_named(azurite: Any, container: str) -> None:
    tgt = target("azure_lake", "azurite", "orders", path=f"abfs://{container}/lake", partition_by=["country"])
    with pytest.raises(TargetSchemaError, match="partition_by names country, not in the data"):
        make_target(tgt).load(batches(orders(range(3))), SCHEMA, window=DAY, run_id="r")


def test_local_lake_folder(tmp_path: Path) -> None:
    """The same target on a local folder (development without Azure)."""
    data = orders(range(1, 41))
    tgt = target("azure_lake", None, "orders", path=str(tmp_path / "lake"), partition_by=["region", "day"])
    make_target(tgt).load(batches(data), SCHEMA, window=DAY, run_id="r1")
    make_target(tgt).load(batches(data), SCHEMA, window=DAY, run_id="r2")
    loc = open_location(str(tmp_path / "lake")).child("orders")
    assert lake_rows(loc) == expected(data)
    assert not (tmp_path / "lake" / "orders" / "_tmp").exists() or not any((tmp_path / "lake/orders/_tmp").iterdir())


CHILD = textwrap.dedent(
    """
    import sys, time, pathlib
    import pyarrow as pa
    sys.path.insert(0, {root!r})
    from tests.helpers import DAY, target
    from tests.integration.test_azure_lake import SCHEMA, orders
    from bulksync.targets import azure_lake
    from bulksync.targets.registry import make_target

    flag = pathlib.Path({flag!r})
    phase = {phase!r}
    real_marker = azure_lake.write_marker
    calls = []

    def slow_marker(*args, **kwargs):
        calls.append(1)
        if phase == "commit" and len(calls) == 2:  # one partition committed, the next one copied in
            flag.write_text("commit")
            time.sleep(120)
        return real_marker(*args, **kwargs)

    azure_lake.write_marker = slow_marker

    def gen():
        data = orders(range(1, 601))
        for i, b in enumerate(data.to_batches(max_chunksize=50)):
            if phase == "stream" and i == 6:
                flag.write_text("stream")
                time.sleep(120)
            yield b

    tgt = target("azure_lake", "azurite", "orders", path="abfs://{container}/lake", partition_by=["region", "day"],
                 row_group_rows=1000)
    make_target(tgt).load(gen, SCHEMA, window=DAY, run_id="killed")
    """
)


@pytest.mark.parametrize("phase", ["stream", "commit"])
def test_kill_during_lake_write_commits_no_half_partition(
    azurite: Any, container: str, tmp_path: Path, phase: str
) -> None:
    tgt = lake(container, row_group_rows=1000)
    before = orders(range(1, 601), tag="before")
    make_target(tgt).load(batches(before), SCHEMA, window=DAY, run_id="first")
    flag = tmp_path / "flag"
    script = CHILD.format(root=str(ROOT), flag=str(flag), phase=phase, container=container)
    kill_child_at_flag(script, flag, ROOT, timeout=60)

    loc = open_location(f"abfs://{container}/lake", "azurite").child("orders")
    committed = committed_partitions(loc)
    new = orders(range(1, 601))
    if phase == "stream":
        # nothing was committed: the lake holds exactly the first load
        assert lake_rows(loc) == expected(before)
    else:
        # every folder is either wholly the old content, wholly the new one, or not counted
        assert len(committed) == 5
        for marker in committed.values():  # each marker lists the files of one attempt only
            assert len({f["name"].split("-")[2] for f in marker["files"]}) == 1
        rows = lake_rows(loc)
        by_folder: dict[str, set[str]] = {}
        for r in rows:
            by_folder.setdefault(f"region={r[3]}/day={r[4]}", set()).add(r[2].split("-")[0])
        assert all(len(tags) == 1 for tags in by_folder.values()), by_folder
        assert sorted(by_folder) == sorted(committed)
    # the rerun of the interval commits everything, with no duplicates
    make_target(tgt).load(batches(new), SCHEMA, window=DAY, run_id="rerun")
    assert lake_rows(loc) == expected(new)
    assert len(committed_partitions(loc)) == 6
