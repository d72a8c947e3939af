"""IBM i extraction benchmark: order lines from PostgreSQL (the IBM-i-shaped sample library) into
staged Parquet, bulksync's ``ibmi`` source against ``pandas.read_sql`` + ``DataFrame.to_parquet``.

Each case runs in a fresh interpreter and reports its wall time and peak RSS. bulksync runs the
whole path a real extract runs (catalogue, ``FOR READ ONLY`` select, conversions of the CYYMMDD
delivery date and the CHGDAT + CHGTIM change timestamp, zstd Parquet parts and manifest); pandas
only reads the raw columns and writes them. Both are measured at the full size and at a tenth of
it, to show whether memory grows with the data.

    .venv/bin/python bench/ibmi_bench.py                 # 1,000,000 order lines (about 3 minutes)
    .venv/bin/python bench/ibmi_bench.py --rows 200000   # a quick run
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from common import peak_rss_mib

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
DATA = BENCH_DIR / ".data" / "ibmi"
RESULTS = BENCH_DIR / "RESULTS-ibmi.md"
PG = os.environ.get("BULKSYNC_BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
DB = "bulksync_ibmi_bench"
COLUMNS = [
    {"name": "DLVDAT", "convert": "date", "date_format": "CYYMMDD", "rename": "DELIVERY_DATE"},
    {"name": "CHGDAT", "convert": "timestamp", "date_format": "CYYMMDD", "time_column": "CHGTIM", "rename": "CHANGED"},
]


def _url(db: str = DB) -> str:
    return PG.replace("postgresql://", "postgresql+psycopg://") + f"/{db}"


# -- cases (run in a child interpreter) ----------------------------------------------------------


def case_bulksync(rows: int, out: Path) -> dict[str, Any]:
    os.environ["AIRFLOW_CONN_IBMI_BENCH"] = f"{PG}/{DB}"
    os.environ["BULKSYNC_STAGING_ROOT"] = str(out)
    from bulksync.ibmi.extract import extract_ibmi, source_spec
    from bulksync.staging.partition import Window

    spec = source_spec(
        "ibmi_bench",
        {"query": f'SELECT * FROM "ACMELIB"."ORDLIN" WHERE "LINSEQ" <= {rows}', "columns": COLUMNS},
    )
    manifest = extract_ibmi(spec, tenant="bench", pipeline="ibmi", dataset="ordlin", window=Window(), run_id="bench")
    return {"rows": manifest.rows, "bytes": sum(f.bytes for f in manifest.files)}


def case_pandas(rows: int, out: Path) -> dict[str, Any]:
    import pandas as pd
    import sqlalchemy as sa

    engine = sa.create_engine(_url())
    df = pd.read_sql(sa.text(f'SELECT * FROM "ACMELIB"."ORDLIN" WHERE "LINSEQ" <= {rows}'), engine)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "ordlin.parquet"
    df.to_parquet(path, compression="zstd")
    return {"rows": len(df), "bytes": path.stat().st_size}


CASES = {"bulksync": case_bulksync, "pandas": case_pandas}


def _warm_up(name: str) -> None:
    """Run the case once on 1,000 rows before the clock starts: the timing is the extract, not Python's
    (lazy) imports, which a long-running worker pays once."""
    out = DATA / f"{name}-warm-up"
    CASES[name](1_000, out)
    shutil.rmtree(out, ignore_errors=True)


def child(name: str, rows: int) -> None:
    out = DATA / f"{name}-{rows}"
    shutil.rmtree(out, ignore_errors=True)
    _warm_up(name)
    started = time.perf_counter()
    result = CASES[name](rows, out)
    result["seconds"] = time.perf_counter() - started
    result["peak_rss_mib"] = peak_rss_mib()
    shutil.rmtree(out, ignore_errors=True)
    print(json.dumps(result))


# -- the run -------------------------------------------------------------------------------------


def prepare(rows: int) -> None:
    """Create the bench database with the sample library of ``rows`` order lines (kept if already there)."""
    import sqlalchemy as sa

    admin = sa.create_engine(_url("postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.exec_driver_sql(f"SELECT 1 FROM pg_database WHERE datname = '{DB}'").scalar()
        if not exists:
            conn.exec_driver_sql(f'CREATE DATABASE "{DB}"')
    admin.dispose()
    engine = sa.create_engine(_url())
    with engine.connect() as conn:
        try:
            have = conn.exec_driver_sql('SELECT count(*) FROM "ACMELIB"."ORDLIN"').scalar()
        except sa.exc.ProgrammingError:
            have = 0
    engine.dispose()
    if have != rows:
        from bulksync.sandbox.ibmi import build

        started = time.perf_counter()
        build(_url(), rows)
        print(f"loaded {rows:,} order lines into {DB} in {time.perf_counter() - started:.0f}s", flush=True)


def run_case(name: str, rows: int) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, __file__, "--case", name, "--rows", str(rows)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO / "include")},
        check=False,
    )
    if proc.returncode:
        raise SystemExit(f"case {name} failed:\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"{name:9} {rows:>9,} rows  {result['seconds']:6.1f} s  {result['peak_rss_mib']:7.0f} MiB", flush=True)
    return result


def report(rows: int, results: dict[tuple[str, int], dict[str, Any]], note: str) -> str:
    small = rows // 10
    b, p = results[("bulksync", rows)], results[("pandas", rows)]
    bs, ps = results[("bulksync", small)], results[("pandas", small)]
    speed = p["seconds"] / b["seconds"]
    lines = [
        "# IBM i extraction benchmark",
        "",
        f"Run {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC on {platform.node()}: {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}. `make bench` (or `.venv/bin/python bench/ibmi_bench.py`).",
        "",
        "Order lines (`ACMELIB/ORDLIN`, 10 columns: packed decimals, CHAR, CYYMMDD and HHMMSS numbers) from the",
        "sample library in PostgreSQL into staged Parquet (zstd). **bulksync**: the `ibmi` source through the",
        "driver's server-side cursor, 50,000-row batches, the CYYMMDD delivery date and the CHGDAT + CHGTIM pair",
        "converted to date / timestamp, committed partition with manifest. **pandas**: `pandas.read_sql` of the",
        "same rows + `DataFrame.to_parquet` (no conversions at all). Each case in a fresh interpreter; the time",
        "is the case itself (after a warm-up run of 1,000 rows that pays the imports), the peak RSS that of the",
        "whole process.",
        "",
        "| case | rows | seconds | rows/s | peak RSS (MiB) | Parquet (MiB) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for (name, n), r in sorted(results.items(), key=lambda kv: (-kv[0][1], kv[0][0])):
        lines.append(
            f"| {name} | {n:,} | {r['seconds']:.1f} | {n / r['seconds']:,.0f} | {r['peak_rss_mib']:.0f} | "
            f"{r['bytes'] / 2**20:.1f} |"
        )
    lines += [
        "",
        f"- **Speed**: bulksync is **{speed:.1f}x** as fast as pandas at {rows:,} rows (goal: at least 2x).",
        f"- **Memory**: bulksync peaks at {b['peak_rss_mib']:.0f} MiB for {rows:,} rows and "
        f"{bs['peak_rss_mib']:.0f} MiB for {small:,} ({b['peak_rss_mib'] / bs['peak_rss_mib']:.2f}x for 10x the "
        f"rows); pandas at {p['peak_rss_mib']:.0f} and {ps['peak_rss_mib']:.0f} MiB "
        f"({p['peak_rss_mib'] / ps['peak_rss_mib']:.2f}x).",
        "  The difference is the staging writer's row-group buffer (256k rows), which a 100,000-row extract never",
        "  fills: bulksync's memory is bounded by the fetch batch and the row group, not by the data.",
        f"- {note}",
        "- No IBM i here: the emulating PostgreSQL stands in for it, so the figures measure everything above the",
        "  driver. Against an IBM i the ODBC driver's block fetch replaces psycopg's server-side cursor.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--case", choices=sorted(CASES))
    parser.add_argument("--note", default="The machine is shared (2 CPUs): figures were taken while other work ran.")
    args = parser.parse_args()
    if args.case:
        child(args.case, args.rows)
        return
    prepare(args.rows)
    results = {}
    for n in (args.rows // 10, args.rows):
        for name in CASES:
            results[(name, n)] = run_case(name, n)
    text = report(args.rows, results, args.note)
    RESULTS.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
