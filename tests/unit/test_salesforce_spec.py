"""Salesforce source specs: defaults, and each invalid option as a SpecError naming file and field."""

from __future__ import annotations

from typing import Any

import pytest

from bulksync.errors import SpecError
from bulksync.spec.loader import parse_spec

FILE = "acme__salesforce.yaml"


def spec(options: dict[str, Any], **target: Any) -> dict[str, Any]:
    return {
        "tenant": "acme",
        "pipeline": "salesforce",
        "start_date": "2026-01-01",
        "datasets": [
            {
                "name": "accounts",
                "source": {"kind": "salesforce", "conn_id": "acme_sf", "options": options},
                "target": {"kind": "postgres", "conn_id": "dwh", "table": "accounts", **target},
            }
        ],
    }


def problems(options: dict[str, Any], **target: Any) -> list[tuple[str, str, str]]:
    with pytest.raises(SpecError) as info:
        parse_spec(spec(options, **target), FILE)
    return info.value.problems


def test_defaults() -> None:
    opts = parse_spec(spec({"object": "Account"}), FILE).datasets[0].source.options
    assert opts.model_dump() == {
        "object": "Account",
        "fields": "all",
        "exclude_fields": [],
        "include_formula": False,
        "incremental": False,
        "cursor_field": "SystemModstamp",
        "overlap_minutes": 0,
        "deletes": "soft",
        "primary_key": ["Id"],
        "chunking": None,
        "min_remaining_api_requests": 1000,
        "max_records": 100_000,
        "poll_interval_seconds": 2.0,
        "job_timeout_minutes": 60,
        "request_timeout_seconds": 120,
        "max_attempts": 6,
        "retry_initial_wait_seconds": 1.0,
        "retry_max_wait_seconds": 60.0,
    }


def test_chunking_needs_exactly_one_size() -> None:
    path = "datasets[0].source.options.chunking (dataset 'accounts')"
    msg = "give exactly one of 'chunk_size' (records per chunk) or 'chunks' (number of chunks)"
    assert problems({"object": "Account", "chunking": {}}) == [(FILE, path, msg)]
    assert problems({"object": "Account", "chunking": {"chunks": 4, "chunk_size": 5000}}) == [(FILE, path, msg)]


def test_bad_names_and_repeated_fields() -> None:
    got = problems({"object": "Account; DROP", "fields": ["Name", "name"]})
    assert [p[1] for p in got] == ["datasets[0].source.options.object (dataset 'accounts')"]
    assert "is not a Salesforce API name" in got[0][2]
    got = problems({"object": "Account", "fields": ["Name", "name"]})
    assert got == [(FILE, "datasets[0].source.options (dataset 'accounts')", "fields listed twice: Name, name")]


def test_deletes_delete_needs_a_merge_target_with_delete_flag() -> None:
    msg = (
        "source option 'deletes: delete' needs a target with 'mode: merge' and 'delete_flag: IsDeleted' "
        "(or use 'deletes: soft' to load IsDeleted as data)"
    )
    assert problems({"object": "Account", "deletes": "delete"}, mode="merge", keys=["Id"]) == [
        (FILE, "datasets[0] (dataset 'accounts')", msg)
    ]
    ok = parse_spec(
        spec({"object": "Account", "deletes": "delete"}, mode="merge", keys=["Id"], delete_flag="IsDeleted"), FILE
    )
    assert ok.datasets[0].target.delete_flag == "IsDeleted"
