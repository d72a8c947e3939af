"""Salesforce benchmark: Account rows from the local sandbox into Parquet staging, three ways.

- **bulksync**: ``bulksync.stages.extract`` of a ``source: salesforce`` dataset (Bulk API 2.0 job,
  pages parsed by pyarrow into the describe types while the next page downloads, Parquet staging
  with manifest);
- **simple_salesforce + pandas**: ``sf.bulk2.Account.download(...)`` to CSV files, then
  ``pandas.read_csv`` of every file, concatenated and written with ``DataFrame.to_parquet`` (zstd);
- **raw pages + pyarrow** (the limit): the same job and result pages fetched one after the other with
  the same ``requests`` session, each page parsed by ``pyarrow.csv.read_csv`` into the same Arrow
  schema and written with one ``ParquetWriter`` (zstd); no checks, no manifest.

All three run the same SOQL with the same page size (``maxRecords``) against one sandbox started by
this script (``bulksync sandbox salesforce --count Account=N``); each case runs in its own process
(peak RSS is per case) and creates its own query job, so the sandbox's simulated job time counts in
every case. simple_salesforce's ``download`` waits ``wait`` seconds before its first poll (default
5); it is given 0.5, bulksync and raw poll from 0.2 s doubling to 0.5 s.

    .venv/bin/python bench/salesforce_bench.py [--rows 2000000] [--repeat 2] [--max-records 100000]

Writes ``bench/RESULTS-salesforce.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from common import fastest, peak_rss_mib, run_on

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
DATA = BENCH / ".data" / "salesforce"
CONN_ID = "bench_sf"


def spec(max_records: int) -> Any:
    from bulksync.spec.loader import parse_spec

    return parse_spec(
        {
            "tenant": "bench",
            "pipeline": "salesforce",
            "start_date": "2026-01-01",
            "datasets": [
                {
                    "name": "accounts",
                    "source": {
                        "kind": "salesforce",
                        "conn_id": CONN_ID,
                        "options": {
                            "object": "Account",
                            "deletes": "ignore",
                            "max_records": max_records,
                            "poll_interval_seconds": 0.5,
                            "min_remaining_api_requests": 0,
                        },
                    },
                    "target": {"kind": "postgres", "conn_id": "x", "table": "t"},
                }
            ],
        },
        "bench",
    )


def soql_and_schema(max_records: int) -> tuple[Any, str, Any]:
    """The source bulksync would build (its describe call is made before the clock)."""
    from bulksync.sources.registry import make_source
    from bulksync.staging.partition import Window

    source = make_source(spec(max_records).datasets[0].source, Window())
    return source, source.soql(), source.schema()


def case_bulksync(max_records: int) -> dict[str, Any]:
    from bulksync import stages
    from bulksync.staging.partition import Window

    os.environ["BULKSYNC_STAGING_ROOT"] = str(DATA / "staging")
    s = spec(max_records)
    source, _, _ = soql_and_schema(max_records)  # the same imports and describe as the other cases
    source.close()
    started = time.perf_counter()
    manifest = stages.extract(s, s.datasets[0], stages.RunContext(run_id="bench", window=Window()))
    seconds = time.perf_counter() - started
    stats = manifest.extra["source_stats"]
    return {
        "seconds": seconds,
        "job_seconds": stats["job_seconds"],
        "rows": manifest.rows,
        "bytes": sum(f.bytes for f in manifest.files),
        "api_calls": stats.get("api_calls"),
    }


def case_simple_salesforce(max_records: int) -> dict[str, Any]:
    import pandas as pd

    source, soql, _ = soql_and_schema(max_records)
    sf = source.hook.get_conn()
    out = DATA / "simple_salesforce"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    handler = sf.bulk2.Account
    waited = [0.0]
    wait_for_job = handler._client.wait_for_job

    def timed_wait(*args: Any, **kwargs: Any) -> Any:
        t = time.perf_counter()
        try:
            return wait_for_job(*args, **kwargs)
        finally:
            waited[0] += time.perf_counter() - t

    handler._client.wait_for_job = timed_wait
    started = time.perf_counter()
    results = handler.download(soql, path=str(out), max_records=max_records, wait=0.5)
    frames = [pd.read_csv(r["file"]) for r in results]
    df = pd.concat(frames, ignore_index=True)
    del frames
    df.to_parquet(out / "accounts.parquet", compression="zstd", index=False)
    seconds = time.perf_counter() - started
    size = (out / "accounts.parquet").stat().st_size
    return {"seconds": seconds, "job_seconds": waited[0], "rows": len(df), "bytes": size}


def case_raw(max_records: int) -> dict[str, Any]:
    import io

    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    source, soql, described = soql_and_schema(max_records)
    schema = pa.schema([(f.name, f.type) for f in described])
    sf = source.hook.get_conn()
    headers = {"Authorization": sf.headers["Authorization"], "Content-Type": "application/json"}
    jobs = sf.base_url + "jobs/query"
    out = DATA / "raw"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    convert = pacsv.ConvertOptions(column_types={f.name: f.type for f in schema}, quoted_strings_can_be_null=True)
    started = time.perf_counter()
    job = sf.session.post(
        jobs,
        headers=headers,
        json={"operation": "query", "query": soql, "columnDelimiter": "COMMA", "lineEnding": "LF"},
    ).json()
    delay = 0.2
    while sf.session.get(f"{jobs}/{job['id']}", headers=headers).json()["state"] != "JobComplete":
        time.sleep(delay)
        delay = min(delay * 2, 0.5)
    job_seconds = time.perf_counter() - started
    rows, locator = 0, ""
    with pq.ParquetWriter(out / "accounts.parquet", schema, compression="zstd") as writer:
        while True:
            params = {"maxRecords": max_records, **({"locator": locator} if locator else {})}
            resp = sf.session.get(f"{jobs}/{job['id']}/results", headers=headers, params=params)
            table = pacsv.read_csv(
                io.BytesIO(resp.content),
                parse_options=pacsv.ParseOptions(newlines_in_values=True),
                convert_options=convert,
            ).select(schema.names)
            writer.write_table(table)
            rows += table.num_rows
            locator = resp.headers.get("Sforce-Locator", "null")
            if locator in ("", "null"):
                break
    seconds = time.perf_counter() - started
    size = (out / "accounts.parquet").stat().st_size
    return {"seconds": seconds, "job_seconds": job_seconds, "rows": rows, "bytes": size}


CASES = {"bulksync": case_bulksync, "simple_salesforce": case_simple_salesforce, "raw": case_raw}
LABELS = {
    "bulksync": "bulksync extract (Bulk API 2.0 → Arrow → Parquet staging)",
    "simple_salesforce": "simple_salesforce bulk2 download → CSV → pandas → Parquet",
    "raw": "raw result pages → pyarrow CSV → Parquet (the limit)",
}


def child(case: str, max_records: int) -> None:
    result = CASES[case](max_records)
    result["peak_rss_mib"] = peak_rss_mib()
    print(json.dumps(result, default=str))


def start_sandbox(rows: int) -> tuple[subprocess.Popen[bytes], dict[str, str]]:
    """Start the sandbox with ``rows`` Accounts; return it and the environment naming its connection."""
    env_file = DATA / "sandbox.env"
    env_file.unlink(missing_ok=True)
    DATA.mkdir(parents=True, exist_ok=True)
    log = open(DATA / "sandbox.log", "wb")  # noqa: SIM115 - lives as long as the sandbox
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "bulksync"),
            "sandbox",
            "salesforce",
            "--port",
            "0",
            "--records-per-object",
            "100",
            "--count",
            f"Account={rows}",
            "--conn-id",
            CONN_ID,
            "--workdir",
            str(DATA / "sandbox"),
            "--env-file",
            str(env_file),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=REPO,
    )
    deadline = time.monotonic() + 1800
    while not env_file.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            sys.exit(f"the sandbox did not start; see {DATA / 'sandbox.log'}")
        time.sleep(1)
    time.sleep(0.5)
    env = dict(os.environ)
    for line in env_file.read_text().splitlines():
        words = shlex.split(line)
        if len(words) == 2 and words[0] == "export" and "=" in words[1]:
            key, _, value = words[1].partition("=")
            env[key] = value
    return proc, env


def run_once(case: str, args: argparse.Namespace, env: dict[str, str]) -> dict[str, Any]:
    """One run of a case in a fresh process, with the machine's load average when it started."""
    load = os.getloadavg()[0]
    out = subprocess.run(
        [sys.executable, __file__, "--child", case, "--max-records", str(args.max_records)],
        capture_output=True,
        text=True,
        env={**env, "PYTHONWARNINGS": "ignore", "AIRFLOW_HOME": str(DATA / "airflow")},
        cwd=REPO,
    )
    if out.returncode != 0:
        sys.exit(f"case {case} failed:\n{out.stderr[:3000]}")
    res: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    res["client_seconds"] = res["seconds"] - res["job_seconds"]
    res["load"] = load
    print(f"{case}: {res}", file=sys.stderr)
    return res


def run_rounds(args: argparse.Namespace, env: dict[str, str]) -> dict[str, dict[str, Any]]:
    """``repeat`` rounds of every case in turn (so a busy spell hits all cases alike); the best run of each."""
    runs: dict[str, list[dict[str, Any]]] = {case: [] for case in CASES}
    for _ in range(args.repeat):
        for case in ("raw", "simple_salesforce", "bulksync"):
            runs[case].append(run_once(case, args, env))
    return {case: {**fastest(results, "client_seconds"), "runs": results} for case, results in runs.items()}


def every_run(runs: list[dict[str, Any]]) -> str:
    """``12.3 (4.5), …``: the results seconds of each run with the load average it started at."""
    return ", ".join("{:.1f} ({:.1f})".format(r["client_seconds"], r["load"]) for r in runs)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--rows", type=int, default=2_000_000)
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--max-records", type=int, default=100_000)
    p.add_argument("--child", choices=list(CASES))
    args = p.parse_args()
    if args.child:
        child(args.child, args.max_records)
        return
    started = time.monotonic()
    proc, env = start_sandbox(args.rows)
    print(f"sandbox with {args.rows:,} Accounts ready in {time.monotonic() - started:.0f}s", file=sys.stderr)
    try:
        # the sandbox generates a query's result once and reuses it for identical queries: warm it up first
        warm = time.monotonic()
        run_once("raw", args, env)
        print(f"warm-up (the sandbox generates the result) took {time.monotonic() - warm:.0f}s", file=sys.stderr)
        results = run_rounds(args, env)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    b, s, r = results["bulksync"], results["simple_salesforce"], results["raw"]
    lines = [
        "# Salesforce extraction benchmark",
        "",
        f"{run_on()}: {args.rows:,} Account rows (every field of describe but formula and "
        f"compound ones) from the local sandbox over HTTPS, {args.max_records:,} records per results page "
        f"(`bench/salesforce_bench.py`). Best time of {args.repeat} rounds (every case once per round, in turn), "
        "each run in a fresh process, after one "
        "warm-up query (the sandbox generates a result once and serves identical queries from it); the "
        "sandbox runs in its own process on the same machine (its CPU is shared with the case). "
        "Figures taken while other work may have run on the machine.",
        "",
        "`job s` is the time from creating the query job to `JobComplete` (the sandbox's processing, the same "
        "work for every client, polls included); `results s` is the rest: downloading the result pages, parsing "
        "them and writing Parquet, the client's own work. Ratios are given for both.",
        "",
        "| case | total s | job s | results s | results rows/s | peak RSS MiB | rows "
        "| results s of every run (1-min load) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in ("bulksync", "simple_salesforce", "raw"):
        x = results[name]
        lines.append(
            f"| {LABELS[name]} | {x['seconds']:.1f} | {x['job_seconds']:.1f} | {x['client_seconds']:.1f} "
            f"| {x['rows'] / x['client_seconds']:,.0f} | {x['peak_rss_mib']:,.0f} | {x['rows']:,} "
            f"| {every_run(x['runs'])} |"
        )
    lines += [
        "",
        f"- vs simple_salesforce + pandas: results phase **{s['client_seconds'] / b['client_seconds']:.2f}x** faster "
        f"(goal >= 2x), total {s['seconds'] / b['seconds']:.2f}x; "
        f"peak RSS **{b['peak_rss_mib'] / s['peak_rss_mib']:.2f}x** of it.",
        f"- vs raw pages + pyarrow: results phase **{r['client_seconds'] / b['client_seconds']:.2f}x** of the limit's "
        f"speed (goal >= 0.8x), total {r['seconds'] / b['seconds']:.2f}x; "
        f"peak RSS {b['peak_rss_mib'] / r['peak_rss_mib']:.2f}x of it.",
        f"- bulksync made {b.get('api_calls')} API calls; all cases read the same {b['rows']:,} rows: "
        f"{'yes' if b['rows'] == s['rows'] == r['rows'] else 'NO'}.",
    ]
    (BENCH / "RESULTS-salesforce.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
