"""The Salesforce session ids the hook obtains at run time never show in a log line.

The hook logs in against the sandbox over HTTPS (the real token endpoint, the unmodified
simple_salesforce client behind it); whatever then logs the access token — a debug line of ours,
urllib3, an exception message — prints ``***`` instead.
"""

from __future__ import annotations

import logging

import pytest

from bulksync.hooks.salesforce import BulksyncSalesforceHook
from tests.sandbox_salesforce import SandboxHandle


def test_access_tokens_obtained_at_run_time_are_masked_in_logs(
    salesforce_sandbox: SandboxHandle, caplog: pytest.LogCaptureFixture
) -> None:
    hook = BulksyncSalesforceHook(salesforce_sandbox.conn_id)
    sf = hook.get_conn()
    first = sf.session_id
    assert first and sf.query("SELECT COUNT() FROM Account")["totalSize"] > 0  # the token works
    salesforce_sandbox.admin.auth.expire_all()
    hook.reauthenticate()
    second = sf.session_id
    assert second and second != first
    log = logging.getLogger("bulksync.test.salesforce")
    with caplog.at_level(logging.INFO):
        log.info("calling the org with session %s", first)
        log.info("Authorization: Bearer %s", second)
        try:
            raise RuntimeError(f"request refused for token {second}")
        except RuntimeError:
            log.exception("the call failed")
    assert first not in caplog.text and second not in caplog.text
    assert "calling the org with session ***" in caplog.text
    assert "Authorization: Bearer ***" in caplog.text
    assert "request refused for token ***" in caplog.text
