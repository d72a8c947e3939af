"""Run the bulksync benchmarks and write ``bench/RESULTS.md``.

Usage::

    .venv/bin/python bench/run.py                    # 2M rows, both cases, with the 8x memory test
    .venv/bin/python bench/run.py --rows 200000 --skip-8x --cases csv

Case 1 (``csv``): CSV -> staged Parquet with bulksync, raw pyarrow and pandas.
Case 2 (``pg``): staged Parquet -> PostgreSQL with bulksync, psql ``\\copy``, dlt and ``to_sql``.
"""

from __future__ import annotations

import argparse
import logging
import re
import shutil
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import datagen
from benchcfg import BENCH_DIR, DLT_DIR, OUTPUT_DIR, PG_DB, pipeline_name
from cases_pg import psql
from harness import QUIET_BUSY, BenchError, Settings, run_case, run_repeated
from report import machine_info, observations, render

log = logging.getLogger("bench")

Result = dict[str, Any]
CASE_NAMES = ("csv", "pg")
SMALL_BLOCK_MB = 4


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=2_000_000, help="rows of the generated CSV (default 2,000,000)")
    p.add_argument("--skip-8x", action="store_true", help="skip the 8x-size memory test of case 1")
    p.add_argument("--cases", default="csv,pg", help="comma-separated cases to run: csv, pg (default both)")
    p.add_argument(
        "--repeat", type=int, default=3, help="runs of the short cases (1x CSV, append, \\copy); the fastest counts"
    )
    p.add_argument(
        "--quiet-wait",
        type=float,
        default=300.0,
        help="seconds to wait before each case for other processes to leave the CPUs idle (default 300)",
    )
    p.add_argument("--to-sql-rows", type=int, default=50_000, help="subset size of the to_sql case")
    p.add_argument("--to-sql-chunksize", type=int, default=1_000, help="to_sql chunksize")
    p.add_argument("--keep-db", action="store_true", help="do not drop the bench database at the end")
    p.add_argument("--output", type=Path, default=BENCH_DIR / "RESULTS.md", help="markdown report path")
    args = p.parse_args(argv)
    if args.repeat < 1:
        p.error("--repeat must be at least 1")
    args.case_set = {c.strip() for c in args.cases.split(",") if c.strip()}
    unknown = args.case_set - set(CASE_NAMES)
    if unknown:
        p.error(f"unknown case(s) {sorted(unknown)}; choose from {', '.join(CASE_NAMES)}")
    return args


def generate(rows: int, factor: int) -> Path:
    """The input CSV (generated in a subprocess on first use, then reused)."""
    return Path(run_case("generate", {"rows": rows, "factor": factor}, tag=f"generate_x{factor}")["csv"])


def run_csv_cases(args: argparse.Namespace, csv1: Path) -> dict[str, Result]:
    """Case 1 at 1x (bulksync, raw, pandas; fastest of ``--repeat`` runs) and, unless skipped, once at
    8x (bulksync, raw). The 8x file is generated after the 1x runs.

    bulksync runs with the spec defaults, and once more with ``block_size_mb: SMALL_BLOCK_MB`` to
    show how the CSV block size drives its peak memory.
    """
    out: dict[str, Result] = {}
    out.update(_csv_runs(args, csv1, 1, args.repeat))
    if not args.skip_8x:
        out.update(_csv_runs(args, generate(args.rows, 8), 8, 1))
    return out


def _csv_runs(args: argparse.Namespace, csv: Path, factor: int, times: int) -> dict[str, Result]:
    name = pipeline_name(args.rows, factor)
    cases: dict[str, tuple[str, dict[str, Any]]] = {
        f"bulksync_x{factor}": ("csv_bulksync", {"csv": str(csv), "pipeline": name}),
        f"bulksync_small_x{factor}": (
            "csv_bulksync",
            {"csv": str(csv), "pipeline": f"{name}_small_blocks", "block_size_mb": SMALL_BLOCK_MB},
        ),
        f"arrow_x{factor}": ("csv_arrow", {"csv": str(csv), "out": str(OUTPUT_DIR / f"arrow_{name}.parquet")}),
    }
    if factor == 1:
        cases["pandas_x1"] = ("csv_pandas", {"csv": str(csv), "out": str(OUTPUT_DIR / f"pandas_{name}.parquet")})
    return {key: run_repeated(case, params, tag=f"csv_{key}", times=times) for key, (case, params) in cases.items()}


def _count(table: str) -> int:
    return int(psql(f"SELECT count(*) FROM {table}"))


def _pg_case(
    case: str, params: dict[str, Any], *, tag: str, table: str, times: int = 1, reset: str | None = None
) -> Result:
    """A PostgreSQL case after a CHECKPOINT (and ``reset`` SQL), run ``times`` times; counts the table after."""

    def before() -> None:
        if reset:
            psql(reset)
        psql("CHECKPOINT")

    result = run_repeated(case, params, tag=tag, times=times, before=before)
    result["table_rows"] = _count(table)
    return result


def _bulksync_loads(base: dict[str, Any], times: int) -> dict[str, Result]:
    merge = {**base, "table": "accounts_merge", "mode": "merge", "keys": ["Id"]}
    return {
        "bulksync_append": _pg_case(
            "pg_bulksync",
            {**base, "table": "accounts", "mode": "append"},
            tag="pg_bulksync_append",
            table='"accounts"',
            times=times,
            reset='DROP TABLE IF EXISTS "accounts"',
        ),
        "bulksync_merge_insert": _pg_case(
            "pg_bulksync", merge, tag="pg_bulksync_merge_insert", table='"accounts_merge"'
        ),
        "bulksync_merge_update": _pg_case(
            "pg_bulksync", merge, tag="pg_bulksync_merge_update", table='"accounts_merge"'
        ),
    }


def _psql_copies(csv1: Path, times: int) -> dict[str, Result]:
    return {
        "psql_pk": _pg_case(
            "pg_psql_copy",
            {"csv": str(csv1), "table": "accounts_raw", "primary_key": True},
            tag="pg_psql_pk",
            table='"accounts_raw"',
            times=times,
        ),
        "psql_nopk": _pg_case(
            "pg_psql_copy",
            {"csv": str(csv1), "table": "accounts_raw_nopk", "primary_key": False},
            tag="pg_psql_nopk",
            table='"accounts_raw_nopk"',
            times=times,
        ),
    }


def _dlt_loads(files: list[str]) -> dict[str, Result]:
    shutil.rmtree(DLT_DIR / "pipelines", ignore_errors=True)
    replace = {"files": files, "table": "accounts_dlt", "disposition": "replace", "pipeline_name": "bench_replace"}
    merge = {"files": files, "table": "accounts_dlt_merge", "disposition": "merge", "pipeline_name": "bench_merge"}
    return {
        "dlt_replace": _pg_case("pg_dlt", replace, tag="pg_dlt_replace", table="dlt_bench.accounts_dlt"),
        "dlt_merge_insert": _pg_case("pg_dlt", merge, tag="pg_dlt_merge_insert", table="dlt_bench.accounts_dlt_merge"),
        "dlt_merge_update": _pg_case("pg_dlt", merge, tag="pg_dlt_merge_update", table="dlt_bench.accounts_dlt_merge"),
    }


FINGERPRINT_COLUMNS = [
    "Id",
    "AnnualRevenue",
    "NumberOfEmployees",
    "Website",
    "AccountNumber",
    "Description",
    "BillingStreet",
    "CreatedDate",
    "LastModifiedDate",
    "IsDeleted",
]
FULL_TABLES = {
    "accounts": "bulksync append",
    "accounts_merge": "bulksync merge",
    "accounts_raw": "psql \\copy (PK)",
    "accounts_raw_nopk": "psql \\copy (no keys)",
    "dlt_bench.accounts_dlt": "dlt replace",
    "dlt_bench.accounts_dlt_merge": "dlt merge",
}


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def fingerprint(table: str) -> str:
    """Counts, sums and extremes over the loaded columns: equal fingerprints mean equal loads."""
    dlt = table.startswith("dlt_bench.")
    col = {c: (_snake(c) if dlt else f'"{c}"') for c in FINGERPRINT_COLUMNS}
    name = table if dlt else f'"{table}"'
    sql = (
        f"SELECT count(*), count(DISTINCT {col['Id']}), sum({col['AnnualRevenue']}), "
        f"sum({col['NumberOfEmployees']}), count({col['Website']}), count({col['AccountNumber']}), "
        f"sum(length({col['Description']})), sum(length({col['BillingStreet']})), "
        f"min({col['CreatedDate']}), max({col['LastModifiedDate']}), count(*) FILTER (WHERE {col['IsDeleted']}), "
        f"md5(string_agg({col['Id']} || coalesce({col['AnnualRevenue']}::text, '-'), ',' ORDER BY {col['Id']})) "
        f"FROM {name}"
    )
    return psql(sql)


def fingerprints() -> dict[str, str]:
    """The fingerprint of every fully loaded table."""
    return {label: fingerprint(table) for table, label in FULL_TABLES.items()}


def run_pg_cases(args: argparse.Namespace, csv1: Path, have_extract: bool) -> dict[str, Result]:
    """Case 2 in a fresh database (dropped at the end unless ``--keep-db``)."""
    psql(f"DROP DATABASE IF EXISTS {PG_DB}", database="postgres")
    psql(f"CREATE DATABASE {PG_DB}", database="postgres")
    try:
        base = {"csv": str(csv1), "pipeline": pipeline_name(args.rows, 1)}
        if not have_extract:
            run_case("csv_bulksync", base, tag="pg_setup_extract")
        files = run_case("pg_transform", base, tag="pg_setup_transform")["files"]
        out = _bulksync_loads(base, args.repeat)
        out.update(_psql_copies(csv1, args.repeat))
        out.update(_dlt_loads(files))
        out["to_sql"] = _pg_case(
            "pg_to_sql",
            {"files": files, "table": "accounts_tosql", "rows": args.to_sql_rows, "chunksize": args.to_sql_chunksize},
            tag="pg_to_sql",
            table='"accounts_tosql"',
        )
        out["_fingerprints"] = {"tables": fingerprints()}
        return out
    finally:
        if not args.keep_db:
            psql(f"DROP DATABASE IF EXISTS {PG_DB}", database="postgres")


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    Settings.quiet_wait_seconds = args.quiet_wait
    csv1 = generate(args.rows, 1)
    figures: dict[str, Any] = {
        "meta": {
            "rows": args.rows,
            "seed": datagen.SEED,
            "argv": argv,
            "csv_bytes": csv1.stat().st_size,
            "csv_bytes_x8": 0,
        }
    }
    try:
        if "csv" in args.case_set:
            figures["csv"] = run_csv_cases(args, csv1)
            if not args.skip_8x:
                figures["meta"]["csv_bytes_x8"] = datagen.csv_path(args.rows, 8).stat().st_size
        if "pg" in args.case_set:
            figures["pg"] = run_pg_cases(args, csv1, have_extract="bulksync_x1" in figures.get("csv", {}))
    except BenchError as exc:
        log.error("%s", exc)
        return 1
    figures["notes"] = observations(figures, QUIET_BUSY)
    text = render(figures, machine_info())
    args.output.write_text(text, encoding="utf-8")
    print(text)
    log.info("wrote %s", args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
