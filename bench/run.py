"""Run the bulksync benchmarks and write ``bench/RESULTS.md``.

Usage::

    .venv/bin/python bench/run.py                    # 2M rows, both cases, with the 8x memory test
    .venv/bin/python bench/run.py --rows 200000 --skip-8x --cases csv

Case 1 (``csv``): CSV -> staged Parquet with bulksync, raw pyarrow and pandas.
Case 2 (``pg``): staged Parquet -> PostgreSQL with bulksync, psql ``\\copy``, dlt and ``to_sql``.
Case 3 (``sqlite``): a SQLite merge (half updates) with bulksync and by hand in the ``sqlite3`` shell.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import re
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import datagen
from benchcfg import BENCH_DIR, DLT_DIR, OUTPUT_DIR, PG_DB, RESULTS_DIR, pipeline_name
from cases_csv import default_block_size_mb
from cases_pg import psql
from harness import FOREIGN_LIMIT, BenchError, Job, Settings, run_case, run_interleaved
from report import machine_info, observations, render

log = logging.getLogger("bench")

Result = dict[str, Any]
CASE_NAMES = ("csv", "pg", "sqlite")


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=2_000_000, help="rows of the generated CSV (default 2,000,000)")
    p.add_argument("--skip-8x", action="store_true", help="skip the 8x-size memory test of case 1")
    p.add_argument(
        "--cases", default="csv,pg,sqlite", help="comma-separated cases to run: csv, pg, sqlite (default all)"
    )
    p.add_argument("--sqlite-rows", type=int, default=1_000_000, help="rows of the SQLite merge (half updates)")
    p.add_argument(
        "--repeat", type=int, default=3, help="runs of the short cases (1x CSV, append, \\copy); the fastest counts"
    )
    p.add_argument(
        "--quiet-wait",
        type=float,
        default=300.0,
        help="seconds to wait before each case for other processes to leave the CPUs idle (default 300)",
    )
    p.add_argument(
        "--retries",
        type=int,
        default=2,
        help="times to run a case again when other processes took over 10%% of the machine meanwhile (default 2)",
    )
    p.add_argument("--to-sql-rows", type=int, default=50_000, help="subset size of the to_sql case")
    p.add_argument("--to-sql-chunksize", type=int, default=1_000, help="to_sql chunksize")
    p.add_argument(
        "--render-only", action="store_true", help="rewrite the report from the last run's figures, measure nothing"
    )
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

    bulksync runs with the spec defaults, and once more with another ``block_size_mb`` (:func:`alt_block_mb`)
    to show how the CSV block size drives its peak memory.
    """
    out: dict[str, Result] = {}
    out.update(_csv_runs(args, csv1, 1, args.repeat))
    if not args.skip_8x:
        out.update(_csv_runs(args, generate(args.rows, 8), 8, 1))
    return out


def alt_block_mb() -> int:
    """The block size of the second bulksync run: 16 MiB when the default is smaller, else 4 MiB."""
    return 16 if default_block_size_mb() < 16 else 4


def _csv_runs(args: argparse.Namespace, csv: Path, factor: int, times: int) -> dict[str, Result]:
    name = pipeline_name(args.rows, factor)
    jobs = [
        Job(f"bulksync_x{factor}", "csv_bulksync", {"csv": str(csv), "pipeline": name}),
        Job(
            f"bulksync_alt_x{factor}",
            "csv_bulksync",
            {"csv": str(csv), "pipeline": f"{name}_alt_blocks", "block_size_mb": alt_block_mb()},
        ),
        Job(f"arrow_x{factor}", "csv_arrow", {"csv": str(csv), "out": str(OUTPUT_DIR / f"arrow_{name}.parquet")}),
    ]
    if factor == 1:
        jobs.append(
            Job("pandas_x1", "csv_pandas", {"csv": str(csv), "out": str(OUTPUT_DIR / f"pandas_{name}.parquet")})
        )
    return run_interleaved(jobs, times)


def _count(table: str) -> int:
    return int(psql(f"SELECT count(*) FROM {table}"))


def _checkpoint(reset: str | None = None) -> Callable[[], None]:
    """Before a PostgreSQL case: optionally reset its table, then CHECKPOINT."""

    def before() -> None:
        if reset:
            psql(reset)
        psql("CHECKPOINT")

    return before


def _short_pg_jobs(base: dict[str, Any], csv1: Path) -> list[Job]:
    """bulksync append and psql ``\\copy``: repeated, interleaved."""
    return [
        Job(
            "bulksync_append",
            "pg_bulksync",
            {**base, "table": "accounts", "mode": "append"},
            _checkpoint('DROP TABLE IF EXISTS "accounts"'),
        ),
        Job("psql_pk", "pg_psql_copy", {"csv": str(csv1), "table": "accounts_raw", "primary_key": True}, _checkpoint()),
        Job(
            "psql_nopk",
            "pg_psql_copy",
            {"csv": str(csv1), "table": "accounts_raw_nopk", "primary_key": False},
            _checkpoint(),
        ),
    ]


def _long_pg_jobs(args: argparse.Namespace, base: dict[str, Any], files: list[str]) -> list[Job]:
    """Merges (the second one updates every row), dlt and to_sql: once each, in this order."""
    merge = {**base, "table": "accounts_merge", "mode": "merge", "keys": ["Id"]}
    dlt_replace = {"files": files, "table": "accounts_dlt", "disposition": "replace", "pipeline_name": "bench_replace"}
    dlt_merge = {"files": files, "table": "accounts_dlt_merge", "disposition": "merge", "pipeline_name": "bench_merge"}
    to_sql = {"files": files, "table": "accounts_tosql", "rows": args.to_sql_rows, "chunksize": args.to_sql_chunksize}
    raw = {"csv": base["csv"], "table": "accounts_raw_merge"}

    def new_extract() -> None:
        # a second load of the same committed partition is a no-op (the load ledger): the update run
        # loads a new commit of the same rows, as a rerun of the interval would
        run_case("pg_transform", base, tag="pg_setup_transform_again")
        psql("CHECKPOINT")

    return [
        Job("bulksync_merge_insert", "pg_bulksync", merge, _checkpoint('DROP TABLE IF EXISTS "accounts_merge"')),
        Job("bulksync_merge_update", "pg_bulksync", merge, new_extract),
        Job("psql_merge_insert", "pg_psql_merge", {**raw, "fresh": True}, _checkpoint()),
        Job("psql_merge_update", "pg_psql_merge", raw, _checkpoint()),
        Job("dlt_replace", "pg_dlt", dlt_replace, _checkpoint()),
        # dlt keeps its own state of the tables it created: its merges are not re-run
        Job("dlt_merge_insert", "pg_dlt", dlt_merge, _checkpoint(), retry=False),
        Job("dlt_merge_update", "pg_dlt", dlt_merge, _checkpoint(), retry=False),
        Job("to_sql", "pg_to_sql", to_sql, _checkpoint()),
    ]


TABLES = {
    "bulksync_append": '"accounts"',
    "bulksync_merge_insert": '"accounts_merge"',
    "bulksync_merge_update": '"accounts_merge"',
    "psql_pk": '"accounts_raw"',
    "psql_nopk": '"accounts_raw_nopk"',
    "psql_merge_insert": '"accounts_raw_merge"',
    "psql_merge_update": '"accounts_raw_merge"',
    "dlt_replace": "dlt_bench.accounts_dlt",
    "dlt_merge_insert": "dlt_bench.accounts_dlt_merge",
    "dlt_merge_update": "dlt_bench.accounts_dlt_merge",
    "to_sql": '"accounts_tosql"',
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
    "accounts_raw_merge": "psql \\copy + INSERT ON CONFLICT",
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
        out = run_interleaved(_short_pg_jobs(base, csv1), args.repeat)
        shutil.rmtree(DLT_DIR / "pipelines", ignore_errors=True)
        out.update(run_interleaved(_long_pg_jobs(args, base, files), 1))
        for key, result in out.items():
            result["table_rows"] = _count(TABLES[key])
        out["_fingerprints"] = {"tables": fingerprints()}
        return out
    finally:
        if not args.keep_db:
            psql(f"DROP DATABASE IF EXISTS {PG_DB}", database="postgres")


def run_sqlite_cases(args: argparse.Namespace) -> dict[str, Result]:
    """Case 3: the SQLite merge by bulksync and by hand, each from a copy of the same template."""
    run_case("sqlite_setup", {"rows": args.sqlite_rows}, tag="sqlite_setup")
    params = {"rows": args.sqlite_rows}
    jobs = [Job("sqlite_bulksync_merge", "sqlite_bulksync", params), Job("sqlite_raw_merge", "sqlite_raw", params)]
    out = run_interleaved(jobs, 1)
    prints = {k: r.get("fingerprint") for k, r in out.items()}
    if len(set(prints.values())) != 1:
        raise BenchError(f"the SQLite merges disagree: {prints}")
    return out


FIGURES_JSON = RESULTS_DIR / "figures.json"


def measure(args: argparse.Namespace, argv: list[str]) -> dict[str, Any]:
    """Run the selected cases; return every figure (also saved to ``FIGURES_JSON``)."""
    csv1 = generate(args.rows, 1)
    figures: dict[str, Any] = {
        "meta": {
            "rows": args.rows,
            "seed": datagen.SEED,
            "argv": argv,
            "csv_bytes": csv1.stat().st_size,
            "csv_bytes_x8": 0,
            "measured_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        },
        "machine": machine_info(),
    }
    if "csv" in args.case_set:
        figures["csv"] = run_csv_cases(args, csv1)
        if not args.skip_8x:
            figures["meta"]["csv_bytes_x8"] = datagen.csv_path(args.rows, 8).stat().st_size
    if "pg" in args.case_set:
        figures["pg"] = run_pg_cases(args, csv1, have_extract="bulksync_x1" in figures.get("csv", {}))
    if "sqlite" in args.case_set:
        figures["sqlite"] = run_sqlite_cases(args)
    FIGURES_JSON.write_text(json.dumps(figures, indent=2, default=str), encoding="utf-8")
    return figures


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    Settings.quiet_wait_seconds = args.quiet_wait
    Settings.retries = args.retries
    if args.render_only:
        figures = json.loads(FIGURES_JSON.read_text(encoding="utf-8"))
    else:
        try:
            figures = measure(args, argv)
        except BenchError as exc:
            log.error("%s", exc)
            return 1
    figures["notes"] = observations(figures, FOREIGN_LIMIT)
    text = render(figures, [tuple(row) for row in figures["machine"]])
    args.output.write_text(text, encoding="utf-8")
    print(text)
    log.info("wrote %s", args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
