"""Issue 12 item 8: no secret of a connection reaches a log line or a stored record, in any form.

A real HTTP receiver (the stand-in of ``test_webhook_notifier``) answers the way real ones do when
a token is wrong — echoing the token, the URL-encoded URL or its base64 — and every byte bulksync
then writes (log records of every logger, stderr, the run record file) is searched for each form of
each secret. Connections are defined as users define them, as ``AIRFLOW_CONN_*`` variables.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest

from bulksync import scrub
from bulksync.notify.webhook import send_alert
from bulksync.quality.model import RunRecord
from tests.unit.test_webhook_notifier import Receiver, airflow_env, failed_alert, fast, receiver  # noqa: F401

TOKEN = "Zt0k3n+Secret/9981=="  # changes under URL-encoding and base64
SEGMENT = "T0AB12CD34"
PATH = f"/services/{SEGMENT}/B9ZZ8877/{quote(TOKEN, safe='')}"
PASSWORD = "pa ss@w0rd/Ünï+x"
CLIENT_SECRET = "cs-77aa-SECRET-99bb"
API_TOKEN = "tok_1234567890abcdef"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def leaked_forms(*secrets: str) -> dict[str, str]:
    """The shapes a secret takes when something echoes it, by name."""
    out: dict[str, str] = {}
    for s in secrets:
        out |= {
            f"raw {s}": s,
            f"quote {s}": quote(s, safe=""),
            f"quote_lower {s}": quote(s, safe="").lower().replace(s.lower(), s) if "%" in quote(s, safe="") else s,
            f"quote_plus {s}": quote_plus(s),
            f"base64 {s}": b64(s),
            f"base64-in-longer {s}": b64("Bearer: " + s)[12:],
            f"urlsafe {s}": base64.urlsafe_b64encode(s.encode()).decode().rstrip("="),
        }
    return out


def assert_absent(text: str, forms: dict[str, str]) -> None:
    found = [name for name, form in forms.items() if form in text]
    assert not found, f"secret forms in output: {found}"


def test_forms_cover_encodings_and_spare_public_words() -> None:
    url = f"https://hooks.slack.com{PATH}?flavor=slack&sig=Q9sig-4455"
    parts = scrub.url_secrets(url)
    assert url in parts and SEGMENT in parts and TOKEN in parts and "Q9sig-4455" in parts
    assert not {"services", "slack", "hooks.slack.com", "flavor"} & set(parts)
    f = scrub.forms(TOKEN)
    assert {TOKEN, quote(TOKEN, safe=""), quote_plus(TOKEN), b64(TOKEN), b64(TOKEN).rstrip("=")} <= f
    assert scrub.forms("abc") == set()  # too short to be told apart from ordinary text


def test_a_receiver_echoing_the_token_in_any_form_leaves_no_trace(
    receiver: Receiver,  # noqa: F811
    airflow_env: pytest.MonkeyPatch,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    url = receiver.url(PATH)
    echoes = {
        "token": f"invalid token {TOKEN}",
        "segment": f"unknown team {SEGMENT}",
        "quoted url": f"no route for {quote(url, safe='')}",
        "quote_plus": f"token={quote_plus(TOKEN)} rejected",
        "base64 url": f"signature mismatch for {b64(url)}",
        "base64 in json": json.dumps({"error": "forbidden", "ctx": b64(json.dumps({"url": url}))}),
    }
    for i, body in enumerate(echoes.values()):
        receiver.script(PATH, (403, {}, body))
        airflow_env.setenv(f"AIRFLOW_CONN_ECHO{i}", json.dumps({"conn_type": "http", "host": url}))
    caplog.set_level(logging.DEBUG)

    failed = send_alert(failed_alert(), [f"echo{i}" for i in range(len(echoes))], retry=fast()[0])

    assert failed == [f"echo{i}" for i in range(len(echoes))]
    assert len(receiver.requests) == len(echoes)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == len(echoes)
    assert all("HTTP 403" in w and "***" in w for w in warnings), warnings
    assert "invalid token ***" in warnings[0] and "unknown team ***" in warnings[1]
    everything = caplog.text + "".join(capfd.readouterr())
    assert_absent(everything, leaked_forms(TOKEN, SEGMENT, url, PATH))
    assert "echo0 (127.0.0.1)" in everything  # connection ids and host stay readable


def test_connection_secrets_are_scrubbed_from_every_logger_and_traceback(
    airflow_env: pytest.MonkeyPatch,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    from bulksync.hooks.base import get_connection

    extra = {"client_secret": CLIENT_SECRET, "auth": {"api_token": API_TOKEN}, "region": "westeurope"}
    conn = {"conn_type": "http", "host": "api.example.com", "login": "svc_bulk", "password": PASSWORD, "extra": extra}
    airflow_env.setenv("AIRFLOW_CONN_CRM_API", json.dumps(conn))
    caplog.set_level(logging.DEBUG)
    for name in ("urllib3.connectionpool", "some.vendor.client"):  # whatever an earlier test left them at
        caplog.set_level(logging.DEBUG, logger=name)
        logger = logging.getLogger(name)
        # an earlier test's logging.config (Airflow's, disable_existing_loggers) may have disabled it
        airflow_env.setattr(logger, "disabled", False)
        airflow_env.setattr(logger, "propagate", True)
    # a stage run in this process earlier (quiet_third_party_loggers) left its filter of third-party DEBUG and
    # INFO records on pytest's capture handler, which pytest keeps for the whole session
    from bulksync.operators.task_logs import ThirdPartyFilter

    kept = [f for f in caplog.handler.filters if not isinstance(f, ThirdPartyFilter)]
    airflow_env.setattr(caplog.handler, "filters", kept)

    get_connection("crm_api")
    logging.getLogger("urllib3.connectionpool").debug("GET /login?pw=%s&cs=%s", quote(PASSWORD), CLIENT_SECRET)
    logging.getLogger("some.vendor.client").info("Authorization: Basic %s", b64(f"svc_bulk:{PASSWORD}"))
    logging.getLogger("bulksync.x").warning("extra %s", json.dumps(extra))
    try:
        raise RuntimeError(f"login failed for token {quote_plus(API_TOKEN)}")
    except RuntimeError:
        logging.getLogger("bulksync.y").exception("request failed")

    records = caplog.records[-4:]
    assert [r.name for r in records] == ["urllib3.connectionpool", "some.vendor.client", "bulksync.x", "bulksync.y"]
    text = caplog.text
    assert_absent(text, leaked_forms(PASSWORD, CLIENT_SECRET, API_TOKEN, f"svc_bulk:{PASSWORD}"))
    assert "Authorization: Basic ***" in text and "westeurope" in text and "RuntimeError: login failed" in text


def test_a_provider_hook_connection_is_scrubbed_without_our_get_connection(
    airflow_env: pytest.MonkeyPatch,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Hooks that fetch their connection through Airflow (PostgresHook …) get the forms through Airflow's masker."""
    from airflow.sdk import BaseHook

    import bulksync.hooks  # noqa: F401 - what importing any bulksync hook does: install the scrubber

    secret = "Pg-Pass/4477+zz"
    airflow_env.setenv("AIRFLOW_CONN_WAREHOUSE", f"postgresql://loader:{quote(secret, safe='')}@db.internal:5432/dwh")
    conn = BaseHook.get_connection("warehouse")
    assert conn.password == secret
    caplog.set_level(logging.INFO)
    logging.getLogger("vendor.sql.pool").info("connect url postgresql://loader:%s@db", quote(secret, safe=""))
    logging.getLogger("bulksync.z").info("password %s, base64 %s", secret, b64(secret))
    assert_absent(caplog.text, leaked_forms(secret))
    assert "connect url postgresql://loader:***@db" in caplog.text


def test_stored_run_records_are_scrubbed(
    airflow_env: pytest.MonkeyPatch,  # noqa: F811
    tmp_path: Path,
) -> None:
    from bulksync.hooks.base import get_connection
    from bulksync.quality.publish import write_run_record

    airflow_env.setenv("BULKSYNC_REPORTS_ROOT", str(tmp_path / "reports"))
    airflow_env.setenv("AIRFLOW_CONN_SRC_DB", json.dumps({"conn_type": "postgres", "password": "St0red-Secret-42"}))
    get_connection("src_db")
    record = RunRecord(
        tenant="acme",
        pipeline="nightly",
        dataset="accounts",
        run_id="manual__1",
        interval="20260101",
        window_start=None,
        window_end=None,
        status="failed",
        error=f"could not connect: password {quote('St0red-Secret-42')} / {b64('St0red-Secret-42')} refused",
        finished_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    )
    path = Path(write_run_record(record))
    text = path.read_text(encoding="utf-8")
    assert_absent(text, leaked_forms("St0red-Secret-42"))
    assert "could not connect: password *** / *** refused" in text


def test_the_trie_pattern_masks_exactly_what_an_alternation_of_the_forms_would() -> None:
    import random
    import re
    import string

    rng = random.Random(7)
    words = {"".join(rng.choice(string.ascii_letters + "%+/=") for _ in range(rng.randint(5, 40))) for _ in range(300)}
    words |= {"abcde", "abcdefgh", "abcdexyz", "x" * 2000}  # shared prefixes, a word inside a longer one
    text = " | ".join(rng.sample(sorted(words), 40)) + " abcdefghij abcdexy " + "x" * 2001
    alternation = re.compile("|".join(map(re.escape, sorted(words, key=len, reverse=True))))
    assert re.sub(scrub.trie_pattern(words), "*", text) == alternation.sub("*", text)
