"""Case 2: staged Parquet -> PostgreSQL (bulksync, psql ``\\copy``, dlt, ``DataFrame.to_sql``).

Each function runs inside a fresh :mod:`worker` process and times only the load itself (table
set-up such as the ``CREATE TABLE`` before ``\\copy`` is not timed).
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

import datagen
from benchcfg import DLT_DIR, PG_CONN_ID, PG_DB, PG_HOST, PG_PORT, PG_URL, PG_USER
from cases_csv import bench_spec, run_context

if TYPE_CHECKING:
    from bulksync.spec.models import PipelineSpec

log = logging.getLogger(__name__)

PG_TYPES = {
    "string": "text",
    "decimal(18,2)": "numeric(18,2)",
    "int64": "bigint",
    "timestamptz": "timestamptz",
    "bool": "boolean",
}
BATCH_ROWS = 128 * 1024


def psql(sql: str, *, database: str = PG_DB) -> str:
    """Run one SQL statement (or psql meta-command) with ``psql`` and return its output."""
    cmd = [
        "psql",
        "-h",
        PG_HOST,
        "-p",
        str(PG_PORT),
        "-U",
        PG_USER,
        "-d",
        database,
        "-X",
        "-q",
        "-t",
        "-A",
        "-v",
        "ON_ERROR_STOP=1",
        "-c",
        sql,
    ]
    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return done.stdout.strip()


def _spec_for(params: dict[str, Any]) -> PipelineSpec:
    target = {
        "kind": "postgres",
        "conn_id": PG_CONN_ID,
        "table": params["table"],
        "mode": params["mode"],
        "keys": params.get("keys", []),
    }
    return bench_spec(params["pipeline"], str(Path(params["csv"]).parent), target)


def pg_transform(params: dict[str, Any]) -> dict[str, Any]:
    """``bulksync.stages.transform`` without steps: the passthrough the load reads from."""
    from bulksync.stages import partition_for, transform

    spec = _spec_for({**params, "table": "accounts", "mode": "append"})
    started = time.perf_counter()
    manifest = transform(spec, spec.datasets[0], run_context())
    folder = partition_for(spec, spec.datasets[0], run_context().window).stage_path("transform")
    return {
        "rows": manifest.rows,
        "seconds": time.perf_counter() - started,
        "files": [str((folder / f.path).resolve()) for f in manifest.files],
    }


def pg_bulksync(params: dict[str, Any]) -> dict[str, Any]:
    """``bulksync.stages.load`` of the committed partition (append / merge) in one transaction."""
    import bulksync.stages as stages
    from bulksync.hooks.sql import SqlAlchemyHook

    from worker import Clock, current_rss_mib

    spec = _spec_for(params)
    # warm up as a running Airflow task would be: imports, Airflow config, connection lookup; pyarrow
    # imports pandas lazily on its first Python-to-Arrow conversion (about 1 s), so import it here too
    import pandas  # noqa: F401

    SqlAlchemyHook(PG_CONN_ID).engine.dispose()
    streamed = _time_stream_end()
    rss_before = current_rss_mib()
    with Clock() as clock:
        result = stages.load(spec, spec.datasets[0], run_context())
    return {
        "rows": result.rows,
        **clock.figures(),
        # streaming the staged batches through COPY; the rest is the mode's SQL and the commit
        "copy_seconds": (streamed[0] - clock.started) if streamed else None,
        "rss_before_mib": rss_before,
        "inserted": result.inserted,
        "updated": result.updated,
        "deleted": result.deleted,
        "created_table": result.created_table,
    }


def _time_stream_end() -> list[float]:
    """Wrap the staging reader ``bulksync.stages.load`` uses, to note when the target asked for the batch
    after the last one (i.e. had sent every row to COPY). Returns the list the time lands in."""
    import bulksync.stages as stages

    original = stages.iter_batches
    ended: list[float] = []

    def timed(*args: object, **kwargs: object) -> Iterator[pa.RecordBatch]:
        yield from original(*args, **kwargs)
        ended.append(time.perf_counter())

    stages.iter_batches = timed  # type: ignore[assignment]
    return ended


def create_table_sql(table: str, primary_key: bool) -> str:
    """DDL of a table typed like the declared CSV columns (``Id`` as primary key if asked)."""
    cols = [f'"{name}" {PG_TYPES[typ]}' for name, typ in datagen.COLUMNS]
    if primary_key:
        cols.append('PRIMARY KEY ("Id")')
    return f'DROP TABLE IF EXISTS "{table}"; CREATE TABLE "{table}" ({", ".join(cols)})'


def pg_psql_copy(params: dict[str, Any]) -> dict[str, Any]:
    """The raw limit: ``psql \\copy ... FROM 'file.csv' CSV HEADER`` of the same rows."""
    from worker import Clock

    table = params["table"]
    psql(create_table_sql(table, bool(params["primary_key"])))
    with Clock() as clock:
        out = psql(f"\\copy \"{table}\" FROM '{params['csv']}' CSV HEADER")
    match = re.search(r"COPY (\d+)", out)
    rows = int(match.group(1)) if match else int(psql(f'SELECT count(*) FROM "{table}"'))
    return {"rows": rows, **clock.figures(), "rss_before_mib": 0.0}


def pg_psql_merge(params: dict[str, Any]) -> dict[str, Any]:
    """The raw merge limit, as a user would write it in psql: ``\\copy`` into a temporary (unlogged)
    table, then one ``INSERT … SELECT … ON CONFLICT ("Id") DO UPDATE`` of every other column, in one
    session. ``fresh`` creates the keyed target empty first (inserts); otherwise every row is an update."""
    from worker import Clock

    table = params["table"]
    if params.get("fresh"):
        psql(create_table_sql(table, primary_key=True))
    names = [name for name, _ in datagen.COLUMNS]
    cols = ", ".join(f'"{n}" {PG_TYPES[t]}' for n, t in datagen.COLUMNS)
    sets = ", ".join(f'"{n}" = EXCLUDED."{n}"' for n in names if n != "Id")
    script = Path(params["csv"]).parent / f"raw_merge_{table}.sql"
    script.write_text(
        f"CREATE TEMP TABLE raw_stage ({cols});\n"
        f"\\copy raw_stage FROM '{params['csv']}' CSV HEADER\n"
        f'INSERT INTO "{table}" SELECT * FROM raw_stage ON CONFLICT ("Id") DO UPDATE SET {sets};\n',
        encoding="utf-8",
    )
    cmd = ["psql", "-h", PG_HOST, "-p", str(PG_PORT), "-U", PG_USER, "-d", PG_DB, "-X", "-q", "-v", "ON_ERROR_STOP=1"]
    with Clock() as clock:
        subprocess.run([*cmd, "-f", str(script)], check=True, capture_output=True, text=True)
    rows = int(psql(f'SELECT count(*) FROM "{table}"'))
    return {"rows": rows, **clock.figures(), "rss_before_mib": 0.0}


def _parquet_batches(files: list[str]) -> Iterator[pa.RecordBatch]:
    for path in files:
        yield from pq.ParquetFile(path).iter_batches(batch_size=BATCH_ROWS)


def pg_dlt(params: dict[str, Any]) -> dict[str, Any]:
    """dlt loading the staged Parquet (Arrow batches) with its COPY-based ``csv`` loader format."""
    import dlt

    from worker import Clock, current_rss_mib

    # dlt's fastest PostgreSQL path without extra drivers: Arrow -> CSV -> COPY, files left uncompressed
    os.environ["DATA_WRITER__DISABLE_COMPRESSION"] = "true"
    files, table, disposition = params["files"], params["table"], params["disposition"]
    # dlt insists on a password; the bench server uses trust auth, so any placeholder works (not a secret)
    credentials = PG_URL.replace(f"{PG_USER}@", f"{PG_USER}:trust-auth-ignores-this@")
    pipeline = dlt.pipeline(
        pipeline_name=params["pipeline_name"],
        pipelines_dir=str(DLT_DIR / "pipelines"),
        destination=dlt.destinations.postgres(credentials=credentials),
        dataset_name="dlt_bench",
    )
    hints: dict[str, Any] = {"primary_key": "Id"} if disposition == "merge" else {}
    resource = dlt.resource(_parquet_batches(files), name=table, write_disposition=disposition, **hints)
    rss_before = current_rss_mib()
    with Clock() as clock:
        pipeline.run(resource, loader_file_format=params.get("file_format", "csv"))
    trace = pipeline.last_trace
    normalized = trace.last_normalize_info if trace else None
    counts: dict[str, int] = dict(normalized.row_counts) if normalized else {}
    return {
        "rows": int(counts.get(table, 0)),
        **clock.figures(),
        "rss_before_mib": rss_before,
        "row_counts": counts,
    }


def pg_to_sql(params: dict[str, Any]) -> dict[str, Any]:
    """``DataFrame.to_sql(method="multi")`` through SQLAlchemy, on the first ``rows`` staged rows."""
    import sqlalchemy as sa

    from worker import Clock, current_rss_mib

    rows, chunksize = int(params["rows"]), int(params["chunksize"])
    batch = next(pq.ParquetFile(params["files"][0]).iter_batches(batch_size=rows))
    df = batch.to_pandas()
    engine = sa.create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://"))
    rss_before = current_rss_mib()
    with Clock() as clock:
        df.to_sql(params["table"], engine, if_exists="replace", index=False, method="multi", chunksize=chunksize)
    engine.dispose()
    return {"rows": len(df), **clock.figures(), "rss_before_mib": rss_before, "chunksize": chunksize}


CASES = {
    "pg_transform": pg_transform,
    "pg_bulksync": pg_bulksync,
    "pg_psql_copy": pg_psql_copy,
    "pg_psql_merge": pg_psql_merge,
    "pg_dlt": pg_dlt,
    "pg_to_sql": pg_to_sql,
}
