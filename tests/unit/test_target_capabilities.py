"""Target capabilities as data: names a target would truncate are refused when the spec is validated."""

from __future__ import annotations

from typing import Any

import pytest

from bulksync.errors import SpecError
from bulksync.targets.capabilities import MARIADB, POSTGRESQL, SQLITE, identifier_problems
from tests.helpers import pipeline


def dataset(kind: str = "postgres", transforms: list[Any] | None = None, **target: Any) -> dict[str, Any]:
    return {
        "name": "d",
        "source": {"kind": "sql", "conn_id": "src", "options": {"table": "t"}},
        "transforms": transforms or [],
        "target": {"kind": kind, "conn_id": "w", "table": "accounts", **target},
    }


def test_limits_count_what_each_database_counts() -> None:
    assert POSTGRESQL.too_long(["a" * 63, "a" * 64, "é" * 32]) == ["a" * 64, "é" * 32]  # bytes
    assert MARIADB.too_long(["é" * 64, "a" * 65]) == ["a" * 65]  # characters
    assert SQLITE.too_long(["a" * 500]) == []
    (msg,) = identifier_problems(POSTGRESQL, {"column": ["x" * 70]})
    assert "70 bytes long" in msg and "at most 63 bytes" in msg and "rename" in msg


@pytest.mark.parametrize(
    ("target", "transforms", "field"),
    [
        ({"table": "t" * 64}, [], "table"),
        ({"mode": "merge", "keys": ["k" * 64]}, [], "key"),
        ({"mode": "interval", "interval_column": "u" * 100}, [], "interval_column"),
        ({}, [{"rename": {"Short": "r" * 64}}], "column"),
        ({}, [{"derive": {"d" * 90: "1"}}], "column"),
    ],
)
def test_names_postgres_would_truncate_fail_validation(
    target: dict[str, Any], transforms: list[Any], field: str
) -> None:
    with pytest.raises(SpecError) as info:
        pipeline([dataset("postgres", transforms, **target)])
    msg = str(info.value)
    assert "datasets[0]" in msg and f"{field} '" in msg and "at most 63 bytes" in msg


def test_sqlite_targets_take_long_names() -> None:
    spec = pipeline([dataset("sqlite", [{"rename": {"a": "r" * 100}}], table="t" * 100)])
    assert spec.datasets[0].target.table == "t" * 100
