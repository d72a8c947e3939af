"""Whole files through the public reader: every decoded row compared with the generated rows.

The files are written by ``bulksync.legacy.encode`` from deterministic rows (tests/unit/legacy/gen.py);
a hand-made record pins the encoder itself to known bytes.
"""

from __future__ import annotations

import io
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bulksync.errors import SpecError
from bulksync.legacy.encode import encode_file, encode_record
from bulksync.legacy.plan import Plan, compile_plan
from bulksync.legacy.reader import CopybookOptions, arrow_schema, load_layout, read_file, read_records
from tests.unit.legacy import gen
from tests.unit.legacy.conftest import Decode, copybook

COPYBOOKS = Path(__file__).resolve().parents[3] / "include" / "copybooks"
ORDER_RULE = {"ORD-PAYMENT": {"field": "ORD-PAY-TYPE", "when": {"C": "ORD-CARD", "I": "ORD-INVOICE"}}}
BANK_SEGMENTS = {"field": "BH-REC-TYPE", "when": {"H": "BANK-HEADER", "D": "BANK-DETAIL", "T": "BANK-TRAILER"}}


def options(name: str, **kw: Any) -> CopybookOptions:
    return CopybookOptions(copybook=str(COPYBOOKS / name), **kw)


def plan_of(o: CopybookOptions) -> Plan:
    return compile_plan(load_layout(o), o)


def read_all(data: bytes, o: CopybookOptions) -> tuple[list[dict[str, Any]], int]:
    rows: list[dict[str, Any]] = []
    errors = 0
    for block in read_records(io.BytesIO(data), o, name="in.dat"):
        rows.extend(block.batch.to_pylist())
        errors += block.error_count
    return rows, errors


def test_encoder_writes_known_bytes(decode: Decode) -> None:
    o = options("custmast.cpy")
    rec = encode_record(plan_of(o), {"cust_id": 42, "cust_name": "ACME", "cust_balance": Decimal("-12.34"),
                                     "cust_ytd_orders": -2, "cust_discount_pct": Decimal("1.5"),
                                     "cust_rating": -7, "cust_segment_code": 258})  # fmt: skip
    assert rec[:8] == bytes.fromhex("F0F0F0F0F0F0F4F2")
    assert rec[8:12] == bytes.fromhex("C1C3D4C5")
    assert rec[101:107] == bytes.fromhex("00000001234D")  # S9(9)V99 COMP-3
    assert rec[112:116] == bytes.fromhex("FFFFFFFE")  # S9(7) COMP
    assert rec[116:120] == bytes.fromhex("F1F5F0C0")  # S9V999 overpunch +1.500
    assert rec[136:138] == bytes.fromhex("0102")  # COMP-5 big-endian
    assert rec[138:142] == "-007".encode("cp037")  # SIGN LEADING SEPARATE


@pytest.mark.parametrize("block_records", [1, 7, 65536])
def test_customer_master_golden(block_records: int) -> None:
    o = options("custmast.cpy", block_records=block_records)
    rows = gen.customer_rows(120)
    decoded, errors = read_all(encode_file(plan_of(o), rows), o)
    assert errors == 0
    assert decoded == gen.expected(rows, arrow_schema(load_layout(o), o).names)


@pytest.mark.parametrize(
    ("fmt", "extra"),
    [
        ("rdw", {}),
        ("rdw", {"rdw_byte_order": "little"}),
        ("rdw", {"rdw_includes_header": False}),
        ("rdw", {"rdw_byte_order": "little", "rdw_includes_header": False}),
    ],
)
def test_orders_variable_records_odo_and_redefines_by_value(fmt: str, extra: dict[str, Any]) -> None:
    o = options("orders.cpy", record_format=fmt, redefines=ORDER_RULE, block_records=64, **extra)
    plan = plan_of(o)
    rows = gen.order_rows(300)
    data = encode_file(plan, rows)
    decoded, errors = read_all(data, o)
    assert errors == 0
    assert decoded == gen.expected(rows, plan.schema.names)
    # the ODO table makes records of different lengths
    assert len(data) < len(rows) * (plan.width + 4)


def test_orders_length_from_a_copybook_field(tmp_path: Path) -> None:
    cpy = tmp_path / "lenrec.cpy"
    cpy.write_text(copybook("REC-LEN PIC 9(4) COMP", "N PIC 9(2)", "ITEM OCCURS 0 TO 5 DEPENDING ON N PIC X(3)"))
    o = CopybookOptions(copybook=str(cpy), record_format="length_field", record_length_field="REC-LEN")
    plan = plan_of(o)
    rows = [{"n": i % 6, **{f"item_{k}": f"i{k}" for k in range(1, i % 6 + 1)}} for i in range(40)]
    data = encode_file(plan, rows)
    decoded, errors = read_all(data, o)
    assert errors == 0
    assert [{k: v for k, v in r.items() if k != "rec_len"} for r in decoded] == gen.expected(
        rows, [n for n in plan.schema.names if n != "rec_len"]
    )
    assert [r["rec_len"] for r in decoded] == [4 + 3 * (i % 6) for i in range(40)]


def test_multi_segment_file_with_header_and_trailer_bytes() -> None:
    o = options("bankfile.cpy", segments=BANK_SEGMENTS, code_page="cp273", header_bytes=12, trailer_bytes=5)
    plan = plan_of(o)
    rows = gen.bank_rows(120)
    data = encode_file(plan, rows, header=b"HDR-12-BYTES", trailer=b"\x00END!")
    decoded, errors = read_all(data, o)
    assert errors == 0
    assert decoded == gen.expected(rows, plan.schema.names)
    assert [r["_segment"] for r in decoded[:2]] + [decoded[-1]["_segment"]] == [
        "bank-header", "bank-detail", "bank-trailer"
    ]  # fmt: skip
    details = [r for r in decoded if r["_segment"] == "bank-detail"]
    assert decoded[-1]["bt_total"] == sum(r["bd_amount"] for r in details)


def test_redefines_emit_all_branches_or_a_fixed_one() -> None:
    rows = gen.order_rows(20)
    o_all = options("orders.cpy", record_format="rdw")
    data = encode_file(plan_of(o_all), rows)
    decoded, errors = read_all(data, o_all)
    assert errors == 0  # invalid values in branches nobody selected are not errors
    card = [r for r, src in zip(decoded, rows, strict=True) if src["ord_pay_type"] == "C"]
    assert all(r["ord_pay_ref"] is not None and r["ord_card_last4"] is not None for r in card)
    o_card = options("orders.cpy", record_format="rdw", redefines={"ORD-PAYMENT": "ORD-CARD"})
    names = arrow_schema(load_layout(o_card), o_card).names
    assert "ord_card_auth" in names and "ord_inv_no" not in names and "ord_pay_ref" not in names


def test_qualified_and_clashing_names(tmp_path: Path) -> None:
    cpy = tmp_path / "names.cpy"
    cpy.write_text(
        "       01  REC.\n           05  BILL-TO.\n               10  CITY PIC X(3).\n"
        "           05  SHIP-TO.\n               10  CITY PIC X(3).\n           05  2ND-LINE PIC X.\n"
        "           05  TAB OCCURS 2.\n               10  SUB OCCURS 2 PIC 9.\n"
    )
    short = CopybookOptions(copybook=str(cpy))
    assert arrow_schema(load_layout(short), short).names == [
        "bill_to_city", "ship_to_city", "f_2nd_line", "sub_1_1", "sub_1_2", "sub_2_1", "sub_2_2"
    ]  # fmt: skip
    qualified = CopybookOptions(copybook=str(cpy), naming="qualified")
    assert arrow_schema(load_layout(qualified), qualified).names[-1] == "tab_sub_2_2"


def test_strict_mode_rejects_records_with_invalid_values(tmp_path: Path) -> None:
    o = options("custmast.cpy", strict=True, block_records=50)
    rows = gen.customer_rows(120)
    data = bytearray(encode_file(plan_of(o), rows))
    for bad in (9, 77):  # corrupt CUST-BALANCE (offset 101) of records 10 and 78
        data[bad * 200 + 101] = 0xAB
    blocks = list(read_records(io.BytesIO(bytes(data)), o, name="cust.dat"))
    kept = [r for b in blocks for r in b.batch.to_pylist()]
    good = [r for i, r in enumerate(rows) if i not in (9, 77)]
    assert kept == gen.expected(good, [f.name for f in blocks[0].batch.schema])
    rejected = pa.Table.from_batches([b.rejected for b in blocks if b.rejected is not None]).to_pylist()
    assert [(r["_record"], r["_offset"], r["_reason"]) for r in rejected] == [
        (10, 1800, "cust_balance: bad packed nibble"),
        (78, 15400, "cust_balance: bad packed nibble"),
    ]
    assert [len(r["_raw"]) for r in rejected] == [200, 200]
    assert sum(b.records for b in blocks) == 120


def test_non_strict_keeps_the_record_with_a_null(tmp_path: Path) -> None:
    o = options("custmast.cpy")
    rows = gen.customer_rows(5)
    data = bytearray(encode_file(plan_of(o), rows))
    data[2 * 200 + 116 + 3] = 0x4F  # CUST-DISCOUNT-PCT of record 3: bad zoned sign
    blocks = list(read_records(io.BytesIO(bytes(data)), o, name="cust.dat"))
    decoded = blocks[0].batch.to_pylist()
    assert decoded[2]["cust_discount_pct"] is None
    assert decoded[:2] == gen.expected(rows[:2], list(decoded[0]))
    assert [str(e) for e in blocks[0].errors] == [
        f"record 3 (byte 400): cust_discount_pct at byte 116 of the record = x'{data[516:520].hex().upper()}': "
        "bad zoned sign"
    ]
    assert (blocks[0].error_count, blocks[0].error_records) == (1, 1)


def test_read_file_streams_to_parquet(tmp_path: Path) -> None:
    o = options("custmast.cpy", block_records=100)
    rows = gen.customer_rows(1000)
    src = tmp_path / "cust.dat"
    src.write_bytes(encode_file(plan_of(o), rows))
    schema = arrow_schema(load_layout(o), o)
    with pq.ParquetWriter(tmp_path / "out.parquet", schema) as w:
        batches = 0
        for block in read_file(src, o):
            assert block.batch.num_rows <= 100
            w.write_batch(block.batch)
            batches += 1
    assert batches == 10
    assert pq.read_table(tmp_path / "out.parquet").to_pylist() == gen.expected(rows, schema.names)


def test_empty_file_yields_nothing() -> None:
    o = options("custmast.cpy")
    assert read_all(b"", o) == ([], 0)


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({}, "several records .*set `record:`"),
        ({"record": "NOPE"}, "no 01 record 'NOPE'"),
        ({"segments": {"field": "XX", "when": {"H": "BANK-HEADER"}}}, "no field XX"),
        ({"segments": {"field": "BH-REC-TYPE", "when": {"H": "NOPE"}}}, "no 01 record 'NOPE'"),
    ],
)
def test_option_errors_name_the_option(kw: dict[str, Any], message: str) -> None:
    o = options("bankfile.cpy", **kw)
    with pytest.raises(SpecError, match=message):
        arrow_schema(load_layout(o), o)


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"redefines": {"ORD-TOTAL": "X"}}, "ORD-TOTAL is not REDEFINES-d"),
        ({"redefines": {"ORD-PAYMENT": "ORD-NOPE"}}, "ORD-NOPE is not a branch of ORD-PAYMENT"),
        ({"redefines": {"ORD-PAYMENT": {"field": "ORD-ITEMS", "when": {"C": "ORD-CARD"}}}}, "is a group"),
        ({"record_format": "length_field"}, "needs record_length_field"),
    ],
)
def test_redefines_option_errors(kw: dict[str, Any], message: str) -> None:
    o = options("orders.cpy", **kw)
    with pytest.raises(SpecError, match=message):
        arrow_schema(load_layout(o), o)


NESTED_ODO = """\
       01  REC.
           05  N1              PIC 9.
           05  N2              PIC 9.
           05  T1              OCCURS 1 TO 3 TIMES DEPENDING ON N1.
               10  A           PIC X.
               10  T2          OCCURS 0 TO 2 TIMES DEPENDING ON N2.
                   15  B       PIC S9 SIGN LEADING SEPARATE.
           05  TAIL            PIC X(2).
"""


def test_nested_odo_known_bytes(decode: Decode) -> None:
    # N1=2, N2=1: A, B / A, B then TAIL moves up right behind the two short entries
    rec1 = "21a+1b-2ZZ"
    # N1=1, N2=2: one entry holding two Bs
    rec2 = "12c+3+4YY"
    data = b"".join((len(r) + 4).to_bytes(2, "big") + b"\x00\x00" + r.encode("cp037") for r in (rec1, rec2))
    rows, blocks = decode(NESTED_ODO, data, record_format="rdw")
    assert blocks[0].error_count == 0
    base = dict.fromkeys(blocks[0].batch.schema.names)
    assert rows == [
        {**base, "n1": 2, "n2": 1, "a_1": "a", "b_1_1": 1, "a_2": "b", "b_2_1": -2, "tail": "ZZ"},
        {**base, "n1": 1, "n2": 2, "a_1": "c", "b_1_1": 3, "b_1_2": 4, "tail": "YY"},
    ]


def test_nested_odo_round_trip(tmp_path: Path) -> None:
    cpy = tmp_path / "nested.cpy"
    cpy.write_text(NESTED_ODO)
    o = CopybookOptions(copybook=str(cpy), record_format="rdw", block_records=5)
    plan = plan_of(o)
    rows = []
    for i in range(60):
        n1, n2 = 1 + i % 3, i % 3 if i % 2 else (i // 2) % 3
        row: dict[str, Any] = {"n1": n1, "n2": n2, "tail": f"{i % 100:02d}"}
        for j in range(1, n1 + 1):
            row[f"a_{j}"] = chr(ord("a") + j)
            for k in range(1, n2 + 1):
                row[f"b_{j}_{k}"] = (i + j + k) % 19 - 9
        rows.append(row)
    decoded, errors = read_all(encode_file(plan, rows), o)
    assert errors == 0
    assert decoded == gen.expected(rows, plan.schema.names)


def test_fixed_records_padded_past_the_copybook(decode: Decode) -> None:
    # the copybook describes 6 bytes; the file's records are 8 (2 bytes of padding each)
    data = b"".join("AB".encode("cp037") + bytes.fromhex("0012345C") + b"\x40\x40" for _ in range(3))
    rows, blocks = decode(copybook("A PIC XX", "B PIC S9(5)V99 COMP-3"), data, record_length=8)
    assert rows == [{"a": "AB", "b": Decimal("123.45")}] * 3
    assert blocks[0].error_count == 0


def test_rdw_file_with_header_and_trailer_bytes() -> None:
    o = options("orders.cpy", record_format="rdw", redefines=ORDER_RULE, header_bytes=3, trailer_bytes=7,
                block_records=16)  # fmt: skip
    plan = plan_of(o)
    rows = gen.order_rows(50)
    decoded, errors = read_all(encode_file(plan, rows, header=b"HDR", trailer=b"TRAILER"), o)
    assert errors == 0
    assert decoded == gen.expected(rows, plan.schema.names)
