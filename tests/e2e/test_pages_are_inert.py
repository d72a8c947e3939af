"""Issue 12 item 6 and issue 14 item 8: nothing a client controls runs in the Airflow UI; Data Docs work offline.

A real ``airflow api-server`` with the bulksync plugin serves a reports root holding run records and
a Data Docs site (built by GX's site builder through :mod:`bulksync.quality.data_docs`) whose every
client-controlled field carries a payload that would mark the page if any script ran: data values,
column names, file names (in errors and reconciliation problems), the run id, expectation
arguments. Headless Chromium, with every host but 127.0.0.1 unresolvable (the network is off),
then crawls every page bulksync serves from the reports index, following every link:

- no payload runs (the DOM never gets the mark) and each payload shows as text;
- the browser reports no CSP violation at all: the pages do not even try to run or load anything
  the strict policy forbids, so escaping alone keeps the payloads inert and the CSP is the backstop;
- every link, stylesheet, image and font answers 200 from the api-server, none leaves it;
- every answer carries the CSP.

Skips without ``/usr/bin/chromium`` unless ``BULKSYNC_REQUIRE_SERVICES=1``.
"""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import sys
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest

from bulksync.plugin_app import CSP
from bulksync.quality.model import ExpectationOutcome, Reconciliation
from tests.conftest import service_missing
from tests.e2e.api_server import api_server, get, stop
from tests.e2e.test_report_in_airflow_ui import CHROMIUM, HEADLESS
from tests.unit.test_quality_report import make_record, write_record

MARK = "document.body.dataset.pwned=1"
EVIL = (
    f'"><img src=x onerror="{MARK}"><script>{MARK}</script><svg onload="{MARK}"></svg>'
    f'<a href="javascript:{MARK}">x</a><iframe src="javascript:{MARK}"></iframe>'
)
EVIL_COLUMN = f'amount"><img src=y onerror="{MARK}">'
EVIL_FILE = f"orders_<script>{MARK}</script>.csv"
EVIL_RUN = f"manual__<img src=z onerror='{MARK}'>"


def seed(root: Path) -> None:
    """Run records and a GX Data Docs site, with payloads in every field a client controls."""
    import great_expectations as gx
    import pandas as pd

    from bulksync.quality.data_docs import clean_result, publish_validation

    frame = pd.DataFrame(
        {"id": [1, 2, 3, 4], "email": ["a@example.com", EVIL, None, "d@example.com"], EVIL_COLUMN: [1, -5, 3, 2]}
    )
    suite = gx.ExpectationSuite(
        name="orders",
        expectations=[
            gx.expectations.ExpectColumnValuesToNotBeNull(column="email"),
            gx.expectations.ExpectColumnValuesToBeInSet(column="email", value_set=["a@example.com", EVIL]),
            gx.expectations.ExpectColumnValuesToMatchRegex(column="email", regex=f"@example|{EVIL}"),
            gx.expectations.ExpectColumnValuesToBeBetween(column=EVIL_COLUMN, min_value=0, max_value=10),
            gx.expectations.ExpectTableColumnsToMatchSet(column_set=["id", "email"]),
        ],
    )
    batch = (
        gx.get_context(mode="ephemeral")
        .data_sources.add_pandas("p")
        .add_dataframe_asset("a")
        .add_batch_definition_whole_dataframe("b")
        .get_batch(batch_parameters={"dataframe": frame})
    )
    result = batch.validate(suite, result_format={"result_format": "COMPLETE"}).to_json_dict()
    cleaned = clean_result(result, shadows={}, hidden_columns=set(), pii=set(), mask=lambda v: v)
    pages = []
    for day, run_id in ((1, "scheduled__2026-02-01T02:00:00+00:00"), (2, EVIL_RUN)):
        _, page = publish_validation(
            base=root / "acme" / "nightly",
            suite=suite.to_json_dict(),
            result=cleaned,
            dataset="orders",
            window=f"2026020{day}",
            run_id=run_id,
            run_time=dt.datetime(2026, 2, day, 2, 15, tzinfo=dt.UTC),
            datasource="acme__nightly",
        )
        pages.append(page)

    failed = ExpectationOutcome(
        expectation="expect_column_values_to_be_in_set",
        column=EVIL_COLUMN,
        kwargs={"column": EVIL_COLUMN, "value_set": [EVIL, "ok"]},
        success=False,
        row_level=True,
        unexpected_count=1,
        unexpected_percent=25.0,
        samples=[EVIL, None],
        observed_value=EVIL,
    )
    record = make_record(
        "orders",
        35,
        status="failed",
        quality="failed",
        failed=[failed],
        reconciliation=Reconciliation(
            source_count=4,
            staged=4,
            quarantined=0,
            rejected=0,
            loaded=0,
            ok=False,
            problems=[f"file {EVIL_FILE}: {EVIL}"],
        ),
        error=f"file {EVIL_FILE} refused: column {EVIL_COLUMN} holds {EVIL}",
    )
    assert record.quality is not None
    record.quality.data_docs_path = str(pages[-1].relative_to(root))
    write_record(root, record.model_copy(update={"run_id": EVIL_RUN, "target": EVIL}))
    write_record(root, make_record("contacts", 35).model_copy(update={"quality": None}))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of an api-server with the bulksync plugin serving the seeded reports."""
    if not CHROMIUM.exists():
        service_missing(f"headless Chromium not found at {CHROMIUM} (apt-get install -y chromium)")
    home = tmp_path_factory.mktemp("inert")
    seed(home / "reports")
    with api_server(home, home / "reports") as base:
        yield base


def status_of(url: str) -> int:
    """The HTTP status of a GET (the body may be binary)."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=30) as res:
            res.read()
            return int(res.status)
    except urllib.error.HTTPError as err:
        return int(err.code)


class Dom(HTMLParser):
    """What a rendered DOM refers to, and any element a payload could have added."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: list[tuple[str, str]] = []
        self.active: list[str] = []
        self.pwned = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if "data-pwned" in values:
            self.pwned = True
        if tag in ("script", "iframe", "object", "embed") or any(k.startswith("on") for k in values):
            self.active.append(f"<{tag} {sorted(values)}>")
        for name in ("href", "src"):
            if values.get(name):
                self.refs.append((tag, str(values[name])))
                if str(values[name]).lower().startswith("javascript:"):
                    self.active.append(f"<{tag} {name}=javascript:>")


def page_requests(netlog: Path) -> list[str]:
    """The URLs the page asked for, from Chromium's NetLog (the browser's own update or time checks have no
    initiating origin and are left out: with the network off they fail anyway)."""
    import json

    text = netlog.read_text(errors="replace").rstrip()
    try:
        data = json.loads(text)
    except ValueError:  # a log cut short when the browser exits
        data = json.loads(text.rstrip(",") + "]}")
    start = data["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    return [
        e["params"]["url"]
        for e in data["events"]
        if e.get("type") == start and "://" in str(e.get("params", {}).get("initiator", ""))
    ]


def browse(url: str, profile: Path) -> tuple[str, str, list[str]]:
    """Load ``url`` in headless Chromium with the network off; return the DOM, the console and every URL requested."""
    profile.mkdir(parents=True, exist_ok=True)
    netlog = profile / "netlog.json"
    cmd = [
        str(CHROMIUM),
        *HEADLESS,
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",  # the network is off
        "--enable-logging=stderr",
        "--v=0",
        f"--log-net-log={netlog}",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=5000",
        "--dump-dom",
        url,
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=120)
    finally:
        stop(proc)
    assert proc.returncode == 0, err[-2000:]
    requested = page_requests(netlog)
    console = "\n".join(line for line in err.splitlines() if "CONSOLE" in line or "Content Security Policy" in line)
    return out, console, requested


def test_every_page_is_inert_and_every_link_works_offline(server: str, tmp_path: Path) -> None:
    start = f"{server}/bulksync/reports/"
    queue, seen, pages = [start], {start}, 0
    problems: list[str] = []
    while queue:
        url = queue.pop(0)
        status = status_of(url)
        if status != 200:
            problems.append(f"{url}: HTTP {status}")
            continue
        pages += 1
        dom, console, requested = browse(url, tmp_path / f"p{pages}")
        parsed = Dom()
        parsed.feed(dom)
        if parsed.pwned or "data-pwned" in dom:
            problems.append(f"{url}: a payload ran")
        if parsed.active:
            problems.append(f"{url}: active content in the DOM: {parsed.active[:3]}")
        if console:
            problems.append(f"{url}: the browser complained: {console[:500]}")
        if "/data_docs/" in url:  # the NetLog shows the page's own loads: the vendored stylesheets and fonts
            assert any(u.endswith("/vendor/bootstrap/bootstrap.min.css") for u in requested), requested
        outside = sorted({u for u in requested if u.startswith("http") and not u.startswith(server)})
        if outside:
            problems.append(f"{url}: requests leaving the api-server: {outside[:5]}")
        for tag, ref in parsed.refs:
            target = urljoin(url, ref).split("#")[0]
            if not target.startswith(server):
                problems.append(f"{url}: <{tag}> points outside: {ref}")
                continue
            if target in seen:
                continue
            seen.add(target)
            path = urlsplit(target).path
            if tag == "a" and path.startswith("/bulksync/") and not path.endswith((".css", ".png", ".ico", ".svg")):
                queue.append(target)
            else:
                asset = status_of(target)
                if asset != 200:
                    problems.append(f"{url}: <{tag}> {ref} -> HTTP {asset}")
    assert not problems, "\n".join(problems)
    # the reports index, the report, the Data Docs index, the suite page, both validation pages
    assert pages >= 6, seen


def test_payloads_show_as_text_where_users_read_them(server: str, tmp_path: Path) -> None:
    dom, console, _ = browse(f"{server}/bulksync/reports/acme/nightly", tmp_path / "report")
    assert not console
    assert f"&lt;script&gt;{MARK}&lt;/script&gt;" in dom  # the value, shown as text
    assert "orders_&lt;script&gt;" in dom and 'amount"&gt;&lt;img' in dom  # file name and column name
    assert "– No suite" in re.sub(r"<[^>]+>", " ", dom).replace("  ", " ") or "No suite" in dom
    assert "null" in dom  # the null sample
    site = f"{server}/bulksync/reports/acme/nightly/data_docs/"
    docs, console, _ = browse(site + "index.html", tmp_path / "docs")
    assert not console
    assert "Validation Results" in docs and "orders" in docs
    status, page = get(f"{server}/bulksync/reports/acme/nightly/data_docs/index.html")
    assert status == 200 and "<script" not in page


def test_every_answer_carries_the_csp(server: str) -> None:
    import urllib.request

    for path in (
        "/bulksync/reports/",
        "/bulksync/reports/acme/nightly",
        "/bulksync/reports/acme/nightly/data_docs/index.html",
        "/bulksync/reports/acme/nightly/data_docs/static/bulksync/bulksync.css",
        "/bulksync/reports/acme/nightly/data_docs/nothing-here.html",
        "/bulksync/icon.svg",
    ):
        request = urllib.request.Request(server + path)
        try:
            with urllib.request.urlopen(request, timeout=30) as res:
                headers: Any = res.headers
        except urllib.error.HTTPError as err:
            headers = err.headers
        assert headers["Content-Security-Policy"] == CSP, path
        assert headers["X-Content-Type-Options"] == "nosniff", path


if __name__ == "__main__":  # pragma: no cover - seed a folder to look at by hand
    seed(Path(sys.argv[1]))
