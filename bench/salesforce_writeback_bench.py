"""Salesforce write-back benchmark: Account upserts into the local sandbox (Bulk API 2.0 ingest), three ways.

- **bulksync**: the load stage of a ``target: salesforce`` dataset (``load_partition``: describe check,
  a streaming pre-upload pass, CSV jobs of 100,000 records encoded from the staged Parquet with
  pyarrow, two jobs in flight, the three result sets read and accounted for, quarantine committed);
- **simple_salesforce + pandas** (what a user would otherwise write): ``pandas.read_parquet`` of the
  staged files, ``DataFrame.to_csv``, then ``sf.bulk2.Account.upsert(csv_file, batch_size=100000, wait=0.5)``
  (its upsert runs the jobs one after the other: it takes no ``concurrency``); it reads the job info,
  not the per-record results;
- **raw** (the limit): CSV files made before the clock (the same 100,000-record splits), uploaded with
  plain ``requests`` — create job, PUT, UploadComplete, poll, read ``successfulResults`` — two jobs at a time.

Every case upserts the same records (``Acme_Id__c`` external id) into one sandbox started by this
script; a warm-up run inserts them first, so every timed run updates the same records. Each case runs
in its own process (peak RSS per case). The sandbox's processing of the jobs is the same work for every
client; the client's CPU seconds are reported beside wall time because the machine is shared.

    .venv/bin/python bench/salesforce_writeback_bench.py [--rows 1000000] [--small 100000] [--repeat 2]

Writes ``bench/RESULTS-salesforce-writeback.md``.
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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from common import fastest, peak_rss_mib, run_on
from salesforce_bench import start_sandbox

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
DATA = BENCH / ".data" / "salesforce_writeback"
CONN_ID = "bench_sf"
JOB_RECORDS = 100_000
FIELDS = {
    "Acme_Id__c": "acme_id",
    "Name": "name",
    "Industry": "industry",
    "Rating": "rating",
    "AnnualRevenue": "revenue",
    "NumberOfEmployees": "employees",
    "Active__c": "active",
    "Credit_Limit__c": "credit",
    "BillingCity": "city",
    "Description": "notes",
}


def spec(rows: int) -> Any:
    from bulksync.spec.loader import parse_spec

    return parse_spec(
        {
            "tenant": "bench",
            "pipeline": "writeback",
            "start_date": "2026-01-01",
            "staging": {"root": str(DATA / "staging")},
            "datasets": [
                {
                    "name": f"accounts_{rows}",
                    "source": {
                        "kind": "csv_files",
                        "options": {"path": "x", "columns": [{"name": "a", "type": "string"}]},
                    },
                    "target": {
                        "kind": "salesforce",
                        "conn_id": CONN_ID,
                        "object": "Account",
                        "operation": "upsert",
                        "external_id": "Acme_Id__c",
                        "fields": FIELDS,
                        "max_records_per_job": JOB_RECORDS,
                        "max_parallel_jobs": 2,
                        "poll_interval_seconds": 0.5,
                        "min_remaining_api_requests": 0,
                    },
                }
            ],
        },
        "bench",
    )


def make_table(n: int) -> Any:
    """``n`` Accounts with every kind of value, vectorised."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    i = np.arange(n, dtype=np.int64)
    rng = np.random.default_rng(20260101)
    num = pa.array(i).cast(pa.string())
    return pa.table(
        {
            "acme_id": pc.binary_join_element_wise("ACME-", num, ""),
            "name": pc.binary_join_element_wise("Bench Company ", num, ' & Söhne, "Ltd"', ""),
            "industry": pa.array(np.array(["Banking", "Retail", "Energy", "Technology"])[i % 4]),
            "rating": pa.array(np.array(["Hot", "Warm", "Cold"])[i % 3]),
            "revenue": pa.array(rng.integers(10_000, 5_000_000_000, n))
            .cast(pa.decimal128(19, 0))
            .cast(pa.decimal128(18, 0)),
            "employees": pa.array(rng.integers(1, 250_000, n)),
            "active": pa.array(i % 2 == 0),
            "credit": pa.array(rng.integers(1_000, 10_000_000, n))
            .cast(pa.decimal128(19, 0))
            .cast(pa.decimal128(16, 2)),
            "city": pa.array(np.array(["München", "São Paulo", "東京", "Austin"])[i % 4]),
            "notes": pa.array(np.array(["Key account,\nrenewed early.", 'Said "ship it"', "plain"])[i % 3]),
        }
    )


def prepare(rows: int) -> None:
    """Commit the staged (transform) partition of ``rows`` Accounts, and the raw case's CSV files."""
    import pyarrow.csv as pacsv
    from bulksync import stages
    from bulksync.staging.partition import Window
    from bulksync.staging.writer import PartitionWriter
    from bulksync.targets.salesforce.encode import encode
    from bulksync.targets.salesforce.plan import Column, WritePlan

    s = spec(rows)
    part = stages.partition_for(s, s.datasets[0], Window())
    table = make_table(rows)
    for stage in ("extract", "transform"):
        with PartitionWriter(part, stage, table.schema, run_id="bench") as w:
            for batch in table.to_batches(max_chunksize=100_000):
                w.write_batch(batch)
            w.commit(window=Window().to_json(), extra={"rows_in": rows})
    folder = DATA / f"raw_{rows}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    plan = WritePlan(
        "Account", "upsert", "Acme_Id__c", [Column(k, v, {"name": k}) for k, v in FIELDS.items()], "acme_id"
    )
    for n, start in enumerate(range(0, rows, JOB_RECORDS)):
        (folder / f"part-{n:03d}.csv").write_bytes(encode(plan, table.slice(start, JOB_RECORDS), "ignore", header=True))
    del pacsv


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def case_bulksync(rows: int) -> dict[str, Any]:
    import bulksync.targets.salesforce.target  # noqa: F401 - imported before the clock, as the others' modules
    from bulksync import stages
    from bulksync.staging.partition import Window
    from bulksync.targets.salesforce.load import load_partition

    s = spec(rows)
    _client()  # the same imports and connection lookup the other cases make before their clock
    started, c0 = time.perf_counter(), cpu()
    result = load_partition(s, s.datasets[0], stages.RunContext(run_id="bench", window=Window()), force=True)
    return {
        "seconds": time.perf_counter() - started,
        "cpu_seconds": cpu() - c0,
        "rows": result.inserted + result.updated,
        "failed": result.failed + result.unprocessed,
        "jobs": len(result.extra.get("jobs", [])),
    }


def _client() -> Any:
    from bulksync.hooks.salesforce import BulksyncSalesforceHook

    return BulksyncSalesforceHook(CONN_ID).get_conn()


def case_simple_salesforce(rows: int) -> dict[str, Any]:
    import pandas as pd
    from bulksync import stages
    from bulksync.staging.partition import Window
    from bulksync.staging.reader import read_manifest

    s = spec(rows)
    part = stages.partition_for(s, s.datasets[0], Window())
    files = [part.stage_path("transform") / f.path for f in read_manifest(part, "transform").files]
    sf = _client()
    out = DATA / "simple_salesforce.csv"
    started, c0 = time.perf_counter(), cpu()
    df = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    df = df.rename(columns={v: k for k, v in FIELDS.items()})[list(FIELDS)]
    df.to_csv(out, index=False)
    results = sf.bulk2.Account.upsert(
        csv_file=str(out), external_id_field="Acme_Id__c", batch_size=JOB_RECORDS, wait=0.5
    )
    processed = sum(r["numberRecordsProcessed"] - r["numberRecordsFailed"] for r in results)
    failed = sum(r["numberRecordsFailed"] for r in results)
    return {"seconds": time.perf_counter() - started, "cpu_seconds": cpu() - c0, "rows": processed,
            "failed": failed, "jobs": len(results)}  # fmt: skip


def case_raw(rows: int) -> dict[str, Any]:
    sf = _client()
    headers = {"Authorization": sf.headers["Authorization"]}
    jobs = sf.base_url + "jobs/ingest"
    files = sorted((DATA / f"raw_{rows}").glob("*.csv"))

    def one(path: Path) -> int:
        job = sf.session.post(
            jobs,
            headers=headers,
            json={
                "object": "Account",
                "operation": "upsert",
                "externalIdFieldName": "Acme_Id__c",
                "contentType": "CSV",
                "lineEnding": "LF",
            },
        ).json()
        url = f"{jobs}/{job['id']}"
        sf.session.put(url + "/batches", headers={**headers, "Content-Type": "text/csv"}, data=path.read_bytes())
        sf.session.patch(url, headers=headers, json={"state": "UploadComplete"})
        delay = 0.2
        while sf.session.get(url, headers=headers).json()["state"] not in ("JobComplete", "Failed", "Aborted"):
            time.sleep(delay)
            delay = min(delay * 2, 0.5)
        ok = sf.session.get(url + "/successfulResults", headers=headers).content
        return ok.count(b'\n"') if ok else 0

    started, c0 = time.perf_counter(), cpu()
    with ThreadPoolExecutor(2) as pool:
        done = sum(pool.map(one, files))
    return {"seconds": time.perf_counter() - started, "cpu_seconds": cpu() - c0, "rows": done, "failed": 0,
            "jobs": len(files)}  # fmt: skip


CASES = {"bulksync": case_bulksync, "simple_salesforce": case_simple_salesforce, "raw": case_raw}
LABELS = {
    "bulksync": "bulksync load (staged Parquet → CSV jobs → results accounted, quarantine)",
    "simple_salesforce": "simple_salesforce bulk2 upsert fed from pandas (read_parquet → to_csv)",
    "raw": "raw: pre-made CSV uploads with plain requests (the limit)",
}


def run_once(case: str, rows: int, env: dict[str, str]) -> dict[str, Any]:
    load = os.getloadavg()[0]
    out = subprocess.run(
        [sys.executable, __file__, "--child", case, "--rows", str(rows)],
        capture_output=True,
        text=True,
        env={**env, "PYTHONWARNINGS": "ignore", "AIRFLOW_HOME": str(DATA / "airflow")},
        cwd=REPO,
    )
    if out.returncode != 0:
        sys.exit(f"case {case} failed:\n{out.stderr[-3000:]}")
    res: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    res["load"] = load
    print(f"{case} {rows}: {res}", file=sys.stderr)
    return res


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--small", type=int, default=100_000)
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--child", choices=list(CASES))
    args = p.parse_args()
    if args.child:
        result = CASES[args.child](args.rows)
        result["peak_rss_mib"] = peak_rss_mib()
        print(json.dumps(result))
        return
    shutil.rmtree(DATA, ignore_errors=True)
    DATA.mkdir(parents=True)
    middle = 3 * JOB_RECORDS  # three jobs: the most bulksync holds in flight (two running, one encoded)
    for rows in (args.small, middle, args.rows):
        prepare(rows)
    proc, env = start_sandbox(100)
    try:
        warm = time.monotonic()
        run_once("raw", args.rows, env)  # inserts every record: the timed runs all update the same records
        print(f"warm-up (inserting {args.rows:,}) took {time.monotonic() - warm:.0f}s", file=sys.stderr)
        runs: dict[str, list[dict[str, Any]]] = {case: [] for case in CASES}
        for _ in range(args.repeat):
            for case in ("raw", "simple_salesforce", "bulksync"):
                runs[case].append(run_once(case, args.rows, env))
        small = run_once("bulksync", args.small, env)
        steady = run_once("bulksync", middle, env)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    best = {case: fastest(r) for case, r in runs.items()}
    b, s, r = best["bulksync"], best["simple_salesforce"], best["raw"]
    lines = [
        "# Salesforce write-back benchmark (Bulk API 2.0 ingest)",
        "",
        f"{run_on()}: {args.rows:,} Account upserts (10 fields, external id Acme_Id__c) into the local sandbox over "
        f"HTTPS, {JOB_RECORDS:,} records per job, two jobs in flight (`bench/salesforce_writeback_bench.py`). Best of "
        f"{args.repeat} rounds (every case once per round, in turn), each run in a fresh process, after a warm-up "
        "run that inserted the records (every timed run updates them). The sandbox runs in its own process on "
        "the same 2 cores and does the same processing for every client; the machine was shared with other work "
        "(1-minute load average at each run's start in the last column).",
        "",
        "| case | wall s | client CPU s | records/s (wall) | peak RSS MiB | records | jobs "
        "| wall s of every run (load) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in ("bulksync", "simple_salesforce", "raw"):
        x = best[name]
        every = ", ".join(f"{y['seconds']:.1f} ({y['load']:.1f})" for y in runs[name])
        lines.append(
            f"| {LABELS[name]} | {x['seconds']:.1f} | {x['cpu_seconds']:.1f} | {x['rows'] / x['seconds']:,.0f} "
            f"| {x['peak_rss_mib']:,.0f} | {x['rows']:,} | {x['jobs']} | {every} |"
        )
    lines += [
        "",
        f"- vs the raw limit: **{r['seconds'] / b['seconds']:.2f}x** its speed (goal >= 0.8x); client CPU "
        f"{b['cpu_seconds'] / max(r['cpu_seconds'], 1e-9):.1f}x of it.",
        f"- vs simple_salesforce + pandas: **{s['seconds'] / b['seconds']:.2f}x** faster (goal >= 1.5x), client CPU "
        f"{s['cpu_seconds'] / b['cpu_seconds']:.2f}x of bulksync's; peak RSS "
        f"**{b['peak_rss_mib'] / s['peak_rss_mib']:.2f}x** of it.",
        f"- memory: bulksync's peak RSS {small['peak_rss_mib']:,.0f} MiB for {args.small:,} records (one job), "
        f"{steady['peak_rss_mib']:,.0f} MiB for {middle:,} (three jobs: two in flight, one encoded), "
        f"{b['peak_rss_mib']:,.0f} MiB for {args.rows:,}: {b['peak_rss_mib'] / small['peak_rss_mib']:.2f}x for "
        f"{args.rows / args.small:.0f}x the records, {b['peak_rss_mib'] / steady['peak_rss_mib']:.2f}x from "
        f"{middle:,} to {args.rows:,} (memory is bounded by the jobs in flight, not by the data).",
        f"- every case wrote all {args.rows:,} records, none failed: "
        f"{'yes' if all(x['rows'] == args.rows and not x['failed'] for x in best.values()) else 'NO'}.",
        "",
    ]
    (BENCH / "RESULTS-salesforce-writeback.md").write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
