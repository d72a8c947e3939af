"""Alert messages for Slack, Microsoft Teams and generic JSON webhooks, and their delivery.

An alert names the pipeline, dataset and run, says what went wrong in one line plus details, and
links to the pipeline's data-quality report and the task log. Delivery never fails the data task:
:func:`send_alert` retries transient errors, then logs and returns the connections it could not reach.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast, get_args

from pydantic import BaseModel, Field

from bulksync import scrub
from bulksync.errors import BulksyncError, SourceConnectionError
from bulksync.hooks.webhook import Flavor, WebhookHook, WebhookResponse
from bulksync.quality.model import RunRecord
from bulksync.spec.models import AlertEvent, AlertsSpec

log = logging.getLogger(__name__)

EVENTS: tuple[AlertEvent, ...] = get_args(AlertEvent)
TITLES: dict[str, str] = {
    "failed": "Failed",
    "quarantined": "Rows quarantined",
    "warn": "Quality warning",
    "mismatch": "Reconciliation mismatch",
    "retry": "Failed, retrying",
    "late": "Not finished in time",
}
SLACK_EMOJI: dict[str, str] = {
    "failed": ":red_circle:",
    "quarantined": ":large_orange_circle:",
    "warn": ":large_yellow_circle:",
    "mismatch": ":warning:",
    "retry": ":large_yellow_circle:",
    "late": ":hourglass:",
}
TEAMS_COLORS: dict[str, str] = {
    "failed": "D13438",
    "quarantined": "F7630C",
    "warn": "FFB900",
    "mismatch": "F7630C",
    "retry": "FFB900",
    "late": "F7630C",
}
MAX_DETAILS = 10  # lines shown in Slack / Teams; the report has all of them
MAX_DETAIL_CHARS = 300


class Alert(BaseModel):
    """What one alert says (also the body posted to ``generic`` webhooks).

    Attributes:
        event: ``failed``, ``quarantined``, ``warn`` or ``mismatch``.
        summary: one line saying what went wrong, with the numbers.
        details: failed expectations, reconciliation problems, the error.
        report_url: the pipeline's data-quality report page.
        log_url: the task instance's log in the Airflow UI, when known.
        retries_left: how many more tries Airflow will make (None when unknown).
    """

    event: AlertEvent
    tenant: str
    pipeline: str
    dataset: str
    run_id: str
    interval: str
    summary: str
    details: list[str] = Field(default_factory=list)
    report_url: str
    log_url: str | None = None
    retries_left: int | None = None

    @property
    def headline(self) -> str:
        """``Failed: acme/nightly · accounts``."""
        return f"{TITLES[self.event]}: {self.tenant}/{self.pipeline} · {self.dataset}"

    @classmethod
    def from_run_record(
        cls,
        record: RunRecord,
        event: str,
        report_url: str,
        log_url: str | None = None,
        *,
        retries_left: int | None = None,
    ) -> Alert:
        """The alert of ``event`` for one dataset's run.

        Args:
            record: the run record written by the quality gate / reconciliation.
            event: ``failed``, ``quarantined``, ``warn`` or ``mismatch``.
            report_url: link to the pipeline's data-quality report (see :func:`report_url`).
            log_url: link to the task log (see :func:`task_log_url`).
            retries_left: tries Airflow still has for the task (see :func:`retries_left`).

        Raises:
            ValueError: ``event`` is not an alert event.
        """
        if event not in EVENTS:
            raise ValueError(f"unknown alert event {event!r}; use one of {', '.join(EVENTS)}")
        summary, details = _describe(record, event)
        return cls(
            event=cast(AlertEvent, event),
            tenant=record.tenant,
            pipeline=record.pipeline,
            dataset=record.dataset,
            run_id=record.run_id,
            interval=record.interval,
            summary=summary,
            details=details,
            report_url=report_url,
            log_url=log_url,
            retries_left=retries_left,
        )


def _describe(record: RunRecord, event: str) -> tuple[str, list[str]]:
    """The summary line and detail lines of a run record for an event."""
    q, r = record.quality, record.reconciliation
    failed = [f"[{e.severity}] {e.describe()}" for e in q.failed] if q else []
    problems = list(r.problems) if r is not None and not r.ok else []
    error_lines = [line.strip() for line in (record.error or "").strip().splitlines() if line.strip()]
    summary = ""
    if event == "failed":
        if q is not None and q.status == "failed":
            summary = (
                f"quality gate failed: {len(q.failed)} of {len(q.expectations)} expectations of suite "
                f"{q.suite!r} failed on {q.rows_checked:,} rows"
            )
        elif error_lines:
            summary = f"run failed: {error_lines.pop(0)}"
        else:
            summary = "run failed"
    elif event == "quarantined" and q is not None:
        summary = (
            f"{q.rows_quarantined:,} of {q.rows_checked:,} rows quarantined by suite {q.suite!r} "
            f"({len(q.failed)} of {len(q.expectations)} expectations failed)"
        )
    elif event == "warn" and q is not None:
        summary = (
            f"quality warnings: {len(q.failed)} of {len(q.expectations)} expectations of suite {q.suite!r} "
            f"failed on {q.rows_checked:,} rows"
        )
    elif event == "mismatch" and r is not None:
        source = f"{r.source_count:,}" if r.source_count is not None else "unknown"
        summary = (
            f"reconciliation mismatch: source {source}, staged {r.staged:,}, loaded {r.loaded:,}, "
            f"quarantined {r.quarantined:,}, rejected {r.rejected:,}"
        )
    if not summary:
        summary = f"{TITLES[event].lower()} (status {record.status})"
    ordered = [*problems, *failed] if event == "mismatch" else [*failed, *problems]
    details = list(dict.fromkeys([*ordered, *error_lines]))
    return summary, details


# --- rendering -------------------------------------------------------------------------------------------


def payload(alert: Alert, flavor: Flavor | str) -> dict[str, Any]:
    """The JSON body of ``alert`` for a webhook of the given flavor.

    Args:
        alert: the alert.
        flavor: ``slack`` (``text`` + Block Kit sections), ``teams`` (an Office 365 connector
            MessageCard) or ``generic`` (the alert's own JSON).

    Raises:
        ValueError: unknown flavor.
    """
    renderers: dict[str, Callable[[Alert], dict[str, Any]]] = {
        "slack": _slack,
        "teams": _teams,
        "generic": lambda a: a.model_dump(mode="json"),
    }
    if flavor not in renderers:
        raise ValueError(f"unknown webhook flavor {flavor!r}; use one of {', '.join(renderers)}")
    return renderers[flavor](alert)


def _shown_details(alert: Alert) -> list[str]:
    lines = [d if len(d) <= MAX_DETAIL_CHARS else d[: MAX_DETAIL_CHARS - 1] + "…" for d in alert.details[:MAX_DETAILS]]
    if len(alert.details) > MAX_DETAILS:
        lines.append(f"… and {len(alert.details) - MAX_DETAILS} more in the report")
    return lines


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _slack(alert: Alert) -> dict[str, Any]:
    esc = _slack_escape
    emoji = SLACK_EMOJI[alert.event]
    fields = [
        {"type": "mrkdwn", "text": f"*Run*\n{esc(alert.run_id)}"},
        {"type": "mrkdwn", "text": f"*Interval*\n{esc(alert.interval)}"},
    ]
    if alert.retries_left is not None:
        fields.append({"type": "mrkdwn", "text": f"*Retries left*\n{alert.retries_left}"})
    blocks: list[dict[str, Any]] = [
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": f"{emoji} *{esc(alert.headline)}*\n{esc(alert.summary)}"},
        },
        {"type": "section", "fields": fields},
    ]
    if alert.details:
        text = "\n".join(f"• {esc(line)}" for line in _shown_details(alert))
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text}})
    links = [f"<{alert.report_url}|Data-quality report>"]
    if alert.log_url:
        links.append(f"<{alert.log_url}|Task log>")
    blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": "  ·  ".join(links)}})
    return {"text": f"{emoji} {alert.headline}: {alert.summary}", "blocks": blocks}


def _teams(alert: Alert) -> dict[str, Any]:
    facts = [
        {"name": "Tenant", "value": alert.tenant},
        {"name": "Pipeline", "value": alert.pipeline},
        {"name": "Dataset", "value": alert.dataset},
        {"name": "Run", "value": alert.run_id},
        {"name": "Interval", "value": alert.interval},
    ]
    if alert.retries_left is not None:
        facts.append({"name": "Retries left", "value": str(alert.retries_left)})
    sections: list[dict[str, Any]] = [{"activityTitle": alert.summary, "facts": facts, "markdown": True}]
    if alert.details:
        text = "\n\n".join(f"- {line}" for line in _shown_details(alert))
        sections.append({"title": "Details", "text": text, "markdown": True})
    actions = [_open_uri("Open data-quality report", alert.report_url)]
    if alert.log_url:
        actions.append(_open_uri("Open task log", alert.log_url))
    return {
        "@type": "MessageCard",
        "@context": "https://schema.org/extensions",
        "summary": alert.headline,
        "themeColor": TEAMS_COLORS[alert.event],
        "title": alert.headline,
        "sections": sections,
        "potentialAction": actions,
    }


def _open_uri(name: str, uri: str) -> dict[str, Any]:
    return {"@type": "OpenUri", "name": name, "targets": [{"os": "default", "uri": uri}]}


# --- delivery --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    """How hard :func:`send_alert` tries one webhook.

    Waits grow exponentially (``initial * 2**n`` up to ``max_wait``, plus up to ``jitter`` seconds at
    random); a ``Retry-After`` header replaces the computed wait. No retry starts once it would end
    past ``total`` seconds after the first attempt.

    Attributes:
        attempts: tries per webhook, the first included.
        initial: first wait in seconds.
        max_wait: longest computed wait in seconds.
        jitter: random seconds added to each computed wait.
        total: time budget per webhook in seconds.
        timeout: connect and read timeout of one request in seconds.
        sleep: how to wait (tests pass a recorder).
    """

    attempts: int = 6
    initial: float = 1.0
    max_wait: float = 20.0
    jitter: float = 1.0
    total: float = 60.0
    timeout: float = 10.0
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)


DEFAULT_RETRY = RetryPolicy()


class _RetryableStatus(Exception):
    """A 429 or 5xx answer: worth another try."""

    def __init__(self, response: WebhookResponse) -> None:
        super().__init__(f"HTTP {response.status}")
        self.response = response


def send_alert(alert: Alert, conn_ids: list[str], *, retry: RetryPolicy | None = None) -> list[str]:
    """Post ``alert`` to every webhook connection; never raises for a webhook that fails.

    Each connection gets the message in its flavor (see :class:`~bulksync.hooks.webhook.WebhookHook`).
    Connection errors, timeouts, 429 and 5xx answers are retried with exponential backoff and
    jitter, honouring ``Retry-After``; other answers are final. Failures are logged as warnings
    naming the connection id and host, never the URL.

    Args:
        alert: the alert to send.
        conn_ids: Airflow connection ids of the webhooks.
        retry: retry policy (defaults to :data:`DEFAULT_RETRY`: 6 tries within about 60 s, 10 s timeout).

    Returns:
        The connection ids that did not accept the alert (empty when all did).
    """
    policy = retry or DEFAULT_RETRY
    failed: list[str] = []
    for conn_id in conn_ids:
        hook = WebhookHook(conn_id)
        try:
            _deliver(hook, alert, policy)
        except Exception as exc:  # noqa: BLE001 - an alert failure must never fail the data task
            failed.append(conn_id)
            log.warning(
                "alert %s of %s/%s.%s (run %s) not delivered to webhook %s: %s",
                alert.event,
                alert.tenant,
                alert.pipeline,
                alert.dataset,
                alert.run_id,
                _safe_describe(hook),
                _safe_reason(hook, exc),
            )
    sent = len(conn_ids) - len(failed)
    where = f"{alert.tenant}/{alert.pipeline}.{alert.dataset}"
    log.info("alert %s of %s: sent to %d of %d webhooks", alert.event, where, sent, len(conn_ids))
    return failed


def _deliver(hook: WebhookHook, alert: Alert, policy: RetryPolicy) -> None:
    """Post to one webhook with retries; raise with a URL-free message when it does not accept it."""
    import tenacity

    body = scrub.SCRUBBER.scrub_value(payload(alert, hook.flavor))  # no secret of any connection leaves
    backoff = tenacity.wait_exponential(multiplier=policy.initial, max=policy.max_wait) + tenacity.wait_random(
        0, policy.jitter
    )

    def wait(state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _RetryableStatus) and exc.response.retry_after is not None:
            return exc.response.retry_after
        return float(backoff(state))

    def before_sleep(state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        wait_s = state.next_action.sleep if state.next_action else 0.0
        log.info(
            "webhook %s: try %d of %d failed (%s), retrying in %.1f s",
            hook.describe(),
            state.attempt_number,
            policy.attempts,
            _safe_reason(hook, exc) if exc else "?",
            wait_s,
        )

    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_attempt(policy.attempts) | tenacity.stop_before_delay(policy.total),
        wait=wait,
        retry=tenacity.retry_if_exception_type((SourceConnectionError, _RetryableStatus)),
        sleep=policy.sleep,
        before_sleep=before_sleep,
        reraise=True,
    )
    response: WebhookResponse | None = None
    for attempt in retrying:
        with attempt:
            response = hook.post(body, timeout=policy.timeout)
            if response.status == 429 or response.status >= 500:
                raise _RetryableStatus(response)
        tries = attempt.retry_state.attempt_number
    assert response is not None
    if not response.ok:
        raise _Rejected(f"HTTP {response.status} {response.body.strip()[:200]}".rstrip())
    log.info("alert %s sent to webhook %s as %s (%d tries)", alert.event, hook.describe(), hook.flavor, tries)


class _Rejected(Exception):
    """The webhook answered with a final error (4xx other than 429)."""


def _safe_describe(hook: WebhookHook) -> str:
    try:
        return hook.describe()
    except Exception:  # noqa: BLE001
        return hook.conn_id


def _safe_reason(hook: WebhookHook, exc: BaseException) -> str:
    """Why a delivery failed, without the URL or its secret parts."""
    if isinstance(exc, _RetryableStatus):
        body = exc.response.body.strip()[:200]
        reason = f"HTTP {exc.response.status}" + (f" {body}" if body else "")
    elif isinstance(exc, BulksyncError | _Rejected):
        reason = str(exc)
    else:
        reason = f"{type(exc).__name__}: {exc}"
    try:
        return hook.scrub(reason)
    except Exception:  # noqa: BLE001 - connection unusable: keep only the type of an unexpected error
        return scrub.SCRUBBER.scrub(reason) if isinstance(exc, BulksyncError) else type(exc).__name__


# --- context helpers -------------------------------------------------------------------------------------


def should_alert(alerts_spec: AlertsSpec | None, event: str | None) -> bool:
    """True when the spec has webhooks and subscribes to ``event``.

    Args:
        alerts_spec: the pipeline's ``alerts:`` block.
        event: ``failed``, ``quarantined``, ``warn`` or ``mismatch`` (None: nothing happened).
    """
    return bool(alerts_spec and event and alerts_spec.webhooks and event in alerts_spec.on)


def report_url(tenant: str, pipeline: str) -> str:
    """The pipeline's data-quality report page in the Airflow UI.

    The base is ``[api] base_url`` (``AIRFLOW__API__BASE_URL``), default ``http://localhost:8080``.

    Args:
        tenant: tenant slug.
        pipeline: pipeline slug.
    """
    from airflow.sdk import conf

    base = conf.get("api", "base_url", fallback="http://localhost:8080") or "http://localhost:8080"
    return f"{base.rstrip('/')}/bulksync/reports/{tenant}/{pipeline}"


def _task_instance(context: Any) -> Any:
    if not isinstance(context, Mapping):
        return None
    return context.get("ti") or context.get("task_instance")


def task_log_url(context: Any) -> str | None:
    """The task instance's log page in the Airflow UI, from a task context (None when unknown).

    Args:
        context: the Airflow task context (``get_current_context()`` or a callback's context).
    """
    try:
        url = getattr(_task_instance(context), "log_url", None)
    except Exception:  # noqa: BLE001 - a missing config or TI field must not stop the alert
        return None
    return url if isinstance(url, str) and url else None


def retries_left(context: Any) -> int | None:
    """How many more tries Airflow will make after the current one (None when unknown).

    Only meaningful for transient failures: a terminal error fails the task without retries.

    Args:
        context: the Airflow task context.
    """
    ti = _task_instance(context)
    max_tries, try_number = getattr(ti, "max_tries", None), getattr(ti, "try_number", None)
    if not isinstance(max_tries, int) or not isinstance(try_number, int):
        return None
    return max(max_tries - try_number + 1, 0)
