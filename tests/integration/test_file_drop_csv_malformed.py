"""Malformed CSV in a file drop (issue 15 items 6, 8, 11): quarantined with file, line and byte; the good file loads.

Each drop holds one good file and bad files whose defect sits far past the first 64 KiB (the part the
drop sniffs before reading), so only the streaming checks of the whole file can find it: text after a
closing quote, blanks after a quoted field, a NUL byte, bytes that are not UTF-8. A file in another
delimiter than the (default) comma is quarantined with a hint naming the delimiter and the option to
set. The runs are the real stages (extract → transform → load → reconcile) into a real SQLite
warehouse that holds the ledger; every loaded row, ledger row and ``.reason.json`` is checked.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bulksync import stages
from tests.file_drop_corpus import csv_text, drop_spec, loaded, sqlite_rows, write
from tests.helpers import DAY


def _name(i: int) -> str:
    """Quotes, commas and quoted newlines: the good file passes the quote checks without tripping them."""
    return f'Kunde "{i}", Zürich' if i % 7 == 0 else f"line\nbreak {i}" if i % 11 == 0 else f"n{i}"


GOOD = [(i, _name(i), f"{i}.25") for i in range(1, 5001)]  # ~90 KB
FILLER = [(100_000 + i, f"filler name {i}", "1.00") for i in range(20_000)]  # ~580 KB, read by no good file
AT = 400_000  # the defect goes on the line after this byte: far past the 64 KiB the drop sniffs


def bad_file(line: bytes, marker: bytes) -> tuple[bytes, int, int]:
    """The filler CSV with ``line`` inserted after byte :data:`AT`: the data, the line's number and
    the absolute byte offset of ``marker`` (the first offending byte) in it."""
    body = csv_text(FILLER).encode()
    cut = body.index(b"\n", AT) + 1
    data = body[:cut] + line + b"\n" + body[cut:]
    return data, body[:cut].count(b"\n") + 1, cut + line.index(marker)


def run(spec: Any) -> dict[str, Any]:
    """Extract, transform, load and reconcile the drop for :data:`DAY`."""
    ds = spec.datasets[0]
    ctx = stages.RunContext(run_id="run-1", window=DAY, try_number=1)
    for stage in (stages.extract, stages.transform, stages.load):
        stage(spec, ds, ctx)
    return stages.reconcile(spec, ds, ctx)


def ledger(db: Path) -> dict[str, tuple[Any, ...]]:
    """File name → (status, reason, rows, location, detail); one ledger row per file."""
    rows = sqlite_rows(db, "SELECT file_name, status, reason, rows, location, detail FROM bulksync_files ORDER BY id")
    by_name = {r[0]: r[1:] for r in rows}
    assert len(by_name) == len(rows), f"one ledger row per file: {rows}"
    return by_name


def reason_file(landing: Path, name: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((landing / f"quarantine/{name}.reason.json").read_text(encoding="utf-8"))
    return body


@pytest.fixture
def landing(env: pytest.MonkeyPatch, sqlite_conn: Path, tmp_path: Path) -> Path:
    path = tmp_path / "landing"
    path.mkdir()
    return path


def check_drop(landing: Path, db: Path, result: dict[str, Any], bad: dict[str, tuple[str, str]]) -> None:
    """The good file loaded every row and is ``loaded``; each bad file is quarantined with its reason,
    the same message in the ledger and its ``.reason.json``, holding ``fragment``; nothing else moved."""
    assert result["status"] == "success", result
    assert loaded(db) == [{"id": i, "name": n, "amount": Decimal(a)} for i, n, a in GOOD]
    files = ledger(db)
    assert set(files) == {"good.csv", *bad}
    day = dt.datetime.now(dt.UTC)
    assert files["good.csv"] == ("loaded", None, len(GOOD), f"archive/{day:%Y/%m/%d}/good.csv", None)
    assert (landing / f"archive/{day:%Y/%m/%d}/good.csv").read_bytes() == csv_text(GOOD).encode()
    for name, (reason, fragment) in bad.items():
        status, got_reason, rows, location, detail = files[name]
        assert (status, got_reason, rows, location) == ("quarantined", reason, None, f"quarantine/{name}")
        assert fragment in detail, detail
        body = reason_file(landing, name)
        assert (body["file"], body["reason"], body["message"]) == (name, reason, detail)
        assert body["what_to_do"] and (landing / location).is_file()
    assert sorted(p.name for p in landing.iterdir() if p.is_file()) == []  # every file claimed
    assert not [p for p in (landing / "processing").rglob("*") if p.is_file()]


def test_malformed_csv_past_the_sniffed_head_is_quarantined_with_line_and_byte(
    landing: Path, sqlite_conn: Path
) -> None:
    write(landing / "good.csv", csv_text(GOOD))
    cases = {  # file: (the bad line, its first offending bytes, reason, what the message says)
        "quote.csv": (b'777777,"Anna"Maria,1.00', b'"M', "bad_quoting", "a quote inside a field (text after a closing"),
        "blanks.csv": (b'777777,"B" ,1.00', b'" ', "bad_quoting", "blanks after a quoted field"),
        "nul.csv": (b"777777,Ann\x00a,1.00", b"\x00", "binary_content", "a NUL byte"),
        "utf8.csv": ("777777,Renée,1.00".encode("cp1252"), b"\xe9", "encoding", r"not UTF-8 (invalid continuation"),
    }
    bad = {}
    for name, (line, marker, reason, what) in cases.items():
        data, line_no, offset = bad_file(line, marker)
        assert offset > 6 * 64 * 1024 and line_no > 10_000
        write(landing / name, data)
        bad[name] = (reason, f"{name}, line {line_no} (byte {offset:,}): {what}")
    bad["utf8.csv"] = ("encoding", bad["utf8.csv"][1] + r" byte, bytes b'\xe9e,1')")  # the bytes, not a memoryview

    check_drop(landing, sqlite_conn, run(drop_spec(landing)), bad)


@pytest.mark.parametrize("d", ["|", ";"], ids=["pipe", "semicolon"])
def test_a_file_in_another_delimiter_is_quarantined_with_the_delimiter_to_set(
    d: str, landing: Path, sqlite_conn: Path
) -> None:
    write(landing / "good.csv", csv_text(GOOD))
    other = "id,name,amount\n1,Anna,10.50\n2,Bob,-3.00\n".replace(",", d)
    write(landing / "other.csv", other)
    write(landing / "noheader.csv", other.split("\n", 1)[1])
    hint = (
        f"'{d}' appears the same number of times in every line of the file's start: the file looks '{d}'-delimited, "
        f"not ','-delimited. Set options.delimiter: '{d}' (in a file_drop: options.csv.delimiter, or "
        "options.csv.detect: true)"
    )
    result = run(drop_spec(landing))
    mismatch = "header does not match the declared columns (missing ['id', 'name', 'amount']; unexpected"
    bad = {
        "other.csv": ("header_mismatch", f"other.csv: {mismatch} ['id{d}name{d}amount']). {hint}"),
        # without its header line: the header check refuses the first record, before any is read
        "noheader.csv": ("header_mismatch", f"noheader.csv: {mismatch} ['1{d}Anna{d}10.50']). {hint}"),
    }
    check_drop(landing, sqlite_conn, result, bad)
