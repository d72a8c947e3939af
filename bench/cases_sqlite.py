"""Case 3: a SQLite ``merge`` of 1,000,000 staged rows, half of them updates, against the same upsert
written by hand in the ``sqlite3`` shell (``.import`` into a temporary table, then one
``INSERT … ON CONFLICT DO UPDATE``).

Both start from a copy of one template database whose table already holds the first half of the keys
(loaded by bulksync, so the table is exactly what a bulksync merge target looks like), and both end
with the same rows (checked by a fingerprint).
"""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from benchcfg import DATA_DIR, STAGING_ROOT, TENANT

SQLITE_DIR = DATA_DIR / "sqlite"
PIPELINE = "sqlite_merge"
TABLE = "accounts"
CONN_ID = "bench_sqlite"
BASE_WINDOW = (dt.datetime(2024, 5, 1, tzinfo=dt.UTC), dt.datetime(2024, 5, 2, tzinfo=dt.UTC))
MERGE_WINDOW = (dt.datetime(2024, 6, 1, tzinfo=dt.UTC), dt.datetime(2024, 6, 2, tzinfo=dt.UTC))


def _rows(start: int, n: int, version: int) -> pa.Table:
    rng = np.random.default_rng(start + version)
    ids = np.arange(start, start + n, dtype=np.int64)
    cents = rng.integers(0, 10**10, n)
    created = np.datetime64("2020-01-01T00:00:00", "us") + rng.integers(0, 10**14, n).astype("timedelta64[us]")
    return pa.table(
        {
            "Id": pa.array(ids),
            "Name": pa.array([f"Account {i} v{version}" for i in ids.tolist()]),
            # cents as an exact decimal(18,2): the integer's digits, the point two from the right
            "AnnualRevenue": pc.binary_join_element_wise(
                pc.cast(pa.array(cents // 100), pa.string()),
                pc.utf8_lpad(pc.cast(pa.array(cents % 100), pa.string()), 2, "0"),
                ".",
            ).cast(pa.decimal128(18, 2)),
            "NumberOfEmployees": pa.array(rng.integers(1, 100_000, n)),
            "Website": pa.array([f"https://a{i}.example.com" if i % 7 else None for i in ids.tolist()]),
            "CreatedDate": pa.array(created).cast(pa.timestamp("us", tz="UTC")),
            "IsDeleted": pa.array(ids % 11 == 0),
        }
    )


def _spec(db: Path) -> Any:
    from bulksync.spec.loader import parse_spec

    data = {
        "tenant": TENANT,
        "pipeline": PIPELINE,
        "start_date": "2024-01-01",
        "schedule": None,
        "datasets": [
            {
                "name": TABLE,
                "source": {"kind": "sql", "conn_id": "unused", "options": {"table": "unused"}},
                "target": {"kind": "sqlite", "conn_id": CONN_ID, "table": TABLE, "mode": "merge", "keys": ["Id"]},
            }
        ],
    }
    return parse_spec(data, "bench_sqlite.yaml")


def _commit(window: tuple[dt.datetime, dt.datetime], table: pa.Table) -> None:
    from bulksync.stages import partition_for
    from bulksync.staging.partition import Window
    from bulksync.staging.writer import PartitionWriter

    spec = _spec(SQLITE_DIR / "unused.db")
    part = partition_for(spec, spec.datasets[0], Window(*window))
    for stage in ("extract", "transform"):
        with PartitionWriter(part, stage, table.schema, run_id="bench") as writer:
            for batch in table.to_batches(max_chunksize=128 * 1024):
                writer.write_batch(batch)
            writer.commit(window=Window(*window).to_json(), extra={"rows_in": table.num_rows})


def _env_conn(db: Path) -> None:
    import os

    os.environ[f"AIRFLOW_CONN_{CONN_ID.upper()}"] = f"sqlite:///{db}"
    os.environ["BULKSYNC_STAGING_ROOT"] = str(STAGING_ROOT)


def sqlite_setup(params: dict[str, Any]) -> dict[str, Any]:
    """Stage the merge partition (``rows``: half existing keys, half new), the template database (the first
    half loaded by bulksync) and the CSV the hand-written upsert imports."""
    from bulksync import stages
    from bulksync.staging.partition import Window
    from bulksync.targets.values import sqlite_value

    n = int(params["rows"])
    SQLITE_DIR.mkdir(parents=True, exist_ok=True)
    template = SQLITE_DIR / "template.db"
    template.unlink(missing_ok=True)
    _env_conn(template)
    base, merge = _rows(0, n // 2, 0), _rows(0, n, 1)
    _commit(BASE_WINDOW, base)
    _commit(MERGE_WINDOW, merge)
    spec = _spec(template)
    stages.load(spec, spec.datasets[0], stages.RunContext(run_id="seed", window=Window(*BASE_WINDOW)))
    # the CSV holds the values as bulksync stores them in SQLite (decimals and times as text, booleans 0/1)
    cols = [sqlite_value(c) if not pa.types.is_boolean(c.type) else c.cast(pa.int8()) for c in merge.columns]
    pacsv.write_csv(pa.table(cols, names=merge.column_names), SQLITE_DIR / "merge.csv")
    return {"rows": n, "seconds": 0.0}


FINGERPRINT = (
    "SELECT count(*), sum(Id), sum(length(Name)), count(Website), sum(NumberOfEmployees), max(CreatedDate), "
    "sum(IsDeleted), sum(length(AnnualRevenue)), min(Name), max(Name) FROM accounts"
)


def _fingerprint(db: Path) -> str:
    out = subprocess.run(["sqlite3", str(db), FINGERPRINT], check=True, capture_output=True, text=True)
    return out.stdout.strip()


def sqlite_bulksync(params: dict[str, Any]) -> dict[str, Any]:
    """``bulksync.stages.load`` (merge on Id) of the staged partition into a copy of the template."""
    from bulksync import stages
    from bulksync.staging.partition import Window

    from worker import Clock, current_rss_mib

    db = SQLITE_DIR / "bulksync.db"
    shutil.copyfile(SQLITE_DIR / "template.db", db)
    _env_conn(db)
    spec = _spec(db)
    # warm up as a running Airflow task would be (imports, Airflow config, connection lookup), as case 2 does
    import bulksync.targets.sql  # noqa: F401
    import pandas  # noqa: F401
    from bulksync.hooks.sql import SqlAlchemyHook

    SqlAlchemyHook(CONN_ID).engine.dispose()

    rss_before = current_rss_mib()
    with Clock() as clock:
        result = stages.load(spec, spec.datasets[0], stages.RunContext(run_id="bench", window=Window(*MERGE_WINDOW)))
    return {
        "rows": result.rows,
        "inserted": result.inserted,
        "updated": result.updated,
        **clock.figures(),
        "rss_before_mib": rss_before,
        "fingerprint": _fingerprint(db),
    }


def sqlite_raw(params: dict[str, Any]) -> dict[str, Any]:
    """The same merge by hand in the ``sqlite3`` shell: ``.import`` the CSV into a temporary table, then one
    ``INSERT … SELECT … ON CONFLICT (Id) DO UPDATE``, in one transaction."""
    from worker import Clock

    db = SQLITE_DIR / "raw.db"
    shutil.copyfile(SQLITE_DIR / "template.db", db)
    names = ["Id", "Name", "AnnualRevenue", "NumberOfEmployees", "Website", "CreatedDate", "IsDeleted"]
    types = ["BIGINT", "TEXT", "TEXT", "BIGINT", "TEXT", "DATETIME", "BOOLEAN"]
    sets = ", ".join(f"{c} = excluded.{c}" for c in names[1:])
    script = "\n".join(
        [
            "BEGIN;",
            f"CREATE TEMP TABLE s ({', '.join(f'{c} {t}' for c, t in zip(names, types, strict=True))});",
            f".import --csv --skip 1 --schema temp {SQLITE_DIR / 'merge.csv'} s",
            "UPDATE temp.s SET Website = NULL WHERE Website = '';",  # .import reads an empty field as ''
            f"INSERT INTO accounts ({', '.join(names)}) SELECT * FROM temp.s WHERE true "
            f"ON CONFLICT (Id) DO UPDATE SET {sets};",
            "COMMIT;",
            "",
        ]
    )
    with Clock() as clock:
        subprocess.run(["sqlite3", str(db)], input=script, check=True, capture_output=True, text=True)
    return {"rows": int(params["rows"]), **clock.figures(), "rss_before_mib": 0.0, "fingerprint": _fingerprint(db)}


CASES = {"sqlite_setup": sqlite_setup, "sqlite_bulksync": sqlite_bulksync, "sqlite_raw": sqlite_raw}
