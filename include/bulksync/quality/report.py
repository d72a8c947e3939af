"""The data-quality report: one self-contained HTML page per pipeline, built from the run records.

Reads only files under the reports root (see :mod:`bulksync.quality.model` for the layout), so the
same page is written as a static file after each run (:func:`write_pipeline_report`) and served
live by the Airflow plugin (:mod:`bulksync.plugin_app`). The page has inline CSS, an inline SVG
trend chart and no JavaScript; every value from the records is HTML-escaped by Jinja2.

Imports only jinja2 and pydantic: the Airflow api-server imports this module.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Literal
from urllib.parse import quote

import jinja2
from pydantic import ValidationError

from bulksync.errors import TerminalError
from bulksync.quality.model import COUNT_LABELS, ExpectationOutcome, Reconciliation, RunRecord
from bulksync.settings import reports_root

log = logging.getLogger(__name__)

Verdict = Literal["pass", "warn", "quarantined", "failed"]

PAGE_CSP = (
    # Nothing bulksync serves has a script (the report and the Data Docs are plain HTML and CSS), and every
    # asset comes from the same place: no script runs, whatever a data value, column or file name holds.
    # Inline styles stay allowed (GX's pages style elements with style attributes).
    "default-src 'self'; script-src 'none'; object-src 'none'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self'; connect-src 'none'; frame-src 'none'; "
    "frame-ancestors 'self'; base-uri 'none'; form-action 'none'"
)
"""The Content-Security-Policy of every page and file bulksync serves (the plugin sends it as a header)."""

META_CSP = "; ".join(d for d in PAGE_CSP.split("; ") if not d.startswith("frame-ancestors"))
"""The same policy for a ``<meta http-equiv>`` in every page bulksync writes, so a copy of the reports
root opened from disk or served by any web server is as inert (``frame-ancestors`` only works as a header)."""

RUNS_DIR = "runs"
DATA_DOCS_DIR = "data_docs"
INDEX_HTML = "index.html"
TREND_RUNS = 30

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_RANK: dict[Verdict, int] = {"pass": 0, "warn": 1, "quarantined": 2, "failed": 3}
_LABEL: dict[Verdict, str] = {"pass": "Pass", "warn": "Warn", "quarantined": "Quarantined", "failed": "Failed"}
_ICON: dict[Verdict, str] = {"pass": "✓", "warn": "!", "quarantined": "⚠", "failed": "✕"}

# Trend chart geometry (px): one slot per run, bars grow upwards from the baseline.
_SLOT, _BAR, _CHART_H, _MIN_BAR, _MIN_BAD_BAR = 14, 10, 56, 2, 8


class ReportNotFoundError(TerminalError):
    """No run records exist for the requested pipeline (the message lists the known ones)."""


def is_safe_name(value: str) -> bool:
    """Whether ``value`` can be a tenant, pipeline or dataset folder name (no separators, no ``..``)."""
    return bool(_NAME.fullmatch(value)) and ".." not in value


def _check_name(value: str, what: str) -> str:
    if not is_safe_name(value):
        raise ValueError(f"{what} {value!r} is not a valid name (letters, digits, '_', '.', '-'; no '/' or '..')")
    return value


def pipeline_dir(tenant: str, pipeline: str) -> Path:
    """The folder of one pipeline under the reports root (names are checked, so no path escapes it)."""
    return reports_root() / _check_name(tenant, "tenant") / _check_name(pipeline, "pipeline")


def list_pipelines() -> list[tuple[str, str]]:
    """Every ``(tenant, pipeline)`` under the reports root that has a ``runs/`` folder, sorted.

    Returns:
        The pairs, sorted by tenant then pipeline; empty when the reports root does not exist.
    """
    root = reports_root()
    if not root.is_dir():
        return []
    found = [
        (runs.parent.parent.name, runs.parent.name)
        for runs in root.glob(f"*/*/{RUNS_DIR}")
        if runs.is_dir() and is_safe_name(runs.parent.parent.name) and is_safe_name(runs.parent.name)
    ]
    return sorted(found)


def list_datasets(tenant: str, pipeline: str) -> list[str]:
    """The datasets of a pipeline that have a folder under ``runs/``, sorted by name."""
    runs = pipeline_dir(tenant, pipeline) / RUNS_DIR
    if not runs.is_dir():
        return []
    return sorted(p.name for p in runs.iterdir() if p.is_dir() and is_safe_name(p.name))


def _utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _read_runs(folder: Path, limit: int) -> tuple[list[RunRecord], list[str]]:
    """The last ``limit`` run records of one dataset folder, oldest first, and one line per unreadable file.

    File names start with ``finished_at`` (``%Y%m%dT%H%M%S``): files are read newest first until ``limit``
    records parsed, so an unreadable file costs one more read rather than hiding a run.
    """
    if not folder.is_dir() or limit <= 0:
        return [], []
    runs: list[RunRecord] = []
    problems: list[str] = []
    for path in sorted(folder.glob("*.json"), key=lambda p: p.name, reverse=True):
        if len(runs) >= limit:
            break
        try:
            runs.append(RunRecord.model_validate_json(path.read_bytes()))
        except (OSError, ValidationError) as exc:
            first = str(exc).strip().splitlines()
            reason = f"{type(exc).__name__}: {first[0] if first else ''}"
            log.warning("run record %s skipped: %s", path, reason)
            problems.append(f"{path.name}: {reason}")
    runs.sort(key=lambda r: _utc(r.finished_at))
    return runs, problems


def load_runs(tenant: str, pipeline: str, dataset: str | None = None, limit: int = TREND_RUNS) -> list[RunRecord]:
    """The recorded runs of a pipeline, newest last.

    Args:
        tenant: Tenant name (a folder under the reports root).
        pipeline: Pipeline name.
        dataset: One dataset; ``None`` reads every dataset of the pipeline.
        limit: How many of the newest runs to read per dataset.

    Returns:
        Run records sorted by ``finished_at`` (newest last). Unreadable files are skipped with a warning
        in the log (the rendered report lists them).
    """
    datasets = [_check_name(dataset, "dataset")] if dataset is not None else list_datasets(tenant, pipeline)
    runs: list[RunRecord] = []
    for name in datasets:
        runs.extend(_read_runs(pipeline_dir(tenant, pipeline) / RUNS_DIR / name, limit)[0])
    runs.sort(key=lambda r: _utc(r.finished_at))
    return runs


def verdict(run: RunRecord) -> Verdict:
    """What the report shows for a run: the worse of the run status and the quality gate's status.

    ``success`` with a passing (or skipped, or absent) quality gate is ``pass``.
    """
    from_run: Verdict = "pass" if run.status == "success" else run.status
    from_quality: Verdict = "pass"
    if run.quality is not None and run.quality.status != "skipped":
        from_quality = run.quality.status
    return max(from_run, from_quality, key=lambda v: _RANK[v])


NO_SUITE = "No suite"


def shown_status(run: RunRecord) -> tuple[Verdict, str, str, str]:
    """``(verdict, label, icon, badge class)`` of a run as the report shows it.

    A run that succeeded without a quality suite is not a "Pass" of anything: it reads "No suite"
    (a failed or mismatched run without a suite still reads "Failed").
    """
    v = verdict(run)
    if v == "pass" and run.quality is None:
        return v, NO_SUITE, "–", "nosuite"
    return v, _LABEL[v], _ICON[v], v


# ---------------------------------------------------------------------------------------------------------------
# View models: everything the templates show, already formatted.


@dataclass(frozen=True)
class TrendBar:
    """One run in the trend chart."""

    x: int
    y: int
    height: int
    verdict: Verdict
    tooltip: str


@dataclass(frozen=True)
class Trend:
    """The inline SVG chart of the last runs of one dataset."""

    bars: list[TrendBar]
    width: int
    height: int
    max_rows: str
    first: str
    last: str


@dataclass(frozen=True)
class ExpectationView:
    """A failed expectation as a table row."""

    expectation: str
    column: str
    severity: str
    unexpected_count: str
    unexpected_percent: str
    samples: list[str]
    detail: str


@dataclass(frozen=True)
class Link:
    """A link, or a path shown as text when it cannot be linked (``href`` empty), with a note."""

    text: str
    href: str = ""
    note: str = ""


@dataclass
class DatasetView:
    """One dataset's section of the page."""

    name: str
    verdict: Verdict
    label: str
    icon: str
    run: RunRecord | None
    badge: str = "none"
    finished: str = ""
    window: str = ""
    loaded: str = "–"
    quarantined: str = "–"
    failed: list[ExpectationView] = field(default_factory=list)
    expectations_total: int = 0
    reconciliation: list[tuple[str, str]] = field(default_factory=list)
    reconciliation_ok: bool | None = None
    problems: list[str] = field(default_factory=list)
    durations: str = ""
    data_docs: Link | None = None
    trend: Trend | None = None
    unreadable: list[str] = field(default_factory=list)


@dataclass
class PipelineSummary:
    """One row of the reports index: a pipeline and the latest status of each dataset."""

    tenant: str
    pipeline: str
    href: str
    datasets: list[DatasetView]
    verdict: Verdict
    label: str
    icon: str
    last_finished: str


def _n(value: int | None) -> str:
    return "not reported" if value is None else f"{value:,}"


def _when(value: dt.datetime | None) -> str:
    return "–" if value is None else _utc(value).strftime("%Y-%m-%d %H:%M:%S UTC")


def _pct(value: float | None) -> str:
    if value is None:
        return "–"
    if 0 < value < 0.01:
        return "<0.01%"
    return f"{value:.2f}%"


def _sample(value: Any) -> str:
    """A sample as the user should read it: JSON, so strings show quotes and blanks stay visible."""
    return json.dumps(value, ensure_ascii=False, default=str)


def _loaded(run: RunRecord) -> int:
    return run.reconciliation.loaded if run.reconciliation is not None else run.inserted + run.updated


def _expectation(e: ExpectationOutcome) -> ExpectationView:
    if e.error:
        detail = f"could not be evaluated: {e.error}"
    elif e.unexpected_count is None and e.observed_value is not None:
        detail = f"observed {_sample(e.observed_value)}"
    else:
        detail = ""
    kwargs = {k: v for k, v in e.kwargs.items() if k not in ("column", "batch_id")}
    if kwargs:
        args = ", ".join(f"{k}={_sample(v)}" for k, v in sorted(kwargs.items()))
        detail = f"{detail}; {args}" if detail else args
    return ExpectationView(
        expectation=e.expectation,
        column=e.column or "–",
        severity=e.severity,
        unexpected_count="–" if e.unexpected_count is None else f"{e.unexpected_count:,}",
        unexpected_percent=_pct(e.unexpected_percent),
        samples=[_sample(s) for s in e.samples],
        detail=detail,
    )


def _reconciliation(r: Reconciliation) -> list[tuple[str, str]]:
    """The counts with the labels every surface uses (:data:`~bulksync.quality.model.COUNT_LABELS`)."""
    return [
        (label[0].upper() + label[1:], _n(getattr(r, key)))
        for key, label in COUNT_LABELS.items()
        if key not in ("deletions", "failed", "unprocessed") or getattr(r, key)
    ]


def _data_docs_link(tenant: str, pipeline: str, rel: str | None, base_url: str | None) -> Link | None:
    """Link a path relative to the reports root: relatively in the static page, via the app when served."""
    if not rel:
        return None
    path = PurePosixPath(rel.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or not path.parts:
        return Link(text=rel, note="not a path under the reports root")
    exists = (reports_root() / path).is_file()
    note = "" if exists else "file not found"
    prefix = (tenant, pipeline, DATA_DOCS_DIR)
    if base_url is None:  # static page at {tenant}/{pipeline}/index.html
        inner = PurePosixPath(*path.parts[2:]) if path.parts[:2] == prefix[:2] else PurePosixPath("../..", path)
        return Link(text=rel, href=quote(str(inner)), note=note)
    if path.parts[:3] == prefix and len(path.parts) > 3:
        rest = quote(str(PurePosixPath(*path.parts[3:])))
        return Link(
            text=rel, href=f"{base_url}/reports/{quote(tenant)}/{quote(pipeline)}/{DATA_DOCS_DIR}/{rest}", note=note
        )
    return Link(text=rel, note="outside this pipeline's data_docs folder, not served")


def _trend(runs: Sequence[RunRecord]) -> Trend | None:
    if not runs:
        return None
    peak = max(max(_loaded(r) for r in runs), 1)
    bars = []
    for i, run in enumerate(runs):
        v = verdict(run)
        rows = _loaded(run)
        h = max(round(rows / peak * _CHART_H), _MIN_BAR)
        if v in ("failed", "quarantined"):
            h = max(h, _MIN_BAD_BAR)
        tip = f"{_when(run.finished_at)} · {shown_status(run)[1]} · {rows:,} rows loaded · run {run.run_id}"
        if run.reconciliation is not None and run.reconciliation.quarantined:
            tip += f" · {run.reconciliation.quarantined:,} quarantined"
        bars.append(TrendBar(x=i * _SLOT + 2, y=_CHART_H - h + 2, height=h, verdict=v, tooltip=tip))
    return Trend(
        bars=bars,
        width=TREND_RUNS * _SLOT + 4,
        height=_CHART_H + 4,
        max_rows=f"{peak:,}" if any(_loaded(r) for r in runs) else "0",
        first=_when(runs[0].finished_at),
        last=_when(runs[-1].finished_at),
    )


def _dataset_view(tenant: str, pipeline: str, name: str, base_url: str | None) -> DatasetView:
    runs, unreadable = _read_runs(pipeline_dir(tenant, pipeline) / RUNS_DIR / name, TREND_RUNS)
    if not runs:
        return DatasetView(name=name, verdict="pass", label="No runs", icon="–", run=None, unreadable=unreadable)
    run = runs[-1]
    v, label, icon, badge = shown_status(run)
    view = DatasetView(
        name=name,
        verdict=v,
        label=label,
        icon=icon,
        badge=badge,
        run=run,
        finished=_when(run.finished_at),
        window=f"{_when(run.window_start)} → {_when(run.window_end)}" if run.window_start else run.interval,
        loaded=f"{_loaded(run):,}",
        durations=" · ".join(f"{k} {s:.1f} s" for k, s in run.durations.items()),
        trend=_trend(runs),
        unreadable=unreadable,
    )
    if run.quality is not None:
        view.failed = [_expectation(e) for e in run.quality.failed]
        view.expectations_total = len(run.quality.expectations)
        view.quarantined = f"{run.quality.rows_quarantined:,}"
        view.data_docs = _data_docs_link(tenant, pipeline, run.quality.data_docs_path, base_url)
    if run.reconciliation is not None:
        view.reconciliation = _reconciliation(run.reconciliation)
        view.reconciliation_ok = run.reconciliation.ok
        view.problems = list(run.reconciliation.problems)
        view.quarantined = f"{run.reconciliation.quarantined:,}"
    return view


def _worst(views: Iterable[DatasetView]) -> Verdict:
    return max((d.verdict for d in views if d.run is not None), key=lambda v: _RANK[v], default="pass")


# ---------------------------------------------------------------------------------------------------------------
# Rendering


_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("bulksync.quality", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=False,
    lstrip_blocks=True,
)
_ENV.globals["csp"] = META_CSP


def _mode(base_url: str) -> str | None:
    """``None`` for the static page (relative links), else the URL prefix of the served app."""
    return base_url.rstrip("/") if base_url else None


def _not_found(tenant: str, pipeline: str) -> ReportNotFoundError:
    known = ", ".join(f"{t}/{p}" for t, p in list_pipelines()) or "none yet"
    return ReportNotFoundError(
        f"no data-quality runs recorded for pipeline {tenant}/{pipeline} under {reports_root()} "
        f"(expected run records in {tenant}/{pipeline}/{RUNS_DIR}/<dataset>/*.json, written when the "
        f"pipeline's validate step runs). Pipelines with reports: {known}"
    )


def render_pipeline_report(tenant: str, pipeline: str, base_url: str = "") -> str:
    """Render the data-quality page of one pipeline from its run records.

    Args:
        tenant: Tenant name.
        pipeline: Pipeline name.
        base_url: Empty for the static file (links relative to ``{tenant}/{pipeline}/index.html``);
            otherwise the URL prefix the plugin app is served under (e.g. ``/bulksync``).

    Returns:
        One self-contained HTML document (inline CSS and SVG, no scripts).

    Raises:
        ReportNotFoundError: the pipeline has no ``runs/`` folder under the reports root.
        ValueError: tenant or pipeline is not a valid folder name.
    """
    folder = pipeline_dir(tenant, pipeline)
    if not (folder / RUNS_DIR).is_dir():
        raise _not_found(tenant, pipeline)
    prefix = _mode(base_url)
    datasets = [_dataset_view(tenant, pipeline, name, prefix) for name in list_datasets(tenant, pipeline)]
    datasets.sort(key=lambda d: (-_RANK[d.verdict] if d.run is not None else 1, d.name))  # problems first
    chips: dict[str, str] = {**{str(k): v for k, v in _LABEL.items()}, "nosuite": NO_SUITE}
    counts = {b: sum(1 for d in datasets if d.run is not None and d.badge == b) for b in chips}
    site = _data_docs_link(tenant, pipeline, f"{tenant}/{pipeline}/{DATA_DOCS_DIR}/{INDEX_HTML}", prefix)
    return _ENV.get_template("report_page.html").render(
        tenant=tenant,
        pipeline=pipeline,
        datasets=datasets,
        counts=[(b, chips[b], counts[b]) for b in ("failed", "quarantined", "warn", "pass", "nosuite") if counts[b]],
        overall=_worst(datasets),
        labels=_LABEL,
        icons={**_ICON, "nosuite": "–"},
        data_docs_site=site if site is not None and not site.note else None,
        index_href="../../index.html" if prefix is None else f"{prefix}/reports/",
        generated=_when(dt.datetime.now(dt.UTC)),
        trend_runs=TREND_RUNS,
    )


def pipeline_summaries(pipelines: Iterable[tuple[str, str]] | None = None, base_url: str = "") -> list[PipelineSummary]:
    """The latest status of every dataset of each pipeline, for the reports index.

    Args:
        pipelines: The pipelines to summarise; default :func:`list_pipelines`.
        base_url: As in :func:`render_pipeline_report`.

    Returns:
        One summary per pipeline, in the given order.
    """
    prefix = _mode(base_url)
    out = []
    for tenant, pipeline in list_pipelines() if pipelines is None else pipelines:
        views = []
        for name in list_datasets(tenant, pipeline):
            runs, unreadable = _read_runs(pipeline_dir(tenant, pipeline) / RUNS_DIR / name, 1)
            if runs:
                v, label, icon, badge = shown_status(runs[-1])
                views.append(
                    DatasetView(
                        name=name,
                        verdict=v,
                        label=label,
                        icon=icon,
                        badge=badge,
                        run=runs[-1],
                        unreadable=unreadable,
                    )
                )
            else:
                views.append(DatasetView(name=name, verdict="pass", label="No runs", icon="–", run=None))
        worst = _worst(views)
        last = max((_utc(d.run.finished_at) for d in views if d.run is not None), default=None)
        href = f"{tenant}/{pipeline}/{INDEX_HTML}" if prefix is None else f"{prefix}/reports/{tenant}/{pipeline}"
        out.append(
            PipelineSummary(
                tenant=tenant,
                pipeline=pipeline,
                href=quote(href),
                datasets=views,
                verdict=worst,
                label=_LABEL[worst] if last is not None else "No runs",
                icon=_ICON[worst] if last is not None else "–",
                last_finished=_when(last),
            )
        )
    return out


def render_reports_index(base_url: str = "", pipelines: Iterable[tuple[str, str]] | None = None) -> str:
    """Render the list of pipelines with the latest status of each dataset.

    Args:
        base_url: Empty for the static ``{reports_root}/index.html``, else the served app's URL prefix.
        pipelines: Restrict the list (e.g. to what the user may read); default: every pipeline found.

    Returns:
        One self-contained HTML document.
    """
    return _ENV.get_template("reports_index.html").render(
        pipelines=pipeline_summaries(pipelines, base_url),
        generated=_when(dt.datetime.now(dt.UTC)),
    )


def render_message(
    title: str,
    message: str,
    items: Sequence[tuple[str, str]] = (),
    items_heading: str = "",
    back_href: str = "",
    back_text: str = "All data-quality reports",
) -> str:
    """Render a small page in the report's style (used for "not found" and "not allowed" answers).

    Args:
        title: Page heading.
        message: One paragraph.
        items: ``(text, href)`` pairs listed under ``items_heading``; an empty href shows plain text.
        items_heading: Line above the list.
        back_href: Link back (to the reports list by default), if any.
        back_text: Text of that link.

    Returns:
        One self-contained HTML document.
    """
    return _ENV.get_template("message.html").render(
        title=title,
        message=message,
        items=list(items),
        items_heading=items_heading,
        back_href=back_href,
        back_text=back_text,
        generated=_when(dt.datetime.now(dt.UTC)),
    )


def _atomic_write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_pipeline_report(tenant: str, pipeline: str) -> Path:
    """Write the static report ``{reports_root}/{tenant}/{pipeline}/index.html`` (atomically).

    Returns:
        The path written.

    Raises:
        ReportNotFoundError: the pipeline has no run records.
    """
    html = render_pipeline_report(tenant, pipeline)
    path = _atomic_write(pipeline_dir(tenant, pipeline) / INDEX_HTML, html)
    log.info("quality report of %s/%s written: %s (%d bytes)", tenant, pipeline, path, len(html))
    return path


def write_reports_index() -> Path:
    """Write ``{reports_root}/index.html`` listing every pipeline with run records (atomically).

    Returns:
        The path written.
    """
    html = render_reports_index()
    path = _atomic_write(reports_root() / INDEX_HTML, html)
    log.info("quality reports index written: %s (%d pipelines)", path, len(list_pipelines()))
    return path
