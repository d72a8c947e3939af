"""Salesforce extraction when things go wrong, against the sandbox over real HTTPS.

Limits below the floor, expired sessions, failed jobs, unknown objects: each either recovers with
the same data as a clean run or fails at once with a message that says what to do, staging nothing.
Secrets never reach logs, manifests or messages.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pyarrow as pa
import pytest

from bulksync import stages
from bulksync.errors import ConfigurationError
from bulksync.sources.salesforce import SalesforceSource
from bulksync.sources.salesforce.errors import SalesforceApiError, SalesforceJobError, SalesforceLimitError
from bulksync.staging.partition import Window
from tests.integration.test_salesforce_extract import spec, staged, truth


def source(**options: Any) -> SalesforceSource:
    s = spec(options)
    return SalesforceSource(s.datasets[0].source, Window())


def read_all(src: SalesforceSource) -> pa.Table:
    try:
        return pa.Table.from_batches(list(src.read()), schema=src.schema())
    finally:
        src.close()


@pytest.mark.salesforce_sandbox(counts={"Account": 30})
def test_refuses_to_start_below_the_api_request_floor(salesforce_sandbox: Any, env: Any) -> None:
    sb = salesforce_sandbox.admin
    sb.faults.configure(daily_api_max=sb.faults.api_used + 60)
    s = spec({"min_remaining_api_requests": 100})
    with pytest.raises(SalesforceLimitError) as info:
        stages.extract_all(s, s.datasets[0], stages.RunContext(run_id="r", window=Window()))
    assert str(info.value) == (
        "Salesforce connection 'salesforce_sandbox' has 59 of 60 daily API requests left, below the spec's floor "
        "min_remaining_api_requests=100; the extract of Account did not start. Wait for the 24-hour limit to recover, "
        "or lower the floor if that is safe"
    ).replace("of 60", f"of {sb.faults.settings.daily_api_max}")
    assert not sb.jobs.jobs, "no query job may be created"
    assert not stages.partition_for(s, s.datasets[0], Window()).manifest_path("extract").exists()


@pytest.mark.salesforce_sandbox(counts={"Account": 120})
def test_expired_session_reauthenticates_once_and_reads_everything(
    salesforce_sandbox: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    src = source(max_records=50)
    assert src.source_count() == 120  # logged in, job complete
    token = src.hook.get_conn().session_id
    salesforce_sandbox.admin.auth.expire_all()
    table = read_all(src)
    assert table.sort_by("Id").to_pylist() == truth(salesforce_sandbox, table.schema, True)
    assert src.stats["reauthenticated"] is True and src.hook.reauthentications == 1
    secret = salesforce_sandbox.credentials.client_secret
    for text in (caplog.text, json.dumps(src.stats)):
        assert secret not in text and token not in text and src.hook.get_conn().session_id not in text


@pytest.mark.salesforce_sandbox(counts={"Account": 10}, token_lifetime=0)
def test_a_session_rejected_again_after_reauthenticating_fails(salesforce_sandbox: Any) -> None:
    src = source()
    with pytest.raises(SalesforceApiError) as info:
        src.source_count()
    src.close()
    assert str(info.value) == (
        "Salesforce rejected the session of connection 'salesforce_sandbox' 3 times in a row, each time with a "
        "fresh token (INVALID_SESSION_ID): check the connected app's permissions, IP restrictions and session "
        "policies"
    )
    assert src.hook.reauthentications == 2  # bounded: MAX_CONSECUTIVE_REAUTH fresh tokens, then it gives up
    assert salesforce_sandbox.credentials.client_secret not in str(info.value)


@pytest.mark.salesforce_sandbox(counts={"Account": 40})
def test_a_failed_job_is_created_once_more(salesforce_sandbox: Any) -> None:
    salesforce_sandbox.admin.faults.configure(fail_jobs=1)
    src = source()
    table = read_all(src)
    assert table.sort_by("Id").to_pylist() == truth(salesforce_sandbox, table.schema, True)
    assert src.stats["job_recreated"] is True

    salesforce_sandbox.admin.faults.configure(fail_jobs=2)
    again = source()
    with pytest.raises(SalesforceJobError, match=r"query job \w+ for Account ended Failed: Failed to process query"):
        again.source_count()
    again.close()


@pytest.mark.salesforce_sandbox(counts={"Account": 5})
def test_unknown_object_and_field_fail_at_once(salesforce_sandbox: Any, env: Any) -> None:
    s = spec({"object": "Acount"})
    with pytest.raises(ConfigurationError) as info:
        stages.extract_all(s, s.datasets[0], stages.RunContext(run_id="r", window=Window()))
    assert str(info.value).startswith(
        "Salesforce object 'Acount' does not exist or connection 'salesforce_sandbox' cannot see it (NOT_FOUND)"
    )
    s = spec({"fields": ["Name", "Industri"]})
    with pytest.raises(ConfigurationError, match=r"^Account has no field 'Industri'; did you mean Industry\?"):
        stages.extract_all(s, s.datasets[0], stages.RunContext(run_id="r", window=Window()))
    assert not stages.partition_for(s, s.datasets[0], Window()).manifest_path("extract").exists()


@pytest.mark.salesforce_sandbox(counts={"Account": 60})
def test_manifest_records_api_calls_and_usage(salesforce_sandbox: Any, env: Any) -> None:
    s = spec({"max_records": 25})
    manifest = stages.extract_all(s, s.datasets[0], stages.RunContext(run_id="r", window=Window()))
    stats = manifest.extra["source_stats"]
    # /limits, describe, create, >= 1 poll, 3 pages (60 / 25), delete
    assert stats["api_calls"] >= 7 and stats["retries"] == 0
    assert stats["api_usage"].startswith("api-usage=")
    assert stats["daily_api_requests_remaining_at_start"] > 0
    assert stats["job_records"] == manifest.rows == 60
    assert staged(s, Window()).num_rows == 60


@pytest.mark.salesforce_sandbox(counts={"Account": 15})
def test_without_login_url_the_hook_is_the_providers(salesforce_sandbox: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A direct session (instance_url + access token, no login_url) goes through the provider's code path."""
    from bulksync.hooks.salesforce import BulksyncSalesforceHook

    token = salesforce_sandbox.token()
    extra = {"instance_url": token["instance_url"], "ca_bundle": str(salesforce_sandbox.ca_bundle), "version": "59.0"}
    monkeypatch.setenv("AIRFLOW_CONN_SF_DIRECT", json.dumps({"conn_type": "salesforce", "extra": extra}))
    hook = BulksyncSalesforceHook("sf_direct", session_id=token["access_token"])
    assert hook.login_url is None
    result = hook.make_query("SELECT Id FROM Account")
    assert sorted(r["Id"] for r in result["records"]) == sorted(
        salesforce_sandbox.admin.records("Account", ["Id"])["Id"].to_pylist()
    )
    assert hook.get_conn().session.verify == str(salesforce_sandbox.ca_bundle)
