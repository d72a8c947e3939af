"""File-drop benchmark: a CSV drop ingested by bulksync vs pyarrow's raw streaming CSV reader.

Each case runs in a fresh interpreter (peak RSS per case); imports happen before the clock.

* ``raw read``: ``pyarrow.csv.open_csv`` streaming the file, batches dropped (the reader alone);
* ``raw to Parquet``: the same streamed into one ``ParquetWriter`` (zstd): what a staging write costs;
* ``bulksync``: ``bulksync.stages.extract`` of a ``file_drop`` dataset: claim by rename, sha256 on the
  way, header / quote / encoding checks, the CSV reader's exact conversions, the per-file spool,
  staging Parquet, the ledger (SQLite) and the archive move;
* ``bulksync 4x``: the same on a file four times as large (peak memory must stay flat).

    .venv/bin/python bench/filedrop_bench.py [--rows 1000000] [--repeat 2]

Writes ``bench/RESULTS-filedrop.md``. Uses the Account CSV of ``bench/datagen.py`` (``bench/.data``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import datagen
from common import fastest, peak_rss_mib, run_on

BENCH = Path(__file__).resolve().parent
DATA = BENCH / ".data" / "filedrop"


def _raw(csv: Path, write: bool) -> dict[str, Any]:
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq
    from bulksync.spec.file_drop import FileDropOptions

    block = int(FileDropOptions.model_fields["block_size_mb"].default) << 20
    read = pacsv.ReadOptions(block_size=block)
    parse = pacsv.ParseOptions(newlines_in_values=True)
    convert = pacsv.ConvertOptions(
        column_types=datagen.arrow_schema(), strings_can_be_null=True, quoted_strings_can_be_null=False
    )
    out = DATA / "raw.parquet"
    rows = 0
    cpu = _cpu()
    started = time.perf_counter()
    reader = pacsv.open_csv(csv, read_options=read, parse_options=parse, convert_options=convert)
    if write:
        with pq.ParquetWriter(out, reader.schema, compression="zstd") as writer:
            for batch in reader:
                writer.write_batch(batch)
                rows += batch.num_rows
    else:
        for batch in reader:
            rows += batch.num_rows
    return {"seconds": time.perf_counter() - started, "cpu_seconds": _cpu() - cpu, "rows": rows}


def _bulksync(csv: Path) -> dict[str, Any]:
    import datetime as dt

    import bulksync.sources.file_drop.source  # noqa: F401 - imported before the clock
    from bulksync.spec.loader import parse_spec
    from bulksync.stages import RunContext, extract
    from bulksync.staging.partition import Window

    landing = DATA / "landing"
    shutil.rmtree(landing, ignore_errors=True)
    shutil.rmtree(DATA / "staging", ignore_errors=True)
    (DATA / "ledger.db").unlink(missing_ok=True)
    landing.mkdir(parents=True)
    os.link(csv, landing / "accounts.csv")  # a hard link: the claim renames it, the source file stays
    os.environ.update(
        {
            "BULKSYNC_STAGING_ROOT": str(DATA / "staging"),
            "AIRFLOW_CONN_BENCH_LEDGER": f"sqlite:///{DATA / 'ledger.db'}",
            "AIRFLOW_HOME": str(DATA / "airflow"),
        }
    )
    columns = [{"name": n, "type": t} for n, t in datagen.COLUMNS]
    spec = parse_spec(
        {
            "tenant": "bench",
            "pipeline": "filedrop",
            "start_date": "2024-06-01",
            "datasets": [
                {
                    "name": "accounts",
                    "source": {
                        "kind": "file_drop",
                        "options": {
                            "landing": str(landing),
                            "pattern": "*.csv",
                            "arrival": {"mode": "immediate"},
                            "columns": columns,
                        },
                    },
                    "target": {"kind": "sqlite", "conn_id": "bench_ledger", "table": "accounts"},
                }
            ],
        },
        "bench",
    )
    window = Window(dt.datetime(2024, 6, 1, tzinfo=dt.UTC), dt.datetime(2024, 6, 2, tzinfo=dt.UTC))
    cpu = _cpu()
    started = time.perf_counter()
    manifest = extract(spec, spec.datasets[0], RunContext("bench", window, 1))
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "cpu_seconds": _cpu() - cpu, "rows": manifest.rows}


def _cpu() -> float:
    """CPU seconds of this process, all threads (less sensitive than wall time to a busy machine)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def child(case: str, rows: int) -> None:
    DATA.mkdir(parents=True, exist_ok=True)
    csv = datagen.ensure_repeated(rows, 4) if case == "bulksync_4x" else datagen.ensure_csv(rows)
    if case == "raw_read":
        result = _raw(csv, write=False)
    elif case == "raw_parquet":
        result = _raw(csv, write=True)
    else:
        result = _bulksync(csv)
    result["peak_rss_mib"] = peak_rss_mib()
    result["file_mib"] = csv.stat().st_size / 2**20
    print(json.dumps(result))


def run_once(case: str, rows: int) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", case, "--rows", str(rows)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def run_all(rows: int, repeat: int) -> dict[str, dict[str, Any]]:
    """Every case ``repeat`` times, interleaved (a busy spell hurts all cases alike); best time per case."""
    runs: dict[str, list[dict[str, Any]]] = {case: [] for case in CASES}
    for _ in range(repeat):
        for case in CASES:
            runs[case].append(run_once(case, rows))
    return {case: fastest(results) for case, results in runs.items()}


CASES = {
    "raw_read": "pyarrow raw streaming reader (batches dropped)",
    "raw_parquet": "pyarrow raw streaming reader -> Parquet (zstd)",
    "bulksync": "bulksync file_drop extract -> staged Parquet",
    "bulksync_4x": "bulksync file_drop extract, 4x file",
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--child", choices=sorted(CASES))
    args = p.parse_args()
    if args.child:
        child(args.child, args.rows)
        return
    datagen.ensure_csv(args.rows)
    datagen.ensure_repeated(args.rows, 4)
    results = run_all(args.rows, args.repeat)
    raw, ours = results["raw_parquet"], results["bulksync"]
    lines = [
        "# File-drop benchmark",
        "",
        f"{run_on()}; Account CSV of {args.rows:,} rows ({raw['file_mib']:.0f} MiB), "
        f"18 columns (`bench/filedrop_bench.py`). Best of {args.repeat}, cases interleaved; each in a fresh "
        "interpreter, imports before the clock. The machine was shared with other work while this ran.",
        "",
        "| case | rows | seconds | MiB/s | CPU seconds | peak RSS MiB |",
        "|---|---|---|---|---|---|",
    ]
    for name, label in CASES.items():
        r = results[name]
        lines.append(
            f"| {label} | {r['rows']:,} | {r['seconds']:.2f} | {r['file_mib'] / r['seconds']:,.0f} | "
            f"{r['cpu_seconds']:.2f} | {r['peak_rss_mib']:,.0f} |"
        )
    speed = raw["seconds"] / ours["seconds"]
    read_only = results["raw_read"]["seconds"] / ours["seconds"]
    cpu_ratio = raw["cpu_seconds"] / ours["cpu_seconds"]
    lines += [
        "",
        f"bulksync throughput / raw streaming reader -> Parquet: **{speed:.2f}x** (goal >= 0.8x); "
        f"/ raw reader alone (no output): {read_only:.2f}x. In CPU time (all threads, steadier on a busy "
        f"machine): raw -> Parquet / bulksync = {cpu_ratio:.2f}x.",
        f"Peak RSS at 4x the file: {results['bulksync_4x']['peak_rss_mib']:,.0f} MiB vs "
        f"{ours['peak_rss_mib']:,.0f} MiB at 1x (flat: the file is streamed; a file's batches wait in a spool "
        "that spills to an Arrow IPC file beyond `spool_memory_mb`, 64 MiB by default).",
    ]
    (BENCH / "RESULTS-filedrop.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
