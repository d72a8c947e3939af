"""Machine description and the markdown report (printed and written to ``bench/RESULTS.md``)."""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
from importlib import metadata
from typing import Any

from benchcfg import REPO_DIR
from cases_pg import psql

Result = dict[str, Any]

RSS_LIMIT_MIB = 600
RSS_FLAT_GROWTH = 1.25  # "flat": the 8x peak stays within 25% of the 1x peak
GOAL_CSV_RATIO = 0.8
GOAL_COPY_RATIO = 1.0
GOAL_MERGE_RATIO = 0.8
GOAL_TO_SQL_RATIO = 30.0


def _first(path: str, key: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.startswith(key):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def postgres_version() -> str:
    """``server_version`` of the bench PostgreSQL server."""
    try:
        return psql("SHOW server_version", database="postgres")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def source_state() -> str:
    """The commit the bench ran on, and whether the working tree had uncommitted changes."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO_DIR, check=True, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "include"], cwd=REPO_DIR, check=True, capture_output=True, text=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head} (include/ with uncommitted changes)" if dirty else head


def machine_info() -> list[tuple[str, str]]:
    """What the figures were measured on."""
    mem_kib = _first("/proc/meminfo", "MemTotal").split()[0]
    ram = f"{int(mem_kib) / 2**20:.1f} GiB" if mem_kib.isdigit() else "unknown"
    return [
        ("CPU", _first("/proc/cpuinfo", "model name")),
        ("nproc", str(len(os.sched_getaffinity(0)))),
        ("RAM", ram),
        ("OS", f"{platform.system()} {platform.release()}"),
        ("Python", platform.python_version()),
        ("bulksync", f"{_version('bulksync')}, git {source_state()}"),
        ("pyarrow", _version("pyarrow")),
        ("pandas", _version("pandas")),
        ("numpy", _version("numpy")),
        ("SQLAlchemy", _version("sqlalchemy")),
        ("psycopg", _version("psycopg")),
        ("dlt", _version("dlt")),
        ("PostgreSQL", postgres_version()),
    ]


def rate(r: Result | None) -> float:
    """Rows per second of a result (0 when missing)."""
    if not r or not r.get("seconds"):
        return 0.0
    return float(r["rows"]) / float(r["seconds"])


def _fmt_int(v: float) -> str:
    return f"{v:,.0f}"


def _mib(v: float) -> str:
    return f"{v / 2**20:,.0f}"


def _duration(seconds: float) -> str:
    return f"{seconds / 60:.0f} minutes" if seconds >= 120 else f"{seconds:.1f} s"


def _ratio(a: float, b: float) -> float | None:
    return a / b if a and b else None


def _verdict(value: float | None, goal: float) -> str:
    if value is None:
        return "n/a"
    return "met" if value >= goal else "**missed**"


def _runs(r: Result) -> str:
    """``3 (3.9-4.6 s)`` for the fastest of several runs, ``1`` for a single run."""
    runs = r.get("runs") or [r["seconds"]]
    if len(runs) == 1:
        return "1"
    return f"{len(runs)} ({min(runs):.1f}-{max(runs):.1f} s)"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


CSV_LABELS = {
    "bulksync_x1": "bulksync `stages.extract` (csv_files, defaults)",
    "arrow_x1": "raw pyarrow `open_csv` -> `ParquetWriter`",
    "pandas_x1": "pandas `read_csv().to_parquet()`",
    "bulksync_alt_x1": "bulksync `stages.extract`, `block_size_mb: {block}`",
    "bulksync_x8": "bulksync `stages.extract` (csv_files, defaults)",
    "arrow_x8": "raw pyarrow `open_csv` -> `ParquetWriter`",
    "bulksync_alt_x8": "bulksync `stages.extract`, `block_size_mb: {block}`",
}

PG_LABELS = {
    "bulksync_append": "bulksync `load`, append into an empty table",
    "bulksync_merge_insert": "bulksync `load`, merge on Id into an empty table",
    "bulksync_merge_update": "bulksync `load`, merge on Id, every row an update",
    "psql_pk": "psql `\\copy` CSV into a table with PRIMARY KEY (Id)",
    "psql_nopk": "psql `\\copy` CSV into a table without keys",
    "psql_merge_insert": "psql `\\copy` into a temp table + `INSERT … ON CONFLICT DO UPDATE`, into an empty table",
    "psql_merge_update": "psql `\\copy` into a temp table + `INSERT … ON CONFLICT DO UPDATE`, every row an update",
    "dlt_replace": "dlt `replace` (csv loader)",
    "dlt_merge_insert": "dlt `merge` on Id into an empty table",
    "dlt_merge_update": "dlt `merge` on Id, every row an update",
    "to_sql": 'pandas `to_sql(method="multi", chunksize={chunksize})` (subset, extrapolated)',
}


def csv_section(csv: dict[str, Result], meta: dict[str, Any]) -> list[str]:
    """Case 1 table and goals."""
    rows = []
    for key, label in CSV_LABELS.items():
        r = csv.get(key)
        if not r:
            continue
        label = label.format(block=r.get("block_size_mb", "?"))
        if key.startswith("bulksync_x"):
            label = f"{label} [{r.get('block_size_mb', '?')} MiB blocks]"
        size = meta["csv_bytes_x8"] if key.endswith("x8") else meta["csv_bytes"]
        rows.append(
            [
                label,
                "8x" if key.endswith("x8") else "1x",
                _runs(r),
                _fmt_int(r["rows"]),
                f"{r['seconds']:.1f}",
                f"{r['cpu_timed']:.1f}" if "cpu_timed" in r else "",
                _fmt_int(rate(r)),
                f"{size / 2**20 / r['seconds']:.0f}",
                f"{r['peak_rss_mib']:.0f}",
                _mib(r["output_bytes"]),
            ]
        )
    out = ["## Case 1: CSV -> staged Parquet", ""]
    header = ["case", "input", "runs", "rows", "seconds", "CPU s", "rows/s", "CSV MiB/s", "peak RSS MiB", "Parquet MiB"]
    out += _table(header, rows)
    r1 = _ratio(rate(csv.get("bulksync_x1")), rate(csv.get("arrow_x1")))
    r8 = _ratio(rate(csv.get("bulksync_x8")), rate(csv.get("arrow_x8")))
    out += ["", "| figure | value | goal | verdict |", "|---|---|---|---|"]
    if r1 is not None:
        out.append(
            f"| bulksync / raw throughput, 1x | {r1:.2f}x | >= {GOAL_CSV_RATIO}x | {_verdict(r1, GOAL_CSV_RATIO)} |"
        )
    if r8 is not None:
        out.append(
            f"| bulksync / raw throughput, 8x | {r8:.2f}x | >= {GOAL_CSV_RATIO}x | {_verdict(r8, GOAL_CSV_RATIO)} |"
        )
    b1, b8 = csv.get("bulksync_x1"), csv.get("bulksync_x8")
    if b1:
        ok = b1["peak_rss_mib"] < RSS_LIMIT_MIB
        out.append(
            f"| bulksync peak RSS, 1x | {b1['peak_rss_mib']:.0f} MiB | < {RSS_LIMIT_MIB} MiB | "
            f"{'met' if ok else '**missed**'} |"
        )
    if b1 and b8:
        growth = b8["peak_rss_mib"] / b1["peak_rss_mib"]
        ok = b8["peak_rss_mib"] < RSS_LIMIT_MIB and growth <= RSS_FLAT_GROWTH
        out.append(
            f"| bulksync peak RSS, 8x (growth vs 1x) | {b8['peak_rss_mib']:.0f} MiB ({growth:.2f}x) | "
            f"< {RSS_LIMIT_MIB} MiB, flat (<= {RSS_FLAT_GROWTH}x) | {'met' if ok else '**missed**'} |"
        )
    s1, s8 = csv.get("bulksync_alt_x1"), csv.get("bulksync_alt_x8")
    alt = f"`block_size_mb: {s1.get('block_size_mb', '?')}`" if s1 else ""
    if s1 and s8:
        out.append(
            f"| bulksync peak RSS with {alt}, 1x / 8x | {s1['peak_rss_mib']:.0f} / "
            f"{s8['peak_rss_mib']:.0f} MiB | (reference) | |"
        )
    if s1:
        sr = _ratio(rate(s1), rate(csv.get("arrow_x1")))
        if sr is not None:
            out.append(f"| bulksync with {alt} / raw throughput, 1x | {sr:.2f}x | (reference) | |")
    p1 = csv.get("pandas_x1")
    if p1:
        out.append(f"| pandas peak RSS, 1x | {p1['peak_rss_mib']:.0f} MiB | (reference) | |")
        sp = _ratio(rate(b1), rate(p1))
        if sp is not None:
            out.append(f"| bulksync / pandas throughput, 1x | {sp:.2f}x | (reference) | |")
    return out


def pg_section(pg: dict[str, Result], meta: dict[str, Any]) -> list[str]:
    """Case 2 table and goals."""
    rows = []
    for key, label in PG_LABELS.items():
        r = pg.get(key)
        if not r:
            continue
        label = label.format(chunksize=r.get("chunksize", "?"))
        loaded = r.get("table_rows")
        rows.append(
            [
                label,
                _runs(r),
                _fmt_int(r["rows"]),
                f"{r['seconds']:.1f}",
                f"{r['cpu_timed']:.1f}" if "cpu_timed" in r else "",
                _fmt_int(rate(r)),
                f"{r['peak_rss_mib']:.0f}",
                "" if loaded is None else _fmt_int(loaded),
            ]
        )
    out = ["## Case 2: staged Parquet -> PostgreSQL", ""]
    header = ["case", "runs", "rows", "seconds", "client CPU s", "rows/s", "client peak RSS MiB", "rows in table after"]
    out += _table(header, rows)
    append = rate(pg.get("bulksync_append"))
    checks = [
        ("bulksync append / psql `\\copy` (PK table)", _ratio(append, rate(pg.get("psql_pk"))), GOAL_COPY_RATIO),
        ("bulksync append / psql `\\copy` (no keys)", _ratio(append, rate(pg.get("psql_nopk"))), None),
        (
            "bulksync merge (inserts) / psql `\\copy` (PK table)",
            _ratio(rate(pg.get("bulksync_merge_insert")), rate(pg.get("psql_pk"))),
            None,
        ),
        (
            "bulksync merge / raw psql merge, into an empty table",
            _ratio(rate(pg.get("bulksync_merge_insert")), rate(pg.get("psql_merge_insert"))),
            GOAL_MERGE_RATIO,
        ),
        (
            "bulksync merge / raw psql merge, all updates",
            _ratio(rate(pg.get("bulksync_merge_update")), rate(pg.get("psql_merge_update"))),
            GOAL_MERGE_RATIO,
        ),
        ("bulksync append / `to_sql` (extrapolated)", _ratio(append, rate(pg.get("to_sql"))), GOAL_TO_SQL_RATIO),
        ("bulksync append / dlt replace", _ratio(append, rate(pg.get("dlt_replace"))), None),
        (
            "bulksync merge / dlt merge, into empty table",
            _ratio(rate(pg.get("bulksync_merge_insert")), rate(pg.get("dlt_merge_insert"))),
            None,
        ),
        (
            "bulksync merge / dlt merge, all updates",
            _ratio(rate(pg.get("bulksync_merge_update")), rate(pg.get("dlt_merge_update"))),
            None,
        ),
    ]
    out += ["", "| figure | value | goal | verdict |", "|---|---|---|---|"]
    for name, value, goal in checks:
        if value is None:
            continue
        goal_txt = f">= {goal:g}x" if goal else "(reference)"
        out.append(f"| {name} | {value:.2f}x | {goal_txt} | {_verdict(value, goal) if goal else ''} |")
    return out


GOAL_SQLITE_FACTOR = 3.0


def sqlite_section(sq: dict[str, Result]) -> list[str]:
    """Case 3 table and goal: bulksync's SQLite merge within 3x of the hand-written upsert."""
    labels = {
        "sqlite_bulksync_merge": "bulksync `load`, merge on Id (half the keys exist)",
        "sqlite_raw_merge": "`sqlite3` shell: `.import` into a temp table + `INSERT … ON CONFLICT DO UPDATE`",
    }
    rows = [
        [label, _fmt_int(r["rows"]), f"{r['seconds']:.1f}", f"{r.get('cpu_timed', 0):.1f}", _fmt_int(rate(r))]
        for key, label in labels.items()
        if (r := sq.get(key))
    ]
    out = ["## Case 3: staged Parquet -> SQLite, merge", ""]
    out += _table(["case", "rows", "seconds", "CPU s", "rows/s"], rows)
    b, raw = sq.get("sqlite_bulksync_merge"), sq.get("sqlite_raw_merge")
    if b and raw:
        factor = b["seconds"] / raw["seconds"]
        verdict = "met" if factor <= GOAL_SQLITE_FACTOR else "**missed**"
        out += [
            "",
            "| figure | value | goal | verdict |",
            "|---|---|---|---|",
            f"| bulksync merge time / hand-written upsert time | {factor:.2f}x | <= {GOAL_SQLITE_FACTOR:g}x | "
            f"{verdict} |",
            "",
            f"Updated {b.get('updated', 0):,} and inserted {b.get('inserted', 0):,} rows; both databases end with "
            "the same fingerprint (counts, sums, text lengths, extremes).",
        ]
    return out


def observations(figures: dict[str, Any], foreign_limit: float) -> list[str]:
    """Plain-language notes under the figures: consistency checks, where the time and memory go."""
    notes = memory_notes(figures.get("csv", {})) + load_notes(figures.get("pg", {}))
    pg = dict(figures.get("pg", {}))
    prints: dict[str, str] = pg.pop("_fingerprints", {}).get("tables", {})
    if prints:
        distinct = set(prints.values())
        if len(distinct) == 1:
            notes.append(
                f"Consistency: the {len(prints)} fully loaded tables ({', '.join(prints)}) have identical "
                "fingerprints (row and distinct-Id counts, sums, null counts, text lengths, timestamp "
                "extremes, md5 over Id+AnnualRevenue)."
            )
        else:
            detail = "; ".join(f"{k}: {v}" for k, v in prints.items())
            notes.append(f"Consistency: the fully loaded tables differ: {detail}")
    for section in ("csv", "pg"):
        for key, r in figures.get(section, {}).items():
            if key.startswith("_"):
                continue
            if r.get("foreign_share", 0.0) > foreign_limit:
                notes.append(
                    f"{key}: other processes on the machine used {r['foreign_share']:.0%} of its CPUs during the "
                    f"counted run ({r.get('attempts', 1)} attempts), so its figure is pessimistic."
                )
    for key, r in pg.items():
        expected = r["rows"]
        if r.get("table_rows") is not None and r["table_rows"] != expected:
            notes.append(f"{key}: the table holds {r['table_rows']:,} rows after the case, {expected:,} were loaded.")
    return notes


def memory_notes(csv: dict[str, Result]) -> list[str]:
    """What sets the peak memory of the CSV extract."""
    b1, b8, s1, s8 = (csv.get(k) for k in ("bulksync_x1", "bulksync_x8", "bulksync_alt_x1", "bulksync_alt_x8"))
    a1, a8 = csv.get("arrow_x1"), csv.get("arrow_x8")
    if not (b1 and s1 and a1):
        return []

    def peaks(x: Result, y: Result | None) -> str:
        return f"{x['peak_rss_mib']:.0f}" + (f" / {y['peak_rss_mib']:.0f}" if y else "")

    sizes = "1x / 8x" if b8 else "1x"
    ratio = _ratio(rate(s1), rate(b1)) or 0.0
    return [
        f"Peak memory of the CSV extract follows the CSV block size: with the default `block_size_mb: "
        f"{b1.get('block_size_mb', '?')}` bulksync peaks at {peaks(b1, b8)} MiB ({sizes}), with `block_size_mb: "
        f"{s1.get('block_size_mb', '?')}` at {peaks(s1, s8)} MiB ({ratio:.2f}x the default's throughput); the raw "
        f"pyarrow reader with the default blocks peaks at {peaks(a1, a8)} MiB. pyarrow's streaming CSV reader "
        "reads and parses blocks ahead of the consumer, so its buffers grow with the block size; bulksync's writer "
        "holds at most one row group (256Ki rows) before writing it. A bulksync extract process holds about "
        f"{b1.get('rss_before_mib', 0):.0f} MiB after imports, before any data is read (the raw case about "
        f"{a1.get('rss_before_mib', 0):.0f} MiB)."
    ]


def load_notes(pg: dict[str, Result]) -> list[str]:
    """Where the time of bulksync's PostgreSQL loads goes, and what to_sql would take for every row."""
    notes = []
    append, nopk, tosql = pg.get("bulksync_append"), pg.get("psql_nopk"), pg.get("to_sql")
    if append and append.get("copy_seconds"):
        copy = float(append["copy_seconds"])
        rest = float(append["seconds"]) - copy
        vs = (
            f", {_ratio(append['rows'] / copy, rate(nopk)):.2f}x psql `\\copy` into a table without keys"
            if nopk
            else ""
        )
        notes.append(
            f"bulksync append spends {copy:.1f} s streaming the rows through `COPY` "
            f"({append['rows'] / copy:,.0f} rows/s{vs}) and {rest:.1f} s after the last batch (the mode's SQL, if "
            f"any, and the commit). Its client process uses {append.get('cpu_timed', 0):.1f} CPU seconds meanwhile "
            "(reading Parquet, writing CSV, sending), against "
            f"{pg.get('psql_nopk', {}).get('cpu_timed', 0):.1f} for psql."
        )
    pk = pg.get("psql_pk")
    if append and pk and nopk:
        notes.append(
            "bulksync creates its append table without a key, so the like-for-like raw figure for append is psql "
            f"`\\copy` into a table without keys ({_ratio(rate(append), rate(nopk)):.2f}x); against a table with "
            f"a primary key, as the goal is stated, it is {_ratio(rate(append), rate(pk)):.2f}x. The closest bulksync "
            "mode to a keyed table is merge into an empty table "
            f"({_ratio(rate(pg.get('bulksync_merge_insert')), rate(pk)) or 0:.2f}x)."
        )
    for key in ("bulksync_merge_insert", "bulksync_merge_update"):
        r = pg.get(key)
        if r and r.get("copy_seconds"):
            copy = float(r["copy_seconds"])
            notes.append(
                f"{PG_LABELS[key]}: {copy:.1f} s streaming the rows through `COPY` into the temporary table, "
                f"{float(r['seconds']) - copy:.1f} s for the key checks, `INSERT ... ON CONFLICT DO UPDATE` "
                "and the commit."
            )
    if tosql and append:
        full = append["rows"] / rate(tosql)
        notes.append(
            f"`to_sql` loaded {tosql['rows']:,} rows in {tosql['seconds']:.1f} s ({rate(tosql):,.0f} rows/s, "
            f"chunksize {tosql.get('chunksize')}); at that rate the {append['rows']:,} rows would take about "
            f"{_duration(full)}, against {_duration(float(append['seconds']))} for bulksync append."
        )
    return notes


def render(figures: dict[str, Any], machine: list[tuple[str, ...]]) -> str:
    """The whole report as markdown."""
    meta = figures["meta"]
    out = [
        "# bulksync benchmark results",
        "",
        f"Run on {meta.get('measured_at') or dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')} with "
        f"`{' '.join(['bench/run.py', *meta['argv']])}`" + ("" if meta["argv"] else " (defaults)") + ".",
        "",
        "## Machine",
        "",
    ]
    out += _table(["", ""], [[k, v] for k, v in machine])
    out += [
        "",
        "## Data",
        "",
        f"Salesforce-like `Account` table generated by `bench/datagen.py` (seed {meta['seed']}): "
        f"{meta['rows']:,} rows, 18 columns, {meta['csv_bytes'] / 2**20:,.0f} MiB of CSV "
        f"({meta['csv_bytes'] / meta['rows']:.0f} bytes/row; every string quoted, 10% of street addresses "
        "span two lines).",
    ]
    if meta.get("csv_bytes_x8"):
        out.append(
            f"The 8x file repeats it 8 times: {meta['rows'] * 8:,} rows, {meta['csv_bytes_x8'] / 2**30:.2f} GiB."
        )
    out.append("")
    if figures.get("csv"):
        out += [*csv_section(figures["csv"], meta), ""]
    if figures.get("pg"):
        out += [*pg_section(figures["pg"], meta), ""]
    if figures.get("sqlite"):
        out += [*sqlite_section(figures["sqlite"]), ""]
    out += ["## How the figures are taken", "", *[f"- {n}" for n in NOTES], ""]
    if figures.get("notes"):
        out += ["## Observations", ""] + [f"- {n}" for n in figures["notes"]] + [""]
    return "\n".join(out)


NOTES = [
    "Every case runs in its own fresh Python process (`bench/worker.py`); the parent only orchestrates. Before "
    "each case it calls `sync` and waits (up to `--quiet-wait` seconds) until the CPUs are at most 25% busy, so "
    "tests running elsewhere on the machine or PostgreSQL's autovacuum after a big load do not slow the case; "
    "while the case runs it samples the CPU time of every process, and a run during which processes other than "
    "the case's own (its process tree and PostgreSQL) took more than 10% of the machine is run again (up to "
    "`--retries` times; not for dlt's merges, which depend on dlt's own state). The short cases (1x CSV, "
    "bulksync append, psql `\\copy`) run `--repeat` times, interleaved (A B C, A B C ...) so a slow spell of the "
    "machine hits all of them alike, and the fastest run counts (interference only ever slows a run down); the "
    "runs column shows the spread, the peak RSS is the highest of all runs. The long cases run once.",
    "`seconds` times the work alone: imports, spec parsing, table DDL for `\\copy`, Airflow initialisation "
    "and connection lookup happen before the clock starts (a task in a running Airflow worker has them "
    "already). That includes pandas, which pyarrow imports lazily on its first Python-to-Arrow conversion "
    "(about 1 s here; bulksync's load triggers it when it builds the audit columns). rows/s = rows / seconds.",
    "CPU s is the user + system CPU time of the case process (and of `psql`) while the clock runs; it is far "
    "less sensitive to other load on the machine than the elapsed seconds. For PostgreSQL cases it is the "
    "client side only.",
    "Peak RSS is `ru_maxrss` of the case process (and of any child it waited for, i.e. `psql`), so it "
    "includes the interpreter and imported libraries (Airflow, pyarrow, pandas ...). For the PostgreSQL cases "
    "it is the client side only; the server's memory is not counted.",
    "Case 1 reads the CSV from the page cache (the file was just written; RAM is far larger than the file). "
    "bulksync and the raw case use the same parse settings (bulksync's default block size, "
    "`newlines_in_values`, the declared Arrow types incl. decimal(18,2) and timestamptz) and zstd Parquet. "
    "The pandas case is what a user "
    "would write: `pd.read_csv(path, parse_dates=[CreatedDate, LastModifiedDate]).to_parquet(out)`; it infers "
    "types itself (AnnualRevenue and NumberOfEmployees become float64, BillingPostalCode becomes int64 and "
    "loses its leading zeros).",
    "Case 2 loads the Parquet that bulksync staged in case 1 (after a no-step `stages.transform`), through "
    "`bulksync.stages.load`, in one transaction: the staged batches are written as CSV by pyarrow and streamed "
    "through `COPY`; merge goes through a temporary table (key checks, then one `INSERT ... ON CONFLICT DO "
    "UPDATE`). The load ledger makes a second load of one partition a no-op, so the all-updates merge loads a "
    "new commit of the same rows (a rerun of the interval). The raw merge is psql `\\copy` into a temporary "
    "(unlogged) table and one `INSERT ... ON CONFLICT DO UPDATE` in the same session. "
    "bulksync creates its tables itself: no key for append, PRIMARY KEY (Id) for merge. "
    "psql `\\copy` loads the generated CSV file (same rows).",
    "dlt runs `pipeline.run` (extract + normalize + load) over the same Parquet, read as Arrow batches, with "
    '`loader_file_format="csv"` (Arrow -> CSV -> COPY, dlt\'s fastest PostgreSQL path without an ADBC '
    "driver) and uncompressed load files; its default `insert_values` format is much slower.",
    '`DataFrame.to_sql(method="multi")` is measured on a subset only (the first N staged rows, see its row '
    "count) and its rows/s extrapolated; a full run would take tens of minutes.",
    "`CHECKPOINT` is issued before every PostgreSQL case so one case's dirty pages are not flushed during "
    "the next. The database `bulksync_bench` is created for the run and dropped at the end.",
]
