"""A lake partition switch killed half-way (SIGKILL of a real process, Azurite, real SDK): a plain
``pyarrow.dataset(partitioning="hive")`` reader, which ignores ``_SUCCESS``, never sees two versions of an
interval's rows together; :func:`committed_dataset` sees committed files only; the next load removes the
killed attempt's ``_tmp/`` files; two loads of one interval at once end exact.
"""

from __future__ import annotations

import textwrap
import threading
from pathlib import Path
from typing import Any

import pyarrow.dataset as pads
import pytest

from bulksync.storage.hive import committed_dataset, committed_partitions
from bulksync.storage.location import open_location
from bulksync.targets.registry import make_target
from tests.helpers import DAY, batches, kill_child_at_flag
from tests.integration.test_azure_lake import DAY2, SCHEMA, expected, lake, lake_rows, orders

ROOT = Path(__file__).resolve().parents[2]

CHILD = textwrap.dedent(
    """
    import sys, time, pathlib
    sys.path.insert(0, {root!r})
    from tests.helpers import DAY, target
    from tests.integration.test_azure_lake import SCHEMA, orders
    from bulksync.targets.azure_lake import AzureLakeTarget
    from bulksync.targets.registry import make_target

    flag, phase = pathlib.Path({flag!r}), {phase!r}
    real_place = AzureLakeTarget._place
    calls = []

    def place(src, dst, size):
        real_place(src, dst, size)
        calls.append(1)
        if phase == "switch" and len(calls) == 2:  # the second partition's new file is in, its marker is not
            flag.write_text("switch")
            time.sleep(120)

    AzureLakeTarget._place = staticmethod(place)

    def gen():
        for i, b in enumerate(orders(range(1, 601)).to_batches(max_chunksize=50)):
            yield b

    tgt = target("azure_lake", "azurite", "orders", path="abfs://{container}/lake", partition_by=["region", "day"],
                 row_group_rows=1000)
    make_target(tgt).load(gen, SCHEMA, window=DAY, run_id="killed")
    """
)


def plain_reader_rows(loc: Any) -> list[tuple[Any, ...]]:
    """What a reader that ignores ``_SUCCESS`` sees: every Parquet file under the table."""
    data = pads.dataset(loc.path, filesystem=loc.fs, format="parquet", partitioning="hive").to_table()
    return [(r["id"], r["note"], r["region"], str(r["day"])) for r in data.to_pylist()]


def kill_load(container: str, tmp_path: Path, phase: str) -> None:
    flag = tmp_path / f"flag-{phase}"
    script = CHILD.format(root=str(ROOT), flag=str(flag), phase=phase, container=container)
    kill_child_at_flag(script, flag, ROOT, timeout=90)


def test_a_killed_partition_switch_never_shows_old_and_new_rows_together(
    azurite: Any, container: str, tmp_path: Path
) -> None:
    tgt = lake(container, row_group_rows=1000)
    before = orders(range(1, 601), tag="before")
    make_target(tgt).load(batches(before), SCHEMA, window=DAY, run_id="first")
    loc = open_location(f"abfs://{container}/lake", "azurite").child("orders")

    kill_load(container, tmp_path, "switch")

    seen = plain_reader_rows(loc)
    ids = [r[0] for r in seen]
    assert len(ids) == len(set(ids)) <= 600  # before the fix: old and new files of a folder, 700 rows
    by_folder: dict[tuple[str, str], set[str]] = {}
    for _, note, region, day in seen:
        by_folder.setdefault((region, day), set()).add(note.split("-")[0])
    assert all(len(tags) == 1 for tags in by_folder.values()), by_folder
    # the marker readers: five folders committed (one new, four old), the one being switched absent
    committed = committed_partitions(loc)
    assert len(committed) == 5
    dataset = committed_dataset(f"abfs://{container}/lake/orders", "azurite")
    got = dataset.to_table()
    assert got.num_rows == sum(m["rows"] for m in committed.values()) == 500
    assert sorted(got.column("id").to_pylist()) == sorted(r[0] for r in lake_rows(loc))

    # the killed attempt left its files under _tmp/; the next load, even of another interval, removes them
    # (nobody holds the killed interval's lock: its holder's process is gone, its lease is broken at once)
    client = azurite.service_client().get_container_client(container)
    assert list(client.list_blobs(name_starts_with="lake/orders/_tmp/"))
    other = orders(range(1001, 1031), tag="d2")
    make_target(tgt).load(batches(other), SCHEMA, window=DAY2, run_id="other-interval")
    assert list(client.list_blobs(name_starts_with="lake/orders/_tmp/")) == []

    new = orders(range(1, 601))
    make_target(tgt).load(batches(new), SCHEMA, window=DAY, run_id="rerun")  # takes over at once: holder dead
    assert lake_rows(loc) == expected(new, other)
    assert sorted(plain_reader_rows(loc)) == sorted(
        (r["id"], r["note"], r["region"], r["day"].isoformat()) for t in (new, other) for r in t.to_pylist()
    )


def test_two_loads_of_one_interval_at_once_end_exact(tmp_path: Path) -> None:
    """On a local lake folder: two threads load the same interval; the second waits for the first."""
    from tests.helpers import target

    tgt = target("azure_lake", None, "orders", path=str(tmp_path / "lake"), partition_by=["region", "day"])
    data = [orders(range(1, 301), tag="a"), orders(range(1, 301), tag="b")]
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def load(t: Any) -> None:
        try:
            start.wait()
            make_target(tgt).load(batches(t), SCHEMA, window=DAY, run_id="r")
        except BaseException as exc:  # noqa: BLE001 - asserted below
            errors.append(exc)

    threads = [threading.Thread(target=load, args=(t,)) for t in data]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    loc = open_location(str(tmp_path / "lake")).child("orders")
    rows = lake_rows(loc)
    assert rows in (expected(data[0]), expected(data[1]))  # one of the two, whole; never both
    assert sorted(plain_reader_rows(loc)) == sorted((r[0], r[2], r[3], r[4]) for r in rows)


@pytest.fixture(autouse=True)
def _env(env: pytest.MonkeyPatch) -> None:
    return None
