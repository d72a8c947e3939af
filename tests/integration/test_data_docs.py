"""GX Data Docs of a real quality gate run (issue 14 item 8, issue 12 item 6).

A CSV drop is extracted into real staging and validated by the real gate; the Data Docs site that
GX's site builder then writes under the reports root is read as files: every link and asset of
every page must resolve to a file of the site, nothing may come from the network, no page may hold
a script, run names and times are the real ones, bulksync's internal columns never show and PII
samples are masked. The same pages in a browser, served by Airflow, are checked in
``tests/e2e/test_pages_are_inert.py``.
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from bulksync import stages
from bulksync.quality.gate import QualityGateError
from tests.helpers import DAY
from tests.integration.test_quality_gate import NOT_NULL_EMAIL, QTY_RANGE, make_spec, project, sev  # noqa: F401

EVIL = '"><img src=x onerror="document.title=\'PWNED\'"><script>document.title="PWNED"</script>'


class Refs(HTMLParser):
    """Every URL a page refers to (links, stylesheets, images, scripts) and whether it has scripts."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: list[tuple[str, str]] = []
        self.scripts = 0
        self.handlers: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script":
            self.scripts += 1
        for name, value in attrs:
            if name.startswith("on"):
                self.handlers.append(f"<{tag} {name}>")
            if name in ("href", "src") and value is not None:
                self.refs.append((tag, value))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def css_refs(css: str) -> list[str]:
    return [u.strip("'\"") for u in re.findall(r"url\(([^)]+)\)", css) if not u.strip("'\"").startswith("data:")]


def check_site(site: Path) -> dict[Path, Refs]:
    """Parse every page of a Data Docs site; assert each reference resolves to a file of the site.

    Returns:
        The parsed pages by path.
    """
    pages: dict[Path, Refs] = {}
    problems: list[str] = []
    for page in sorted(site.rglob("*.html")):
        refs = Refs()
        refs.feed(page.read_text(encoding="utf-8"))
        pages[page] = refs
        for tag, ref in refs.refs:
            parts = urlsplit(ref)
            if parts.scheme or parts.netloc:
                problems.append(f"{page.relative_to(site)}: <{tag}> leaves the site: {ref}")
                continue
            if not parts.path:  # "#section-1"
                continue
            target = (page.parent / unquote(parts.path)).resolve()
            if not target.is_relative_to(site.resolve()) or not target.is_file():
                problems.append(f"{page.relative_to(site)}: <{tag}> {ref} -> no such file")
    for css in site.rglob("*.css"):
        for ref in css_refs(css.read_text(encoding="utf-8")):
            if not (css.parent / ref).resolve().is_file():
                problems.append(f"{css.relative_to(site)}: url({ref}) -> no such file")
    assert not problems, "\n".join(problems)
    return pages


@pytest.fixture
def gate_run(project: Path, sqlite_conn: Path) -> Path:  # noqa: F811
    (project / "drops" / "orders.csv").write_text(
        "id,email,status,qty\n"
        "1,ann@example.com,open,5\n"
        f'2,"{EVIL.replace(chr(34), chr(34) * 2)}",open,50\n'
        "3,,closed,7\n"
        "4,dan@example.com,open,60\n",
        encoding="utf-8",
    )
    spec = make_spec(
        project,
        [
            sev(QTY_RANGE, "error"),
            sev(NOT_NULL_EMAIL, "error"),
            sev(
                {
                    **NOT_NULL_EMAIL,
                    "type": "expect_column_values_to_match_regex",
                    "kwargs": {"column": "email", "regex": "@example"},
                },
                "warn",
            ),
        ],
        "fail",
        pii_columns=["email"],
    )
    ds = spec.datasets[0]
    for run_id in ("scheduled__2026-01-01T02:00:00+00:00", "manual__2026-01-02"):
        ctx = stages.RunContext(run_id=run_id, window=DAY, try_number=1)
        stages.extract(spec, ds, ctx)
        with pytest.raises(QualityGateError):
            stages.validate(spec, ds, ctx)
    return project / "reports" / "acme" / "gate"


def test_the_site_is_built_by_gx_with_every_link_resolving(gate_run: Path) -> None:
    site = gate_run / "data_docs"
    pages = check_site(site)
    names = sorted(str(p.relative_to(site)) for p in pages)
    assert names[:2] == ["expectations/orders.html", "index.html"]
    validations = [n for n in names if n.startswith("validations/")]
    assert len(validations) == 2
    assert all(
        re.fullmatch(r"validations/orders/[^/]+/\d{8}T\d{6}\.\d{6}Z/orders-\d{8}T\d{6}Z_\d{8}T\d{6}Z\.html", n)
        for n in validations
    ), validations
    assert {n.split("/")[2] for n in validations} == {"scheduled__2026-01-01T02:00:00+00:00", "manual__2026-01-02"}
    from markupsafe import escape

    from bulksync.quality.report import META_CSP

    for page, refs in pages.items():
        assert refs.scripts == 0 and not refs.handlers, page
        # the policy travels with the file: a copy served by any web server, or opened from disk, is as inert
        assert f'<meta http-equiv="Content-Security-Policy" content="{escape(META_CSP)}">' in page.read_text(), page
        links = {ref for tag, ref in refs.refs if tag == "a"}
        if page.name != "index.html":
            assert any(ref.endswith("index.html") for ref in links), f"{page}: no Home link"
    index = pages[site / "index.html"]
    hrefs = [ref for tag, ref in index.refs if tag == "a" and "validations/" in ref]
    assert len(hrefs) == 2  # each validation row links to its page
    assert any(ref == "expectations/orders.html" for _, ref in index.refs)


def test_pages_show_real_run_names_times_and_asset_without_internals_or_pii(gate_run: Path) -> None:
    site = gate_run / "data_docs"
    [page] = sorted(site.glob("validations/orders/scheduled__*/*/*.html"))
    html = page.read_text(encoding="utf-8")
    text = " ".join(" ".join(page_text(html)).split())
    assert "__none__" not in html
    assert "Data asset: orders" in text
    assert "scheduled__2026-01-01T02:00:00+00:00" in text
    assert re.search(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}", text)
    every_file = "".join(p.read_text(encoding="utf-8") for p in gate_run.rglob("*") if p.suffix in (".html", ".json"))
    assert "__bulksync" not in every_file  # neither the float64 copies nor the row number
    assert "ann@example.com" not in every_file and "dan@example.com" not in every_file  # PII masked in Data Docs too
    assert "onerror=" not in html.replace("onerror=&quot;", "")  # the payload stayed text
    stored = json.loads(next((gate_run / "gx" / "validations").rglob("*.json")).read_text())
    assert stored["meta"]["batch_spec"]["data_asset_name"] == "orders"
    assert {r["expectation_config"]["kwargs"]["column"] for r in stored["results"]} == {"qty", "email"}


def page_text(html: str) -> list[str]:
    refs = Refs()
    refs.feed(html)
    return refs.text
