"""The Azure demo (``make demo-azure``) on Azurite: every dropped order row reaches the SQLite warehouse,
and the lake's committed partitions hold exactly the warehouse's rows."""

from __future__ import annotations

import csv
import io
import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest

from bulksync.sandbox.azure_demo import LAKE, order_files, run_azure_demo
from bulksync.storage import open_location
from bulksync.storage.hive import read_committed
from tests.azurite import CONN_ID, Azurite


def test_azure_demo(env: pytest.MonkeyPatch, azurite: Azurite, tmp_path: Path) -> None:
    client = azurite.service_client()
    for name in ("client-drops", "bulksync-staging", LAKE):  # the demo creates its containers
        if client.get_container_client(name).exists():
            client.delete_container(name)
    result = run_azure_demo(CONN_ID, tmp_path / "wh.db")

    dropped = sorted(
        (int(r["order_id"]), r["country"], Decimal(r["amount"]), r["placed_on"])
        for data in order_files().values()
        for r in csv.DictReader(io.StringIO(data.decode()))
    )
    con = sqlite3.connect(tmp_path / "wh.db")
    try:
        rows = con.execute("SELECT order_id, country, amount, placed_on FROM azure_orders ORDER BY order_id").fetchall()
    finally:
        con.close()
    assert [(i, c, Decimal(str(a)).quantize(Decimal("0.01")), str(d)) for i, c, a, d in rows] == dropped
    assert result["orders"] == result["orders_lake"] == len(dropped)
    assert [n.rsplit("/", 1)[-1] for n in result["archived"]] == sorted(order_files())

    lake = read_committed(open_location(f"abfs://{LAKE}/sales/orders", CONN_ID))
    assert lake is not None
    got = sorted(
        (r["order_id"], r["country"], Decimal(str(r["amount"])), str(r["placed_on"])) for r in lake.to_pylist()
    )
    assert got == dropped
    assert result["lake_partitions"] == {
        f"country={c}": sum(1 for r in dropped if r[1] == c) for c in sorted({r[1] for r in dropped})
    }
