"""The Azure demo: a client's order drops in a container → staging in a container → a SQLite warehouse,
then the warehouse table → a Hive-partitioned Parquet lake in a third container.

Meant for Azurite (``make demo-azure`` starts it), but any storage account reachable through a
``wasb`` connection works. The warehouse database (which also holds the file ledger) is recreated on
each run, so two runs give the same result.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import random
from pathlib import Path
from typing import Any

from bulksync.sandbox.demo import COUNTRIES, DEMO_DAY

log = logging.getLogger(__name__)

DROPS, STAGING, LAKE = "client-drops", "bulksync-staging", "lake"
FILES, ROWS_PER_FILE = 3, 1_000
COLUMNS = [
    {"name": "order_id", "type": "int64", "nullable": False},
    {"name": "country", "type": "string"},
    {"name": "amount", "type": "decimal(12,2)"},
    {"name": "placed_on", "type": "date"},
]


def order_files(files: int = FILES, rows: int = ROWS_PER_FILE) -> dict[str, bytes]:
    """Deterministic order CSV drops: ``orders_<n>.csv`` → content."""
    rng = random.Random(20260101)
    out = {}
    for n in range(1, files + 1):
        lines = ["order_id,country,amount,placed_on"]
        for i in range(rows):
            oid = n * 100_000 + i
            day = DEMO_DAY.date() - dt.timedelta(days=rng.randrange(3))
            lines.append(f"{oid},{rng.choice(COUNTRIES)},{rng.randrange(100, 99_999_99) / 100:.2f},{day}")
        out[f"orders_{n}.csv"] = ("\n".join(lines) + "\n").encode("utf-8")
    return out


def demo_spec(conn_id: str, warehouse_conn_id: str) -> Any:
    """The demo pipeline ``acme__azure``: ``orders`` (drop zone → SQLite) and ``orders_lake`` (→ lake)."""
    from bulksync.spec.loader import parse_spec

    return parse_spec(
        {
            "tenant": "acme",
            "pipeline": "azure",
            "start_date": "2026-01-01",
            "staging": {"root": f"abfs://{STAGING}/demo", "conn_id": conn_id},
            "datasets": [
                {
                    "name": "orders",
                    "source": {
                        "kind": "file_drop",
                        "conn_id": conn_id,
                        "options": {
                            "landing": f"abfs://{DROPS}/acme/orders",
                            "pattern": "orders_*.csv",
                            "arrival": {"mode": "trigger"},
                            "columns": COLUMNS,
                            "primary_key": ["order_id"],
                        },
                    },
                    "target": {
                        "kind": "sqlite",
                        "conn_id": warehouse_conn_id,
                        "table": "azure_orders",
                        "mode": "merge",
                        "keys": ["order_id"],
                    },
                },
                {
                    "name": "orders_lake",
                    "source": {"kind": "sql", "conn_id": warehouse_conn_id, "options": {"table": "azure_orders"}},
                    "transforms": [{"select": ["order_id", "country", "amount", "placed_on"]}],
                    "target": {
                        "kind": "azure_lake",
                        "conn_id": conn_id,
                        "path": f"abfs://{LAKE}/sales",
                        "table": "orders",
                        "mode": "replace_partition",
                        "partition_by": ["country"],
                    },
                },
            ],
        },
        "acme__azure (demo)",
    )


def run_azure_demo(conn_id: str, warehouse: Path) -> dict[str, Any]:
    """Upload the drops, run both datasets through the real stages and return what landed where.

    Args:
        conn_id: the ``wasb`` connection of the storage account (Azurite in ``make demo``).
        warehouse: the SQLite warehouse file (recreated); also the connection ``demo_azure_warehouse``.
    """
    import os

    from airflow.providers.microsoft.azure.hooks.wasb import WasbHook
    from azure.core.exceptions import ResourceExistsError

    from bulksync import stages
    from bulksync.staging.partition import Window
    from bulksync.storage import open_location
    from bulksync.storage.hive import committed_partitions

    warehouse.parent.mkdir(parents=True, exist_ok=True)
    warehouse.unlink(missing_ok=True)
    os.environ["AIRFLOW_CONN_DEMO_AZURE_WAREHOUSE"] = f"sqlite:///{warehouse}"
    service = WasbHook(wasb_conn_id=conn_id).get_conn()
    for name in (DROPS, STAGING, LAKE):
        with contextlib.suppress(ResourceExistsError):
            service.create_container(name)
    drops = service.get_container_client(DROPS)
    for name, data in order_files().items():
        drops.upload_blob(f"acme/orders/{name}", data, overwrite=True)
        drops.upload_blob(f"acme/orders/{name}.done", b"", overwrite=True)
    log.info("uploaded %d order drops with trigger blobs to %s/acme/orders", FILES, DROPS)

    spec = demo_spec(conn_id, "demo_azure_warehouse")
    window = Window(DEMO_DAY, DEMO_DAY + dt.timedelta(days=1))
    summary: dict[str, Any] = {}
    for ds in spec.datasets:
        ctx = stages.RunContext(run_id="demo-azure", window=window, try_number=1)
        stages.extract(spec, ds, ctx)
        stages.transform(spec, ds, ctx)
        result = stages.load(spec, ds, ctx)
        stages.reconcile(spec, ds, ctx)
        summary[ds.name] = result.inserted + result.updated
    summary["archived"] = sorted(
        b.name for b in drops.list_blobs(name_starts_with="acme/orders/archive/") if not b.name.endswith(".done")
    )
    lake = open_location(f"abfs://{LAKE}/sales/orders", conn_id)
    summary["lake_partitions"] = {k: v["rows"] for k, v in sorted(committed_partitions(lake).items())}
    return summary
