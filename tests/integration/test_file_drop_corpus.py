"""The malformed-drop corpus: each bad file ends quarantined with its reason, the good files of the drop load.

Runs the real stages (extract → transform → load) into a real SQLite warehouse that also holds the
file ledger; checks every loaded row, every ledger row, every ``.reason.json`` and where each file ended.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from tests.file_drop_corpus import (
    CASES,
    GOOD,
    NEXT_DAY,
    csv_text,
    drop_spec,
    good_rows,
    ledger,
    loaded,
    run,
    write,
    write_good,
)
from tests.helpers import DAY


@pytest.fixture
def drop(env: pytest.MonkeyPatch, sqlite_conn: Path, tmp_path: Path) -> tuple[Path, Path, Path]:
    """(landing folder, a folder outside it, the warehouse database)."""
    landing = tmp_path / "landing"
    outside = tmp_path / "outside"
    landing.mkdir()
    outside.mkdir()
    return landing, outside, sqlite_conn


@pytest.mark.parametrize("case", sorted(CASES), ids=sorted(CASES))
def test_malformed_drop(case: str, drop: tuple[Path, Path, Path]) -> None:
    landing, outside, db = drop
    c = CASES[case]
    write_good(landing, trailer=c.trailer)
    c.build(landing, outside)
    before_outside = {p.name: p.read_bytes() for p in outside.iterdir()}

    run(drop_spec(landing, **c.options))

    good = [n for n in GOOD if n not in c.expect]
    assert loaded(db) == sorted(good_rows(*good), key=lambda r: r["id"]) if good else loaded(db) == []
    rows = ledger(db)
    by_name = {r[0]: r for r in rows}
    assert len(by_name) == len(rows), f"one ledger row per file: {rows}"
    expected_names = set(good) | set(c.expect)
    assert set(by_name) == expected_names
    for name in good:
        _, status, reason, n, location, size, sha = by_name[name]
        assert (status, reason, n) == ("staged", None, len(GOOD[name]))
        assert location == f"archive/{dt.datetime.now(dt.UTC):%Y/%m/%d}/{name}"
        assert (landing / location).read_text(encoding="utf-8").startswith("id,name,amount\n")
        assert size == (landing / location).stat().st_size and len(sha) == 64
    for name, (status, reason, fragment) in c.expect.items():
        _, got_status, got_reason, _, location, _, _ = by_name[name]
        assert (got_status, got_reason) == (status, reason)
        if status == "quarantined":
            assert location == f"quarantine/{name}"
            body = json.loads((landing / f"quarantine/{name}.reason.json").read_text(encoding="utf-8"))
            assert body["reason"] == reason and body["file"] == name and body["what_to_do"]
            assert fragment in body["message"], body["message"]
            assert (landing / location).exists() or (landing / location).is_symlink()
    for name in c.stays:
        assert (landing / name).exists()
    # nothing outside the landing zone was touched, nothing left in processing/
    assert {p.name: p.read_bytes() for p in outside.iterdir()} == before_outside
    assert not [p for p in (landing / "processing").rglob("*")]


def test_redropped_identical_file_is_skipped_and_reported(drop: tuple[Path, Path, Path]) -> None:
    landing, _, db = drop
    write_good(landing)
    spec = drop_spec(landing)
    run(spec)
    write(landing / "good_1.csv", csv_text(GOOD["good_1.csv"]))  # the client sends it again

    manifest = run(spec, NEXT_DAY, "run-2")

    assert manifest.rows == 0
    assert loaded(db) == good_rows()
    first = [r for r in ledger(db) if r[0] == "good_1.csv"]
    assert [(r[1], r[2]) for r in first] == [("staged", None), ("duplicate", "duplicate")]
    assert first[0][6] == first[1][6]  # same sha256
    body = json.loads((landing / "quarantine/good_1.csv.reason.json").read_text(encoding="utf-8"))
    assert body["reason"] == "duplicate" and body["earlier_interval"] == DAY.key
    assert manifest.extra["source_stats"]["files"] == [
        {"name": "good_1.csv", "status": "duplicate", "rows": 0, "reason": "duplicate"}
    ]


def test_same_name_different_content_is_processed(drop: tuple[Path, Path, Path]) -> None:
    landing, _, db = drop
    write_good(landing)
    spec = drop_spec(landing)
    run(spec)
    write(landing / "good_1.csv", csv_text([(7, "Gus", "7.70")]))

    run(spec, NEXT_DAY, "run-2")

    from decimal import Decimal

    assert loaded(db) == sorted(
        [*good_rows(), {"id": 7, "name": "Gus", "amount": Decimal("7.70")}], key=lambda r: r["id"]
    )
    archived = [r[4] for r in ledger(db) if r[0] == "good_1.csv"]
    day = f"archive/{dt.datetime.now(dt.UTC):%Y/%m/%d}"
    assert archived[0] == f"{day}/good_1.csv"
    assert archived[1].startswith(f"{day}/good_1.csv.") and len(archived[1]) == len(archived[0]) + 13
