"""The data-quality report: what a user sees on the page, the static files, and the served app's routes.

Run records are built with the pydantic models of :mod:`bulksync.quality.model` and written where the
gate writes them; the page is parsed with the standard library and checked for what a person reads:
the status of each dataset, the numbers, the masked samples, the links, the 30-run trend, and that
no value from the records can inject markup.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib.util
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from markupsafe import escape

from bulksync import plugin_app
from bulksync.quality import report
from bulksync.quality.model import ExpectationOutcome, QualityResult, Reconciliation, RunRecord, run_key
from tests.conftest import ROOT

UTC = dt.UTC
T0 = dt.datetime(2026, 1, 1, 2, 15, tzinfo=UTC)
EVIL = "<script>alert('owned')</script>"
ORDERS_DOCS = "acme/nightly/data_docs/validations/orders/20260205__scheduled__2026-02-05.html"


# ---------------------------------------------------------------------------------------------------------------
# Building run records


def make_record(
    dataset: str,
    day: int,
    *,
    status: str = "success",
    quality: str = "pass",
    loaded: int = 1000,
    failed: list[ExpectationOutcome] | None = None,
    reconciliation: Reconciliation | None = None,
    tenant: str = "acme",
    pipeline: str = "nightly",
    **extra: Any,
) -> RunRecord:
    """A run of ``dataset`` finishing ``day`` days after 2026-01-01 02:15 UTC."""
    finished = T0 + dt.timedelta(days=day)
    expectations = [
        ExpectationOutcome(
            expectation="expect_table_row_count_to_be_between",
            success=True,
            row_level=False,
            observed_value=loaded,
        ),
        *(failed or []),
    ]
    return RunRecord(
        tenant=tenant,
        pipeline=pipeline,
        dataset=dataset,
        run_id=f"scheduled__{finished:%Y-%m-%d}",
        interval=f"{finished:%Y%m%d}",
        window_start=finished - dt.timedelta(days=1, minutes=15),
        window_end=finished - dt.timedelta(minutes=15),
        status=status,  # type: ignore[arg-type]
        quality=QualityResult(
            suite=f"{dataset}_suite",
            on_failure="quarantine",
            status=quality,  # type: ignore[arg-type]
            rows_checked=loaded,
            expectations=expectations,
        ),
        reconciliation=reconciliation
        or Reconciliation(source_count=loaded, staged=loaded, quarantined=0, rejected=0, loaded=loaded, ok=True),
        inserted=loaded,
        finished_at=finished,
        target="sqlite:acme_warehouse/" + dataset,
        durations={"extract": 1.5, "validate": 0.5, "load": 2.0},
        **extra,
    )


def write_record(root: Path, record: RunRecord) -> Path:
    """Write a record where the gate does: ``runs/{dataset}/{finished}__{run_key}.json``."""
    folder = root / record.tenant / record.pipeline / "runs" / record.dataset
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{record.finished_at:%Y%m%dT%H%M%S}__{run_key(record.run_id)}.json"
    path.write_text(record.model_dump_json(indent=2), encoding="utf-8")
    return path


def seed_reports(root: Path) -> None:
    """Four datasets of acme/nightly, one per status, plus 35 runs of ``accounts`` for the trend.

    - accounts: 35 daily runs, every 7th one (days 3, 10, …) failed with nothing loaded; the latest passes.
    - orders: latest quarantined: 12 null emails (1.20%) quarantined, masked samples, a Data Docs page.
    - account_changes: latest loaded with a warning (a warn-severity expectation failed).
    - invoices: latest failed: reconciliation mismatch, an error message carrying markup.
    """
    for day in range(1, 36):
        bad = day % 7 == 3
        mismatch = Reconciliation(source_count=990, staged=0, quarantined=0, rejected=0, loaded=0, ok=False)
        write_record(
            root,
            make_record(
                "accounts",
                day,
                status="failed" if bad else "success",
                loaded=0 if bad else 1000 + day * 10,
                reconciliation=mismatch if bad else None,
            ),
        )

    write_record(root, make_record("orders", 30, loaded=500))
    orders = make_record(
        "orders",
        35,
        status="quarantined",
        quality="quarantined",
        loaded=985,
        failed=[
            ExpectationOutcome(
                expectation="expect_column_values_to_not_be_null",
                column="email",
                success=False,
                row_level=True,
                unexpected_count=12,
                unexpected_percent=1.2,
                samples=["j***@example.com", EVIL, ""],
            )
        ],
        reconciliation=Reconciliation(source_count=1000, staged=1000, quarantined=12, rejected=3, loaded=985, ok=True),
    )
    assert orders.quality is not None
    orders.quality.rows_checked = 1000
    orders.quality.rows_quarantined = 12
    orders.quality.data_docs_path = ORDERS_DOCS
    write_record(root, orders)
    docs = root / ORDERS_DOCS
    docs.parent.mkdir(parents=True, exist_ok=True)
    docs.write_text("<html><body><h1>Validation of orders</h1></body></html>", encoding="utf-8")
    (root / "acme/nightly/data_docs/index.html").write_text("<h1>acme/nightly Data Docs</h1>", encoding="utf-8")

    write_record(
        root,
        make_record(
            "account_changes",
            35,
            status="warn",
            quality="warn",
            loaded=420,
            failed=[
                ExpectationOutcome(
                    expectation="expect_column_values_to_be_between",
                    column="annual_revenue",
                    kwargs={"column": "annual_revenue", "min_value": 0, "max_value": 1_000_000_000},
                    severity="warn",
                    success=False,
                    row_level=True,
                    unexpected_count=2,
                    unexpected_percent=0.476,
                    samples=[-5, 2_000_000_000],
                )
            ],
        ),
    )
    write_record(
        root,
        make_record(
            "invoices",
            35,
            status="failed",
            loaded=0,
            reconciliation=Reconciliation(
                source_count=1200,
                staged=1190,
                quarantined=0,
                rejected=0,
                loaded=0,
                ok=False,
                problems=["source reported 1,200 rows but 1,190 were staged", f"bad file {EVIL}"],
            ),
            error=f"target refused the load: column {EVIL} does not exist",
        ),
    )


@pytest.fixture
def root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An empty reports root (``$BULKSYNC_REPORTS_ROOT``)."""
    path = tmp_path / "reports"
    monkeypatch.setenv("BULKSYNC_REPORTS_ROOT", str(path))
    return path


@pytest.fixture
def seeded(root: Path) -> Path:
    """The reports root with :func:`seed_reports` written into it."""
    seed_reports(root)
    return root


# ---------------------------------------------------------------------------------------------------------------
# Reading a page as a user does


@dataclass
class Section:
    """What a user sees in one dataset's card."""

    text: str = ""
    bars: list[dict[str, str]] = field(default_factory=list)
    links: list[tuple[str, str]] = field(default_factory=list)


class Page(HTMLParser):
    """Visible text, links, summary rows, dataset sections and trend bars of a report page."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.html = html
        self.tags: list[str] = []
        self.chunks: list[str] = []
        self.links: list[tuple[str, str]] = []
        self.rows: list[str] = []
        self.sections: dict[str, Section] = {}
        self._section: str | None = None
        self._row: list[str] | None = None
        self._link: tuple[str, list[str]] | None = None
        self._bar: dict[str, str] | None = None
        self._skip = 0
        self.feed(html)
        self.close()

    BLOCKS = frozenset({"p", "div", "li", "td", "th", "tr", "h1", "h2", "h3", "table", "section", "br"})

    def _gap(self, tag: str) -> None:
        """Block and cell boundaries separate words, as they do on screen."""
        if tag in self.BLOCKS:
            self.handle_data(" ")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        self.tags.append(tag)
        self._gap(tag)
        if tag in ("style", "title") and self._bar is None:
            self._skip += 1
        if tag == "section":
            self._section = a["data-dataset"]
            self.sections[self._section] = Section()
        elif tag == "tr":
            self._row = []
        elif tag == "a":
            self._link = (a.get("href", ""), [])
        elif tag == "rect" and "bar" in a.get("class", "").split():
            self._bar = {**a, "title": ""}

    def handle_endtag(self, tag: str) -> None:
        self._gap(tag)
        if tag in ("style", "title") and self._bar is None:
            self._skip -= 1
        if tag == "section":
            self._section = None
        elif tag == "tr" and self._row is not None:
            self.rows.append(" ".join(" ".join(self._row).split()))
            self._row = None
        elif tag == "a" and self._link is not None:
            link = (" ".join("".join(self._link[1]).split()), self._link[0])
            self.links.append(link)
            if self._section:
                self.sections[self._section].links.append(link)
            self._link = None
        elif tag == "rect" and self._bar is not None:
            if self._section:
                self.sections[self._section].bars.append(self._bar)
            self._bar = None

    def handle_data(self, data: str) -> None:
        if self._bar is not None:
            self._bar["title"] += data
            return
        if self._skip:
            return
        self.chunks.append(data)
        if self._row is not None:
            self._row.append(data)
        if self._link is not None:
            self._link[1].append(data)
        if self._section:
            self.sections[self._section].text += data

    @property
    def text(self) -> str:
        return " ".join(" ".join(self.chunks).split())

    def section(self, name: str) -> str:
        return " ".join(self.sections[name].text.split())

    def row(self, first_cell: str) -> str:
        matches = [r for r in self.rows if r.startswith(first_cell + " ")]
        assert len(matches) == 1, f"no single row for {first_cell!r} in {self.rows}"
        return matches[0]

    def href(self, text: str, where: str | None = None) -> str:
        links = self.sections[where].links if where else self.links
        found = [h for t, h in links if t == text]
        assert found, f"no link {text!r} in {links}"
        return found[0]


# ---------------------------------------------------------------------------------------------------------------
# The page


def test_each_dataset_shows_the_latest_runs_status_in_words_problems_first(seeded: Path) -> None:
    page = Page(report.render_pipeline_report("acme", "nightly"))

    assert page.text.startswith("Data quality · acme / nightly")
    assert "✕ 1 Failed ⚠ 1 Quarantined ! 1 Warn ✓ 1 Pass 4 datasets, latest run of each" in page.text
    # summary table: dataset, status, finished, rows loaded, quarantined, reconciliation, failed expectations
    assert page.row("invoices") == "invoices ✕ Failed 2026-02-05 02:15:00 UTC 0 0 ✕ mismatch 0 of 1"
    assert page.row("orders") == "orders ⚠ Quarantined 2026-02-05 02:15:00 UTC 985 12 ✓ ok 1 of 2"
    assert page.row("account_changes") == "account_changes ! Warn 2026-02-05 02:15:00 UTC 420 0 ✓ ok 1 of 2"
    assert page.row("accounts") == "accounts ✓ Pass 2026-02-05 02:15:00 UTC 1,350 0 ✓ ok 0 of 1"
    assert list(page.sections) == ["invoices", "orders", "account_changes", "accounts"]
    for name, status in [("invoices", "Failed"), ("orders", "Quarantined"), ("account_changes", "Warn")]:
        assert page.section(name).startswith(f"{name} ")
        assert page.section(name).split()[2] == status
    # colour as well as words: each card and badge carries its status class
    assert '<section class="card s-failed" id="dataset-invoices"' in page.html
    assert '<section class="card s-quarantined" id="dataset-orders"' in page.html
    assert '<span class="badge s-warn" data-status="warn">' in page.html
    assert ".s-failed { color: var(--failed); background: var(--failed-bg); }" in page.html


def test_failed_expectations_show_column_counts_percent_and_the_masked_samples(seeded: Path) -> None:
    page = Page(report.render_pipeline_report("acme", "nightly"))

    orders = page.section("orders")
    assert (
        "Expectations · suite orders_suite · 1,000 rows checked "
        "Failed expectation Column Severity Unexpected % Samples (masked) Details "
        'expect_column_values_to_not_be_null email error 12 1.20% "j***@example.com" '
        f'"{EVIL}" ""' in orders
    )
    assert "expect_table_row_count_to_be_between" not in orders  # passed: not listed
    changes = page.section("account_changes")
    assert (
        "expect_column_values_to_be_between annual_revenue warn 2 0.48% -5 2000000000 "
        "max_value=1000000000, min_value=0" in changes
    )
    assert "✓ All expectations passed (1)." in page.section("accounts")


def test_reconciliation_numbers_and_problems(seeded: Path) -> None:
    page = Page(report.render_pipeline_report("acme", "nightly"))

    assert (
        "Reconciliation Source 1,000 Staged 1,000 Quarantined 12 Rejected by transforms 3 Loaded 985 Result ✓ ok"
        in page.section("orders")
    )
    invoices = page.section("invoices")
    assert (
        "Reconciliation Source 1,200 Staged 1,190 Quarantined 0 Rejected by transforms 0 Loaded 0 Result ✕ mismatch "
        f"source reported 1,200 rows but 1,190 were staged bad file {EVIL}" in invoices
    )
    assert f"target refused the load: column {EVIL} does not exist" in invoices
    assert "Run scheduled__2026-02-05 Finished 2026-02-05 02:15:00 UTC" in invoices
    assert "Window 2026-02-04 02:00:00 UTC → 2026-02-05 02:00:00 UTC" in invoices
    assert "Target sqlite:acme_warehouse/invoices" in invoices
    assert "extract 1.5 s · validate 0.5 s · load 2.0 s" in invoices


def test_trend_shows_the_last_30_runs_with_failures_in_red(seeded: Path) -> None:
    page = Page(report.render_pipeline_report("acme", "nightly"))

    bars = page.sections["accounts"].bars
    assert len(bars) == 30  # 35 runs recorded, the last 30 shown
    assert "Last 30 runs (rows loaded)" in page.section("accounts")
    assert bars[0]["title"] == "2026-01-07 02:15:00 UTC · Pass · 1,060 rows loaded · run scheduled__2026-01-07"
    assert bars[-1]["title"] == "2026-02-05 02:15:00 UTC · Pass · 1,350 rows loaded · run scheduled__2026-02-05"
    failed = [b for b in bars if b["data-status"] == "failed"]
    assert [b["title"][:10] for b in failed] == ["2026-01-11", "2026-01-18", "2026-01-25", "2026-02-01"]
    assert {b["fill"] for b in failed} == {"#cf222e"}
    assert {b["fill"] for b in bars if b["data-status"] == "pass"} == {"#5a7fa6"}
    assert all(int(b["height"]) >= 8 for b in failed)  # visible even with 0 rows
    heights = [int(b["height"]) for b in bars if b["data-status"] == "pass"]
    assert heights == sorted(heights) and heights[-1] == 56  # more rows, taller bar; the peak fills the chart
    assert [b["data-status"] for b in page.sections["orders"].bars] == ["pass", "quarantined"]
    assert page.sections["orders"].bars[1]["fill"] == "#e8590c"
    assert "max 1,350 rows" in page.section("accounts")


def test_values_from_records_cannot_inject_markup(seeded: Path) -> None:
    html = report.render_pipeline_report("acme", "nightly")

    assert "<script" not in html.lower()  # the page has no scripts at all, and no injected one
    assert html.count("&lt;script&gt;alert(&#39;owned&#39;)&lt;/script&gt;") == 3  # a sample, an error, a problem
    index = report.render_reports_index()
    assert "<script" not in index.lower()


def test_malicious_names_and_paths_do_not_become_links(root: Path) -> None:
    rec = make_record("orders", 1)
    assert rec.quality is not None
    rec.quality.data_docs_path = "javascript:alert(1)//../../../etc/passwd"
    rec.run_id = '"><img src=x onerror=alert(1)>'
    write_record(root, rec)

    page = Page(report.render_pipeline_report("acme", "nightly"))

    assert "javascript:" not in "".join(h for _, h in page.links)
    assert "Data Docs: javascript:alert(1)//../../../etc/passwd (not a path under the reports root)" in page.text
    assert "<img" not in page.html and "&lt;img src=x onerror=alert(1)&gt;" in page.html
    with pytest.raises(ValueError, match="not a valid name"):
        report.render_pipeline_report("acme", "../etc")


def test_data_docs_links_relative_in_the_static_page_and_under_base_url_when_served(seeded: Path) -> None:
    static = Page(report.render_pipeline_report("acme", "nightly"))
    served = Page(report.render_pipeline_report("acme", "nightly", base_url="/bulksync"))

    href = static.href("validation result of this run", "orders")
    assert href == "data_docs/validations/orders/20260205__scheduled__2026-02-05.html"
    assert (seeded / "acme/nightly" / href).is_file()
    assert static.href("Data Docs") == "data_docs/index.html"
    assert static.href("All pipelines") == "../../index.html"
    assert served.href("validation result of this run", "orders") == (
        "/bulksync/reports/acme/nightly/data_docs/validations/orders/20260205__scheduled__2026-02-05.html"
    )
    assert served.href("Data Docs") == "/bulksync/reports/acme/nightly/data_docs/index.html"
    assert served.href("All pipelines") == "/bulksync/reports/"
    assert served.href("orders") == "#dataset-orders"


def test_a_missing_data_docs_file_is_said_so(root: Path) -> None:
    rec = make_record("orders", 1)
    assert rec.quality is not None
    rec.quality.data_docs_path = "acme/nightly/data_docs/validations/orders/gone.html"
    write_record(root, rec)

    page = Page(report.render_pipeline_report("acme", "nightly"))

    assert "Data Docs: validation result of this run (file not found)" in page.section("orders")
    assert "Data Docs" not in [t for t, _ in page.links]  # no site index: no header link


def test_written_files_link_to_each_other(seeded: Path) -> None:
    path = report.write_pipeline_report("acme", "nightly")
    index = report.write_reports_index()

    assert path == seeded / "acme/nightly/index.html"
    assert index == seeded / "index.html"
    assert sorted(p.name for p in path.parent.iterdir() if p.is_file()) == ["index.html"]  # no temp file left
    assert Page(path.read_text()).row("orders").startswith("orders ⚠ Quarantined")
    for page_file in (path, index):
        for text, href in Page(page_file.read_text()).links:
            if not href.startswith("#"):
                assert (page_file.parent / href).resolve().is_file(), f"{page_file}: link {text!r} → {href}"
    listing = Page(index.read_text())
    assert listing.href("acme / nightly") == "acme/nightly/index.html"
    assert listing.row("acme / nightly") == (
        "acme / nightly ✕ Failed ! account_changes: Warn ✓ accounts: Pass ✕ invoices: Failed ⚠ orders: Quarantined "
        "2026-02-05 02:15:00 UTC"
    )


def test_rewriting_replaces_the_page_atomically(seeded: Path) -> None:
    path = report.write_pipeline_report("acme", "nightly")
    before = path.stat().st_ino
    write_record(seeded, make_record("invoices", 36, loaded=1200))

    report.write_pipeline_report("acme", "nightly")

    assert path.stat().st_ino != before  # a new file renamed over the old one, never a half-written page
    assert Page(path.read_text()).row("invoices").startswith("invoices ✓ Pass 2026-02-06 02:15:00 UTC 1,200")


def test_reports_index_lists_only_folders_with_runs(seeded: Path) -> None:
    write_record(seeded, make_record("contacts", 2, tenant="globex", pipeline="weekly"))
    (seeded / "initech" / "empty" / "data_docs").mkdir(parents=True)

    assert report.list_pipelines() == [("acme", "nightly"), ("globex", "weekly")]
    page = Page(report.render_reports_index(base_url="/bulksync"))
    assert page.text.startswith("Data quality reports 2 pipelines")
    assert page.row("globex / weekly") == "globex / weekly ✓ Pass ✓ contacts: Pass 2026-01-03 02:15:00 UTC"
    assert page.href("globex / weekly") == "/bulksync/reports/globex/weekly"


def test_empty_reports_root_says_what_to_expect(root: Path) -> None:
    assert report.list_pipelines() == []
    assert "No pipeline has recorded a data-quality run yet." in Page(report.render_reports_index()).text
    with pytest.raises(report.ReportNotFoundError) as err:
        report.render_pipeline_report("acme", "nightly")
    assert "no data-quality runs recorded for pipeline acme/nightly" in str(err.value)
    assert "acme/nightly/runs/<dataset>/*.json" in str(err.value)


def test_load_runs_newest_last_limited_per_dataset(seeded: Path) -> None:
    accounts = report.load_runs("acme", "nightly", "accounts")
    assert len(accounts) == 30
    assert [r.finished_at for r in accounts] == sorted(r.finished_at for r in accounts)
    assert accounts[-1].run_id == "scheduled__2026-02-05"
    assert len(report.load_runs("acme", "nightly", "accounts", limit=5)) == 5
    everything = report.load_runs("acme", "nightly")
    assert len(everything) == 30 + 2 + 1 + 1
    assert everything[-1].finished_at == max(r.finished_at for r in everything)
    assert report.load_runs("acme", "nightly", "nope") == []


def test_an_unreadable_run_record_is_skipped_and_named(seeded: Path) -> None:
    (seeded / "acme/nightly/runs/orders/20260206T021500__broken.json").write_text("{not json")

    assert report.load_runs("acme", "nightly", "orders")[-1].run_id == "scheduled__2026-02-05"
    page = Page(report.render_pipeline_report("acme", "nightly"))
    assert "1 run record could not be read: 20260206T021500__broken.json: ValidationError" in page.section("orders")
    assert page.row("orders").startswith("orders ⚠ Quarantined")


@pytest.mark.parametrize(
    ("run_status", "quality_status", "shown"),
    [
        ("success", "pass", "pass"),
        ("success", "skipped", "pass"),
        ("success", None, "pass"),
        ("warn", "warn", "warn"),
        ("success", "warn", "warn"),
        ("quarantined", "quarantined", "quarantined"),
        ("failed", "pass", "failed"),
        ("success", "failed", "failed"),
        ("warn", "failed", "failed"),
    ],
)
def test_status_shown_is_the_worse_of_run_and_gate(run_status: str, quality_status: str | None, shown: str) -> None:
    rec = make_record("d", 1, status=run_status, quality=quality_status or "pass")
    if quality_status is None:
        rec.quality = None
    assert report.verdict(rec) == shown


# ---------------------------------------------------------------------------------------------------------------
# The served app


class Users:
    """Access rules for tests: a user may read the pipelines listed for them; no header = not logged in."""

    def __init__(self, readable: dict[str, set[tuple[str, str]]], login: str | None = "/auth/login") -> None:
        self.readable = readable
        self.login = login

    async def user(self, request: Request) -> Any:
        name = request.headers.get("x-user")
        if name is None:
            raise plugin_app.NotAuthenticatedError("Not authenticated")
        return name

    def can_read(self, user: Any, tenant: str, pipeline: str) -> bool:
        return (tenant, pipeline) in self.readable.get(user, set())

    def login_url(self, next_url: str) -> str | None:
        return f"{self.login}?next={next_url}" if self.login else None


def client_for(access: plugin_app.Access) -> TestClient:
    """The app mounted at /bulksync as Airflow mounts it."""
    outer = FastAPI()
    outer.mount("/bulksync", plugin_app.create_app(access))
    return TestClient(outer)


@pytest.fixture
def client(seeded: Path) -> Iterator[TestClient]:
    with client_for(plugin_app.OpenAccess()) as c:
        yield c


def test_served_pages_show_the_same_report_with_links_under_the_mount(client: TestClient) -> None:
    listing = client.get("/bulksync/reports/")
    assert listing.status_code == 200
    page = Page(listing.text)
    assert page.row("acme / nightly").startswith("acme / nightly ✕ Failed ! account_changes: Warn")
    href = page.href("acme / nightly")
    assert href == "/bulksync/reports/acme/nightly"

    res = client.get(href)
    assert res.status_code == 200
    assert res.headers["content-type"].startswith("text/html")
    assert res.headers["content-security-policy"] == plugin_app.CSP
    assert f'<meta http-equiv="Content-Security-Policy" content="{escape(report.META_CSP)}">' in res.text
    assert "frame-ancestors" not in report.META_CSP and "script-src 'none'" in report.META_CSP
    assert "default-src 'self'; script-src 'none';" in plugin_app.CSP and "'unsafe-inline'" not in plugin_app.CSP.split(
        "style-src"
    )[0]
    report_page = Page(res.text)
    assert report_page.row("orders") == "orders ⚠ Quarantined 2026-02-05 02:15:00 UTC 985 12 ✓ ok 1 of 2"
    assert len(report_page.sections["accounts"].bars) == 30
    assert client.get(report_page.href("All pipelines")).status_code == 200

    docs = client.get(report_page.href("validation result of this run", "orders"))
    assert docs.status_code == 200 and "<h1>Validation of orders</h1>" in docs.text
    assert docs.headers["content-security-policy"] == plugin_app.CSP  # Data Docs files too (issue 12 item 6)
    for path in ("/bulksync/icon.svg", "/bulksync/reports/acme/nightly/data_docs/missing.html", "/bulksync/nowhere"):
        assert client.get(path).headers["content-security-policy"] == plugin_app.CSP, path
    assert client.get(report_page.href("Data Docs")).text == "<h1>acme/nightly Data Docs</h1>"
    assert client.get("/bulksync/reports/acme/nightly/data_docs/").text == "<h1>acme/nightly Data Docs</h1>"
    assert client.get("/bulksync/reports", follow_redirects=True).url.path == "/bulksync/reports/"
    assert client.get("/bulksync/", follow_redirects=False).headers["location"] == "/bulksync/reports/"


def test_pages_follow_the_files_live(client: TestClient, seeded: Path) -> None:
    write_record(seeded, make_record("invoices", 36, loaded=1200))

    assert Page(client.get("/bulksync/reports/acme/nightly").text).row("invoices").startswith("invoices ✓ Pass")


def test_unknown_pipeline_is_a_404_that_lists_the_known_ones(client: TestClient) -> None:
    res = client.get("/bulksync/reports/acme/weekly")

    assert res.status_code == 404
    page = Page(res.text)
    assert "No data-quality runs are recorded for pipeline acme/weekly." in page.text
    assert page.href("acme / nightly") == "/bulksync/reports/acme/nightly"
    assert client.get("/bulksync/reports/acme/..%2E").status_code == 404


@pytest.mark.parametrize(
    "path",
    [
        "../runs/orders/x.json",
        "%2e%2e/%2e%2e/secret.txt",
        "..%2F..%2Fsecret.txt",
        "validations/../../../secret.txt",
        "%2Fetc%2Fpasswd",
        "/etc/passwd",
        "escape/secret.txt",
        "missing.html",
    ],
)
def test_data_docs_refuses_anything_outside_the_pipelines_data_docs(
    client: TestClient, seeded: Path, tmp_path: Path, path: str
) -> None:
    (seeded / "acme/secret.txt").write_text("TOP-SECRET")
    (seeded / "acme/nightly/secret.txt").write_text("TOP-SECRET")
    outside = tmp_path / "outside"
    outside.mkdir(exist_ok=True)
    (outside / "secret.txt").write_text("TOP-SECRET")
    link = seeded / "acme/nightly/data_docs/escape"
    if not link.exists():
        link.symlink_to(outside, target_is_directory=True)

    res = client.get(f"/bulksync/reports/acme/nightly/data_docs/{path}")

    assert res.status_code == 404
    assert "TOP-SECRET" not in res.text and "root:" not in res.text
    if path in ("escape/secret.txt", "missing.html", "..%2F..%2Fsecret.txt"):  # these reach the handler as given
        assert "is not a file in the Data Docs of acme/nightly" in Page(res.text).text


def test_raw_dot_dot_in_the_request_path_is_refused(seeded: Path) -> None:
    """Send ``..`` unnormalised (clients usually collapse it) straight to the ASGI app."""
    (seeded / "acme/nightly/secret.txt").write_text("TOP-SECRET")
    app = plugin_app.create_app(plugin_app.OpenAccess())
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    path = "/reports/acme/nightly/data_docs/../secret.txt"
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"testserver")],
        "client": ("127.0.0.1", 1),
        "server": ("testserver", 80),
    }
    asyncio.run(app(scope, receive, send))

    assert sent[0]["status"] == 404
    assert b"TOP-SECRET" not in b"".join(m.get("body", b"") for m in sent)


def test_users_see_only_pipelines_they_may_read(seeded: Path) -> None:
    write_record(seeded, make_record("contacts", 2, tenant="globex", pipeline="weekly"))
    users = Users({"ann": {("acme", "nightly")}, "bob": {("globex", "weekly"), ("globex", "monthly")}})

    with client_for(users) as c:
        ann = Page(c.get("/bulksync/reports/", headers={"x-user": "ann"}).text)
        assert [t for t, _ in ann.links] == ["acme / nightly"]
        assert c.get("/bulksync/reports/acme/nightly", headers={"x-user": "ann"}).status_code == 200

        denied = c.get("/bulksync/reports/acme/nightly", headers={"x-user": "bob"})
        assert denied.status_code == 403
        assert "You may not read DAG acme__nightly" in Page(denied.text).text
        assert "Quarantined" not in denied.text
        docs = c.get("/bulksync/reports/acme/nightly/data_docs/index.html", headers={"x-user": "bob"})
        assert docs.status_code == 403

        unknown = c.get("/bulksync/reports/globex/monthly", headers={"x-user": "bob"})
        assert unknown.status_code == 404
        assert [t for t, _ in Page(unknown.text).links if " / " in t] == ["globex / weekly"]  # not acme / nightly
        # whether a pipeline one may not read has reports is not revealed either
        assert c.get("/bulksync/reports/acme/weekly", headers={"x-user": "bob"}).status_code == 403


def test_anonymous_browsers_are_sent_to_the_airflow_login(seeded: Path) -> None:
    with client_for(Users({})) as c:
        res = c.get("/bulksync/reports/acme/nightly?x=1", follow_redirects=False)
        assert res.status_code == 303
        assert res.headers["location"] == "/auth/login?next=/bulksync/reports/acme/nightly?x=1"
        assert "Quarantined" not in res.text

    with client_for(Users({}, login=None)) as c:
        res = c.get("/bulksync/reports/")
        assert res.status_code == 401
        assert "Log in to Airflow to see data-quality reports" in Page(res.text).text


# ---------------------------------------------------------------------------------------------------------------
# The plugin


def load_plugin_module() -> Any:
    spec = importlib.util.spec_from_file_location("bulksync_plugin_under_test", ROOT / "plugins/bulksync_plugin.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_plugin_registers_the_app_and_a_nav_entry_airflow_accepts() -> None:
    from airflow.api_fastapi.core_api.datamodels.plugins import ExternalViewResponse, FastAPIAppResponse

    plugin = load_plugin_module().BulksyncPlugin
    assert plugin.name == "bulksync"
    [app] = plugin.fastapi_apps
    assert app["url_prefix"] == "/bulksync"
    FastAPIAppResponse.model_validate({**app, "app": type(app["app"]).__name__})
    [view] = plugin.external_views
    parsed = ExternalViewResponse.model_validate(view)
    assert (parsed.name, parsed.href, parsed.destination, parsed.url_route) == (
        "Data quality",
        "bulksync/reports/",
        "nav",
        "data-quality",
    )


def test_plugin_lazy_app_serves_the_reports(seeded: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_create_app = plugin_app.create_app
    monkeypatch.setattr(plugin_app, "create_app", lambda: real_create_app(plugin_app.OpenAccess()))
    outer = FastAPI()
    outer.mount("/bulksync", load_plugin_module().LazyReportsApp())

    with TestClient(outer) as c:
        res = c.get("/bulksync/reports/acme/nightly")
        assert res.status_code == 200
        assert Page(res.text).row("invoices").startswith("invoices ✕ Failed")
        assert c.get("/bulksync/icon.svg").headers["content-type"] == "image/svg+xml"


def test_importing_the_plugin_loads_no_engine_and_no_web_stack() -> None:
    code = (
        "import sys, importlib.util\n"
        "import airflow.plugins_manager\n"
        "before = set(sys.modules)\n"
        f"spec = importlib.util.spec_from_file_location('p', {str(ROOT / 'plugins/bulksync_plugin.py')!r})\n"
        "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
        "new = {n.split('.')[0] for n in set(sys.modules) - before}\n"
        "print(sorted(new & {'pandas', 'pyarrow', 'great_expectations', 'fastapi', 'jinja2', 'bulksync'}))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__CORE__PLUGINS")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_a_dataset_without_records_says_so(root: Path) -> None:
    write_record(root, make_record("orders", 1))
    (root / "acme/nightly/runs/contacts").mkdir()

    page = Page(report.render_pipeline_report("acme", "nightly"))
    assert page.row("contacts") == "contacts – No runs – – – – –"
    assert page.section("contacts") == "contacts – No runs No run recorded yet."
    assert page.row("orders").startswith("orders ✓ Pass")
    listing = Page(report.render_reports_index())
    assert listing.row("acme / nightly").startswith("acme / nightly ✓ Pass – contacts: No runs ✓ orders: Pass")


def test_a_dataset_without_a_suite_reads_no_suite_not_pass(root: Path) -> None:
    """Issue 14 item 10: no suite ran, so nothing passed; a failed run without a suite still reads Failed."""
    write_record(root, make_record("contacts", 1).model_copy(update={"quality": None}))
    write_record(root, make_record("leads", 1, status="failed").model_copy(update={"quality": None}))
    write_record(root, make_record("orders", 1))
    page = Page(report.render_pipeline_report("acme", "nightly"))
    assert page.text.startswith("Data quality · acme / nightly ✕ 1 Failed ✓ 1 Pass – 1 No suite 3 datasets")
    assert page.row("contacts") == "contacts – No suite 2026-01-02 02:15:00 UTC 1,000 0 ✓ ok –"
    assert page.row("leads").startswith("leads ✕ Failed")
    assert "No quality suite ran for this dataset." in page.section("contacts")
    listing = Page(report.render_reports_index())
    assert "– contacts: No suite" in listing.row("acme / nightly")


def test_a_null_in_a_pii_column_shows_as_null(root: Path) -> None:
    """Issue 14 item 10: the gate masks PII samples, but a null is no secret and was shown as ``<***``."""
    import pandas as pd

    from bulksync.quality.gate import mask

    samples = [mask(v) for v in ["jane@example.com", None, pd.NA, float("nan"), "ab"]]
    assert samples == ["j***", None, None, None, "***"]
    failed = ExpectationOutcome(
        expectation="expect_column_values_to_match_regex",
        column="email",
        success=False,
        row_level=True,
        unexpected_count=5,
        unexpected_percent=50.0,
        samples=samples,
    )
    write_record(root, make_record("contacts", 1, quality="failed", status="failed", failed=[failed]))
    section = Page(report.render_pipeline_report("acme", "nightly")).section("contacts")
    assert 'expect_column_values_to_match_regex email error 5 50.00% "j***" null null null "***"' in section
    assert "<***" not in section
