"""Every file_drop format read from blobs as streams (Azurite, real SDK), and cases of the malformed-drop
corpus on a container: the bad file ends in ``quarantine/`` with its ``.reason.json``, the good files load
into a real SQLite warehouse, the ledger accounts for every file.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.azure_drops import SQLITE_TARGET, blob_drop_spec, blobs, put, put_folder, reason
from tests.azurite import Azurite
from tests.file_drop_corpus import CASES, GOOD, csv_text, good_rows, ledger, loaded, run, write_good

CORPUS = [
    "unbalanced_quote",
    "value_not_a_number",
    "checksum_mismatch",
    "gzip_over_size_limit",
    "zip_with_two_members",
    "trailer_count_mismatch",
]


@pytest.fixture
def zone(env: pytest.MonkeyPatch, azurite: Azurite, container: str, sqlite_conn: Path) -> tuple[Azurite, str, Path]:
    """(Azurite, an empty container, the SQLite warehouse that also holds the ledger)."""
    return azurite, container, sqlite_conn


@pytest.mark.parametrize("case", CORPUS)
def test_corpus_case_on_blobs(case: str, zone: tuple[Azurite, str, Path], tmp_path: Path) -> None:
    azurite, container, db = zone
    c = CASES[case]
    local, outside = tmp_path / "built", tmp_path / "outside"
    local.mkdir()
    outside.mkdir()
    write_good(local, trailer=c.trailer)
    c.build(local, outside)
    put_folder(azurite, container, local)

    run(blob_drop_spec(container, SQLITE_TARGET, **c.options))

    good = [n for n in GOOD if n not in c.expect]
    assert loaded(db) == sorted(good_rows(*good), key=lambda r: r["id"])
    rows = {r[0]: r for r in ledger(db)}
    assert set(rows) == set(good) | set(c.expect)
    for name in good:
        assert rows[name][1:4] == ("staged", None, len(GOOD[name]))
    after = blobs(azurite, container)
    for name, (status, why, fragment) in c.expect.items():
        assert rows[name][1:3] == (status, why)
        assert rows[name][4] == f"quarantine/{name}"
        assert after[f"quarantine/{name}"] == (local / name).read_bytes()  # moved unchanged
        body = reason(azurite, container, f"quarantine/{name}")
        assert (body["file"], body["reason"]) == (name, why)
        assert fragment in body["message"]
    assert not [n for n in after if "/" not in n or n.startswith("processing/")]  # nothing left behind


COPYBOOK = """\
       01  ACCT-REC.
           05  ACCT-ID       PIC 9(6).
           05  ACCT-NAME     PIC X(10).
           05  ACCT-BAL      PIC S9(5)V99 COMP-3.
"""


def record(acct: int, name: str, cents: int) -> bytes:
    packed = bytes.fromhex(f"{abs(cents):07d}" + ("D" if cents < 0 else "C"))
    return f"{acct:06d}".encode("cp037") + f"{name:<10}".encode("cp037") + packed


def table(db: Path, sql: str) -> list[tuple[Any, ...]]:
    con = sqlite3.connect(db)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_copybook_files_from_blobs(zone: tuple[Azurite, str, Path], tmp_path: Path) -> None:
    azurite, container, db = zone
    (tmp_path / "accts.cpy").write_text(COPYBOOK, encoding="ascii")
    put(azurite, container, "a.dat", record(1, "ANNA", 1050) + record(2, "BOB", -300))
    put(azurite, container, "b.dat", record(3, "CHLOE", 1)[:-1])  # one byte short: not whole records
    spec = blob_drop_spec(
        container,
        SQLITE_TARGET,
        pattern="*.dat",
        format="copybook",
        columns=[],
        copybook={"copybook": str(tmp_path / "accts.cpy"), "record_format": "fixed", "code_page": "cp037"},
    )
    run(spec)
    assert table(db, "SELECT acct_id, acct_name, acct_bal FROM drops ORDER BY acct_id") == [
        (1, "ANNA", "10.50"),
        (2, "BOB", "-3.00"),
    ]
    statuses = {r[0]: r[1:3] for r in ledger(db)}
    assert statuses["a.dat"] == ("staged", None)
    assert statuses["b.dat"][0] == "quarantined"
    assert "b.dat" in reason(azurite, container, "quarantine/b.dat")["message"]


def test_fixed_width_gzip_from_blobs(zone: tuple[Azurite, str, Path]) -> None:
    import gzip

    azurite, container, db = zone
    text = "".join(f"{i:05d}{name:<8}{amount:>9}\n" for i, name, amount in [(1, "Anna", "10.50"), (2, "Bob", "-3.00")])
    put(azurite, container, "acct.txt.gz", gzip.compress(text.encode("cp1252")))
    spec = blob_drop_spec(
        container,
        SQLITE_TARGET,
        pattern="*.txt.gz",
        format="fixed_width",
        columns=[],
        encoding="cp1252",
        fixed_width={
            "columns": [
                {"name": "id", "type": "int64", "start": 1, "width": 5},
                {"name": "name", "type": "string", "start": 6, "width": 8},
                {"name": "amount", "type": "decimal(9,2)", "start": 14, "width": 9},
            ]
        },
    )
    run(spec)
    assert loaded(db) == good_rows("good_1.csv")
    assert [r[:4] for r in ledger(db)] == [("acct.txt.gz", "staged", None, 2)]


def test_folder_matching_the_pattern_is_quarantined(zone: tuple[Azurite, str, Path]) -> None:
    """Blobs under ``bad.csv/`` make a "folder" matching ``*.csv``: quarantined whole, the good file loads."""
    azurite, container, db = zone
    put(azurite, container, "good_1.csv", csv_text(GOOD["good_1.csv"]))
    put(azurite, container, "bad.csv/part-0", "x")
    run(blob_drop_spec(container, SQLITE_TARGET))
    assert loaded(db) == good_rows("good_1.csv")
    assert [r[:3] for r in ledger(db)] == [
        ("bad.csv", "quarantined", "not_a_regular_file"),
        ("good_1.csv", "staged", None),
    ]
    after = blobs(azurite, container)
    assert after["quarantine/bad.csv/part-0"] == b"x"
    assert "is a directory matching" in reason(azurite, container, "quarantine/bad.csv")["message"]
    assert not [n for n in after if "/" not in n]
