"""Azure staging benchmark: bulksync staging straight into a container (Azurite) vs the same Parquet
written to local disk first and then uploaded with the SDK's ``BlobClient.upload_blob``.

Both cases stage the same generated rows (order-like: ids, decimals, timestamps, text) with the same
Parquet settings (zstd, 256k-row groups); each runs in its own process (peak RSS per case), best of
``--repeat``. Needs Node.js and ``make azurite``.

    .venv/bin/python bench/azure_bench.py [--rows 2000000] [--repeat 2]

Writes ``bench/RESULTS-azure.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from common import fastest, peak_rss_mib, run_on

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
BATCH = 100_000


def batches(rows: int) -> Iterator[Any]:
    """Deterministic order-like record batches, generated one at a time (never the whole dataset)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    for lo in range(0, rows, BATCH):
        n = min(BATCH, rows - lo)
        ids = np.arange(lo + 1, lo + n + 1, dtype=np.int64)
        customer = pa.array((ids * 7919) % 100_003, pa.int32())
        yield pa.record_batch(
            {
                "id": ids,
                "customer_no": customer,
                "amount": pa.array((ids * 37) % 1_000_000, pa.int64())
                .cast(pa.decimal128(19, 0))
                .cast(pa.decimal128(12, 2)),
                "placed_at": pa.array(
                    np.datetime64("2026-01-01T00:00:00", "us") + ids.astype("timedelta64[s]"),
                    pa.timestamp("us", tz="UTC"),
                ),
                "status": pa.array(np.array(["open", "paid", "shipped", "cancelled"])[ids % 4]),
                "note": pc.binary_join_element_wise(
                    "order ", pc.cast(pa.array(ids), pa.string()), " for customer ", pc.cast(customer, pa.string()), ""
                ),
            }
        )


def _window() -> Any:
    from bulksync.staging.partition import Window

    return Window(dt.datetime(2026, 1, 1, tzinfo=dt.UTC), dt.datetime(2026, 1, 2, tzinfo=dt.UTC))


def _stage(root: str, rows: int, conn_id: str | None) -> tuple[Any, Any]:
    from bulksync.staging.partition import Partition
    from bulksync.staging.writer import PartitionWriter

    part = Partition(root, "bench", "azure", "orders", _window(), conn_id)
    first = next(batches(1))
    with PartitionWriter(part, "extract", first.schema, run_id="bench") as w:
        for b in batches(rows):
            w.write_batch(b)
        manifest = w.commit(window={"start": None, "end": None})
    return part, manifest


def case_bulksync(rows: int, conn: str, container: str) -> dict[str, Any]:
    """bulksync's PartitionWriter with an abfs:// staging root: parts streamed as blocks, manifest last."""
    import adlfs  # noqa: F401 - imported before the clock, as in a running worker
    from airflow.providers.microsoft.azure.hooks.wasb import WasbHook  # noqa: F401

    os.environ["AIRFLOW_CONN_BENCH_AZURE"] = conn
    started = time.perf_counter()
    _, manifest = _stage(f"abfs://{container}/staging", rows, "bench_azure")
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "rows": manifest.rows, "bytes": sum(f.bytes for f in manifest.files)}


def case_local_upload(rows: int, conn: str, container: str) -> dict[str, Any]:
    """The baseline: the same writer on local disk, then each part uploaded with ``upload_blob``."""
    from azure.storage.blob import BlobServiceClient

    cs = json.loads(conn)["extra"]["connection_string"]
    client = BlobServiceClient.from_connection_string(cs).get_container_client(container)
    tmp = Path(tempfile.mkdtemp(prefix="bulksync-bench-"))
    try:
        started = time.perf_counter()
        part, manifest = _stage(str(tmp), rows, None)
        written = time.perf_counter() - started
        folder = part.path
        for f in [*manifest.files, None]:
            name = f.path if f else "_manifest.json"
            with open(folder / name, "rb") as data:
                client.upload_blob(f"local-upload/{name}", data, overwrite=True)
        seconds = time.perf_counter() - started
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {
        "seconds": seconds,
        "write_seconds": written,
        "rows": manifest.rows,
        "bytes": sum(f.bytes for f in manifest.files),
    }


CASES = {"bulksync": case_bulksync, "local_upload": case_local_upload}


def child(case: str, rows: int, conn: str, container: str) -> None:
    for module in ("bulksync.staging.writer", "bulksync.storage.azure"):  # imports before the clock
        importlib.import_module(module)

    next(batches(1))
    result = CASES[case](rows, conn, container)
    result["peak_rss_mib"] = peak_rss_mib()
    print(json.dumps(result))


def run_case(case: str, rows: int, repeat: int, conn: str, service: Any) -> dict[str, Any]:
    runs: list[dict[str, Any]] = []
    for i in range(repeat):
        container = f"bench-{case.replace('_', '-')}-{i}"
        service.service_client().create_container(container)
        out = subprocess.run(
            [sys.executable, __file__, "--child", case, "--rows", str(rows), "--conn", conn, "--container", container],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONWARNINGS": "ignore", "PYTHONPATH": f"{REPO}:{REPO / 'include'}"},
        )
        service.service_client().delete_container(container)
        if out.returncode != 0:
            sys.exit(f"case {case} failed:\n{out.stderr[-3000:]}")
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return fastest(runs)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--rows", type=int, default=2_000_000)
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--child", choices=list(CASES))
    p.add_argument("--conn")
    p.add_argument("--container")
    args = p.parse_args()
    if args.child:
        child(args.child, args.rows, args.conn, args.container)
        return
    sys.path.insert(0, str(REPO))
    from tests.azurite import azurite_missing, start_azurite

    reason = azurite_missing()
    if reason:
        print(f"azure bench skipped: {reason}")
        return
    with start_azurite() as service:
        conn = service.airflow_conn()
        results = {case: run_case(case, args.rows, args.repeat, conn, service) for case in ("local_upload", "bulksync")}
    ratio = results["bulksync"]["seconds"] / results["local_upload"]["seconds"]
    load = os.getloadavg()[0]
    lines = [
        "# Azure staging benchmark",
        "",
        f"{run_on()}; {args.rows:,} generated order rows (6 columns) staged into Azurite "
        f"(npm `azurite`, on the same machine) (`bench/azure_bench.py`). Best of {args.repeat}; each case in a fresh "
        f"process, imports before the clock. Load average at the end: {load:.1f} (the machine was shared with "
        "other work while this ran; the ratio is what to compare).",
        "",
        "| case | seconds | rows/s | Parquet MiB | peak RSS MiB |",
        "|---|---|---|---|---|",
    ]
    for name, label in (
        ("bulksync", "bulksync staging on abfs:// (adlfs blocks, manifest last)"),
        ("local_upload", "local Parquet, then `upload_blob` per file (baseline)"),
    ):
        r = results[name]
        lines.append(
            f"| {label} | {r['seconds']:.1f} | {r['rows'] / r['seconds']:,.0f} | {r['bytes'] / 2**20:,.1f} "
            f"| {r['peak_rss_mib']:,.0f} |"
        )
    lines += [
        "",
        f"bulksync / (local write + upload) time: **{ratio:.2f}x**. The baseline's local write alone took "
        f"{results['local_upload']['write_seconds']:.1f} s; it needs local disk for the whole partition, "
        "bulksync buffers at most one row group and one 8 MiB block.",
    ]
    (BENCH / "RESULTS-azure.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
