"""What the file-drop interval lease costs: an extract of many small files with the lease (heartbeat, and a
fencing update in every ledger transaction and before every move) against the same extract with the lease
switched off (what bulksync did before), ledger in PostgreSQL or SQLite.

Each case runs in a fresh interpreter on a fresh copy of the drop; imports happen before the clock.

    .venv/bin/python bench/filedrop_lease_bench.py [--files 400] [--rows 250] [--repeat 2] [--ledger postgres]

Writes ``bench/RESULTS-filedrop-lease.md``.
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
import uuid
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
DATA = BENCH / ".data" / "filedrop-lease"
PG = os.environ.get("BULKSYNC_BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
COLUMNS = [
    {"name": "id", "type": "int64", "nullable": False},
    {"name": "name", "type": "string"},
    {"name": "amount", "type": "decimal(12,2)"},
]


def make_drop(folder: Path, files: int, rows: int) -> None:
    folder.mkdir(parents=True)
    old = time.time() - 3600
    for i in range(files):
        lines = ["id,name,amount"] + [f"{i * rows + j},name {j},{j}.25" for j in range(rows)]
        path = folder / f"orders_{i:05d}.csv"
        path.write_text("\n".join(lines) + "\n")
        os.utime(path, (old, old))


def child(case: str, landing: str, ledger: str) -> None:
    from bulksync import stages
    from bulksync.sources.file_drop import ledger as ledger_mod
    from bulksync.spec.loader import parse_spec
    from bulksync.staging.partition import Window

    if case == "no lease":
        ledger_mod.Ledger.take_lease = lambda self, *a, **k: None  # type: ignore[assignment,method-assign]
    spec = parse_spec(
        {
            "tenant": "bench",
            "pipeline": "lease",
            "start_date": "2026-01-01",
            "datasets": [
                {
                    "name": "orders",
                    "source": {
                        "kind": "file_drop",
                        "options": {
                            "landing": landing,
                            "pattern": "orders_*.csv",
                            "arrival": {"mode": "immediate"},
                            "columns": COLUMNS,
                            "ledger_conn_id": "bench_ledger",
                        },
                    },
                    "target": {
                        "kind": "postgres" if ledger == "postgres" else "sqlite",
                        "conn_id": "bench_ledger",
                        "table": "orders",
                    },
                }
            ],
        },
        "bench.yaml",
    )
    window = Window(dt.datetime(2026, 1, 1, tzinfo=dt.UTC), dt.datetime(2026, 1, 2, tzinfo=dt.UTC))
    cpu = time.process_time()
    started = time.perf_counter()
    manifest = stages.extract(spec, spec.datasets[0], stages.RunContext(run_id="bench", window=window))
    print(json.dumps({"seconds": time.perf_counter() - started, "cpu": time.process_time() - cpu,
                      "rows": manifest.rows}))  # fmt: skip


def _ledger_url(kind: str) -> tuple[str, Any]:
    if kind == "sqlite":
        path = DATA / f"ledger-{uuid.uuid4().hex[:6]}.db"
        return f"sqlite:///{path}", lambda: path.unlink(missing_ok=True)
    import sqlalchemy as sa

    admin = sa.create_engine(PG.replace("postgresql://", "postgresql+psycopg://") + "/postgres",
                             isolation_level="AUTOCOMMIT")  # fmt: skip
    name = f"bulksync_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as c:
        c.exec_driver_sql(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with admin.connect() as c:
            c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return f"{PG}/{name}", drop


def run_once(case: str, files: int, rows: int, ledger: str) -> dict[str, Any]:
    landing = DATA / f"landing-{uuid.uuid4().hex[:6]}"
    make_drop(landing, files, rows)
    url, drop = _ledger_url(ledger)
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "AIRFLOW_CONN_BENCH_LEDGER": url,
        "BULKSYNC_STAGING_ROOT": str(landing.parent / f"staging-{landing.name}"),
        "AIRFLOW__CORE__UNIT_TEST_MODE": "True",
    }
    try:
        out = subprocess.run(
            [sys.executable, __file__, "--child", case, "--landing", str(landing), "--ledger", ledger],
            env=env, capture_output=True, text=True, check=True,
        )  # fmt: skip
        return dict(json.loads(out.stdout.strip().splitlines()[-1]))
    finally:
        drop()
        shutil.rmtree(landing, ignore_errors=True)
        shutil.rmtree(landing.parent / f"staging-{landing.name}", ignore_errors=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--files", type=int, default=400)
    p.add_argument("--rows", type=int, default=250)
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--ledger", choices=["postgres", "sqlite"], default="postgres")
    p.add_argument("--child")
    p.add_argument("--landing")
    a = p.parse_args()
    if a.child:
        child(a.child, a.landing, a.ledger)
        return
    DATA.mkdir(parents=True, exist_ok=True)
    cases = ["no lease", "lease"]
    best: dict[str, dict[str, Any]] = {}
    for _ in range(a.repeat):
        for case in cases:  # interleaved: the machine's load hits both alike
            got = run_once(case, a.files, a.rows, a.ledger)
            if case not in best or got["seconds"] < best[case]["seconds"]:
                best[case] = got
    load = os.getloadavg()
    lines = [
        "# File-drop lease benchmark",
        "",
        f"Run {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC on {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}; {a.files} CSV files of {a.rows} rows, "
        f"ledger in {a.ledger} (`bench/filedrop_lease_bench.py`). Best of {a.repeat}, cases interleaved, each in a "
        f"fresh interpreter. Load average at the end: {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} (shared machine).",
        "",
        "| case | files | rows | seconds | files/s | CPU seconds |",
        "|---|---|---|---|---|---|",
    ]
    for case in cases:
        r = best[case]
        lines.append(
            f"| extract {'with the interval lease and fencing' if case == 'lease' else 'without a lease (before)'} "
            f"| {a.files} | {r['rows']:,} | {r['seconds']:.2f} | {a.files / r['seconds']:.0f} | {r['cpu']:.2f} |"
        )
    ratio = best["no lease"]["seconds"] / best["lease"]["seconds"]
    cpu_ratio = best["no lease"]["cpu"] / best["lease"]["cpu"]
    lines += [
        "",
        f"Throughput with the lease / without: **{ratio:.2f}x** (CPU time: {cpu_ratio:.2f}x). The lease costs one "
        "insert and one delete per extract, a heartbeat every `expire_seconds / 3`, and one fencing update per "
        "ledger transaction and per batch of moves.",
        "",
    ]
    (BENCH / "RESULTS-filedrop-lease.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
