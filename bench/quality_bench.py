"""Quality-gate benchmark: bulksync's GX gate vs the same checks hand-written in pandas.

Runs after ``bench/run.py`` (it validates the partition that run staged). Each case runs in its own
process so peak RSS is per case; imports (Great Expectations takes seconds) happen before the clock.

    .venv/bin/python bench/quality_bench.py [--rows 2000000] [--repeat 2]

Writes ``bench/RESULTS-quality.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from common import fastest, peak_rss_mib, run_on

BENCH = Path(__file__).resolve().parent
DATA = BENCH / ".data"
SUITE = "bench_accounts"
EXPECTATIONS: list[dict[str, Any]] = [
    {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "Id"}},
    {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "Id"}},
    {"type": "expect_column_value_lengths_to_equal", "kwargs": {"column": "Id", "value": 18}},
    {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "Name"}},
    {
        "type": "expect_column_values_to_be_in_set",
        "kwargs": {
            "column": "Type",
            "value_set": [
                "Installation Partner",
                "Prospect",
                "Channel Partner / Reseller",
                "Other",
                "Customer - Channel",
                "Technology Partner",
                "Customer - Direct",
            ],
        },
    },
    {
        "type": "expect_column_values_to_be_in_set",
        "kwargs": {"column": "BillingCountry", "value_set": ["DE", "GB", "US", "FR", "CA"]},
    },
    {
        "type": "expect_column_values_to_be_between",
        "kwargs": {"column": "AnnualRevenue", "min_value": 0, "max_value": 10_000_000_000},
    },
    {
        "type": "expect_column_values_to_be_between",
        "kwargs": {"column": "NumberOfEmployees", "min_value": 0, "max_value": 1_000_000},
    },
    {"type": "expect_column_values_to_match_regex", "kwargs": {"column": "Phone", "regex": r"^\(\d{3}\) \d{3}-\d{4}$"}},
    {"type": "expect_column_values_to_match_regex", "kwargs": {"column": "AccountNumber", "regex": r"^CD\d{6}$"}},
    {"type": "expect_column_value_lengths_to_equal", "kwargs": {"column": "BillingPostalCode", "value": 5}},
    {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "IsDeleted"}},
    {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 1, "max_value": 10_000_000}},
]
COLUMNS = sorted({e["kwargs"]["column"] for e in EXPECTATIONS if "column" in e["kwargs"]})


def partition_dir(rows: int) -> Path:
    found = sorted((DATA / "staging" / "bench" / f"accounts_{rows}_x1" / "accounts").glob("*/_manifest.json"))
    if not found:
        sys.exit(f"no staged partition for {rows} rows: run `bench/run.py --rows {rows} --cases csv` first")
    return found[-1].parent


def case_bulksync(rows: int) -> dict[str, Any]:
    """The quality gate as a task runs it: read the suite's columns, GX validate, persist results."""
    import datetime as dt

    import great_expectations  # noqa: F401 - imported before the clock, as in a running worker
    from bulksync.quality.gate import run_gate
    from bulksync.spec.loader import parse_spec
    from bulksync.staging.partition import Partition, Window
    from bulksync.staging.reader import read_manifest

    (DATA / "expectations").mkdir(parents=True, exist_ok=True)
    (DATA / "expectations" / f"{SUITE}.json").write_text(json.dumps({"name": SUITE, "expectations": EXPECTATIONS}))
    os.environ.update(
        {
            "BULKSYNC_EXPECTATIONS_DIR": str(DATA / "expectations"),
            "BULKSYNC_REPORTS_ROOT": str(DATA / "reports"),
            "AIRFLOW_HOME": str(DATA / "airflow"),
        }
    )
    spec = parse_spec(
        {
            "tenant": "bench",
            "pipeline": f"accounts_{rows}_x1",
            "start_date": "2024-06-01",
            "datasets": [
                {
                    "name": "accounts",
                    "source": {"kind": "sql", "conn_id": "x", "options": {"table": "t"}},
                    "quality": {"suite": SUITE, "on_failure": "warn"},
                    "target": {"kind": "postgres", "conn_id": "x", "table": "t"},
                }
            ],
        },
        "bench",
    )
    window = Window(dt.datetime(2024, 6, 1, tzinfo=dt.UTC), dt.datetime(2024, 6, 2, tzinfo=dt.UTC))
    part = Partition(str(DATA / "staging"), "bench", f"accounts_{rows}_x1", "accounts", window)
    manifest = read_manifest(part, "extract")
    started = time.perf_counter()
    quality, _, _ = run_gate(spec, spec.datasets[0], part, manifest, "bench")
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "rows": quality.rows_checked,
        "failed": sorted((o.expectation, o.column, o.unexpected_count) for o in quality.failed),
    }


def case_pandas(rows: int) -> dict[str, Any]:
    """What an engineer would write by hand: read the columns into pandas, one vectorised check each."""
    import pandas as pd
    import pyarrow.parquet as pq

    folder = partition_dir(rows)
    started = time.perf_counter()
    df = pd.concat(
        [pq.read_table(p, columns=COLUMNS).to_pandas() for p in sorted(folder.glob("part-*.parquet"))],
        ignore_index=True,
    )
    failed = []
    for exp in EXPECTATIONS:
        kw, kind = exp["kwargs"], exp["type"]
        col = df[kw["column"]] if "column" in kw else None
        present = col.dropna() if col is not None else None
        if kind == "expect_column_values_to_not_be_null":
            bad = int(col.isna().sum())
        elif kind == "expect_column_values_to_be_unique":
            bad = int(present.duplicated(keep=False).sum())
        elif kind == "expect_column_value_lengths_to_equal":
            bad = int((present.str.len() != kw["value"]).sum())
        elif kind == "expect_column_values_to_be_in_set":
            bad = int((~present.isin(kw["value_set"])).sum())
        elif kind == "expect_column_values_to_be_between":
            num = pd.to_numeric(present)
            bad = int(((num < kw["min_value"]) | (num > kw["max_value"])).sum())
        elif kind == "expect_column_values_to_match_regex":
            bad = int((~present.str.match(kw["regex"])).sum())
        else:  # row count
            bad = 0 if kw["min_value"] <= len(df) <= kw["max_value"] else 1
        if bad:
            failed.append((kind, kw.get("column"), bad))
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "rows": len(df), "failed": sorted(failed)}


def child(case: str, rows: int) -> None:
    result = {"bulksync": case_bulksync, "pandas": case_pandas}[case](rows)
    result["peak_rss_mib"] = peak_rss_mib()
    print(json.dumps(result, default=str))


def run_case(case: str, rows: int, repeat: int) -> dict[str, Any]:
    runs: list[dict[str, Any]] = []
    for _ in range(repeat):
        out = subprocess.run(
            [sys.executable, __file__, "--child", case, "--rows", str(rows)],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONWARNINGS": "ignore"},
        )
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return fastest(runs)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--rows", type=int, default=2_000_000)
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--child", choices=["bulksync", "pandas"])
    args = p.parse_args()
    if args.child:
        child(args.child, args.rows)
        return
    partition_dir(args.rows)
    results = {case: run_case(case, args.rows, args.repeat) for case in ("pandas", "bulksync")}
    same = [tuple(x) for x in results["bulksync"]["failed"]] == [tuple(x) for x in results["pandas"]["failed"]]
    ratio = results["bulksync"]["seconds"] / results["pandas"]["seconds"]
    lines = [
        "# Quality-gate benchmark",
        "",
        f"{run_on()}; {args.rows:,} staged Account rows, {len(EXPECTATIONS)} expectations "
        f"over {len(COLUMNS)} columns (`bench/quality_bench.py`). Best of {args.repeat}; imports before the clock.",
        "",
        "| case | seconds | rows/s | peak RSS MiB |",
        "|---|---|---|---|",
    ]
    for name, label in (
        ("bulksync", "bulksync gate (GX Core, results + Data Docs written)"),
        ("pandas", "hand-written pandas checks"),
    ):
        r = results[name]
        lines.append(f"| {label} | {r['seconds']:.1f} | {r['rows'] / r['seconds']:,.0f} | {r['peak_rss_mib']:,.0f} |")
    lines += [
        "",
        f"bulksync / pandas time: **{ratio:.2f}x** (goal <= 2x). "
        f"Both found the same failures: {'yes' if same else 'NO'} {results['pandas']['failed']}.",
    ]
    (BENCH / "RESULTS-quality.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
