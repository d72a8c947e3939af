"""Alerts from Airflow callbacks: failed tasks, retries and runs that miss their deadline.

They post to the pipeline's webhooks (``alerts.webhooks``) through
:func:`bulksync.notify.webhook.send_alert`, like the quality gate's alerts, and name the pipeline,
dataset, interval, error, task log and how many tries are left.

- ``on_failure_callback`` of every task: event ``failed`` (when ``alerts.on`` has it). Failures the
  quality gate or reconciliation already announced (``QualityGateError``, reconciliation mismatch)
  are not announced twice.
- ``on_retry_callback``: event ``retry`` (opt-in: add ``retry`` to ``alerts.on``).
- ``alerts.finish_within_minutes``: an Airflow ``DeadlineAlert`` measured from the moment the run
  was queued; a run still unfinished then posts ``late`` (always, when the deadline is set).

Callbacks never raise: a failing alert must not hide the task's own error.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from typing import Any

from bulksync.spec.models import PipelineSpec

log = logging.getLogger(__name__)

ALREADY_ANNOUNCED = ("QualityGateError:", "ReconciliationError:", "TerminalError: reconciliation of")
MAX_ERROR_LINES = 20


def _spec_of(task: Any) -> PipelineSpec | None:
    raw = getattr(task, "spec", None)
    return PipelineSpec.model_validate(raw) if isinstance(raw, dict) else None


def _interval(context: Mapping[str, Any]) -> str:
    start, end = context.get("data_interval_start"), context.get("data_interval_end")
    if start is None and end is None:
        return "full"
    from bulksync.staging.partition import Window

    return Window(start, end).key


def _error_lines(context: Mapping[str, Any]) -> list[str]:
    exc = context.get("exception")
    if exc is None:
        return []
    text = str(exc)
    name = type(exc).__name__ if isinstance(exc, BaseException) else "error"
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()] or [name]
    if isinstance(exc, BaseException) and not lines[0].startswith(name) and name != "AirflowFailException":
        lines[0] = f"{name}: {lines[0]}"
    return lines[:MAX_ERROR_LINES]


def task_alert(context: Mapping[str, Any], event: str) -> Any:
    """The alert of a failed (or retried) task from its Airflow context; None outside bulksync tasks.

    Args:
        context: the task context Airflow passes to ``on_failure_callback`` / ``on_retry_callback``.
        event: ``failed`` or ``retry``.
    """
    from bulksync.notify.webhook import Alert, report_url, retries_left, task_log_url

    task = context.get("task")
    spec = _spec_of(task)
    if spec is None:
        return None
    ti = context.get("ti") or context.get("task_instance")
    task_id = str(getattr(ti, "task_id", None) or getattr(task, "task_id", "?"))
    dataset = str(getattr(task, "dataset", None) or task_id.split(".")[0])
    stage = task_id.rsplit(".", 1)[-1]
    errors = _error_lines(context)
    left = 0 if event == "failed" else retries_left(context)
    if event == "failed":
        what = "failed"
    else:
        what = "failed, retrying" if left is None else f"failed, {left} {'retry' if left == 1 else 'retries'} left"
    summary = f"{stage} {what}" + (f": {errors[0]}" if errors else "")
    return Alert(
        event=event,  # type: ignore[arg-type]
        tenant=spec.tenant,
        pipeline=spec.pipeline,
        dataset=dataset,
        run_id=str(context.get("run_id", "")),
        interval=_interval(context),
        summary=summary,
        details=errors[1:],
        report_url=report_url(spec.tenant, spec.pipeline),
        log_url=task_log_url(context),
        retries_left=left,
    )


def _send(spec_alerts: Any, alert: Any) -> None:
    from bulksync.notify.webhook import send_alert

    failed = send_alert(alert, list(spec_alerts.webhooks))
    if failed:
        log.warning("alert %s of %s/%s not delivered to %s", alert.event, alert.tenant, alert.pipeline, failed)


def on_task_failure(context: Any) -> None:
    """``on_failure_callback``: post a ``failed`` alert with the error, interval and log link."""
    _on_task_event(context, "failed")


def on_task_retry(context: Any) -> None:
    """``on_retry_callback``: post a ``retry`` alert saying how many tries are left."""
    _on_task_event(context, "retry")


def _on_task_event(context: Any, event: str) -> None:
    try:
        spec = _spec_of(context.get("task"))
        if spec is None or event not in spec.alerts.on or not spec.alerts.webhooks:
            return
        errors = _error_lines(context)
        if errors and errors[0].startswith(ALREADY_ANNOUNCED):
            log.info("%s already announced by the stage itself; no second alert", errors[0].split(":")[0])
            return
        alert = task_alert(context, event)
        if alert is not None:
            _send(spec.alerts, alert)
    except Exception as exc:  # noqa: BLE001 - the task's own error matters more than its alert
        log.warning("could not send the %s alert: %s", event, exc)


def deadline_alert(spec: PipelineSpec) -> Any:
    """The pipeline's ``DeadlineAlert`` (None without ``alerts.finish_within_minutes``).

    Measured from the moment the run was queued, so a backfill's old intervals are not late at birth.
    The callback runs on the executor (LocalExecutor, CeleryExecutor) with the pipeline's alert
    settings as arguments.
    """
    minutes = spec.alerts.finish_within_minutes
    if minutes is None:
        return None
    from airflow.sdk.definitions.callback import SyncCallback
    from airflow.sdk.definitions.deadline import DeadlineAlert, DeadlineReference

    return DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=dt.timedelta(minutes=minutes),
        callback=SyncCallback(
            "bulksync.factory.callbacks.on_deadline_missed",
            kwargs={
                "tenant": spec.tenant,
                "pipeline": spec.pipeline,
                "webhooks": list(spec.alerts.webhooks),
                "minutes": minutes,
            },
        ),
        name=f"{spec.dag_id} finishes within {minutes:g} minutes",
    )


def late_alert(tenant: str, pipeline: str, minutes: float, context: Mapping[str, Any]) -> Any:
    """The ``late`` alert of a run that missed its deadline.

    Args:
        tenant: tenant slug.
        pipeline: pipeline slug.
        minutes: the deadline (``alerts.finish_within_minutes``).
        context: what Airflow passes to deadline callbacks: ``dag_run`` (the run as the REST API shows
            it) and ``deadline`` (``deadline_time``).
    """
    from bulksync.notify.webhook import Alert, report_url

    run = dict(context.get("dag_run") or {})
    start, end = run.get("data_interval_start"), run.get("data_interval_end")
    from bulksync.staging.partition import Window

    window = Window(_parse(start), _parse(end)) if start or end else None
    deadline = (context.get("deadline") or {}).get("deadline_time")
    run_id = str(run.get("dag_run_id") or run.get("run_id") or "")
    base = report_url(tenant, pipeline).split("/bulksync/")[0]
    return Alert(
        event="late",
        tenant=tenant,
        pipeline=pipeline,
        dataset="(all datasets)",
        run_id=run_id,
        interval=window.key if window else "full",
        summary=(
            f"run not finished {minutes:g} minutes after it was queued (deadline {deadline}); "
            f"state {run.get('state', 'unknown')}"
        ),
        details=[f"queued at {run.get('queued_at')}", f"started at {run.get('start_date')}"],
        report_url=report_url(tenant, pipeline),
        log_url=f"{base}/dags/{run.get('dag_id', f'{tenant}__{pipeline}')}/runs/{run_id}" if run_id else None,
        retries_left=None,
    )


def _parse(value: Any) -> dt.datetime | None:
    if value is None or isinstance(value, dt.datetime):
        return value
    return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def on_deadline_missed(
    tenant: str, pipeline: str, webhooks: list[str], minutes: float, context: Mapping[str, Any] | None = None
) -> None:
    """Deadline callback: post a ``late`` alert to the pipeline's webhooks; never raises."""
    from bulksync.notify.webhook import send_alert

    try:
        alert = late_alert(tenant, pipeline, minutes, context or {})
        log.warning("%s/%s run %s missed its deadline of %g minutes", tenant, pipeline, alert.run_id, minutes)
        if webhooks:
            send_alert(alert, webhooks)
    except Exception as exc:  # noqa: BLE001
        log.warning("could not send the late alert of %s/%s: %s", tenant, pipeline, exc)
