"""``bulksync summary`` of a pipeline writing to Salesforce shows the org's record count of the object.

It showed ``? (AttributeError)``: the summary counted rows with SQL on every target.
"""

from __future__ import annotations

from pathlib import Path

from bulksync.reporting import latest_runs
from tests.integration.test_salesforce_writeback import ACCOUNT_COLUMNS as COLUMNS
from tests.integration.test_salesforce_writeback import account_rows, account_spec, run, write_csv
from tests.sandbox_salesforce import SandboxHandle


def test_summary_counts_the_target_object_in_the_org(salesforce_sandbox: SandboxHandle, tmp_path: Path) -> None:
    sb = salesforce_sandbox
    write_csv(tmp_path / "in", account_rows(25), COLUMNS)
    spec = account_spec(tmp_path / "in")
    run(spec, "run-1")
    in_org = sb.admin.records("Account", ["Id"]).num_rows
    assert in_org > 25  # the seeded accounts and the 25 written
    [row] = latest_runs(spec)
    assert row["target"] == f"salesforce:salesforce_sandbox/Account ({in_org:,} in the org)"
    sf = sb.client()  # a record deleted in the org since: the summary asks the org, not the load report
    sf.Account.delete(sf.query("SELECT Id FROM Account LIMIT 1")["records"][0]["Id"])
    [row] = latest_runs(spec)
    assert row["target"] == f"salesforce:salesforce_sandbox/Account ({in_org - 1:,} in the org)"
