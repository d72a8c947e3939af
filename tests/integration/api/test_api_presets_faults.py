"""Every preset against its stand-in under 20 % injected faults (429, 503, resets, truncated JSON,
expired tokens) plus two scheduled token expiries: the extract is still exactly the stand-in's records
and, where the API states a total, reconciles with it; and an API that keeps failing opens the breaker."""

from __future__ import annotations

from typing import Any

import pytest

from bulksync import stages
from bulksync.errors import StagingError
from bulksync.sources.api.errors import CircuitOpenError
from bulksync.staging.reader import read_manifest
from tests.integration.api.conftest import api_dataset, api_pipeline, extract, window

# preset: (object, stand-in table, key column, key type, stand-in options)
CASES: dict[str, tuple[str, str, str, type, dict[str, Any]]] = {
    "hubspot": ("contacts", "contacts", "id", str, {}),
    "msgraph": ("users_list", "users", "id", str, {}),
    "stripe": ("customers", "customers", "id", str, {}),
    "okta": ("users", "users", "id", str, {}),
    "dynamics365": ("accounts", "accounts", "accountid", str, {}),
    "sap_odata": ("sales_orders", "sales_orders", "SalesOrder", str, {"page_size": 100}),
    "netsuite_suiteql": ("customers", "customer", "id", int, {}),
    "workday_raas": ("workers", "workers", "Employee_ID", str, {}),
}
FAULTS = {
    "throttle_share": 0.06,
    "unavailable_share": 0.05,
    "reset_share": 0.04,
    "truncate_share": 0.03,
    "expire_share": 0.02,
    "retry_after": 0.01,
    "seed": 13,
    "schedule": {2: "expire", 4: "expire"},
}
SMALL_PAGES: dict[str, dict[str, Any]] = {  # about ten pages of 950 records, so faults land mid-extract
    "netsuite_suiteql": {"paginate": {"limit": 100}},
    "okta": {"paginate": {"limit": 100}},
    "stripe": {"paginate": {"limit": 100}},
    "msgraph": {"endpoint": {"params": {"$top": 100}}},
    "dynamics365": {"endpoint": {"headers": {"Prefer": "odata.maxpagesize=100"}}},
    "workday_raas": {"incremental": True},
}
LIMITS = {"requests_per_second": 1000, "initial_wait_seconds": 0.01, "max_wait_seconds": 0.3, "max_attempts": 10}


@pytest.mark.parametrize("preset", list(CASES))
def test_twenty_percent_faults_and_two_token_expiries_still_give_the_exact_extract(
    standin: Any, env: Any, preset: str
) -> None:
    obj, table, key, kind, options = CASES[preset]
    s = standin(preset, "p", counts={table: 950}, faults=FAULTS, options=options)
    overrides = SMALL_PAGES.get(preset, {})
    spec = api_pipeline(api_dataset("d", "p", {"preset": preset, "object": obj, "limits": LIMITS, **overrides}))
    expected = sorted(kind(r["id"]) for r in s.records(table) if r["deleted"] is None)
    if preset == "workday_raas":  # a report is one page: read it as eight 2-hour windows instead
        keys = []
        for h in range(8, 24, 2):
            start, end = f"2026-01-01T{h:02d}:00", f"2026-01-0{1 + (h + 2) // 24}T{(h + 2) % 24:02d}:00"
            _, part = extract(spec, "d", window(start, end), run_id=f"w{h}")
            keys += part.column(key).to_pylist()
        assert sorted(keys) == expected and s.faults.requests >= 8 and sum(s.faults.served.values()) >= 2
        return
    manifest, got = extract(spec, "d", window(None, None))
    assert sorted(got.column(key).to_pylist()) == expected
    assert manifest.source_count in (None, manifest.rows)
    if preset in ("msgraph", "sap_odata", "netsuite_suiteql", "dynamics365"):
        assert manifest.source_count == 950  # the API's own total reconciles the extract
    assert sum(s.faults.served.values()) >= 3, s.faults.served


@pytest.mark.parametrize("preset", list(CASES))
def test_an_api_that_keeps_failing_opens_the_circuit_breaker(standin: Any, env: Any, preset: str) -> None:
    obj, table, _, _, options = CASES[preset]
    standin(preset, "p", counts={table: 20}, faults={"unavailable_share": 1.0, "retry_after": 0.01}, options=options)
    spec = api_pipeline(
        api_dataset(
            "d", "p", {"preset": preset, "object": obj, "limits": {**LIMITS, "max_attempts": 30, "breaker_failures": 4}}
        )
    )
    with pytest.raises(CircuitOpenError, match="circuit breaker stopped the extract"):
        extract(spec, "d", window(None, None))
    with pytest.raises(StagingError):
        read_manifest(stages.partition_for(spec, spec.dataset("d"), window(None, None)), "extract")
