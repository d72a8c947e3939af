"""Layouts the engine refused or misread (issue 16), each from its own minimal copybook and known bytes.

Bytes are written by hand in cp037 (zoned digits ``F0-F9``, overpunch ``C`` / ``D`` zones, RDWs as IBM
documents them), not by bulksync's encoder, except where a test says it round-trips.
"""

from __future__ import annotations

import io
import logging
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bulksync.errors import SpecError
from bulksync.legacy.copybook_parser import parse_copybook
from bulksync.legacy.encode import encode_file
from bulksync.legacy.layout_check import check_layout
from bulksync.legacy.plan import compile_plan
from bulksync.legacy.reader import CopybookOptions, load_layout, read_records
from tests.unit.legacy.conftest import Decode, copybook


def rdw(*records: bytes) -> bytes:
    return b"".join((len(r) + 4).to_bytes(2, "big") + b"\0\0" + r for r in records)


def e(text: str) -> bytes:
    return text.encode("cp037")


# -- 1. OCCURS n DEPENDING ON without "m TO": the minimum is 1 ------------------------------------------------

ODO_NO_MIN = copybook("N PIC 9", "T OCCURS 3 TIMES DEPENDING ON N PIC X(2)", "Z PIC X")


def test_odo_without_m_to_reads_the_counter(decode: Decode) -> None:
    layout = parse_copybook(ODO_NO_MIN)
    table = layout.records[0].children[1]
    assert (table.occurs_min, table.occurs) == (1, 3)
    data = rdw(e("1aaZ"), e("2aabbY"), e("3aabbccX"))
    rows, blocks = decode(ODO_NO_MIN, data, record_format="rdw")
    assert blocks[0].error_count == 0
    assert rows == [
        {"n": 1, "t_1": "aa", "t_2": None, "t_3": None, "z": "Z"},
        {"n": 2, "t_1": "aa", "t_2": "bb", "t_3": None, "z": "Y"},
        {"n": 3, "t_1": "aa", "t_2": "bb", "t_3": "cc", "z": "X"},
    ]


def test_odo_without_m_to_refuses_a_zero_count(decode: Decode) -> None:
    _rows, blocks = decode(ODO_NO_MIN, rdw(e("0Z")), record_format="rdw")
    assert [(x.record, x.field, x.field_offset, x.raw) for x in blocks[0].errors] == [(1, "n", 0, "F0")]
    assert "N = 0 is outside 1..3" in blocks[0].errors[0].reason


def test_zero_count_with_0_to_n(decode: Decode) -> None:
    text = copybook("N PIC 9", "T OCCURS 0 TO 3 TIMES DEPENDING ON N PIC X(2)", "Z PIC X")
    rows, blocks = decode(text, e("0Z") + e("1aaY") + e("2aabbX"), record_format="odo")
    assert blocks[0].error_count == 0
    assert [(r["n"], r["t_1"], r["t_2"], r["z"]) for r in rows] == [(0, None, None, "Z"), (1, "aa", None, "Y"),
                                                                     (2, "aa", "bb", "X")]  # fmt: skip


# -- 2. SIGN SEPARATE on a PIC without S: the sign byte counts -----------------------------------------------


def test_sign_separate_without_s_counts_the_byte(decode: Decode, caplog: pytest.LogCaptureFixture) -> None:
    text = copybook("A PIC 9(3) SIGN LEADING SEPARATE", "B PIC X(2)")
    with caplog.at_level(logging.WARNING):
        layout = parse_copybook(text, "sep.cpy")
    assert layout.records[0].size == 6
    assert "SIGN SEPARATE but no S" in caplog.text and "sep.cpy line 2" in caplog.text
    rows, blocks = decode(text, e("-012ZZ+345YY"))
    assert blocks[0].error_count == 0
    assert rows == [{"a": -12, "b": "ZZ"}, {"a": 345, "b": "YY"}]


def test_group_sign_clause_applies_to_signed_items_only(decode: Decode) -> None:
    text = (
        "       01  REC.\n"
        "           05  G SIGN TRAILING SEPARATE.\n"
        "               10  U PIC 9(2).\n"
        "               10  S PIC S9(2).\n"
    )
    assert parse_copybook(text).records[0].size == 5
    rows, _ = decode(text, e("1234-"))
    assert rows == [{"u": 12, "s": -34}]


def test_layout_self_check_names_line_and_clause() -> None:
    layout = parse_copybook(copybook("A PIC X(2)", "B PIC S9(3) SIGN TRAILING SEPARATE"), "chk.cpy")
    rec = layout.records[0]
    check_layout("chk.cpy", rec)  # a correct layout passes
    rec.children[1].size = 3  # the old bug: the sign byte not counted
    with pytest.raises(SpecError, match=r"chk.cpy.*line 3.*B \(PIC S9\(3\) USAGE DISPLAY SIGN SEPARATE\): sized 3"):
        check_layout("chk.cpy", rec)
    rec.children[1].size = 4
    rec.size = 7
    with pytest.raises(SpecError, match=r"line 1.*REC.*its fields take 6 bytes but it is sized 7"):
        check_layout("chk.cpy", rec)


def test_self_check_covers_every_redefines_branch() -> None:
    text = copybook("A PIC X(4)", "B REDEFINES A PIC S9(5) COMP-3", "C REDEFINES A PIC S9(4) COMP")
    rec = parse_copybook(text).records[0]
    assert rec.size == 4
    rec.children[1].size = 5  # a branch longer than its PIC: the area and the record no longer add up
    with pytest.raises(SpecError, match=r"B \(PIC S9\(5\) USAGE COMP-3\): sized 5 bytes but its PIC and USAGE take 3"):
        check_layout("x.cpy", rec)


# -- 3. the short-record check follows the chosen REDEFINES branch --------------------------------------------

PAY = copybook(
    "T PIC X",
    "BODY.\n               10  NAME PIC X(10).\n               10  LIMIT PIC S9(5) COMP-3",
    "CARD REDEFINES BODY.\n               10  CARD-NO PIC 9(4)",
)
PAY_RULE = {"BODY": {"field": "T", "when": {"B": "BODY", "C": "CARD"}}}


def test_short_branch_records_are_not_short(decode: Decode) -> None:
    data = rdw(e("B") + e("ANNA      ") + bytes.fromhex("12345C"), e("C1234"))
    rows, blocks = decode(PAY, data, record_format="rdw", redefines=PAY_RULE, strict=True)
    assert blocks[0].error_count == 0
    assert rows == [
        {"t": "B", "name": "ANNA", "limit": 12345, "card_no": None},
        {"t": "C", "name": None, "limit": None, "card_no": 1234},
    ]


def test_a_record_shorter_than_its_chosen_branch_is_still_an_error(decode: Decode) -> None:
    data = rdw(e("C12"), e("B") + e("BOB       "))
    rows, blocks = decode(PAY, data, record_format="rdw", redefines=PAY_RULE, strict=True)
    assert rows == []
    assert [(x.record, x.reason) for x in blocks[0].errors] == [
        (1, "the record is shorter than the 5 bytes its layout needs (CARD of BODY)"),
        (2, "the record is shorter than the 14 bytes its layout needs (BODY of BODY)"),
    ]
    assert blocks[0].rejected is not None and blocks[0].rejected.num_rows == 2


def test_a_fixed_branch_sets_the_length_too(decode: Decode) -> None:
    rows, blocks = decode(PAY, rdw(e("C1234")), record_format="rdw", redefines={"BODY": "CARD"})
    assert blocks[0].error_count == 0 and rows == [{"t": "C", "card_no": 1234}]


def test_a_record_longer_than_its_layout_is_an_error(decode: Decode) -> None:
    rows, blocks = decode(PAY, rdw(e("C1234"), e("C1234") + b"\x40" * 20), record_format="rdw",
                          redefines=PAY_RULE, strict=True)  # fmt: skip
    assert [(r["t"], r["card_no"]) for r in rows] == [("C", 1234)]
    assert [(x.record, x.offset) for x in blocks[0].errors] == [(2, 9)]
    assert "longer than the 14 bytes its layout holds" in blocks[0].errors[0].reason


# -- counters anywhere: inside a table, one per occurrence ----------------------------------------------------

IN_TABLE = """\
       01  REC.
           05  ID              PIC 9(2).
           05  GRP OCCURS 2 TIMES.
               10  CNT         PIC 9.
               10  AMT         OCCURS 0 TO 3 TIMES DEPENDING ON CNT
                               PIC S9(3) COMP-3.
           05  TAIL            PIC X(2).
"""


def test_counter_inside_a_table_sizes_each_occurrence(decode: Decode) -> None:
    # record 1: GRP(1) has 1 amount, GRP(2) has 2; record 2: 0 and 3 amounts; TAIL follows the last amount
    r1 = e("01") + e("1") + bytes.fromhex("001C") + e("2") + bytes.fromhex("002C003D") + e("AA")
    r2 = e("02") + e("0") + e("3") + bytes.fromhex("004C005C006C") + e("BB")
    rows, blocks = decode(IN_TABLE, r1 + r2, record_format="odo")
    assert blocks[0].error_count == 0
    assert rows == [
        {"id": 1, "cnt_1": 1, "amt_1_1": 1, "amt_1_2": None, "amt_1_3": None, "cnt_2": 2, "amt_2_1": 2,
         "amt_2_2": -3, "amt_2_3": None, "tail": "AA"},
        {"id": 2, "cnt_1": 0, "amt_1_1": None, "amt_1_2": None, "amt_1_3": None, "cnt_2": 3, "amt_2_1": 4,
         "amt_2_2": 5, "amt_2_3": 6, "tail": "BB"},
    ]  # fmt: skip
    rdw_rows, _ = decode(IN_TABLE, rdw(r1, r2), record_format="rdw")
    assert rdw_rows == rows


def test_counter_inside_a_table_round_trips(tmp_path: Path) -> None:
    cpy = tmp_path / "t.cpy"
    cpy.write_text(IN_TABLE)
    o = CopybookOptions(copybook=str(cpy), record_format="odo", block_records=7)
    plan = compile_plan(load_layout(o), o)
    rows: list[dict[str, Any]] = []
    for i in range(50):
        row: dict[str, Any] = {"id": i, "tail": f"{i:02d}"}
        for g in (1, 2):
            cnt = (i + g) % 4
            row[f"cnt_{g}"] = cnt
            for k in range(1, 4):
                row[f"amt_{g}_{k}"] = (i * 7 + g * 3 + k) % 999 - 499 if k <= cnt else None
        rows.append(row)
    decoded = [r for b in read_records(io.BytesIO(encode_file(plan, rows)), o, name="x") for r in b.batch.to_pylist()]
    assert decoded == rows


def test_counter_after_its_table_is_refused(tmp_path: Path) -> None:
    cpy = tmp_path / "bad.cpy"
    cpy.write_text(copybook("T OCCURS 0 TO 3 TIMES DEPENDING ON N PIC X", "N PIC 9"))
    o = CopybookOptions(copybook=str(cpy))
    with pytest.raises(SpecError, match=r"line 2.*T: OCCURS DEPENDING ON N: the counter must come before the table"):
        compile_plan(load_layout(o), o)


# -- FILLER groups, COMP-0, binary digits ---------------------------------------------------------------------

FILLER_GROUP = """\
       01  REC.
           05  A               PIC X.
           05  FILLER.
               10  B           PIC X.
               10  C           PIC 9.
           05  D               PIC X.
"""


def test_filler_groups_are_dropped_by_default(decode: Decode) -> None:
    rows, _ = decode(FILLER_GROUP, e("ab1d"))
    assert rows == [{"a": "a", "d": "d"}]
    rows, _ = decode(FILLER_GROUP, e("ab1d"), keep_filler_groups=True)
    assert rows == [{"a": "a", "b": "b", "c": 1, "d": "d"}]


def test_comp_0_is_comp(decode: Decode) -> None:
    rows, _ = decode(copybook("A PIC S9(4) COMP-0", "B PIC 9(9) COMPUTATIONAL-0"), bytes.fromhex("FFFE000F4240"))
    assert rows == [{"a": -2, "b": 1_000_000}]


def test_binary_up_to_18_digits_is_exact(decode: Decode) -> None:
    text = copybook("A PIC S9(18) COMP", "B PIC 9(18) BINARY", "C PIC S9(16)V99 COMP")
    big = 999_999_999_999_999_999
    data = (-big).to_bytes(8, "big", signed=True) + big.to_bytes(8, "big") + (-big).to_bytes(8, "big", signed=True)
    rows, blocks = decode(text, data)
    assert blocks[0].error_count == 0
    assert rows == [{"a": -big, "b": big, "c": Decimal("-9999999999999999.99")}]


def test_binary_above_18_digits_names_the_field() -> None:
    with pytest.raises(SpecError, match=r"b.cpy.*line 2.*A: PIC S9\(19\) USAGE COMP: binary items hold at most 18"):
        parse_copybook(copybook("A PIC S9(19) COMP"), "b.cpy")


def test_numeric_edited_needs_display() -> None:
    with pytest.raises(SpecError, match=r"line 2.*A: PIC ZZ9.99 is numeric-edited: USAGE COMP-3 is not allowed"):
        parse_copybook(copybook("A PIC ZZ9.99 COMP-3"))
