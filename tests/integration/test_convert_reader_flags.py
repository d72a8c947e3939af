"""Every copybook reader option of ``bulksync convert``, as a flag and through ``--options FILE.yaml``.

Each case is a tiny copybook and a few EBCDIC records spelled out byte by byte (``cp037`` text; packed,
binary and float fields as hex literals; never bulksync's own encoder). The real command runs three times:

- with the flag: the whole Parquet table (column names and types, every row and value) is the expected one;
- with nothing but ``--options FILE.yaml`` holding the spec's ``source.options`` block with the same
  option: the same table;
- without the flag: the outcome the default gives (other values, or the file refused), which differs
  from the expected one, so a flag the command ignored fails the first test.

Bad values of the flags (and of the same options in the YAML file) end with an error naming the option.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from bulksync.cli import app

runner = CliRunner()
h = bytes.fromhex


def e(text: str) -> bytes:
    """Text in EBCDIC (US / Canada), as a z/OS program writes it."""
    return text.encode("cp037")


@dataclass(frozen=True)
class Loaded:
    """A converted file: its Parquet columns (name: Arrow type, in order), rows, and invalid values found."""

    columns: dict[str, str]
    rows: list[tuple[Any, ...]]
    bad_records: int = 0  # "errors: N record(s) with undecodable values"
    error_lines: tuple[str, ...] = ()  # each printed as is


@dataclass(frozen=True)
class Refused:
    """A file not converted: the exit code and a part of the message."""

    exit_code: int
    message: str


@dataclass(frozen=True)
class Case:
    id: str
    copybook: str
    data: bytes
    flags: tuple[str, ...]  # the flags under test
    options: str  # the same options, as the YAML lines of the spec's `copybook:` block (with `base`'s)
    want: Loaded
    default: Loaded | Refused  # the outcome without `flags`
    base: tuple[str, ...] = ()  # flags of both runs (e.g. the record format)


# --- copybooks -------------------------------------------------------------------------------------------

TWO_RECORDS = """\
      * a file header record and detail records in one record area
       01  HDR-REC.
           05  H-TYPE      PIC X.
           05  H-DATE      PIC 9(8).
       01  DTL-REC.
           05  D-TYPE      PIC X.
           05  D-ID        PIC 9(3).
           05  D-NAME      PIC X(5).
"""
VARIABLE = """\
       01  VAR-REC.
           05  R-ID        PIC 9(2).
           05  R-CNT       PIC 9.
           05  R-ITEM      PIC X(2) OCCURS 1 TO 3 DEPENDING ON R-CNT.
"""
LENGTH_FIELD = """\
       01  LEN-REC.
           05  V-LEN       PIC 9(4) COMP.
           05  V-CNT       PIC 9.
           05  V-ITEM      PIC X(2) OCCURS 1 TO 3 DEPENDING ON V-CNT.
"""
AMOUNTS = """\
       01  AMT-REC.
           05  A-ID        PIC 9(2).
           05  A-AMT       PIC S9(3)V9 COMP-3.
"""
REDEFINED = """\
       01  PART-REC.
           05  P-ID        PIC 9.
           05  P-NUM       PIC 9(4).
           05  P-TXT REDEFINES P-NUM PIC X(4).
"""
FLOATS = """\
       01  FLT-REC.
           05  F-ID        PIC 9(2).
           05  F-DOUBLE    COMP-2.
           05  F-SINGLE    COMP-1.
"""
NATIVE = """\
       01  BIN-REC.
           05  C-HALF      PIC S9(4) COMP-5.
           05  C-FULL      PIC S9(9) COMP-5.
           05  C-COMP      PIC 9(4) COMP.
"""
EDITED = """\
       01  EDT-REC.
           05  E-ID        PIC 9.
           05  E-AMT       PIC -Z,ZZ9.99.
           05  E-QTY       PIC ZZ9CR.
"""
NAMES = """\
       01  NAME-REC.
           05  T-ID        PIC 9.
           05  T-NAME      PIC X(6).
"""
FREE_FORMAT = """\
*> free format: code from column 1, '*>' comments
01 FREE-REC.
  05 S-ID PIC 9(2).   *> the id
  05 S-NAME PIC X(4).
"""
BLANKS = """\
       01  BLANK-REC.
           05  N-ID        PIC 9.
           05  N-NAME      PIC X(3).
           05  N-ZONED     PIC 9(3).
           05  N-PACKED    PIC S9(3) COMP-3.
           05  N-BIN       PIC S9(4) COMP-5.
           05  N-FLOAT     COMP-1.
"""

# --- records ---------------------------------------------------------------------------------------------

DETAILS = e("D001ANNA ") + e("D002BOB  ")
VAR_RECORDS = (e("011AA"), e("023BBCCDD"))  # 5 and 9 bytes
VAR_COLUMNS = {"r_id": "int64", "r_cnt": "int64", "r_item_1": "string", "r_item_2": "string", "r_item_3": "string"}
VAR_ROWS = [(1, 1, "AA", None, None), (2, 3, "BB", "CC", "DD")]
LEN_COLUMNS = {"v_len": "int64", "v_cnt": "int64", "v_item_1": "string", "v_item_2": "string", "v_item_3": "string"}
AMOUNT_RECORDS = e("01") + h("01234C") + e("02") + h("00005D")  # +123.4, -0.5
AMT_COLUMNS = {"a_id": "int64", "a_amt": "decimal128(4, 1)"}
AMT_ROWS = [(1, Decimal("123.4")), (2, Decimal("-0.5"))]
FLT_COLUMNS = {"f_id": "int64", "f_double": "double", "f_single": "double"}
BIN_COLUMNS = {"c_half": "int64", "c_full": "int64", "c_comp": "int64"}
NAME_COLUMNS = {"t_id": "int64", "t_name": "string"}
NAME_RECORDS = e("1  AB  ") + e("2CD    ") + e("3      ")
BLANK_COLUMNS = {
    "n_id": "int64", "n_name": "string", "n_zoned": "int64", "n_packed": "int64", "n_bin": "int64", "n_float": "double"
}  # fmt: skip
# 1: values; 2: every field LOW-VALUES (x'00'); 3: every field spaces (x'40')
BLANK_RECORDS = (
    e("1ABC123") + h("123C") + h("0007") + h("41100000")
    + e("2") + h("000000") + h("000000") + h("0000") + h("0000") + h("00000000")
    + e("3") + e("   ") + e("   ") + h("4040") + h("4040") + h("40404040")
)  # fmt: skip
SPACES_AS_FLOAT = 0x404040 / 2**24  # x'40404040' read as an IBM hexadecimal float: 16**0 * 0x404040 / 16**6
BLANK_DEFAULT_ROWS = [
    (1, "ABC", 123, 123, 7, 1.0),
    (2, "", None, None, 0, 0.0),
    (3, "", None, None, 0x4040, SPACES_AS_FLOAT),
]
RDW_PAST_EOF = Refused(1, "rejected (rdw_past_eof)")
INVALID_RDW = Refused(1, "rejected (invalid_rdw)")

CASES = [
    # --- record selection: --record, --segments, --redefines ---
    Case(
        "record",
        TWO_RECORDS,
        DETAILS,
        ("--record", "DTL-REC"),
        "record: DTL-REC",
        Loaded({"d_type": "string", "d_id": "int64", "d_name": "string"}, [("D", 1, "ANNA"), ("D", 2, "BOB")]),
        Refused(2, "the copybook defines several records (HDR-REC, DTL-REC): set `record:`"),
    ),
    Case(
        "segments",
        TWO_RECORDS,
        e("H20251201") + DETAILS,
        ("--segments", "H-TYPE:H=HDR-REC,D=DTL-REC"),
        "segments: {field: H-TYPE, when: {H: HDR-REC, D: DTL-REC}}",
        Loaded(
            {
                "_segment": "string",
                "h_type": "string",
                "h_date": "int64",
                "d_type": "string",
                "d_id": "int64",
                "d_name": "string",
            },
            [
                ("hdr-rec", "H", 20251201, None, None, None),
                ("dtl-rec", None, None, "D", 1, "ANNA"),
                ("dtl-rec", None, None, "D", 2, "BOB"),
            ],
        ),
        Refused(2, "the copybook defines several records (HDR-REC, DTL-REC)"),
    ),
    Case(
        "redefines-fixed-branch",
        REDEFINED,
        e("10042") + e("2AB  "),
        ("--redefines", "P-NUM=P-TXT"),
        "redefines: {P-NUM: P-TXT}",
        Loaded({"p_id": "int64", "p_txt": "string"}, [(1, "0042"), (2, "AB")]),
        Loaded({"p_id": "int64", "p_num": "int64", "p_txt": "string"}, [(1, 42, "0042"), (2, None, "AB")]),
    ),
    # --- RDW variants ---
    Case(
        "rdw-byte-order-little",
        VARIABLE,
        h("09000000") + VAR_RECORDS[0] + h("0D000000") + VAR_RECORDS[1],
        ("--rdw-byte-order", "little"),
        "record_format: rdw\nrdw_byte_order: little",
        Loaded(VAR_COLUMNS, VAR_ROWS),
        RDW_PAST_EOF,  # x'0900' big-endian is 2304 bytes
        base=("--record-format", "rdw"),
    ),
    Case(
        "rdw-excludes-header",
        VARIABLE,
        h("00050000") + VAR_RECORDS[0] + h("00090000") + VAR_RECORDS[1],
        ("--no-rdw-includes-header",),
        "record_format: rdw\nrdw_includes_header: false",
        Loaded(VAR_COLUMNS, VAR_ROWS),
        INVALID_RDW,  # a 1-byte first record, then an "RDW" of text
        base=("--record-format", "rdw"),
    ),
    Case(
        "rdw-length-at-2",
        VARIABLE,
        h("00000009") + VAR_RECORDS[0] + h("0000000D") + VAR_RECORDS[1],
        ("--rdw-length-at", "2"),
        "record_format: rdw\nrdw_length_at: 2",
        Loaded(VAR_COLUMNS, VAR_ROWS),
        INVALID_RDW,
        base=("--record-format", "rdw"),
    ),
    Case(
        "rdw-length-at-2-little-excluding-header",
        VARIABLE,
        h("00000500") + VAR_RECORDS[0] + h("00000900") + VAR_RECORDS[1],
        ("--rdw-length-at", "2", "--rdw-byte-order", "little", "--no-rdw-includes-header"),
        "record_format: rdw\nrdw_length_at: 2\nrdw_byte_order: little\nrdw_includes_header: false",
        Loaded(VAR_COLUMNS, VAR_ROWS),
        INVALID_RDW,
        base=("--record-format", "rdw"),
    ),
    # --- length field ---
    Case(
        "length-field",
        LENGTH_FIELD,  # the length counts the bytes after the 2-byte length field
        h("0003") + e("1AA") + h("0007") + e("3BBCCDD") + h("0005") + e("2EEFF"),
        ("--length-field", "V-LEN", "--length-adjust", "2"),
        "record_format: length_field\nrecord_length_field: V-LEN\nrecord_length_adjust: 2",
        Loaded(LEN_COLUMNS, [(3, 1, "AA", None, None), (7, 3, "BB", "CC", "DD"), (5, 2, "EE", "FF", None)]),
        Refused(2, "record_length_field: record_format length_field needs record_length_field"),
        base=("--record-format", "length_field"),
    ),
    Case(
        "length-adjust-negative",
        LENGTH_FIELD,  # the length counts 4 bytes more than the record (a stripped RDW)
        h("0009") + e("1AA") + h("000D") + e("3BBCCDD"),
        ("--length-adjust", "-4"),
        "record_format: length_field\nrecord_length_field: V-LEN\nrecord_length_adjust: -4",
        Loaded(LEN_COLUMNS, [(9, 1, "AA", None, None), (13, 3, "BB", "CC", "DD")]),
        RDW_PAST_EOF,  # a first record of 9 bytes leaves 5: the next "length" is x'C2C3' (EBCDIC "BC")
        base=("--record-format", "length_field", "--length-field", "V-LEN"),
    ),
    # --- file header and trailer bytes ---
    Case(
        "header-bytes",
        AMOUNTS,
        e("HDR25") + AMOUNT_RECORDS,  # a header as long as a record
        ("--header-bytes", "5"),
        "header_bytes: 5",
        Loaded(AMT_COLUMNS, AMT_ROWS),
        Loaded(
            AMT_COLUMNS,
            [(None, None), *AMT_ROWS],
            1,
            (
                "record 1 (byte 0): a_id at byte 0 of the record = x'C8C4': bad zoned digit",
                "record 1 (byte 0): a_amt at byte 2 of the record = x'D9F2F5': bad packed nibble",
            ),
        ),
    ),
    Case(
        "trailer-bytes",
        AMOUNTS,
        AMOUNT_RECORDS + e("TRL2"),
        ("--trailer-bytes", "4"),
        "trailer_bytes: 4",
        Loaded(AMT_COLUMNS, AMT_ROWS),
        Refused(1, "rejected (truncated_record): X.DAT: record 3 at byte 10: the last record has only 4 of 5 bytes"),
    ),
    Case(
        "header-and-trailer-bytes",
        AMOUNTS,
        e("HDR20251201") + AMOUNT_RECORDS + e("EOF"),
        ("--header-bytes", "11", "--trailer-bytes", "3"),
        "header_bytes: 11\ntrailer_bytes: 3",
        Loaded(AMT_COLUMNS, AMT_ROWS),
        Refused(1, "rejected (truncated_record): X.DAT: record 5 at byte 20: the last record has only 4 of 5 bytes"),
    ),
    # --- values: floats, COMP-5, edited numbers, text ---
    Case(
        "float-format-ieee",
        FLOATS,  # 1.5, -2.5; -123.453125, 0.25 in IEEE big-endian
        e("01") + h("3FF8000000000000") + h("C0200000") + e("02") + h("C05EDD0000000000") + h("3E800000"),
        ("--float-format", "ieee"),
        "float_format: ieee",
        Loaded(FLT_COLUMNS, [(1, 1.5, -2.5), (2, -123.453125, 0.25)]),
        Loaded(
            FLT_COLUMNS,  # as IBM hexadecimal floats: 16**(exponent - 64) * fraction
            [
                (1, 16.0**-1 * 0xF8 / 2**8, -(16.0**0) * 0x20 / 2**8),
                (2, -(16.0**0) * 0x5EDD / 2**16, 16.0**-2 * 0x80 / 2**8),
            ],
        ),
    ),
    Case(
        "float-format-ieee-little",
        FLOATS,  # 1.5, -2.5 in IEEE little-endian (x86 COBOL)
        e("01") + h("000000000000F83F") + h("000020C0"),
        ("--float-format", "ieee_little"),
        "float_format: ieee_little",
        Loaded(FLT_COLUMNS, [(1, 1.5, -2.5)]),
        Loaded(FLT_COLUMNS, [(1, 16.0**-64 * 0xF83F / 2**56, 16.0**-64 * 0x20C0 / 2**24)]),
    ),
    Case(
        "comp5-byte-order-little",
        NATIVE,  # COMP-5 little-endian (x86 COBOL); COMP stays big-endian
        h("3930") + h("FEFFFFFF") + h("0102") + h("0080") + h("00000080") + h("0001"),
        ("--comp5-byte-order", "little"),
        "comp5_byte_order: little",
        Loaded(BIN_COLUMNS, [(12345, -2, 258), (-32768, -(2**31), 1)]),
        Loaded(BIN_COLUMNS, [(0x3930, -0x01000001, 258), (0x0080, 0x00000080, 1)]),
    ),
    Case(
        "edited-numbers-text",
        EDITED,
        e("1-1,234.50 12CR") + e("2     7.05  3  "),
        ("--edited-numbers", "text"),
        "edited_numbers: text",
        Loaded(
            {"e_id": "int64", "e_amt": "string", "e_qty": "string"},
            [(1, "-1,234.50", " 12CR"), (2, "     7.05", "  3")],  # trimmed on the right only
        ),
        Loaded(
            {"e_id": "int64", "e_amt": "decimal128(6, 2)", "e_qty": "int64"},
            [(1, Decimal("-1234.50"), -12), (2, Decimal("7.05"), 3)],
        ),
    ),
    Case(
        "trim-both",
        NAMES,
        NAME_RECORDS,
        ("--trim", "both"),
        "trim: both",
        Loaded(NAME_COLUMNS, [(1, "AB"), (2, "CD"), (3, "")]),
        Loaded(NAME_COLUMNS, [(1, "  AB"), (2, "CD"), (3, "")]),
    ),
    Case(
        "trim-none",
        NAMES,
        NAME_RECORDS,
        ("--trim", "none"),
        "trim: none",
        Loaded(NAME_COLUMNS, [(1, "  AB  "), (2, "CD    "), (3, "      ")]),
        Loaded(NAME_COLUMNS, [(1, "  AB"), (2, "CD"), (3, "")]),
    ),
    # --- the copybook's source format ---
    Case(
        "source-format-free",
        FREE_FORMAT,
        e("01ANNA") + e("02BOB "),
        ("--source-format", "free"),
        "source_format: free",
        Loaded({"s_id": "int64", "s_name": "string"}, [(1, "ANNA"), (2, "BOB")]),
        Refused(
            2,
            "line 1: unknown indicator 'e' in column 7 (use '*' or '/' for comments, '-' for continuation; "
            "or set source_format: free)",
        ),
    ),
    # --- null detection ---
    Case(
        "null-low-values-all",
        BLANKS,
        BLANK_RECORDS,
        ("--null-low-values", "all"),
        "null_low_values: all",
        Loaded(
            BLANK_COLUMNS,
            [BLANK_DEFAULT_ROWS[0], (2, None, None, None, None, None), BLANK_DEFAULT_ROWS[2]],
        ),
        Loaded(BLANK_COLUMNS, BLANK_DEFAULT_ROWS),
    ),
    Case(
        "null-low-values-none",
        BLANKS,
        BLANK_RECORDS,
        ("--null-low-values", "none"),
        "null_low_values: none",
        Loaded(
            BLANK_COLUMNS,
            BLANK_DEFAULT_ROWS,
            1,
            (
                "record 2 (byte 15): n_zoned at byte 4 of the record = x'000000': bad zoned digit",
                "record 2 (byte 15): n_packed at byte 7 of the record = x'0000': bad packed sign nibble",
            ),
        ),
        Loaded(BLANK_COLUMNS, BLANK_DEFAULT_ROWS),
    ),
    Case(
        "null-spaces-all",
        BLANKS,
        BLANK_RECORDS,
        ("--null-spaces", "all"),
        "null_spaces: all",
        Loaded(
            BLANK_COLUMNS,
            [*BLANK_DEFAULT_ROWS[:2], (3, None, None, None, None, None)],
        ),
        Loaded(BLANK_COLUMNS, BLANK_DEFAULT_ROWS),
    ),
    Case(
        "null-spaces-none",
        BLANKS,
        BLANK_RECORDS,
        ("--null-spaces", "none"),
        "null_spaces: none",
        Loaded(
            BLANK_COLUMNS,
            BLANK_DEFAULT_ROWS,
            1,
            (
                "record 3 (byte 30): n_zoned at byte 4 of the record = x'404040': bad zoned digit",
                "record 3 (byte 30): n_packed at byte 7 of the record = x'4040': bad packed sign nibble",
            ),
        ),
        Loaded(BLANK_COLUMNS, BLANK_DEFAULT_ROWS),
    ),
]


# --- running the command ---------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No copybook of the real BULKSYNC_HOME is found for the YAML file's relative path; wide output (no
    message is wrapped whatever the terminal)."""
    monkeypatch.setenv("BULKSYNC_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("COLUMNS", "400")


def spec_block(options: str, copybook: str) -> str:
    """A file_drop dataset's ``source.options`` as it stands in a pipeline spec."""
    indented = "".join(f"  {line}\n" for line in options.splitlines())
    return (
        "# a file_drop dataset's source.options, pasted from dags/pipelines/acme__drops.yaml\n"
        "landing: /data/landing/acme/mainframe\n"
        'pattern: "X*.DAT"\n'
        "format: copybook\n"
        "on_record_errors: load\n"
        "copybook:\n"
        f"  copybook: {copybook}\n"
        f"{indented}"
    )


def flat(text: str) -> str:
    return " ".join(text.split())


def convert(tmp_path: Path, data: bytes, args: list[str], want: Loaded | Refused) -> None:
    """Run ``bulksync convert`` on ``data`` with ``args``; assert the outcome is ``want``."""
    src = tmp_path / "X.DAT"
    src.write_bytes(data)
    out = tmp_path / "x.parquet"
    out.unlink(missing_ok=True)
    result = runner.invoke(app, ["convert", str(src), "-o", str(out), *args])
    text = flat(result.output)
    assert result.exception is None or isinstance(result.exception, SystemExit), text
    if isinstance(want, Refused):
        assert (result.exit_code, out.exists()) == (want.exit_code, False), text
        assert want.message in text
        return
    assert result.exit_code == 0, text
    table = pq.read_table(out)
    got = Loaded(
        {f.name: str(f.type) for f in table.schema},
        [tuple(row.values()) for row in table.to_pylist()],
        int(text.split("errors: ", 1)[1].split(" ", 1)[0]),
        tuple(line for line in want.error_lines if line in text),
    )
    assert got == want, text


def write_copybook(tmp_path: Path, case: Case) -> Path:
    cpy = tmp_path / "rec.cpy"
    cpy.write_text(case.copybook, encoding="ascii")
    return cpy


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_flag(case: Case, tmp_path: Path) -> None:
    cpy = write_copybook(tmp_path, case)
    convert(tmp_path, case.data, ["--copybook", str(cpy), *case.base, *case.flags], case.want)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_options_file(case: Case, tmp_path: Path) -> None:
    """The spec's option block alone (copybook path relative to the YAML file, as a pipeline's)."""
    write_copybook(tmp_path, case)
    opts = tmp_path / "x.yaml"
    opts.write_text(spec_block(case.options, "rec.cpy"), encoding="utf-8")
    convert(tmp_path, case.data, ["--options", str(opts)], case.want)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_without_the_flag(case: Case, tmp_path: Path) -> None:
    """The default reads the same file otherwise: the flag is what makes the difference."""
    assert case.default != case.want
    cpy = write_copybook(tmp_path, case)
    convert(tmp_path, case.data, ["--copybook", str(cpy), *case.base], case.default)


# --- bad values ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bad:
    id: str
    flags: tuple[str, ...]
    options: str | None  # the same in the YAML file (None: a command-line syntax error only)
    message: tuple[str, ...]  # parts of the error


def literal(option: str, allowed: str, given: str) -> tuple[str, ...]:
    return ("invalid options", option, f"Input should be {allowed}", f"input_value={given}")


BAD = [
    Bad("rdw-length-at", ("--record-format", "rdw", "--rdw-length-at", "1"), "record_format: rdw\nrdw_length_at: 1",
        literal("rdw_length_at", "0 or 2", "1")),
    Bad("rdw-length-at-not-a-number", ("--rdw-length-at", "two"), None,
        ("Invalid value for '--rdw-length-at'", "valid integer")),
    Bad("rdw-byte-order", ("--rdw-byte-order", "middle"), "rdw_byte_order: middle",
        literal("rdw_byte_order", "'big' or 'little'", "'middle'")),
    Bad("float-format", ("--float-format", "vax"), "float_format: vax",
        literal("float_format", "'ibm_hex', 'ieee' or 'ieee_little'", "'vax'")),
    Bad("comp5-byte-order", ("--comp5-byte-order", "native"), "comp5_byte_order: native",
        literal("comp5_byte_order", "'big' or 'little'", "'native'")),
    Bad("source-format", ("--source-format", "fre"), "source_format: fre",
        literal("source_format", "'fixed' or 'free'", "'fre'")),
    Bad("edited-numbers", ("--edited-numbers", "string"), "edited_numbers: string",
        literal("edited_numbers", "'decimal' or 'text'", "'string'")),
    Bad("null-low-values", ("--null-low-values", "some"), "null_low_values: some",
        literal("null_low_values", "'numbers', 'all' or 'none'", "'some'")),
    Bad("null-spaces", ("--null-spaces", "text"), "null_spaces: text",
        literal("null_spaces", "'numbers', 'all' or 'none'", "'text'")),
    Bad("trim", ("--trim", "left"), "trim: left", literal("trim", "'right', 'both' or 'none'", "'left'")),
    Bad("header-bytes", ("--header-bytes", "-1"), "header_bytes: -1",
        ("invalid options", "header_bytes", "greater than or equal to 0", "input_value=-1")),
    Bad("trailer-bytes", ("--trailer-bytes", "-4"), "trailer_bytes: -4",
        ("invalid options", "trailer_bytes", "greater than or equal to 0", "input_value=-4")),
    Bad("length-adjust-not-a-number", ("--length-adjust", "+two"), None, ("Invalid value for '--length-adjust'",)),
    Bad("length-field-unknown", ("--record-format", "length_field", "--length-field", "V-SIZE"),
        "record_format: length_field\nrecord_length_field: V-SIZE",
        ("SpecError", "record_length_field: no field V-SIZE")),
    Bad("length-field-text", ("--record-format", "length_field", "--length-field", "V-ITEM"),
        "record_format: length_field\nrecord_length_field: V-ITEM",
        ("record_length_field: the length field must be a numeric field at a fixed offset",)),
    Bad("record-unknown", ("--record", "TRL-REC"), "record: TRL-REC",
        ("SpecError", "record: no 01 record 'TRL-REC' in the copybook (it has: LEN-REC)")),
    Bad("segments-no-record", ("--segments", "V-CNT:1"), None, ("--segments", "'1': expected VALUE=NAME")),
    Bad("segments-unknown-field", ("--segments", "V-TYPE:1=LEN-REC"),
        "segments: {field: V-TYPE, when: {'1': LEN-REC}}", ("segments.field: no field V-TYPE in the copybook",)),
]  # fmt: skip


@pytest.mark.parametrize(
    ("bad", "via"),
    [
        *(pytest.param(b, "flag", id=f"{b.id}-flag") for b in BAD),
        *(pytest.param(b, "options", id=f"{b.id}-options") for b in BAD if b.options is not None),
    ],
)
def test_bad_value_names_the_option(bad: Bad, via: str, tmp_path: Path) -> None:
    cpy = tmp_path / "rec.cpy"
    cpy.write_text(LENGTH_FIELD, encoding="ascii")
    if via == "flag":
        args = ["--copybook", str(cpy), *bad.flags]
    else:
        assert bad.options is not None
        opts = tmp_path / "x.yaml"
        opts.write_text(spec_block(bad.options, "rec.cpy"), encoding="utf-8")
        args = ["--options", str(opts)]
    src = tmp_path / "X.DAT"
    src.write_bytes(h("0003") + e("1AA"))
    result = runner.invoke(app, ["convert", str(src), "-o", str(tmp_path / "x.parquet"), *args])
    text = flat(result.output)
    assert result.exit_code == 2, text
    assert [m for m in bad.message if m not in text] == [], text
    assert not (tmp_path / "x.parquet").exists()
