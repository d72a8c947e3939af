"""Publishing a run's outcome: the run record file, the audit tables, the report page, alerts."""

from __future__ import annotations

import logging
import os
from typing import Any

from bulksync import scrub
from bulksync.quality.model import RunRecord, run_key
from bulksync.settings import reports_root
from bulksync.spec.models import DatasetSpec, PipelineSpec

log = logging.getLogger(__name__)


def scrubbed(record: RunRecord) -> RunRecord:
    """The run record with every registered secret removed from its texts (errors, problems, samples)."""
    if not scrub.SCRUBBER:
        return record
    return RunRecord.model_validate(scrub.SCRUBBER.scrub_value(record.model_dump(mode="json")))


def write_run_record(record: RunRecord) -> str:
    """Write ``runs/{dataset}/{finished}__{run}.json`` under the reports root; return its path.

    A retry of the same run replaces the record of its earlier try. Secrets are scrubbed first.
    """
    record = scrubbed(record)
    folder = reports_root() / record.tenant / record.pipeline / "runs" / record.dataset
    folder.mkdir(parents=True, exist_ok=True)
    key = run_key(record.run_id)
    for old in folder.glob(f"*__{key}.json"):
        old.unlink()
    path = folder / f"{record.finished_at:%Y%m%dT%H%M%S}__{key}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(record.model_dump_json(indent=2), encoding="utf-8")
    os.replace(tmp, path)
    return str(path)


def publish(
    spec: PipelineSpec,
    ds: DatasetSpec,
    record: RunRecord,
    *,
    event: str | None = None,
    context: Any = None,
    audit: bool = True,
) -> None:
    """Record a run everywhere a person looks: run file, audit tables, report page, alert webhooks.

    Every text stored or sent is scrubbed of the secrets :mod:`bulksync.scrub` knows.
    """
    record = scrubbed(record)
    write_run_record(record)
    # a lake has no audit tables (the run record file holds it); Salesforce write-backs keep theirs in
    # the SQL database named by the target's audit_conn_id, when it names one
    audit_conn = getattr(ds.target, "audit_conn_id", None) if ds.target.kind == "salesforce" else ds.target.conn_id
    if audit and ds.target.kind != "azure_lake" and audit_conn:
        from bulksync.quality.audit import record_run

        record_run(audit_conn, record)
    try:
        from bulksync.quality.report import write_pipeline_report, write_reports_index

        write_pipeline_report(spec.tenant, spec.pipeline)
        write_reports_index()
    except Exception as exc:  # noqa: BLE001 - the report is rebuilt on the next run; never fail the data for it
        log.warning("could not rebuild the data-quality report of %s: %s", spec.dag_id, exc)
    if event:
        notify(spec, record, event, context)


def notify(spec: PipelineSpec, record: RunRecord, event: str, context: Any = None) -> None:
    """Post an alert to the pipeline's webhooks when the spec asks for this event; never raises."""
    if event not in spec.alerts.on or not spec.alerts.webhooks:
        return
    from bulksync.notify.webhook import Alert, report_url, send_alert, task_log_url

    log_url = task_log_url(context) if context is not None else None
    alert = Alert.from_run_record(record, event, report_url(spec.tenant, spec.pipeline), log_url)
    failed = send_alert(alert, spec.alerts.webhooks)
    if failed:
        log.warning("alert %s of %s.%s could not be delivered to %s", event, spec.dag_id, record.dataset, failed)
