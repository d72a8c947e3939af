"""Good drops in every supported shape load exactly: CSV dialects, encodings, compression, fixed width, arrivals.

Each test drops files into a landing folder, runs the real stages into a real SQLite warehouse (which
also holds the ledger) and compares every loaded row and every ledger row.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import hashlib
import io
import zipfile
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.file_drop_corpus import OLD, drop_spec, ledger, loaded, run, sqlite_rows, write

ROWS = [
    (1, "Anna", "10.50"),
    (2, 'Say "hi"', "-3.00"),
    (3, "multi\nline", "0.01"),
    (4, "Chloé; Zoë, déjà", "12345.67"),
    (5, "x|y^z`w\tq", "1.00"),
]
EXPECTED = [{"id": i, "name": n, "amount": Decimal(a)} for i, n, a in ROWS]


def render(delimiter: str = ",", newline: str = "\n", header: bool = True, final_newline: bool = True) -> str:
    out = io.StringIO()
    w = csv.writer(out, delimiter=delimiter, lineterminator=newline, quoting=csv.QUOTE_MINIMAL)
    if header:
        w.writerow(["id", "name", "amount"])
    w.writerows(ROWS)
    text = out.getvalue()
    return text if final_newline else text[: -len(newline)]


@pytest.fixture
def landing(env: pytest.MonkeyPatch, sqlite_conn: Path, tmp_path: Path) -> Path:
    path = tmp_path / "landing"
    path.mkdir()
    return path


def statuses(db: Path) -> list[tuple[str, str, int | None]]:
    return [(r[0], r[1], r[3]) for r in ledger(db)]


@pytest.mark.parametrize(
    "delimiter", [",", ";", "|", "\t", "^", "`"], ids=["comma", "semicolon", "pipe", "tab", "caret", "backquote"]
)
def test_delimiters(delimiter: str, landing: Path, sqlite_conn: Path) -> None:
    write(landing / "d.csv", render(delimiter))
    run(drop_spec(landing, csv={"delimiter": delimiter}))
    assert loaded(sqlite_conn) == EXPECTED
    assert statuses(sqlite_conn) == [("d.csv", "staged", 5)]


@pytest.mark.parametrize(
    ("file_encoding", "declared"),
    [
        ("utf-8-sig", "utf-8"),
        ("cp1252", "cp1252"),
        ("latin-1", "latin-1"),
        ("utf-16", "utf-16"),
        ("utf-16-le", "utf-16-le"),
        ("utf-16-be", "utf-16-be"),
    ],
)
def test_encodings(file_encoding: str, declared: str, landing: Path, sqlite_conn: Path) -> None:
    write(landing / "d.csv", render().encode(file_encoding))
    run(drop_spec(landing, encoding=declared))
    assert loaded(sqlite_conn) == EXPECTED


@pytest.mark.parametrize(
    "variant",
    ["crlf", "no_final_newline", "crlf_no_final_newline", "no_header"],
)
def test_rfc4180_edges(variant: str, landing: Path, sqlite_conn: Path) -> None:
    text = render(
        newline="\r\n" if "crlf" in variant else "\n",
        final_newline="no_final" not in variant,
        header=variant != "no_header",
    )
    write(landing / "d.csv", text)
    run(drop_spec(landing, csv={"header": variant != "no_header"}))
    assert loaded(sqlite_conn) == EXPECTED  # the quoted newline is kept as written


def test_gzip_and_zip_inputs(landing: Path, sqlite_conn: Path) -> None:
    write(landing / "a.csv.gz", gzip.compress(render().encode()))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("inner.csv", render().replace("\n1,", "\n11,").replace("\n2,", "\n12,"))
    write(landing / "b.csv.zip", buf.getvalue())
    run(drop_spec(landing, pattern=["*.csv.gz", "*.csv.zip"]))
    second = [{**r, "id": 10 + r["id"]} if r["id"] in (1, 2) else r for r in EXPECTED]
    assert loaded(sqlite_conn) == sorted([*EXPECTED, *second], key=lambda r: r["id"])
    assert statuses(sqlite_conn) == [("a.csv.gz", "staged", 5), ("b.csv.zip", "staged", 5)]


def test_dialect_detection(landing: Path, sqlite_conn: Path) -> None:
    write(landing / "semi.csv", render(";"))
    write(landing / "pipe.csv", render("|").replace("\n1|", "\n11|"))
    run(drop_spec(landing, csv={"detect": True}))
    assert loaded(sqlite_conn) == sorted([*EXPECTED, {**EXPECTED[0], "id": 11}, *EXPECTED[1:]], key=lambda r: r["id"])


FIXED_LAYOUT = {
    "columns": [
        {"name": "id", "type": "int64", "start": 1, "width": 5, "nullable": False},
        {"name": "name", "type": "string", "start": 6, "width": 12},
        {"name": "amount", "type": "decimal(9,2)", "start": 18, "width": 10},
        {"name": "booked", "type": "date", "start": 28, "width": 8, "format": "%Y%m%d"},
        {"name": "flag", "type": "bool", "start": 36, "width": 1},
    ],
    "header_lines": 1,
}
FIXED_TEXT = (
    "ID   NAME        AMOUNT    BOOKED  F\r\n"
    "00001Müller      000010.50 20260101Y\r\n"
    "00002            -3.00     20260102N\r\n"
    "00003Ünïcödé fine      0.0120261231 \r\n"
)


def fixed_spec(landing: Path, **layout: Any) -> Any:
    spec = drop_spec(landing, pattern="*.txt", format="fixed_width", columns=[], fixed_width={**FIXED_LAYOUT, **layout})
    return spec


def fixed_rows(db: Path) -> list[tuple[Any, ...]]:
    return sqlite_rows(db, "SELECT id, name, amount, booked, flag FROM drops ORDER BY id")


def test_fixed_width_layout(landing: Path, sqlite_conn: Path) -> None:
    text = FIXED_TEXT.replace("Y\r\n", "1\r\n").replace("N\r\n", "0\r\n")
    write(landing / "f.txt", text.encode("cp1252"))
    run(
        drop_spec(
            landing,
            pattern="*.txt",
            format="fixed_width",
            columns=[],
            encoding="cp1252",
            fixed_width={**FIXED_LAYOUT, "allow_short_records": True},
        )
    )
    assert fixed_rows(sqlite_conn) == [
        (1, "Müller", "10.50", "2026-01-01", 1),
        (2, None, "-3.00", "2026-01-02", 0),
        (3, "Ünïcödé fine", "0.01", "2026-12-31", None),
    ]


def test_fixed_width_bad_value_names_line_and_characters(landing: Path, sqlite_conn: Path) -> None:
    write(landing / "f.txt", FIXED_TEXT.replace("Y\r\n", "1\r\n").replace("N\r\n", "0\r\n").replace(" 0.01", " 0,01"))
    write(landing / "ok.txt", f"ID\n00009{'Zed':12}{'1.00':>10}202601011\n")
    run(fixed_spec(landing))
    body = (landing / "quarantine/f.txt.reason.json").read_text(encoding="utf-8")
    assert "f.txt, line 4, column 'amount' (characters 18-27): value '0,01' is not a valid decimal(9,2)" in body
    assert fixed_rows(sqlite_conn) == [(9, "Zed", "1.00", "2026-01-01", 1)]
    assert [(r[0], r[1], r[2]) for r in ledger(sqlite_conn)] == [
        ("f.txt", "quarantined", "bad_value"),
        ("ok.txt", "staged", None),
    ]


def test_fixed_width_short_record(landing: Path, sqlite_conn: Path) -> None:
    write(landing / "f.txt", f"ID\n00001{'Anna':12}{'1.00':>10}20260101\n")  # the flag column is missing
    run(fixed_spec(landing))
    body = (landing / "quarantine/f.txt.reason.json").read_text(encoding="utf-8")
    assert "record_length" in body and "f.txt, line 2: 35 characters but the layout needs 36" in body


def test_trigger_files(landing: Path, sqlite_conn: Path) -> None:
    write(landing / "a.csv", render())
    write(landing / "a.csv.done", "")
    write(landing / "b.csv", render().replace("\n1,", "\n21,"))  # no trigger yet: stays
    run(drop_spec(landing, arrival={"mode": "trigger"}))
    assert loaded(sqlite_conn) == EXPECTED
    day = f"archive/{dt.datetime.now(dt.UTC):%Y/%m/%d}"
    assert (landing / day / "a.csv.done").exists() and (landing / "b.csv").exists()
    assert statuses(sqlite_conn) == [("a.csv", "staged", 5)]


def test_control_file_with_counts_and_checksums(landing: Path, sqlite_conn: Path) -> None:
    data = render().encode()
    write(landing / "a.csv", data)
    write(landing / "a.csv.md5", hashlib.md5(data).hexdigest() + "  a.csv\n")
    write(landing / "drop_20260101.ctl", "a.csv;5\n")
    run(
        drop_spec(
            landing,
            arrival={"mode": "control_file", "control_pattern": "drop_*.ctl"},
            control_total={"kind": "control_file"},
            checksum="md5",
        )
    )
    assert loaded(sqlite_conn) == EXPECTED
    day = landing / f"archive/{dt.datetime.now(dt.UTC):%Y/%m/%d}"
    assert sorted(p.name for p in day.iterdir()) == ["a.csv", "a.csv.md5", "drop_20260101.ctl"]
    assert [r[:4] for r in ledger(sqlite_conn)] == [("a.csv", "staged", None, 5)]


def test_trailer_record_is_checked_not_loaded(landing: Path, sqlite_conn: Path) -> None:
    write(landing / "a.csv", render() + "TRL000005\n")
    run(drop_spec(landing, control_total={"kind": "trailer"}))
    assert loaded(sqlite_conn) == EXPECTED


def test_stable_size_leaves_a_fresh_file(landing: Path, sqlite_conn: Path) -> None:
    write(landing / "old.csv", render(), mtime=OLD)
    write(landing / "new.csv", render(), mtime=dt.datetime.now(dt.UTC).timestamp())
    run(drop_spec(landing, arrival={"mode": "stable_size", "stable_seconds": 120}))
    assert statuses(sqlite_conn) == [("old.csv", "staged", 5)]
    assert (landing / "new.csv").exists()


def test_file_drop_operator_runs_the_stages_in_one_task(landing: Path, sqlite_conn: Path) -> None:
    """The hand-written-DAG operator, executed with an Airflow-like context (no scheduler)."""
    from bulksync.operators.file_drop import FileDropOperator
    from tests.helpers import DAY

    write(landing / "d.csv", render())
    spec = drop_spec(landing)
    op = FileDropOperator(task_id="ingest", spec=spec.model_dump(mode="json"), dataset="drops")
    context = {"run_id": "manual__1", "data_interval_start": DAY.start, "data_interval_end": DAY.end}
    summary = op.execute(context)
    assert (summary["rows"], summary["loaded"], summary["interval"]) == (5, 5, DAY.key)
    assert loaded(sqlite_conn) == EXPECTED
    assert statuses(sqlite_conn) == [("d.csv", "staged", 5)]
