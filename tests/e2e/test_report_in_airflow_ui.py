"""End to end: the data-quality report inside a real Airflow api-server, seen through headless Chromium.

A real ``airflow api-server`` (SQLite metadata in a temporary AIRFLOW_HOME, the project's plugins
folder, no DAGs, the simple auth manager with everyone admin) serves run records seeded into a
temporary reports root. Chromium loads the report page and the Airflow UI's "Data quality" view;
the dumped DOM is checked for what a user reads, and screenshots are kept under
``.local/test-artifacts/``. Skips without ``/usr/bin/chromium`` unless ``BULKSYNC_REQUIRE_SERVICES=1``.
"""

from __future__ import annotations

import http.client
import json
import os
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import service_missing
from tests.e2e.api_server import REPO, api_server, get, stop
from tests.unit.test_quality_report import ORDERS_DOCS, Page, seed_reports

ARTIFACTS = REPO / ".local" / "test-artifacts"
CHROMIUM = Path(os.environ.get("BULKSYNC_CHROMIUM", "/usr/bin/chromium"))
WINDOW = (1280, 1600)
HEADLESS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)
"""Chromium's flags for one quiet headless load: no sandbox, GPU, updates, sync or first-run pages."""


@pytest.fixture(scope="module")
def airflow_ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of a running api-server with the bulksync plugin and seeded reports."""
    home = tmp_path_factory.mktemp("airflow-ui")
    reports = home / "reports"
    seed_reports(reports)
    (reports / "acme/nightly/secret.txt").write_text("TOP-SECRET", encoding="utf-8")
    with api_server(home, reports) as base:
        yield base


@pytest.fixture
def browser(airflow_ui: str) -> str:
    """The api-server's base URL, once headless Chromium is known to be there."""
    if not CHROMIUM.exists():
        service_missing(f"headless Chromium not found at {CHROMIUM} (apt-get install -y chromium)")
    return airflow_ui


def chromium(url: str, *args: str, profile: Path) -> str:
    """Run headless Chromium once on ``url``; return its stdout (the DOM with ``--dump-dom``)."""
    profile.mkdir(parents=True, exist_ok=True)
    cmd = [
        str(CHROMIUM),
        *HEADLESS,
        f"--user-data-dir={profile}",
        *args,
        url,
    ]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True, cwd=profile
    )
    try:
        out, err = proc.communicate(timeout=120)
    finally:
        stop(proc)
    assert proc.returncode == 0, f"chromium failed ({proc.returncode}): {err[-2000:]}"
    return out


def screenshot(url: str, name: str, profile: Path, *extra: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    path.unlink(missing_ok=True)
    chromium(url, f"--screenshot={path}", f"--window-size={WINDOW[0]},{WINDOW[1]}", *extra, profile=profile)
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    assert struct.unpack(">II", data[16:24]) == WINDOW
    assert len(data) > 20_000, f"{path} looks blank ({len(data)} bytes)"
    return path


def test_the_plugin_and_its_nav_entry_are_registered(airflow_ui: str) -> None:
    status, body = get(f"{airflow_ui}/api/v2/plugins")
    assert status == 200, body
    [plugin] = [p for p in json.loads(body)["plugins"] if p["name"] == "bulksync"]
    assert [(a["url_prefix"], a["name"]) for a in plugin["fastapi_apps"]] == [
        ("/bulksync", "bulksync data-quality reports")
    ]
    [view] = plugin["external_views"]
    assert {k: view[k] for k in ("name", "href", "url_route", "destination", "nav_top_level")} == {
        "name": "Data quality",
        "href": "bulksync/reports/",
        "url_route": "data-quality",
        "destination": "nav",
        "nav_top_level": True,
    }
    status, body = get(f"{airflow_ui}/api/v2/plugins/importErrors")
    assert status == 200 and json.loads(body)["total_entries"] == 0, body
    status, icon = get(f"{airflow_ui}/{view['icon']}")
    assert status == 200 and icon.startswith("<svg")


def test_report_page_in_a_browser(browser: str, tmp_path: Path) -> None:
    airflow_ui = browser
    url = f"{airflow_ui}/bulksync/reports/acme/nightly"

    page = Page(chromium(url, "--dump-dom", profile=tmp_path / "dom"))

    assert page.text.startswith("Data quality · acme / nightly ✕ 1 Failed ⚠ 1 Quarantined ! 1 Warn ✓ 1 Pass")
    assert page.row("invoices") == "invoices ✕ Failed 2026-02-05 02:15:00 UTC 0 0 ✕ mismatch 0 of 1"
    assert page.row("orders") == "orders ⚠ Quarantined 2026-02-05 02:15:00 UTC 985 12 ✓ ok 1 of 2"
    assert page.row("account_changes") == "account_changes ! Warn 2026-02-05 02:15:00 UTC 420 0 ✓ ok 1 of 2"
    assert page.row("accounts") == "accounts ✓ Pass 2026-02-05 02:15:00 UTC 1,350 0 ✓ ok 0 of 1"
    orders = page.section("orders")
    assert "Source 1,000 Staged 1,000 Quarantined 12 Rejected by transforms 3 Loaded 985 Result ✓ ok" in orders
    assert 'expect_column_values_to_not_be_null email error 12 1.20% "j***@example.com"' in orders
    assert "<script" not in page.html  # the sample with markup stayed text in the live DOM
    assert "\"<script>alert('owned')</script>\"" in orders
    assert len(page.sections["accounts"].bars) == 30
    docs = page.href("validation result of this run", "orders")
    assert docs == "/bulksync/reports/" + ORDERS_DOCS
    assert get(airflow_ui + docs) == (200, "<html><body><h1>Validation of orders</h1></body></html>")

    shot = screenshot(url, "quality-report-acme-nightly.png", tmp_path / "shot")
    print(f"screenshot: {shot}")


def test_data_quality_view_in_the_airflow_ui(browser: str, tmp_path: Path) -> None:
    airflow_ui = browser
    budget = "--virtual-time-budget=20000"  # let the React UI fetch the plugin list and render
    url = f"{airflow_ui}/plugin/data-quality/bulksync/reports/acme/nightly"

    dom = chromium(url, "--dump-dom", budget, profile=tmp_path / "dom")

    assert 'title="Data quality"' in dom and 'src="/bulksync/reports/acme/nightly"' in dom
    assert ">Data quality<" in dom  # the navigation entry
    listing = chromium(f"{airflow_ui}/plugin/data-quality", "--dump-dom", budget, profile=tmp_path / "dom2")
    assert 'src="bulksync/reports/"' in listing
    shot = screenshot(url, "quality-report-in-airflow-ui.png", tmp_path / "shot", budget)
    print(f"screenshot: {shot}")


def test_unknown_pipelines_and_paths_outside_data_docs_get_404(airflow_ui: str) -> None:
    status, body = get(f"{airflow_ui}/bulksync/reports/acme/weekly")
    assert status == 404
    assert "No data-quality runs are recorded for pipeline acme/weekly." in Page(body).text
    assert Page(body).href("acme / nightly") == "/bulksync/reports/acme/nightly"

    status, body = get(f"{airflow_ui}/bulksync/reports/acme/nightly/data_docs/..%2F..%2Fsecret.txt")
    assert status == 404 and "TOP-SECRET" not in body
    # a raw "..", not collapsed by the client, straight to the server
    host, port = airflow_ui.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.request("GET", "/bulksync/reports/acme/nightly/data_docs/../secret.txt")
    res = conn.getresponse()
    body = res.read().decode()
    conn.close()
    assert res.status == 404 and "TOP-SECRET" not in body
