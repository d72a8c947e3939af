"""Cost of publishing Data Docs with GX's site builder, and of scrubbing secrets from every log record.

    .venv/bin/python bench/pages_bench.py [--history 0,30,100] [--records 100000]

Data Docs: one validation result of 13 expectations (the quality bench's suite shape) is published
with :func:`bulksync.quality.data_docs.publish_validation` into a site that already holds
``history`` validations (the index page lists them all), against the baseline a user would
otherwise write: GX's ``ValidationResultsPageRenderer`` + ``DefaultJinjaPageView`` rendering that
one page to a file (no index, no suite page, CDN assets). Log scrubbing: ``records`` log records
through a ``logging`` handler, without the scrubber, with it installed but nothing registered, and
with the secrets of 20 connections registered. CPU seconds (process time), best of 3; the load
average is printed because the machine is shared.

Writes ``bench/RESULTS-pages.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import logging
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent


def best(fn: Any, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return min(times)


def validation() -> tuple[dict[str, Any], dict[str, Any], Any]:
    import great_expectations as gx
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(1)
    n = 20_000
    frame = pd.DataFrame(
        {
            "Id": [f"001{i:015d}" for i in range(n)],
            "Name": rng.choice(["Acme", "Globex", None], n),
            "Type": rng.choice(["Prospect", "Other", "Bogus"], n),
            "AnnualRevenue": rng.integers(-100, 10**9, n),
            "Phone": rng.choice(["(555) 123-4567", "n/a"], n),
        }
    )
    e = gx.expectations
    suite = gx.ExpectationSuite(
        name="bench_accounts",
        expectations=[
            e.ExpectColumnValuesToNotBeNull(column="Id"),
            e.ExpectColumnValuesToBeUnique(column="Id"),
            e.ExpectColumnValueLengthsToEqual(column="Id", value=18),
            e.ExpectColumnValuesToNotBeNull(column="Name"),
            e.ExpectColumnValuesToBeInSet(column="Type", value_set=["Prospect", "Other"]),
            e.ExpectColumnValuesToBeBetween(column="AnnualRevenue", min_value=0, max_value=10**10),
            e.ExpectColumnValuesToMatchRegex(column="Phone", regex=r"^\(\d{3}\) \d{3}-\d{4}$"),
            e.ExpectTableRowCountToBeBetween(min_value=1, max_value=10**7),
            e.ExpectTableColumnsToMatchSet(column_set=["Id", "Name", "Type", "AnnualRevenue", "Phone"]),
            e.ExpectColumnValuesToNotBeNull(column="Type"),
            e.ExpectColumnValuesToNotBeNull(column="Phone"),
            e.ExpectColumnValuesToNotBeNull(column="AnnualRevenue"),
            e.ExpectColumnValuesToBeInSet(column="Name", value_set=["Acme", "Globex"]),
        ],
    )
    batch = (
        gx.get_context(mode="ephemeral")
        .data_sources.add_pandas("p")
        .add_dataframe_asset("a")
        .add_batch_definition_whole_dataframe("b")
        .get_batch(batch_parameters={"dataframe": frame})
    )
    result = batch.validate(suite, result_format={"result_format": "COMPLETE"})
    return suite.to_json_dict(), result.to_json_dict(), result


def bench_data_docs(histories: list[int]) -> list[tuple[str, float]]:
    from bulksync.quality.data_docs import clean_result, publish_validation
    from great_expectations.render.renderer import ValidationResultsPageRenderer
    from great_expectations.render.view import DefaultJinjaPageView

    suite, result, raw = validation()
    cleaned = clean_result(result, shadows={}, hidden_columns=set(), pii=set(), mask=lambda v: v)
    rows: list[tuple[str, float]] = []
    out = Path(tempfile.mkdtemp(prefix="bench-pages-"))
    try:
        page = out / "baseline.html"
        rows.append(
            (
                "baseline: GX page renderer + view, one page (no index, CDN assets)",
                best(
                    lambda: page.write_text(DefaultJinjaPageView().render(ValidationResultsPageRenderer().render(raw)))
                ),
            )
        )
        for history in histories:
            base = out / f"site{history}"
            t0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
            for i in range(history):
                publish_validation(
                    base=base,
                    suite=suite,
                    result=cleaned,
                    dataset="accounts",
                    window=f"w{i}",
                    run_id=f"scheduled__{i}",
                    run_time=t0 + dt.timedelta(days=i),
                    datasource="bench__pages",
                )
            counter = iter(range(10**6))

            def one(base: Path = base, counter: Any = counter, t0: dt.datetime = t0) -> None:
                i = next(counter)
                publish_validation(
                    base=base,
                    suite=suite,
                    result=cleaned,
                    dataset="accounts",
                    window=f"new{i}",
                    run_id=f"manual__{i}",
                    run_time=t0 + dt.timedelta(days=1000 + i),
                    datasource="bench__pages",
                )

            rows.append((f"bulksync publish_validation, {history} earlier validations in the site", best(one)))
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return rows


def bench_scrub(records: int) -> list[tuple[str, float]]:
    from bulksync import scrub

    log = logging.getLogger("bench.scrub")
    log.propagate = False
    handler = logging.StreamHandler(io.StringIO())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)

    def emit() -> None:
        for i in range(records):
            log.info("loaded batch %d of %s: %d rows into %s", i, "accounts", 65536, "warehouse.public.accounts")

    rows = [("logging without the scrubber", best(emit))]
    scrub.install()
    rows.append(("scrubber installed, nothing registered", best(emit)))
    for i in range(20):
        scrub.register(f"https://hooks.example.com/services/T{i:08d}/B{i:08d}/tok{i:020d}", f"password-{i:012d}")
    rows.append((f"scrubber with 20 connections registered ({len(scrub.SCRUBBER.forms())} forms)", best(emit)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--history", default="0,30,100")
    parser.add_argument("--records", type=int, default=100_000)
    args = parser.parse_args()
    histories = [int(h) for h in args.history.split(",")]
    load = os.getloadavg()
    docs = bench_data_docs(histories)
    logs = bench_scrub(args.records)
    lines = [
        "# Pages and scrubbing benchmark",
        "",
        f"Run {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC on {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}; load average at start "
        f"{load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} (shared machine: CPU seconds, best of 3). "
        "`bench/pages_bench.py`.",
        "",
        "## Data Docs: one validation of 13 expectations on 20,000 rows",
        "",
        "| case | CPU s | vs baseline |",
        "|---|---|---|",
    ]
    base = docs[0][1]
    lines += [f"| {name} | {sec:.2f} | {sec / base:.2f}x |" for name, sec in docs]
    lines += [
        "",
        f"## Log scrubbing: {args.records:,} records through a formatter and handler",
        "",
        "| case | CPU s | µs per record | vs no scrubber |",
        "|---|---|---|---|",
    ]
    plain = logs[0][1]
    lines += [f"| {name} | {sec:.2f} | {sec / args.records * 1e6:.1f} | {sec / plain:.2f}x |" for name, sec in logs]
    text = "\n".join(lines) + "\n"
    (BENCH / "RESULTS-pages.md").write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
