"""Alert webhooks: payloads, delivery with retries, secrets kept out of logs.

The receiver is a real HTTP server on 127.0.0.1 (``http.server`` in a thread) that records every
request and answers as scripted. It stands in for Slack and Microsoft Teams incoming webhooks, which
cannot be reached from here: the tests check the exact JSON we post and how we react to the answers
those services give (200, 429 with ``Retry-After``, 5xx, 4xx), not that Slack or Teams render it.
Connections are defined the way users define them, as ``AIRFLOW_CONN_*`` environment variables.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from bulksync.errors import ConfigurationError, SourceConnectionError
from bulksync.hooks.webhook import WebhookHook, guess_flavor, parse_retry_after
from bulksync.notify.webhook import (
    Alert,
    RetryPolicy,
    payload,
    report_url,
    retries_left,
    send_alert,
    should_alert,
    task_log_url,
)
from bulksync.quality.model import ExpectationOutcome, QualityResult, Reconciliation, RunRecord
from bulksync.spec.models import AlertsSpec

TOKEN = "XsecretTOKEN0123456789abcdef"  # the secret part of a webhook URL
SLACK_PATH = f"/services/T0000/B0000/{TOKEN}"
TEAMS_PATH = f"/webhookb2/1111-2222@3333/IncomingWebhook/{TOKEN}/4444"
REPORT = "https://airflow.example.com/bulksync/reports/acme/nightly"
LOG = "https://airflow.example.com/dags/acme__nightly/runs/scheduled__2026-01-01T02%3A00%3A00%2B00%3A00/tasks/accounts.validate?try_number=1"


# --- the receiver ----------------------------------------------------------------------------------------


@dataclass
class Received:
    """One request the receiver got."""

    method: str
    path: str
    content_type: str
    body: Any


@dataclass
class Receiver:
    """A scripted webhook endpoint: answers per path are consumed in order, then 200 ``ok``."""

    port: int = 0
    requests: list[Received] = field(default_factory=list)
    answers: dict[str, list[tuple[int, dict[str, str], str]]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def script(self, path: str, *answers: tuple[int, dict[str, str], str]) -> None:
        self.answers.setdefault(path, []).extend(answers)

    def next_answer(self, path: str) -> tuple[int, dict[str, str], str]:
        with self.lock:
            queue = self.answers.get(path)
            return queue.pop(0) if queue else (200, {}, "ok")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """The webhook stand-in, on a free port of 127.0.0.1."""
    rec = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with rec.lock:
                rec.requests.append(
                    Received("POST", self.path, self.headers.get("Content-Type", ""), json.loads(raw or b"null"))
                )
            status, headers, text = rec.next_answer(self.path.split("?")[0])
            data = text.encode()
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # keep the test output quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    rec.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield rec
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture
def airflow_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """An isolated AIRFLOW_HOME; connections are then added as AIRFLOW_CONN_* variables."""
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "airflow"))
    return monkeypatch


@pytest.fixture
def slack(receiver: Receiver, airflow_env: pytest.MonkeyPatch) -> str:
    """Connection ``ops_slack``: a URI, as Slack shows the webhook URL (flavor given in the query)."""
    airflow_env.setenv("AIRFLOW_CONN_OPS_SLACK", receiver.url(SLACK_PATH) + "?flavor=slack")
    return "ops_slack"


@pytest.fixture
def teams(receiver: Receiver, airflow_env: pytest.MonkeyPatch) -> str:
    """Connection ``ops_teams``: the JSON form with the full URL in host."""
    conn = {"conn_type": "http", "host": receiver.url(TEAMS_PATH), "extra": {"flavor": "teams"}}
    airflow_env.setenv("AIRFLOW_CONN_OPS_TEAMS", json.dumps(conn))
    return "ops_teams"


class Sleeps(list[float]):
    """Records the waits instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def fast(attempts: int = 4, total: float = 60.0) -> tuple[RetryPolicy, Sleeps]:
    sleeps = Sleeps()
    return RetryPolicy(attempts=attempts, initial=0.5, max_wait=4.0, jitter=0.0, total=total, sleep=sleeps), sleeps


# --- the run records -------------------------------------------------------------------------------------


def quality(status: str, on_failure: str = "fail", quarantined: int = 0, severity: str = "error") -> QualityResult:
    return QualityResult(
        suite="accounts",
        on_failure=on_failure,  # type: ignore[arg-type]
        status=status,  # type: ignore[arg-type]
        rows_checked=1000,
        rows_quarantined=quarantined,
        expectations=[
            ExpectationOutcome(
                expectation="expect_column_values_to_not_be_null",
                column="email",
                severity=severity,  # type: ignore[arg-type]
                success=False,
                row_level=True,
                unexpected_count=3,
                unexpected_percent=0.3,
                samples=[None, None, None],
            ),
            ExpectationOutcome(
                expectation="expect_column_values_to_be_unique",
                column="account_id",
                severity=severity,  # type: ignore[arg-type]
                success=False,
                row_level=True,
                unexpected_count=2,
                unexpected_percent=0.2,
                samples=["A-17", "A-17"],
            ),
            ExpectationOutcome(
                expectation="expect_table_row_count_to_be_between", success=True, row_level=False, observed_value=1000
            ),
        ],
    )


def record(**changes: Any) -> RunRecord:
    base: dict[str, Any] = {
        "tenant": "acme",
        "pipeline": "nightly",
        "dataset": "accounts",
        "run_id": "scheduled__2026-01-01T02:00:00+00:00",
        "interval": "20260101T020000Z_20260102T020000Z",
        "window_start": dt.datetime(2026, 1, 1, 2, tzinfo=dt.UTC),
        "window_end": dt.datetime(2026, 1, 2, 2, tzinfo=dt.UTC),
        "status": "failed",
        "quality": quality("failed"),
        "finished_at": dt.datetime(2026, 1, 2, 2, 5, tzinfo=dt.UTC),
    }
    return RunRecord(**{**base, **changes})


NULL_EMAILS = (
    "[error] expect_column_values_to_not_be_null on column 'email': 3 unexpected (0.30%), e.g. [None, None, None]"
)
DUP_IDS = (
    "[error] expect_column_values_to_be_unique on column 'account_id': 2 unexpected (0.20%), e.g. ['A-17', 'A-17']"
)


def failed_alert(**changes: Any) -> Alert:
    return Alert.from_run_record(record(**changes), "failed", REPORT, LOG, retries_left=0)


# --- payloads, posted for real ---------------------------------------------------------------------------


def test_slack_message_as_posted(receiver: Receiver, slack: str) -> None:
    assert send_alert(failed_alert(), [slack]) == []

    [req] = receiver.requests
    assert (req.method, req.path, req.content_type) == ("POST", SLACK_PATH, "application/json")
    assert req.body == {
        "text": ":red_circle: Failed: acme/nightly · accounts: quality gate failed: 2 of 3 expectations of suite "
        "'accounts' failed on 1,000 rows",
        "blocks": [
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": ":red_circle: *Failed: acme/nightly · accounts*\n"
                    "quality gate failed: 2 of 3 expectations of suite 'accounts' failed on 1,000 rows",
                },
            },
            {
                "type": "section",
                "fields": [
                    {"type": "mrkdwn", "text": "*Run*\nscheduled__2026-01-01T02:00:00+00:00"},
                    {"type": "mrkdwn", "text": "*Interval*\n20260101T020000Z_20260102T020000Z"},
                    {"type": "mrkdwn", "text": "*Retries left*\n0"},
                ],
            },
            {"type": "section", "text": {"type": "mrkdwn", "text": f"• {NULL_EMAILS}\n• {DUP_IDS}"}},
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": f"<{REPORT}|Data-quality report>  ·  <{LOG}|Task log>"},
            },
        ],
    }


def test_teams_message_card_as_posted(receiver: Receiver, teams: str) -> None:
    rec = record(
        status="quarantined",
        quality=quality("quarantined", on_failure="quarantine", quarantined=5),
        reconciliation=Reconciliation(source_count=1000, staged=1000, quarantined=5, rejected=0, loaded=995, ok=True),
    )
    alert = Alert.from_run_record(rec, "quarantined", REPORT, LOG)
    assert send_alert(alert, [teams]) == []

    [req] = receiver.requests
    assert (req.path, req.content_type) == (TEAMS_PATH, "application/json")
    assert req.body == {
        "@type": "MessageCard",
        "@context": "https://schema.org/extensions",
        "summary": "Rows quarantined: acme/nightly · accounts",
        "themeColor": "F7630C",
        "title": "Rows quarantined: acme/nightly · accounts",
        "sections": [
            {
                "activityTitle": "5 of 1,000 rows quarantined by suite 'accounts' (2 of 3 expectations failed)",
                "facts": [
                    {"name": "Tenant", "value": "acme"},
                    {"name": "Pipeline", "value": "nightly"},
                    {"name": "Dataset", "value": "accounts"},
                    {"name": "Run", "value": "scheduled__2026-01-01T02:00:00+00:00"},
                    {"name": "Interval", "value": "20260101T020000Z_20260102T020000Z"},
                ],
                "markdown": True,
            },
            {"title": "Details", "text": f"- {NULL_EMAILS}\n\n- {DUP_IDS}", "markdown": True},
        ],
        "potentialAction": [
            {"@type": "OpenUri", "name": "Open data-quality report", "targets": [{"os": "default", "uri": REPORT}]},
            {"@type": "OpenUri", "name": "Open task log", "targets": [{"os": "default", "uri": LOG}]},
        ],
    }


def test_generic_webhook_gets_the_alert_json(receiver: Receiver, airflow_env: pytest.MonkeyPatch) -> None:
    airflow_env.setenv("AIRFLOW_CONN_OPS_JSON", json.dumps({"conn_type": "http", "host": receiver.url("/hook")}))
    rec = record(
        status="success",
        quality=None,
        reconciliation=Reconciliation(
            source_count=1000,
            staged=998,
            quarantined=0,
            rejected=0,
            loaded=998,
            ok=False,
            problems=["source says 1,000 rows but 998 were staged"],
        ),
    )
    alert = Alert.from_run_record(rec, "mismatch", REPORT, None)
    assert send_alert(alert, ["ops_json"]) == []

    assert receiver.requests[0].body == {
        "event": "mismatch",
        "tenant": "acme",
        "pipeline": "nightly",
        "dataset": "accounts",
        "run_id": "scheduled__2026-01-01T02:00:00+00:00",
        "interval": "20260101T020000Z_20260102T020000Z",
        "summary": "reconciliation mismatch: source 1,000, staged 998, loaded 998, quarantined 0, rejected 0",
        "details": ["source says 1,000 rows but 998 were staged"],
        "report_url": REPORT,
        "log_url": None,
        "retries_left": None,
    }


def test_slack_text_is_escaped_and_long_details_are_cut() -> None:
    alert = failed_alert(
        quality=None, error="cannot load <acme> & co\n" + "\n".join(f"line {i}" for i in range(14)), status="failed"
    )
    assert alert.summary == "run failed: cannot load <acme> & co"
    body = payload(alert, "slack")
    assert body["blocks"][0]["text"]["text"].endswith("run failed: cannot load &lt;acme&gt; &amp; co")
    details = body["blocks"][2]["text"]["text"].split("\n")
    assert details[0] == "• line 0"
    assert details[-1] == "• … and 4 more in the report"
    assert len(details) == 11


def test_summaries_per_event() -> None:
    warn = record(status="warn", quality=quality("warn", severity="warn"))
    alert = Alert.from_run_record(warn, "warn", REPORT)
    assert alert.summary == "quality warnings: 2 of 3 expectations of suite 'accounts' failed on 1,000 rows"
    assert alert.details[0].startswith("[warn] expect_column_values_to_not_be_null")
    assert alert.log_url is None
    unknown_source = record(
        reconciliation=Reconciliation(source_count=None, staged=10, quarantined=0, rejected=1, loaded=8, ok=False)
    )
    assert Alert.from_run_record(unknown_source, "mismatch", REPORT).summary == (
        "reconciliation mismatch: source unknown, staged 10, loaded 8, quarantined 0, rejected 1"
    )
    with pytest.raises(ValueError, match="unknown alert event 'exploded'"):
        Alert.from_run_record(record(), "exploded", REPORT)
    with pytest.raises(ValueError, match="unknown webhook flavor"):
        payload(alert, "discord")


# --- delivery: retries and failures ----------------------------------------------------------------------


def test_503_is_retried_then_succeeds(receiver: Receiver, slack: str) -> None:
    receiver.script(SLACK_PATH, (503, {}, "busy"), (503, {}, "busy"))
    policy, sleeps = fast()
    assert send_alert(failed_alert(), [slack], retry=policy) == []
    assert len(receiver.requests) == 3
    assert receiver.requests[0].body == receiver.requests[2].body
    assert sleeps == [0.5, 1.0]  # exponential: initial, then doubled (jitter 0 here)


def test_429_retry_after_is_honoured(receiver: Receiver, teams: str) -> None:
    receiver.script(TEAMS_PATH, (429, {"Retry-After": "7"}, "rate limited"))
    policy, sleeps = fast()
    assert send_alert(failed_alert(), [teams], retry=policy) == []
    assert len(receiver.requests) == 2
    assert sleeps == [7.0]


def test_retry_after_beyond_the_budget_gives_up(
    receiver: Receiver, slack: str, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.script(SLACK_PATH, (429, {"Retry-After": "3600"}, "slow down"))
    policy, sleeps = fast(total=60)
    with caplog.at_level(logging.WARNING):
        assert send_alert(failed_alert(), [slack], retry=policy) == [slack]
    assert len(receiver.requests) == 1
    assert sleeps == []
    assert "HTTP 429 slow down" in caplog.text


def test_permanent_failure_returns_the_conn_id_and_does_not_raise(
    receiver: Receiver, slack: str, teams: str, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.script(SLACK_PATH, *[(500, {}, "internal error")] * 10)
    policy, sleeps = fast(attempts=3)
    with caplog.at_level(logging.INFO):
        failed = send_alert(failed_alert(), [slack, teams], retry=policy)
    assert failed == [slack]
    assert [r.path for r in receiver.requests] == [SLACK_PATH] * 3 + [TEAMS_PATH]
    assert len(sleeps) == 2
    [warning] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert warning.getMessage() == (
        "alert failed of acme/nightly.accounts (run scheduled__2026-01-01T02:00:00+00:00) not delivered to webhook "
        "ops_slack (127.0.0.1): HTTP 500 internal error"
    )
    assert "sent to 1 of 2 webhooks" in caplog.text


def test_client_error_is_not_retried(receiver: Receiver, slack: str, caplog: pytest.LogCaptureFixture) -> None:
    receiver.script(SLACK_PATH, (404, {}, "no_service"))
    policy, sleeps = fast()
    assert send_alert(failed_alert(), [slack], retry=policy) == [slack]
    assert len(receiver.requests) == 1
    assert sleeps == []
    assert "ops_slack (127.0.0.1): HTTP 404 no_service" in caplog.text


def test_unreachable_and_undefined_connections_do_not_raise(
    airflow_env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    airflow_env.setenv("AIRFLOW_CONN_DOWN", f"http://127.0.0.1:{free_port()}/services/T/B/{TOKEN}")
    policy, sleeps = fast(attempts=2)
    assert send_alert(failed_alert(), ["down", "nowhere"], retry=policy) == ["down", "nowhere"]
    assert len(sleeps) == 1
    assert "webhook down (127.0.0.1) could not be reached (ConnectionError)" in caplog.text
    assert "Airflow connection 'nowhere' is not defined" in caplog.text


# --- secrets ---------------------------------------------------------------------------------------------


def test_the_webhook_token_never_shows(
    receiver: Receiver, airflow_env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """URL and token stay out of our log records, exception texts and return values.

    caplog sees records before Airflow's secrets masker, so this checks what we write ourselves;
    records of other libraries (urllib3 logs request paths at DEBUG) are masked by Airflow in task
    logs, which the last assertions check through the masker itself.
    """
    from airflow.sdk._shared.secrets_masker import redact

    # a server that echoes the request path in its error, and one that cannot be reached
    echo_path = f"/services/T1/B1/{TOKEN}"
    receiver.script(
        echo_path, (400, {}, f"bad request to {echo_path}"), *[(503, {}, f"down: {receiver.url(echo_path)}")] * 2
    )
    airflow_env.setenv("AIRFLOW_CONN_ECHO", receiver.url(echo_path))
    airflow_env.setenv(
        "AIRFLOW_CONN_ECHO2", json.dumps({"conn_type": "http", "extra": {"webhook_url": receiver.url(echo_path)}})
    )
    airflow_env.setenv("AIRFLOW_CONN_DOWN", f"http://127.0.0.1:{free_port()}/services/T2/B2/{TOKEN}")
    policy, _ = fast(attempts=2)
    caplog.set_level(logging.DEBUG, logger="bulksync")
    caplog.set_level(logging.INFO)

    failed = send_alert(failed_alert(), ["echo", "echo2", "down"], retry=policy)

    assert failed == ["echo", "echo2", "down"]
    assert len(receiver.requests) == 3
    assert "bad request to ***" in caplog.text
    assert "down: ***" in caplog.text
    assert caplog.records
    for rec in caplog.records:
        assert TOKEN not in rec.getMessage()
        assert TOKEN not in str(rec.exc_info or "")
    hook = WebhookHook("down")
    assert TOKEN not in f"{hook!r} {hook.describe()} {hook.host} {hook.flavor}"
    with pytest.raises(SourceConnectionError) as err:
        hook.post({"text": "x"}, timeout=2)
    assert TOKEN not in str(err.value)
    assert err.value.__cause__ is None and err.value.__suppress_context__
    # registered with Airflow's masker: task logs show *** even for urllib3's "POST /services/… HTTP/1.1"
    assert TOKEN not in redact(f'"POST /services/T2/B2/{TOKEN} HTTP/1.1" 503')
    assert TOKEN not in redact(f"http://127.0.0.1/services/T2/B2/{TOKEN}")


# --- connections -----------------------------------------------------------------------------------------


def test_slack_uri_connection_is_rebuilt_exactly(airflow_env: pytest.MonkeyPatch) -> None:
    airflow_env.setenv("AIRFLOW_CONN_OPS_SLACK", f"https://hooks.slack.com/services/T000/B000/{TOKEN}")
    hook = WebhookHook("ops_slack")
    assert hook._url == f"https://hooks.slack.com/services/T000/B000/{TOKEN}"
    assert (hook.flavor, hook.describe()) == ("slack", "ops_slack (hooks.slack.com)")


def test_other_connection_forms(airflow_env: pytest.MonkeyPatch) -> None:
    teams_url = f"https://acme.webhook.office.com/webhookb2/a@b/IncomingWebhook/{TOKEN}/c"
    airflow_env.setenv("AIRFLOW_CONN_T_JSON", json.dumps({"conn_type": "http", "host": teams_url}))
    airflow_env.setenv(
        "AIRFLOW_CONN_T_EXTRA",
        json.dumps({"conn_type": "http", "extra": {"webhook_url": teams_url, "flavor": "Teams"}}),
    )
    # Slack provider style: host is the base, password the token path
    airflow_env.setenv(
        "AIRFLOW_CONN_S_PASSWORD",
        json.dumps({"conn_type": "http", "host": "https://hooks.slack.com/services", "password": f"T0/B0/{TOKEN}"}),
    )
    # a URI whose own query string Airflow moves into extra (Power Automate style)
    airflow_env.setenv(
        "AIRFLOW_CONN_G_QUERY", f"https://prod.westeurope.logic.azure.com/workflows/1/run?sv=1.0&sig={TOKEN}"
    )
    airflow_env.setenv(
        "AIRFLOW_CONN_BAD_FLAVOR", json.dumps({"conn_type": "http", "host": teams_url, "extra": {"flavor": "discord"}})
    )
    airflow_env.setenv("AIRFLOW_CONN_NO_URL", json.dumps({"conn_type": "http"}))

    assert (WebhookHook("t_json")._url, WebhookHook("t_json").flavor) == (teams_url, "teams")
    assert (WebhookHook("t_extra")._url, WebhookHook("t_extra").flavor) == (teams_url, "teams")
    hook = WebhookHook("s_password")
    assert (hook._url, hook.flavor) == (f"https://hooks.slack.com/services/T0/B0/{TOKEN}", "slack")
    hook = WebhookHook("g_query")
    assert (hook._url, hook.flavor) == (
        f"https://prod.westeurope.logic.azure.com/workflows/1/run?sv=1.0&sig={TOKEN}",
        "generic",
    )
    with pytest.raises(ConfigurationError, match=r"extra\.flavor 'discord'; use one of slack, teams, generic"):
        _ = WebhookHook("bad_flavor").flavor
    with pytest.raises(ConfigurationError, match="connection 'no_url' has no webhook URL"):
        _ = WebhookHook("no_url")._url


def test_flavor_guess_and_retry_after_parsing() -> None:
    assert guess_flavor("hooks.slack.com") == "slack"
    assert guess_flavor("contoso.webhook.office.com") == "teams"
    assert guess_flavor("outlook.office.com") == "teams"
    assert guess_flavor("chat.example.com") == "generic"
    assert parse_retry_after("12") == 12.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # a date in the past: retry now
    future = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert 25 <= (parse_retry_after(future) or 0) <= 30


# --- spec and context helpers ----------------------------------------------------------------------------


def test_should_alert() -> None:
    spec = AlertsSpec(webhooks=["ops_slack"], on=["failed", "mismatch"])
    assert should_alert(spec, "failed")
    assert should_alert(spec, "mismatch")
    assert not should_alert(spec, "warn")
    assert not should_alert(spec, None)
    assert not should_alert(AlertsSpec(), "failed")  # no webhooks
    assert not should_alert(None, "failed")


def test_report_url_uses_the_api_base_url(airflow_env: pytest.MonkeyPatch) -> None:
    airflow_env.delenv("AIRFLOW__API__BASE_URL", raising=False)
    assert report_url("acme", "nightly") == "http://localhost:8080/bulksync/reports/acme/nightly"
    airflow_env.setenv("AIRFLOW__API__BASE_URL", "https://airflow.example.com/")
    assert report_url("acme", "nightly") == REPORT


def test_task_log_url_and_retries_left() -> None:
    from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

    assert isinstance(RuntimeTaskInstance.__dict__["log_url"], property)  # what task_log_url relies on
    ti = SimpleNamespace(log_url=LOG, max_tries=3, try_number=2)
    assert task_log_url({"ti": ti}) == LOG
    assert task_log_url({"task_instance": ti}) == LOG
    assert task_log_url({}) is None
    assert task_log_url(None) is None
    assert retries_left({"ti": ti}) == 2
    assert retries_left({"ti": SimpleNamespace(max_tries=3, try_number=4)}) == 0
    assert retries_left({}) is None

    class Broken:
        @property
        def log_url(self) -> str:
            raise RuntimeError("no config")

    assert task_log_url({"ti": Broken()}) is None


def free_port() -> int:
    """A port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
