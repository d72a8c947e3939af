"""``sql`` source benchmark: one table from SQLite, PostgreSQL and MariaDB into staged Parquet.

For each database, bulksync's ``sql`` source (count + read in one snapshot, typed batches, zstd
Parquet parts, manifest, atomic commit) against the read a user would write by hand:

- SQLite: ``sqlite3`` cursor ``fetchmany`` → ``pyarrow.array`` per column → ``ParquetWriter``;
- PostgreSQL: ``COPY (SELECT …) TO STDOUT (FORMAT csv)`` through psycopg → ``pyarrow.csv.open_csv`` → Parquet;
- MariaDB: mysqlclient's unbuffered cursor ``fetchmany`` → ``pyarrow.array`` per column → Parquet.

Each case runs in a fresh interpreter (after a 1,000-row warm-up that pays the imports) and reports
wall time, CPU time of the process (fairer on a shared machine) and peak RSS, at the full size and
at a tenth of it (memory must stay flat).

    .venv/bin/python bench/sql_source_bench.py                 # 500,000 rows per database
    .venv/bin/python bench/sql_source_bench.py --rows 100000   # a quick run
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

from common import fastest, peak_rss_mib, run_on

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
DATA = BENCH_DIR / ".data" / "sql_source"
RESULTS = BENCH_DIR / "RESULTS-sql-source.md"
PG = os.environ.get("BULKSYNC_BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
MARIA = os.environ.get("BULKSYNC_BENCH_MARIADB", "mysql://root@127.0.0.1:3306")
DB = "bulksync_sql_source_bench"
SQLITE = DATA / "source.db"
COLUMNS = "id, name, amount, qty, active, updated_at"
BATCH = 50_000


def _conn_env() -> None:
    os.environ["AIRFLOW_CONN_BENCH_SQLITE"] = f"sqlite:///{SQLITE}"
    os.environ["AIRFLOW_CONN_BENCH_PG"] = f"{PG}/{DB}"
    os.environ["AIRFLOW_CONN_BENCH_MARIADB"] = f"{MARIA}/{DB}"


# -- cases (run in a child interpreter) ----------------------------------------------------------


def case_bulksync(db: str, rows: int, out: Path) -> dict[str, Any]:
    _conn_env()
    os.environ["BULKSYNC_STAGING_ROOT"] = str(out)
    from bulksync.sources.registry import make_source
    from bulksync.spec.sources import SqlSourceSpec
    from bulksync.staging.partition import Partition, Window
    from bulksync.staging.writer import PartitionWriter

    query = f"SELECT {COLUMNS} FROM accounts WHERE id <= {rows}"
    spec = SqlSourceSpec.model_validate(
        {"kind": "sql", "conn_id": f"bench_{db}", "options": {"query": query, "batch_size": BATCH}}
    )
    source = make_source(spec, Window())
    part = Partition(str(out), "bench", "sql", db, Window())
    try:
        count = source.source_count()
        with PartitionWriter(part, "extract", source.schema(), run_id="bench") as writer:
            for batch in source.read():
                writer.write_batch(batch)
            manifest = writer.commit(window=Window().to_json(), source_count=count)
    finally:
        source.close()
    return {"rows": manifest.rows, "bytes": sum(f.bytes for f in manifest.files)}


def case_by_hand(db: str, rows: int, out: Path) -> dict[str, Any]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    out.mkdir(parents=True, exist_ok=True)
    path = out / "accounts.parquet"
    query = f"SELECT {COLUMNS} FROM accounts WHERE id <= {rows}"
    if db == "pg":
        return _pg_copy(query, path)
    if db == "sqlite":
        import sqlite3

        conn: Any = sqlite3.connect(SQLITE)
        cur = conn.cursor()
    else:
        import MySQLdb
        import MySQLdb.cursors

        conn = MySQLdb.connect(host="127.0.0.1", user="root", db=DB)
        cur = conn.cursor(MySQLdb.cursors.SSCursor)
    cur.execute(query)
    names = [d[0] for d in cur.description]
    writer = None
    n = 0
    while batch := cur.fetchmany(BATCH):
        table = pa.table([pa.array(col) for col in zip(*batch, strict=True)], names=names)
        writer = writer or pq.ParquetWriter(path, table.schema, compression="zstd")
        writer.write_table(table)
        n += len(batch)
    if writer is not None:
        writer.close()
    conn.close()
    return {"rows": n, "bytes": path.stat().st_size}


def _pg_copy(query: str, path: Path) -> dict[str, Any]:
    import io

    import psycopg
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    class CopyReader(io.RawIOBase):
        def __init__(self, copy: Any) -> None:
            self.rows, self.pending = iter(copy), b""

        def readable(self) -> bool:
            return True

        def readinto(self, b: Any) -> int:
            parts, have = [self.pending], len(self.pending)
            while have < len(b) and (data := next(self.rows, None)) is not None:
                parts.append(bytes(data))
                have += len(data)
            buf = b"".join(parts)
            n = min(len(b), len(buf))
            b[:n], self.pending = buf[:n], buf[n:]
            return n

    types = {
        "id": pa.int64(),
        "name": pa.string(),
        "amount": pa.decimal128(12, 2),
        "qty": pa.int32(),
        "active": pa.bool_(),
        "updated_at": pa.timestamp("us", tz="UTC"),
    }
    n = 0
    with psycopg.connect(f"{PG}/{DB}") as conn, conn.cursor() as cur:
        cur.execute("SET TIME ZONE 'UTC'")
        with cur.copy(f"COPY ({query}) TO STDOUT WITH (FORMAT csv)") as copy:
            reader = pacsv.open_csv(
                io.BufferedReader(CopyReader(copy), 1 << 20),
                read_options=pacsv.ReadOptions(column_names=list(types)),
                parse_options=pacsv.ParseOptions(newlines_in_values=True),
                convert_options=pacsv.ConvertOptions(column_types=types, true_values=["t"], false_values=["f"]),
            )
            with pq.ParquetWriter(path, reader.schema, compression="zstd") as writer:
                for batch in reader:
                    writer.write_batch(batch)
                    n += batch.num_rows
    return {"rows": n, "bytes": path.stat().st_size}


CASES = {"bulksync": case_bulksync, "by hand": case_by_hand}


def child(name: str, db: str, rows: int) -> None:
    out = DATA / f"out-{db}-{name.replace(' ', '_')}-{rows}"
    shutil.rmtree(out, ignore_errors=True)
    CASES[name](db, 1_000, DATA / "warm-up")
    shutil.rmtree(DATA / "warm-up", ignore_errors=True)
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    result = CASES[name](db, rows, out)
    result["seconds"] = time.perf_counter() - started
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    result["cpu_seconds"] = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    result["peak_rss_mib"] = peak_rss_mib()
    shutil.rmtree(out, ignore_errors=True)
    print(json.dumps(result))


# -- the run -------------------------------------------------------------------------------------


def prepare(rows: int) -> None:
    """The same ``accounts`` table of ``rows`` rows in the three databases (kept when already there)."""
    import datetime as dt
    import sqlite3

    import MySQLdb
    import psycopg

    DATA.mkdir(parents=True, exist_ok=True)
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as admin:
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DB]).fetchone():
            admin.execute(f'CREATE DATABASE "{DB}"')
    ddl = "id bigint PRIMARY KEY, name varchar(40), amount numeric(12,2), qty int, active boolean, updated_at {ts}"
    with psycopg.connect(f"{PG}/{DB}", autocommit=True) as pg:
        have = pg.execute("SELECT count(*) FROM pg_tables WHERE tablename = 'accounts'").fetchone()
        if not have[0] or pg.execute("SELECT count(*) FROM accounts").fetchone()[0] != rows:
            pg.execute("DROP TABLE IF EXISTS accounts")
            pg.execute(f"CREATE TABLE accounts ({ddl.format(ts='timestamptz')})")
            pg.execute(
                "INSERT INTO accounts SELECT g, 'Account ' || g || ' GmbH', (g % 100000) / 100.0, g % 1000, "
                f"g % 3 = 0, timestamptz '2026-01-01' + g * interval '1 second' FROM generate_series(1, {rows}) g"
            )
    lite = sqlite3.connect(SQLITE)
    if lite.execute("SELECT count(*) FROM sqlite_master WHERE name = 'accounts'").fetchone()[0] == 0 or (
        lite.execute("SELECT count(*) FROM accounts").fetchone()[0] != rows
    ):
        lite.execute("DROP TABLE IF EXISTS accounts")
        lite.execute(f"CREATE TABLE accounts ({ddl.format(ts='DATETIME')})")
        base, second = dt.datetime(2026, 1, 1), dt.timedelta(seconds=1)
        lite.executemany(
            "INSERT INTO accounts VALUES (?, ?, ?, ?, ?, ?)",
            (
                (
                    g,
                    f"Account {g} GmbH",
                    (g % 100000) / 100,
                    g % 1000,
                    int(g % 3 == 0),
                    str(base + second * g),
                )
                for g in range(1, rows + 1)
            ),
        )
        lite.commit()
    lite.close()
    maria = MySQLdb.connect(host="127.0.0.1", user="root")
    cur = maria.cursor()
    cur.execute(f"CREATE DATABASE IF NOT EXISTS {DB}")
    cur.execute(f"USE {DB}")
    cur.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = %s AND table_name = 'accounts'", [DB]
    )
    if not cur.fetchone()[0] or (cur.execute("SELECT count(*) FROM accounts") and cur.fetchone()[0] != rows):
        cur.execute("DROP TABLE IF EXISTS accounts")
        cur.execute(f"CREATE TABLE accounts ({ddl.format(ts='DATETIME(6)')})")
        cur.execute(
            "INSERT INTO accounts SELECT seq, CONCAT('Account ', seq, ' GmbH'), (seq % 100000) / 100.0, seq % 1000, "
            f"seq % 3 = 0, TIMESTAMP '2026-01-01 00:00:00' + INTERVAL seq SECOND FROM seq_1_to_{rows}"
        )
        maria.commit()
    maria.close()


def run_case(name: str, db: str, rows: int, repeat: int) -> dict[str, Any]:
    runs = []
    for _ in range(repeat):
        proc = subprocess.run(
            [sys.executable, __file__, "--case", name, "--db", db, "--rows", str(rows)],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(REPO / "include")},
            check=False,
        )
        if proc.returncode:
            raise SystemExit(f"case {name} on {db} failed:\n{proc.stderr[-3000:]}")
        runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    result = fastest(runs, "cpu_seconds")
    print(
        f"{db:7} {name:9} {rows:>9,} rows  {result['seconds']:6.2f} s wall  {result['cpu_seconds']:6.2f} s CPU  "
        f"{result['peak_rss_mib']:6.0f} MiB",
        flush=True,
    )
    return result


def report(rows: int, results: dict[tuple[str, str, int], dict[str, Any]], load: str) -> str:
    small = rows // 10
    lines = [
        "# `sql` source benchmark",
        "",
        f"{run_on()}; load average before the run: {load}. `.venv/bin/python bench/sql_source_bench.py`.",
        "",
        f"A 6-column table (`{COLUMNS}`: bigint, varchar, numeric(12,2), int, boolean, timestamp) read into",
        "staged Parquet (zstd). **bulksync**: the `sql` source (count and read in one snapshot, exact types,",
        "committed partition with manifest). **by hand**: SQLite `sqlite3` fetchmany → `pyarrow.array` →",
        "`ParquetWriter`; PostgreSQL `COPY … TO STDOUT (FORMAT csv)` → `pyarrow.csv` → Parquet; MariaDB",
        "mysqlclient's unbuffered cursor → `pyarrow.array` → Parquet (no types beyond what the driver gives).",
        "Each case in a fresh interpreter, the best of the runs by CPU time (the machine is shared by several",
        "developers, so CPU time is the fairer figure; wall time shown too).",
        "",
        "| database | case | rows | wall s | CPU s | peak RSS (MiB) | speed vs by hand (CPU) |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for db in ("sqlite", "pg", "mariadb"):
        for n in (rows, small):
            hand = results[(db, "by hand", n)]
            for name in CASES:
                r = results[(db, name, n)]
                ratio = hand["cpu_seconds"] / r["cpu_seconds"]
                lines.append(
                    f"| {db} | {name} | {n:,} | {r['seconds']:.2f} | {r['cpu_seconds']:.2f} | "
                    f"{r['peak_rss_mib']:.0f} | {ratio:.2f}x |"
                )
    lines.append("")
    for db in ("sqlite", "pg", "mariadb"):
        b, h = results[(db, "bulksync", rows)], results[(db, "by hand", rows)]
        bs = results[(db, "bulksync", small)]
        lines.append(
            f"- **{db}**: bulksync at **{h['cpu_seconds'] / b['cpu_seconds']:.2f}x** the hand-written read by CPU "
            f"({h['seconds'] / b['seconds']:.2f}x by wall time; goal ≥ 0.8x); peak RSS {b['peak_rss_mib']:.0f} MiB "
            f"for {rows:,} rows, {bs['peak_rss_mib']:.0f} MiB for {small:,}."
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--case", choices=sorted(CASES))
    parser.add_argument("--db", choices=["sqlite", "pg", "mariadb"])
    args = parser.parse_args()
    if args.case:
        child(args.case, args.db, args.rows)
        return
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    prepare(args.rows)
    results = {}
    for db in ("sqlite", "pg", "mariadb"):
        for n in (args.rows, args.rows // 10):
            for name in CASES:
                results[(db, name, n)] = run_case(name, db, n, args.repeat)
    text = report(args.rows, results, load)
    RESULTS.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
