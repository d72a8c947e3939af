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
import shutil
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import datagen  # noqa: E402
from benchcfg import BENCH_DIR, DLT_DIR, OUTPUT_DIR, PG_DB, pipeline_name  # noqa: E402
from cases_pg import psql  # noqa: E402
from harness import BenchError, run_case  # noqa: E402
from report import machine_info, render  # noqa: E402

log = logging.getLogger("bench")

Result = dict[str, Any]
CASE_NAMES = ("csv", "pg")


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=2_000_000, help="rows of the generated CSV (default 2,000,000)")
    p.add_argument("--skip-8x", action="store_true", help="skip the 8x-size memory test of case 1")
    p.add_argument("--cases", default="csv,pg", help="comma-separated cases to run: csv, pg (default both)")
    p.add_argument("--to-sql-rows", type=int, default=50_000, help="subset size of the to_sql case")
    p.add_argument("--to-sql-chunksize", type=int, default=1_000, help="to_sql chunksize")
    p.add_argument("--keep-db", action="store_true", help="do not drop the bench database at the end")
    p.add_argument("--output", type=Path, default=BENCH_DIR / "RESULTS.md", help="markdown report path")
    args = p.parse_args(argv)
    args.case_set = {c.strip() for c in args.cases.split(",") if c.strip()}
    unknown = args.case_set - set(CASE_NAMES)
    if unknown:
        p.error(f"unknown case(s) {sorted(unknown)}; choose from {', '.join(CASE_NAMES)}")
    return args


def generate(rows: int, factor: int) -> Path:
    """The input CSV (generated in a subprocess on first use, then reused)."""
    return Path(run_case("generate", {"rows": rows, "factor": factor}, tag=f"generate_x{factor}")["csv"])


def run_csv_cases(args: argparse.Namespace, csv1: Path) -> dict[str, Result]:
    """Case 1 at 1x (bulksync, raw, pandas) and, unless skipped, 8x (bulksync, raw)."""
    out: dict[str, Result] = {}
    sizes = [(1, csv1)] if args.skip_8x else [(1, csv1), (8, generate(args.rows, 8))]
    for factor, csv in sizes:
        out[f"bulksync_x{factor}"] = run_case(
            "csv_bulksync", {"csv": str(csv), "pipeline": pipeline_name(args.rows, factor)},
            tag=f"csv_bulksync_x{factor}")
        out[f"arrow_x{factor}"] = run_case(
            "csv_arrow", {"csv": str(csv), "out": str(OUTPUT_DIR / f"arrow_{args.rows}_x{factor}.parquet")},
            tag=f"csv_arrow_x{factor}")
        if factor == 1:
            out["pandas_x1"] = run_case(
                "csv_pandas", {"csv": str(csv), "out": str(OUTPUT_DIR / f"pandas_{args.rows}_x1.parquet")},
                tag="csv_pandas_x1")
    return out


def _count(table: str) -> int:
    return int(psql(f"SELECT count(*) FROM {table}"))


def _pg_case(case: str, params: dict[str, Any], *, tag: str, table: str) -> Result:
    psql("CHECKPOINT")
    result = run_case(case, params, tag=tag)
    result["table_rows"] = _count(table)
    return result


def _bulksync_loads(base: dict[str, Any]) -> dict[str, Result]:
    merge = {**base, "table": "accounts_merge", "mode": "merge", "keys": ["Id"]}
    return {
        "bulksync_append": _pg_case("pg_bulksync", {**base, "table": "accounts", "mode": "append"},
                                    tag="pg_bulksync_append", table='"accounts"'),
        "bulksync_merge_insert": _pg_case("pg_bulksync", merge, tag="pg_bulksync_merge_insert",
                                          table='"accounts_merge"'),
        "bulksync_merge_update": _pg_case("pg_bulksync", merge, tag="pg_bulksync_merge_update",
                                          table='"accounts_merge"'),
    }


def _psql_copies(csv1: Path) -> dict[str, Result]:
    return {
        "psql_pk": _pg_case("pg_psql_copy", {"csv": str(csv1), "table": "accounts_raw", "primary_key": True},
                            tag="pg_psql_pk", table='"accounts_raw"'),
        "psql_nopk": _pg_case("pg_psql_copy", {"csv": str(csv1), "table": "accounts_raw_nopk",
                                               "primary_key": False}, tag="pg_psql_nopk",
                              table='"accounts_raw_nopk"'),
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


def run_pg_cases(args: argparse.Namespace, csv1: Path, have_extract: bool) -> dict[str, Result]:
    """Case 2 in a fresh database (dropped at the end unless ``--keep-db``)."""
    psql(f"DROP DATABASE IF EXISTS {PG_DB}", database="postgres")
    psql(f"CREATE DATABASE {PG_DB}", database="postgres")
    try:
        base = {"csv": str(csv1), "pipeline": pipeline_name(args.rows, 1)}
        if not have_extract:
            run_case("csv_bulksync", base, tag="pg_setup_extract")
        files = run_case("pg_transform", base, tag="pg_setup_transform")["files"]
        out = _bulksync_loads(base)
        out.update(_psql_copies(csv1))
        out.update(_dlt_loads(files))
        out["to_sql"] = _pg_case("pg_to_sql", {"files": files, "table": "accounts_tosql", "rows": args.to_sql_rows,
                                               "chunksize": args.to_sql_chunksize},
                                 tag="pg_to_sql", table='"accounts_tosql"')
        return out
    finally:
        if not args.keep_db:
            psql(f"DROP DATABASE IF EXISTS {PG_DB}", database="postgres")


def observations(figures: dict[str, Any]) -> list[str]:
    """Plain-language notes the report adds under the figures (row-count checks)."""
    notes = []
    for key, r in figures.get("pg", {}).items():
        expected = r["rows"]
        if r.get("table_rows") is not None and r["table_rows"] != expected:
            notes.append(f"{key}: the table holds {r['table_rows']:,} rows after the case, {expected:,} were loaded.")
    return notes


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    csv1 = generate(args.rows, 1)
    figures: dict[str, Any] = {"meta": {"rows": args.rows, "seed": datagen.SEED, "argv": argv,
                                        "csv_bytes": csv1.stat().st_size, "csv_bytes_x8": 0}}
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
    figures["notes"] = observations(figures)
    text = render(figures, machine_info())
    args.output.write_text(text, encoding="utf-8")
    print(text)
    log.info("wrote %s", args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
