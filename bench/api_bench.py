"""API benchmark: records from the HubSpot and Graph stand-ins into Parquet staging, three ways.

- **bulksync**: ``bulksync.stages.extract`` of a ``source: api`` dataset (preset ``hubspot`` object
  ``contacts``, preset ``msgraph`` object ``users``) into a staging partition with its manifest;
- **hand-written**: a ``requests`` loop following the same pages, every record kept in a list, then
  ``pandas.json_normalize`` and ``DataFrame.to_parquet`` (zstd) — what a user would otherwise write;
- **dlt**: dlt's ``rest_api`` source on the same endpoint (the same page size and paginator), into dlt's
  ``filesystem`` destination as Parquet.

The stand-ins run in their own process (``bulksync sandbox api``), so the figures of a case are the
client's: wall seconds, CPU seconds (user + system of the case's process) and peak RSS. bulksync also
runs at a tenth of the records, to show that its memory does not grow with the extract. The fan-out
case reads HubSpot ``company_contacts`` (one search per company, concurrency 8) with and without 50 ms
added to every request by the stand-in, beside its raw limit: the same searches on 8 ``httpx`` threads that
parse the bodies and do nothing else.

    .venv/bin/python bench/api_bench.py [--records 1000000] [--fanout-records 100000] [--fanout-only]

Writes ``bench/RESULTS-api.md`` and ``bench/RESULTS-api-fanout.md`` (with the load average: the machine is shared).
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

from common import peak_rss_mib, run_on

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
DATA = BENCH / ".data" / "api"
PY = sys.executable
PROPS = "firstname,lastname,email,phone,jobtitle,company,associatedcompanyid"
SELECT = (
    "id,displayName,givenName,surname,mail,userPrincipalName,jobTitle,accountEnabled,businessPhones,officeLocation,"
    "createdDateTime"
)
FAST = {"requests_per_second": 100000, "initial_wait_seconds": 0.05}


def conn(name: str) -> dict[str, Any]:
    return json.loads(os.environ[f"AIRFLOW_CONN_BENCH_{name.upper()}"])


def base_url(c: dict[str, Any]) -> str:
    return f"https://{c['host']}:{c['port']}"


def bearer(name: str) -> str:
    import requests

    c = conn(name)
    e = c["extra"]
    if name == "hubspot":
        form = {
            "grant_type": "refresh_token",
            "client_id": e["client_id"],
            "client_secret": e["client_secret"],
            "refresh_token": e["refresh_token"],
        }
        url = e["token_url"]
    else:
        form = {
            "grant_type": "client_credentials",
            "client_id": c["login"],
            "client_secret": c["password"],
            "scope": "https://graph.microsoft.com/.default",
        }
        url = f"{e['authority_host']}/{e['tenant_id']}/oauth2/v2.0/token"
    return str(requests.post(url, data=form, verify=e["verify"], timeout=30).json()["access_token"])


def case_bulksync(system: str, obj: str, out: Path) -> int:
    from bulksync import stages
    from bulksync.spec.loader import parse_spec
    from bulksync.staging.partition import Window

    os.environ["BULKSYNC_STAGING_ROOT"] = str(out)
    opts: dict[str, Any] = {"preset": system, "object": obj, "limits": FAST}
    if system == "hubspot" and obj == "contacts":
        opts["deletes"] = None  # the baselines read the live list only
    spec = parse_spec(
        {
            "tenant": "bench",
            "pipeline": "api",
            "start_date": "2026-01-01",
            "datasets": [
                {
                    "name": obj,
                    "source": {"kind": "api", "conn_id": f"bench_{system}", "options": opts},
                    "target": {"kind": "sqlite", "conn_id": "unused", "table": obj},
                }
            ],
        },
        "bench.yaml",
    )
    ds = spec.datasets[0]
    return stages.extract(spec, ds, stages.RunContext(run_id="bench", window=Window(), try_number=1)).rows


def case_hand(system: str, out: Path) -> int:
    import pandas as pd
    import requests

    c = conn(system)
    session = requests.Session()
    session.verify = c["extra"]["verify"]
    session.trust_env = False  # else REQUESTS_CA_BUNDLE would override verify
    session.headers["Authorization"] = f"Bearer {bearer(system)}"
    records: list[dict[str, Any]] = []
    if system == "hubspot":
        params: dict[str, Any] = {"limit": 100, "properties": PROPS}
        while True:
            body = session.get(base_url(c) + "/crm/v3/objects/contacts", params=params, timeout=60).json()
            records.extend(body["results"])
            after = body.get("paging", {}).get("next", {}).get("after")
            if not after:
                break
            params["after"] = after
    else:
        url: str | None = base_url(c) + f"/v1.0/users/delta?$select={SELECT}"
        while url:
            body = session.get(url, timeout=60).json()
            records.extend(body["value"])
            url = body.get("@odata.nextLink")
    frame = pd.json_normalize(records)
    frame.to_parquet(out / f"{system}.parquet", compression="zstd")
    return len(frame)


def case_fanraw(system: str, out: Path) -> int:
    """The fan-out's raw limit: the same company list and one search per company on 8 ``httpx`` threads, bodies
    parsed and counted, nothing converted or written (what no extract can beat)."""
    import concurrent.futures as cf

    import httpx

    c = conn(system)
    client = httpx.Client(
        verify=c["extra"]["verify"], headers={"Authorization": f"Bearer {bearer(system)}"}, timeout=60, trust_env=False
    )
    base = base_url(c)
    ids: list[str] = []
    params: dict[str, Any] = {"limit": 100, "properties": "name"}
    while True:
        body = client.get(base + "/crm/v3/objects/companies", params=params).json()
        ids += [r["id"] for r in body["results"]]
        after = body.get("paging", {}).get("next", {}).get("after")
        if not after:
            break
        params["after"] = after

    def search(company: str) -> int:
        filters = [{"propertyName": "associatedcompanyid", "operator": "EQ", "value": company}]
        query = {"filterGroups": [{"filters": filters}], "properties": ["firstname", "lastname", "email"], "limit": 200}
        return len(client.post(base + "/crm/v3/objects/contacts/search", json=query).json()["results"])

    with cf.ThreadPoolExecutor(8) as pool:
        return sum(pool.map(search, ids))


def case_dlt(system: str, out: Path) -> int:
    import dlt
    from dlt.sources.helpers.rest_client.paginators import JSONLinkPaginator, JSONResponseCursorPaginator
    from dlt.sources.rest_api import rest_api_source

    c = conn(system)
    os.environ["REQUESTS_CA_BUNDLE"] = c["extra"]["verify"]
    os.environ["DLT_DATA_DIR"] = str(out / "dlt-data")
    os.environ["RUNTIME__LOG_LEVEL"] = "WARNING"
    if system == "hubspot":
        resource = {
            "name": "contacts",
            "endpoint": {
                "path": "crm/v3/objects/contacts",
                "params": {"limit": 100, "properties": PROPS},
                "data_selector": "results",
                "paginator": JSONResponseCursorPaginator(cursor_path="paging.next.after", cursor_param="after"),
            },
        }
    else:
        resource = {
            "name": "users",
            "endpoint": {
                "path": "v1.0/users/delta",
                "params": {"$select": SELECT},
                "data_selector": "value",
                "paginator": JSONLinkPaginator(next_url_path="['@odata.nextLink']"),
            },
        }
    source = rest_api_source(
        {
            "client": {"base_url": base_url(c) + "/", "auth": {"type": "bearer", "token": bearer(system)}},
            "resources": [resource],
        }
    )
    pipeline = dlt.pipeline(
        pipeline_name=f"bench_{system}",
        pipelines_dir=str(out / "dlt-pipelines"),
        destination=dlt.destinations.filesystem(bucket_url=(out / "dlt-files").as_uri()),
        dataset_name=system,
    )
    info = pipeline.run(source, loader_file_format="parquet")
    info.raise_on_failed_jobs()
    return int(pipeline.last_trace.last_normalize_info.row_counts[resource["name"]])  # type: ignore[union-attr]


def child(case: str, system: str, obj: str) -> None:
    out = DATA / f"out-{case}-{system}-{obj}"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    t0 = time.perf_counter()
    # the modules each case needs, imported before the clock starts (an Airflow task has them already)
    if case == "bulksync":
        import bulksync.hooks.api
        import bulksync.sources.api.source
        import bulksync.stages  # noqa: F401
    elif case == "hand":
        import requests  # noqa: F401
    elif case == "fanraw":
        import httpx  # noqa: F401
    else:
        import dlt
        import dlt.sources.rest_api  # noqa: F401
    imports = time.perf_counter() - t0
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    rows = {
        "bulksync": lambda: case_bulksync(system, obj, out),
        "hand": lambda: case_hand(system, out),
        "dlt": lambda: case_dlt(system, out),
        "fanraw": lambda: case_fanraw(system, out),
    }[case]()
    seconds = time.perf_counter() - started
    ru = resource.getrusage(resource.RUSAGE_SELF)
    cpu = ru.ru_utime + ru.ru_stime - ru0.ru_utime - ru0.ru_stime
    print(
        json.dumps(
            {
                "rows": rows,
                "seconds": seconds,
                "cpu_seconds": cpu,
                "peak_rss_mib": peak_rss_mib(),
                "import_seconds": imports,
            }
        )
    )
    shutil.rmtree(out, ignore_errors=True)


def start_standins(args: list[str]) -> tuple[subprocess.Popen[bytes], dict[str, str]]:
    DATA.mkdir(parents=True, exist_ok=True)
    env_file = DATA / "conn.env"
    env_file.unlink(missing_ok=True)
    log = open(DATA / "standins.log", "wb")  # noqa: SIM115 - lives as long as the process
    cmd = [
        PY,
        "-c",
        "from bulksync.cli import main; main()",
        "sandbox",
        "api",
        *args,
        "--conn-prefix",
        "bench_",
        "--workdir",
        str(DATA / "standins"),
        "--env-file",
        str(env_file),
    ]
    proc = subprocess.Popen(cmd, stdout=log, stderr=log, env={**os.environ, "PYTHONPATH": str(REPO / "include")})
    for _ in range(600):
        if env_file.exists() or proc.poll() is not None:
            break
        time.sleep(0.1)
    if not env_file.exists():
        proc.kill()
        raise SystemExit(f"the stand-ins did not start: see {DATA / 'standins.log'}")
    env = dict(os.environ)
    for line in env_file.read_text().splitlines():
        key, _, value = line.removeprefix("export ").partition("=")
        env[key] = value.strip("'")
    return proc, env


def run(case: str, system: str, obj: str, env: dict[str, str]) -> dict[str, Any]:
    env = {
        **env,
        "AIRFLOW_HOME": str(DATA / "airflow"),
        "BULKSYNC_HOME": str(DATA),
        "PYTHONPATH": f"{REPO / 'include'}:{BENCH}",
    }
    proc = subprocess.run(
        [PY, str(Path(__file__)), "--child", case, system, obj], env=env, capture_output=True, text=True
    )
    if proc.returncode:
        raise SystemExit(f"case {case} {system} failed:\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    print(
        f"  {case:9s} {system:8s} {obj:17s} {result['rows']:>9,} rows  {result['seconds']:7.1f} s  "
        f"cpu {result['cpu_seconds']:6.1f} s  peak {result['peak_rss_mib']:6.0f} MiB",
        flush=True,
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--fanout-records", type=int, default=100_000)
    parser.add_argument("--child", nargs=3, metavar=("CASE", "SYSTEM", "OBJECT"))
    parser.add_argument("--skip-dlt", action="store_true")
    parser.add_argument("--fanout-only", action="store_true", help="only the fan-out cases (RESULTS-api-fanout.md)")
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    print(f"{run_on()}; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    if not args.fanout_only:
        extracts(args.records, args.skip_dlt)
    fan_out(args.fanout_records)


def extracts(n: int, skip_dlt: bool) -> None:
    """bulksync, the hand-written loop and dlt on ``n`` records of each system, bulksync again at a tenth."""
    load = [os.getloadavg()]
    results: dict[str, dict[str, Any]] = {}
    full = ("bulksync", "hand", *(() if skip_dlt else ("dlt",)))
    for count, cases, key in ((n, full, ""), (n // 10, ("bulksync",), "-small")):
        proc, env = start_standins(
            [
                "hubspot",
                "msgraph",
                "--count",
                f"hubspot.contacts={count}",
                "--count",
                f"msgraph.users={count}",
                "--option",
                "msgraph.page_size=500",
                "--option",
                "msgraph.empty_pages=0",
            ]
        )
        try:
            for system, obj in (("hubspot", "contacts"), ("msgraph", "users")):
                for case in cases:
                    results[f"{case}{key}/{system}"] = run(case, system, obj, env)
        finally:
            proc.terminate()
            proc.wait()
    load.append(os.getloadavg())
    write_report(n, results, load)


def fan_out(fan_n: int, per: int = 200) -> None:
    """HubSpot company_contacts with and without 50 ms added per request: bulksync and the raw 8-thread limit."""
    load = [os.getloadavg()]
    results: dict[str, dict[str, Any]] = {}
    for latency in (0.0, 0.05):
        proc, env = start_standins(
            [
                "hubspot",
                "--count",
                f"hubspot.contacts={fan_n}",
                "--option",
                f"hubspot.contacts_per_company={per}",
                "--latency",
                str(latency),
            ]
        )
        try:
            for case in ("bulksync", "fanraw"):
                results[f"{case}/{latency}"] = run(case, "hubspot", "company_contacts", env)
        finally:
            proc.terminate()
            proc.wait()
    load.append(os.getloadavg())
    write_fanout_report(fan_n, per, results, load)


def load_line(load: list[tuple[float, float, float]]) -> str:
    return (
        f"{run_on()}. Load average (1/5/15 min) at the start {load[0][0]:.2f} / {load[0][1]:.2f} / {load[0][2]:.2f}, "
        f"at the end {load[1][0]:.2f} / {load[1][1]:.2f} / {load[1][2]:.2f}: the 2 cores are shared with other "
        "developers, so wall times are noisy; CPU seconds are the case process's own (the stand-ins run in another "
        "process)."
    )


def write_report(n: int, r: dict[str, dict[str, Any]], load: list[tuple[float, float, float]]) -> None:
    def rate(x: dict[str, Any]) -> float:
        return float(x["rows"]) / x["seconds"]

    lines = [
        "# API benchmark (bench/api_bench.py)",
        "",
        load_line(load),
        "",
        f"{n:,} records through each stand-in into Parquet (HubSpot contacts list, 100 a page; Graph users delta, "
        "500 a page). "
        "Wall and CPU seconds start after the case's modules are imported (Airflow's import alone takes several "
        "seconds here; an Airflow task has paid it before the extract starts); peak RSS includes them.",
        "",
        "| system | case | records | wall s | records/s | CPU s | peak RSS MiB | bulksync ÷ case (wall) | (CPU) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for system in ("hubspot", "msgraph"):
        b = r[f"bulksync/{system}"]
        for case in ("bulksync", "hand", "dlt", "bulksync-small"):
            x = r.get(f"{case}/{system}")
            if not x:
                continue
            ratio = rate(b) / rate(x)
            cpu_ratio = (x["cpu_seconds"] / x["rows"]) / (b["cpu_seconds"] / b["rows"])
            name = {
                "hand": "requests + json_normalize + to_parquet",
                "dlt": "dlt rest_api → filesystem parquet",
                "bulksync-small": f"bulksync at {n // 10:,}",
            }.get(case, "bulksync")
            lines.append(
                f"| {system} | {name} | {x['rows']:,} | {x['seconds']:.1f} | {rate(x):,.0f} | {x['cpu_seconds']:.1f} | "
                f"{x['peak_rss_mib']:.0f} | {ratio:.2f}× | {cpu_ratio:.2f}× |"
            )
    lines += [
        "",
        "Goals: ≥ 2× dlt, ≥ 1.5× the hand-written loop, peak memory flat from a tenth to all the records.",
        "",
        "The parent fan-out's figures are in [RESULTS-api-fanout.md](RESULTS-api-fanout.md).",
        "",
    ]
    (BENCH / "RESULTS-api.md").write_text("\n".join(lines))
    print("\n".join(lines))


def write_fanout_report(
    fan_n: int, per: int, r: dict[str, dict[str, Any]], load: list[tuple[float, float, float]]
) -> None:
    def per_record(x: dict[str, Any]) -> float:
        return float(x["seconds"]) / x["rows"]

    lines = [
        "# API benchmark: parent fan-out (bench/api_bench.py)",
        "",
        load_line(load),
        "",
        f"HubSpot company_contacts: {fan_n // per:,} companies × {per} contacts, one search per company, concurrency "
        "8, with no latency and with 50 ms added to every request by the stand-in. The raw limit lists the same "
        "companies and sends the same searches on 8 `httpx` threads, parsing each body and nothing more.",
        "",
        "| case | added latency | records | wall s | CPU s | wall per record vs no latency | bulksync ÷ raw (wall) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for case, name in (("bulksync", "bulksync"), ("fanraw", "raw limit (8 httpx threads)")):
        x0 = r[f"{case}/0.0"]
        for latency in ("0.0", "0.05"):
            x = r[f"{case}/{latency}"]
            raw = r[f"fanraw/{latency}"]
            lines.append(
                f"| {name} | {float(latency) * 1000:.0f} ms | {x['rows']:,} | {x['seconds']:.1f} | "
                f"{x['cpu_seconds']:.1f} | {per_record(x) / per_record(x0):.2f}× | "
                f"{per_record(x) / per_record(raw):.2f}× |"
            )
    waits = fan_n // per * 0.05 / 8
    lines += [
        "",
        "Goal: with 50 ms added, within 1.3× of the latency-free time per record. The waits alone, "
        f"{fan_n // per:,} searches × 50 ms at concurrency 8, take {waits:.2f} s: where the latency-free run is "
        f"faster than {waits / 1.3:.1f} s, no client at concurrency 8 can meet the goal, and the raw limit's own "
        "ratio says how close to it this host allows.",
        "",
    ]
    (BENCH / "RESULTS-api-fanout.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
