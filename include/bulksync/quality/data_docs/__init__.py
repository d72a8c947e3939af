"""A pipeline's GX Data Docs site, built by GX's own site builder under the reports root.

Layout (``{reports_root}/{tenant}/{pipeline}/``)::

    gx/expectations/{suite}.json                                  GX expectations store
    gx/validations/{suite}/{run_name}/{run_time}/{batch}.json     GX validation results store
    data_docs/index.html                                          the site's Home (GX index page)
    data_docs/expectations/{suite}.html                           one page per suite
    data_docs/validations/{suite}/{run_name}/{run_time}/{batch}.html
    data_docs/static/                                             GX's assets + static/bulksync/ (ours)

Each validation is stored in GX's validation results store with the Airflow run id as run name,
the validation's time as run time and ``{dataset}-{window}`` as batch, then the site builder
renders that page, the suite's page and the index. Pages use bulksync's views
(:mod:`bulksync.quality.data_docs.view`): every asset is served from ``static/`` (Bootstrap and
Font Awesome are vendored under ``static/bulksync/vendor``, see ``VENDOR.md``), no page has a
script, and every value is HTML-escaped. What is stored is cleaned first (:func:`clean_result`):
bulksync's internal columns are renamed back or dropped, and samples of PII columns are masked.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import logging
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SITE_DIR = "data_docs"
STORES_DIR = "gx"
SITE_NAME = "bulksync"
STATIC = Path(__file__).parent / "static"
VIEW_MODULE = "bulksync.quality.data_docs.view"
INDEX_LIMIT = 500
"""Newest validation results listed on the site's index page."""


def site_config(base: Path) -> Any:
    """The GX ``DataContextConfig`` of one pipeline: filesystem stores and the Data Docs site under ``base``."""
    from great_expectations.data_context.types.base import DataContextConfig, ProgressBarsConfig

    def fs(folder: str) -> dict[str, Any]:
        return {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(base / folder)}

    memory = {"class_name": "InMemoryStoreBackend"}
    view = {"module_name": VIEW_MODULE, "class_name": "PageView"}
    return DataContextConfig(
        stores={
            "expectations_store": {
                "class_name": "ExpectationsStore",
                "store_backend": fs(f"{STORES_DIR}/expectations"),
            },
            "validation_results_store": {
                "class_name": "ValidationResultsStore",
                "store_backend": fs(f"{STORES_DIR}/validations"),
            },
            "checkpoint_store": {"class_name": "CheckpointStore", "store_backend": memory},
            "validation_definition_store": {"class_name": "ValidationDefinitionStore", "store_backend": memory},
        },
        expectations_store_name="expectations_store",
        validation_results_store_name="validation_results_store",
        checkpoint_store_name="checkpoint_store",
        data_docs_sites={
            SITE_NAME: {
                "class_name": "SiteBuilder",
                "show_how_to_buttons": False,
                "store_backend": fs(SITE_DIR),
                "site_index_builder": {
                    "class_name": "DefaultSiteIndexBuilder",
                    "validation_results_limit": INDEX_LIMIT,
                    "view": {"module_name": VIEW_MODULE, "class_name": "IndexPageView"},
                },
                "site_section_builders": {
                    "expectations": {"view": view},
                    "validations": {"view": view},
                    "profiling": "None",
                },
            }
        },
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
    )


def clean_result(
    result: dict[str, Any],
    *,
    shadows: dict[str, str],
    hidden_columns: set[str],
    pii: set[str],
    mask: Callable[[Any], Any],
) -> dict[str, Any]:
    """A GX validation result (JSON dict) fit to publish: no internal columns, PII samples masked.

    Args:
        result: ``ExpectationSuiteValidationResult.to_json_dict()``.
        shadows: ``{internal float64 copy: real column}`` (the gate checks ranges on copies).
        hidden_columns: internal columns (the row number) to drop from the unexpected-index lists.
        pii: columns whose unexpected values are masked.
        mask: how a value is masked (nulls stay null).
    """
    out = json.loads(json.dumps(result, default=str))
    for er in out.get("results", []):
        cfg = er.get("expectation_config") or {}
        kwargs = cfg.get("kwargs") or {}
        if kwargs.get("column") in shadows:
            kwargs["column"] = shadows[kwargs["column"]]
        kwargs.pop("batch_id", None)
        res = er.get("result") or {}
        for key in (
            "unexpected_index_list",
            "partial_unexpected_index_list",
            "unexpected_index_query",
            "unexpected_index_column_names",
        ):
            res.pop(key, None)
        fmt = kwargs.get("result_format")
        if isinstance(fmt, dict):
            fmt.pop("unexpected_index_column_names", None)
        if kwargs.get("column") in pii:
            if "partial_unexpected_list" in res:
                res["partial_unexpected_list"] = [mask(v) for v in res["partial_unexpected_list"]]
            if "unexpected_list" in res:
                res["unexpected_list"] = [mask(v) for v in res["unexpected_list"]]
            if "partial_unexpected_counts" in res:
                res["partial_unexpected_counts"] = [
                    {**c, "value": mask(c.get("value"))} for c in res["partial_unexpected_counts"]
                ]
            if "observed_value" in res and not isinstance(res["observed_value"], int | float):
                res["observed_value"] = mask(res["observed_value"])
    for column in hidden_columns:
        _drop_column_mentions(out, column)
    return out


def _drop_column_mentions(result: dict[str, Any], column: str) -> None:
    """Remove an internal column from the table-level results that list columns (e.g. column sets)."""
    for er in result.get("results", []):
        res = er.get("result") or {}
        observed = res.get("observed_value")
        if isinstance(observed, list) and column in observed:
            res["observed_value"] = [c for c in observed if c != column]
        details = res.get("details")
        if isinstance(details, dict):
            for key, value in list(details.items()):
                if isinstance(value, list) and column in value:
                    details[key] = [c for c in value if c != column]


def publish_validation(
    *,
    base: Path,
    suite: dict[str, Any],
    result: dict[str, Any],
    dataset: str,
    window: str,
    run_id: str,
    run_time: dt.datetime,
    datasource: str,
) -> tuple[Path, Path]:
    """Store one validation result in the pipeline's GX stores and rebuild its Data Docs pages.

    Args:
        base: the pipeline's folder under the reports root.
        suite: the GX suite (JSON dict) the result belongs to.
        result: the cleaned validation result (see :func:`clean_result`).
        dataset: the dataset (GX's data asset name).
        window: the partition's window key (part of the batch identifier).
        run_id: the Airflow run id (GX's run name).
        run_time: when the validation ran (GX's run time).
        datasource: shown as the datasource (``{tenant}__{pipeline}``).

    Returns:
        The stored result JSON and the validation page, both absolute paths.
    """
    base.mkdir(parents=True, exist_ok=True)
    with _site_lock(base):
        return _publish(base, suite, result, dataset, window, run_id, run_time, datasource)


@contextlib.contextmanager
def _site_lock(base: Path) -> Iterator[None]:
    """One writer at a time per pipeline site: parallel validate tasks each rebuild the shared index."""
    with (base / ".data_docs.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _publish(
    base: Path,
    suite: dict[str, Any],
    result: dict[str, Any],
    dataset: str,
    window: str,
    run_id: str,
    run_time: dt.datetime,
    datasource: str,
) -> tuple[Path, Path]:
    import great_expectations as gx
    from great_expectations.core.expectation_validation_result import ExpectationSuiteValidationResult
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    context = gx.get_context(mode="ephemeral", project_config=site_config(base))
    suite_name = str(suite["name"])
    context.suites.add_or_update(gx.ExpectationSuite(**{k: v for k, v in suite.items() if k != "id"}))
    run = RunIdentifier(run_name=path_safe(run_id), run_time=run_time)
    batch = f"{dataset}-{window}"
    meta = dict(result.get("meta") or {})
    meta["run_id"] = {"run_name": run_id, "run_time": run_time.isoformat()}
    meta["batch_spec"] = {"data_asset_name": dataset, "window": window, "datasource": datasource}
    meta["active_batch_definition"] = {
        "datasource_name": datasource,
        "data_connector_name": "staging",
        "data_asset_name": dataset,
        "batch_identifiers": {"window": window},
    }
    meta["batch_markers"] = {"ge_load_time": run_time.strftime("%Y%m%dT%H%M%S.%fZ")}
    meta.pop("batch_parameters", None)
    validation = ExpectationSuiteValidationResult(**{**result, "meta": meta, "suite_name": suite_name})
    key = ValidationResultIdentifier(
        expectation_suite_identifier=ExpectationSuiteIdentifier(name=suite_name),
        run_id=run,
        batch_identifier=batch,
    )
    context.validation_results_store.set(key, validation)
    suite_key = ExpectationSuiteIdentifier(name=suite_name)
    context.build_data_docs(site_names=[SITE_NAME], resource_identifiers=[key, suite_key])  # type: ignore[arg-type]
    _copy_assets(base / SITE_DIR)
    stored = base / STORES_DIR / "validations" / Path(*key.to_tuple()[:-1]) / f"{key.to_tuple()[-1]}.json"
    page = base / SITE_DIR / "validations" / Path(*key.to_tuple()[:-1]) / f"{key.to_tuple()[-1]}.html"
    log.info("data docs of %s rebuilt: %s (and the index)", dataset, page)
    return stored, page


def path_safe(text: str) -> str:
    """``text`` usable as one folder name of GX's stores (an Airflow run id may hold ``/`` or markup)."""
    safe = re.sub(r"[^A-Za-z0-9_.:+=@-]", "_", text).strip(".") or "_"
    return safe[:150]


REMOTE_ASSET = re.compile(r"url\(['\"]?https?://[^)]*\)")


def _copy_assets(site: Path) -> None:
    """bulksync's stylesheet and the vendored Bootstrap / Font Awesome into ``static/bulksync``.

    GX's own stylesheet (copied by the site builder) points its dark-mode logo at an S3 bucket: that
    ``url()`` is replaced by the logo the site already has, so nothing is fetched from the network.
    """
    target = site / "static" / "bulksync"
    shutil.copytree(STATIC, target, dirs_exist_ok=True)
    for css in (site / "static" / "styles").glob("*.css"):
        text = css.read_text(encoding="utf-8")
        local = REMOTE_ASSET.sub("url('../images/logo-long.png')", text)
        if local != text:
            css.write_text(local, encoding="utf-8")
