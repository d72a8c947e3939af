"""Copybook (EBCDIC) files in a drop: decoding errors from the copybook engine end the file in quarantine
with the engine's reason while the other files load; a broken copybook is a spec error before anything is claimed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bulksync.errors import SpecError
from tests.file_drop_corpus import drop_spec, ledger, run, sqlite_rows, write

COPYBOOK = """\
000100* ACCOUNTS - 20-BYTE FIXED RECORDS
000200 01  ACCT-REC.
000300     05  ACCT-ID       PIC 9(6).
000400     05  ACCT-NAME     PIC X(10).
000500     05  ACCT-BAL      PIC S9(5)V99 COMP-3.
"""


def record(acct: int, name: str, cents: int, code_page: str = "cp037") -> bytes:
    """One 20-byte record: zoned id, text name, packed balance."""
    packed = bytes.fromhex(f"{abs(cents):07d}" + ("D" if cents < 0 else "C"))
    return f"{acct:06d}".encode(code_page) + f"{name:<10}".encode(code_page) + packed


@pytest.fixture
def landing(env: pytest.MonkeyPatch, sqlite_conn: Path, tmp_path: Path) -> Path:
    (tmp_path / "accts.cpy").write_text(COPYBOOK, encoding="ascii")
    path = tmp_path / "landing"
    path.mkdir()
    return path


def spec(landing: Path, copybook: str = "accts.cpy") -> Any:
    cpy = str(landing.parent / copybook)
    return drop_spec(
        landing,
        pattern="*.dat",
        format="copybook",
        columns=[],
        copybook={"copybook": cpy, "record_format": "fixed", "code_page": "cp037"},
    )


def rows(db: Path) -> list[tuple[Any, ...]]:
    return sqlite_rows(db, "SELECT acct_id, acct_name, acct_bal FROM drops ORDER BY acct_id")


GOOD = record(1, "ANNA", 1050) + record(2, "BOB", -300)
GOOD_ROWS = [(1, "ANNA", "10.50"), (2, "BOB", "-3.00")]


def reason_of(landing: Path, name: str) -> dict[str, Any]:
    return dict(json.loads((landing / f"quarantine/{name}.reason.json").read_text(encoding="utf-8")))


def test_copybook_files_load(landing: Path, sqlite_conn: Path) -> None:
    write(landing / "a.dat", GOOD)
    write(landing / "b.dat", record(3, "CHLOE", 1))
    run(spec(landing))
    assert rows(sqlite_conn) == [*GOOD_ROWS, (3, "CHLOE", "0.01")]
    assert [(r[0], r[1], r[3]) for r in ledger(sqlite_conn)] == [("a.dat", "staged", 2), ("b.dat", "staged", 1)]


@pytest.mark.parametrize(
    ("name", "data", "reason", "fragment"),
    [
        ("nibble.dat", record(3, "X", 0)[:16] + bytes.fromhex("00000A5C"), "record_errors", "acct_bal"),
        ("sign.dat", record(3, "X", 0)[:16] + bytes.fromhex("00000055"), "record_errors", "acct_bal"),
        ("zoned.dat", b"\xf0\xf0\xf0\xf0\xf0\x7a" + record(3, "X", 0)[6:], "record_errors", "acct_id"),
        ("short.dat", record(3, "X", 5) + record(4, "Y", 5)[:7], None, "record"),
        (
            "ascii.dat",
            b"".join(f"{i:06d}{'A ' + str(i):<10}".encode("ascii") + b"\x00\x00\x00\x0c" for i in range(3, 40)),
            "wrong_code_page",
            "unprintable in code page cp037",
        ),
        ("empty.dat", b"", "empty_file", "0 bytes"),
    ],
    ids=["bad_packed_nibble", "bad_packed_sign", "bad_zoned_sign", "truncated_last_record", "wrong_code_page", "empty"],
)
def test_bad_copybook_file_is_quarantined_and_the_others_load(
    name: str, data: bytes, reason: str | None, fragment: str, landing: Path, sqlite_conn: Path
) -> None:
    write(landing / "a.dat", GOOD)
    write(landing / name, data)
    run(spec(landing))
    assert rows(sqlite_conn) == GOOD_ROWS
    got = {r[0]: (r[1], r[2]) for r in ledger(sqlite_conn)}
    body = reason_of(landing, name)
    if reason is None:  # the engine names its structural reasons (truncated_record / length_mismatch)
        assert got[name][1] in ("truncated_record", "length_mismatch")
    else:
        assert got[name] == ("quarantined", reason)
    assert got["a.dat"] == ("staged", None)
    assert body["reason"] == got[name][1] and fragment in body["message"], body["message"]


def test_copybook_syntax_error_is_a_spec_error_before_any_claim(landing: Path, sqlite_conn: Path) -> None:
    (landing.parent / "broken.cpy").write_text(COPYBOOK.replace("PIC 9(6).", "PIC 9(6"), encoding="ascii")
    write(landing / "a.dat", GOOD)
    with pytest.raises(SpecError) as exc:
        run(spec(landing, "broken.cpy"))
    assert "broken.cpy" in str(exc.value) and "line 3" in str(exc.value)
    assert (landing / "a.dat").exists()  # nothing claimed, nothing quarantined
    assert not (landing / "quarantine").exists()


def test_rdw_longer_than_the_file_is_quarantined(landing: Path, sqlite_conn: Path) -> None:
    def rdw(body: bytes, length: int | None = None) -> bytes:
        return ((length or len(body) + 4).to_bytes(2, "big")) + b"\0\0" + body

    write(landing / "a.dat", rdw(record(1, "ANNA", 1050)) + rdw(record(2, "BOB", -300)))
    write(landing / "b.dat", rdw(record(3, "X", 5)) + rdw(record(4, "Y", 5), length=200))
    cpy = str(landing.parent / "accts.cpy")
    spec = drop_spec(
        landing,
        pattern="*.dat",
        format="copybook",
        columns=[],
        copybook={"copybook": cpy, "record_format": "rdw", "code_page": "cp037"},
    )
    run(spec)
    assert rows(sqlite_conn) == GOOD_ROWS
    got = {r[0]: (r[1], r[2]) for r in ledger(sqlite_conn)}
    assert got == {"a.dat": ("staged", None), "b.dat": ("quarantined", "rdw_past_eof")}
    assert "record 2" in reason_of(landing, "b.dat")["message"]


PAYMENTS = """\
       01  PAY-REC.
           05  PAY-TYPE      PIC X.
           05  PAY-ID        PIC 9(4).
           05  PAY-BANK.
               10  PAY-IBAN  PIC X(12).
               10  PAY-AMT   PIC S9(5)V99 COMP-3.
           05  PAY-CARD REDEFINES PAY-BANK.
               10  PAY-CARD-NO PIC 9(4).
"""


def rdw(body: bytes) -> bytes:
    return (len(body) + 4).to_bytes(2, "big") + b"\0\0" + body


def pay_spec(landing: Path, on_record_errors: str = "quarantine_file", **extra: Any) -> Any:
    (landing.parent / "pay.cpy").write_text(PAYMENTS, encoding="ascii")
    cb = {
        "copybook": str(landing.parent / "pay.cpy"),
        "record_format": "rdw",
        "redefines": {"PAY-BANK": {"field": "PAY-TYPE", "when": {"B": "PAY-BANK", "C": "PAY-CARD"}}},
        **extra,
    }
    return drop_spec(landing, pattern="*.dat", format="copybook", columns=[], copybook=cb,
                     on_record_errors=on_record_errors)  # fmt: skip


def test_short_redefines_branch_records_load_through_the_drop(landing: Path, sqlite_conn: Path) -> None:
    """Issue 16, item 3: card records end after their 4-byte branch; the file used to be quarantined."""
    bank = "B0001".encode("cp037") + "DE0012345678".encode("cp037") + bytes.fromhex("0012345C")
    card = "C0002".encode("cp037") + "4242".encode("cp037")  # 9 bytes: the short branch
    write(landing / "pay.dat", rdw(bank) + rdw(card))
    run(pay_spec(landing))
    got = sqlite_rows(sqlite_conn, "SELECT pay_type, pay_id, pay_iban, pay_amt, pay_card_no FROM drops ORDER BY pay_id")
    assert got == [("B", 1, "DE0012345678", "123.45", None), ("C", 2, None, None, 4242)]
    assert [(r[0], r[1]) for r in ledger(sqlite_conn)] == [("pay.dat", "staged")]


def test_strict_quarantines_a_file_with_an_invalid_value_naming_record_and_field(
    landing: Path, sqlite_conn: Path
) -> None:
    good = "B0001".encode("cp037") + "DE0012345678".encode("cp037") + bytes.fromhex("0012345C")
    bad = "B0002".encode("cp037") + "DE0099999999".encode("cp037") + bytes.fromhex("00123A5C")  # nibble A
    write(landing / "a.dat", rdw(good))
    write(landing / "b.dat", rdw(good) + rdw(bad))
    run(pay_spec(landing, "load", strict=True))  # strict: never nulled, though on_record_errors says load
    got = {r[0]: (r[1], r[2]) for r in ledger(sqlite_conn)}
    assert got == {"a.dat": ("staged", None), "b.dat": ("quarantined", "record_errors")}
    message = reason_of(landing, "b.dat")["message"]
    assert "record 2 (byte 25): pay_amt at byte 17 of the record = x'00123A5C': bad packed nibble" in message
    assert sqlite_rows(sqlite_conn, "SELECT pay_id FROM drops") == [(1,)]
