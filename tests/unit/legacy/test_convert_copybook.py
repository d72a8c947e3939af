"""``bulksync convert`` with copybook files: every reader option reachable as a flag, ``--set`` or ``--options``."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from bulksync.cli import app

runner = CliRunner()
PAY = """\
       01  PAY-REC.
           05  P-TYPE          PIC X.
           05  P-ID            PIC 9(4).
           05  P-BODY.
               10  P-NAME      PIC X(6).
               10  P-AMT       PIC S9(5)V99 COMP-3.
           05  P-CARD REDEFINES P-BODY.
               10  P-CARD-NO   PIC 9(4).
"""


def e(text: str) -> bytes:
    return text.encode("cp037")


def le_rdw(body: bytes) -> bytes:
    return len(body).to_bytes(2, "little") + b"\0\0" + body  # little-endian, length without the RDW


RECORDS = [e("H20251201"), e("B0001ANNA  ") + bytes.fromhex("0012345C"), e("C00021234"), e("T2")]
WANT = [
    {"p_type": "B", "p_id": 1, "p_name": "ANNA", "p_amt": Decimal("123.45"), "p_card_no": None},
    {"p_type": "C", "p_id": 2, "p_name": None, "p_amt": None, "p_card_no": 1234},
]


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    (tmp_path / "pay.cpy").write_text(PAY)
    src = tmp_path / "PAY.DAT"
    src.write_bytes(b"".join(le_rdw(r) for r in RECORDS))
    return tmp_path / "pay.cpy", src


def test_flags_reach_every_option(files: tuple[Path, Path], tmp_path: Path) -> None:
    cpy, src = files
    out = tmp_path / "pay.parquet"
    result = runner.invoke(app, [
        "convert", str(src), "-o", str(out), "--copybook", str(cpy), "--record-format", "rdw",
        "--rdw-byte-order", "little", "--no-rdw-includes-header", "--redefines", "P-BODY=P-TYPE:B=P-BODY,C=P-CARD",
        "--skip", "P-TYPE=H,T", "--strict", "--trim", "right", "--set", "null_spaces=numbers",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert pq.read_table(out).to_pylist() == WANT
    text = " ".join(result.output.split())
    assert "PAY.DAT: 2 rows" in text and "p_amt: decimal128(7, 2)" in text


def test_header_and_trailer_records_by_count(files: tuple[Path, Path], tmp_path: Path) -> None:
    cpy, src = files
    out = tmp_path / "pay.parquet"
    result = runner.invoke(app, [
        "convert", str(src), "-o", str(out), "--copybook", str(cpy), "--record-format", "rdw",
        "--rdw-byte-order", "little", "--no-rdw-includes-header", "--header-records", "1", "--trailer-records", "1",
        "--redefines", "P-BODY=P-TYPE:B=P-BODY,C=P-CARD",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert pq.read_table(out).to_pylist() == WANT


SPEC_BLOCK = """\
# the dataset's source.options of a file_drop spec, pasted as is
landing: /data/landing/pay
pattern: "PAY*.DAT"
format: copybook
on_record_errors: quarantine_file
copybook:
  copybook: pay.cpy
  record_format: rdw
  rdw_byte_order: little
  rdw_includes_header: false
  skip_records: {field: P-TYPE, values: [H, T]}
  redefines:
    P-BODY: {field: P-TYPE, when: {B: P-BODY, C: P-CARD}}
"""


def test_options_file_holds_the_spec_block(files: tuple[Path, Path], tmp_path: Path) -> None:
    _cpy, src = files
    opts = tmp_path / "pay.yaml"
    opts.write_text(SPEC_BLOCK)
    out = tmp_path / "pay.parquet"
    result = runner.invoke(app, ["convert", str(src), "-o", str(out), "--options", str(opts)])
    assert result.exit_code == 0, result.output
    assert pq.read_table(out).to_pylist() == WANT
    # the copybook block alone, and a flag overriding it
    opts.write_text("copybook: pay.cpy\nrecord_format: rdw\nrdw_byte_order: big\nrdw_includes_header: false\n"
                    "skip_records: {field: P-TYPE, values: [H, T]}\nredefines: {P-BODY: P-CARD}\n")  # fmt: skip
    result = runner.invoke(app, ["convert", str(src), "-o", str(out), "--options", str(opts),
                                 "--rdw-byte-order", "little"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert [r["p_card_no"] for r in pq.read_table(out).to_pylist()] == [None, 1234]  # ANNA's bytes are no number


def test_strict_rejects_the_file_and_names_record_and_field(files: tuple[Path, Path], tmp_path: Path) -> None:
    cpy, src = files
    src.write_bytes(le_rdw(RECORDS[1][:11] + bytes.fromhex("00123A5C")) + le_rdw(RECORDS[2]))
    args = [
        "convert",
        str(src),
        "-o",
        str(tmp_path / "x.parquet"),
        "--copybook",
        str(cpy),
        "--record-format",
        "rdw",
        "--rdw-byte-order",
        "little",
        "--no-rdw-includes-header",
        "--redefines",
        "P-BODY=P-TYPE:B=P-BODY,C=P-CARD",
    ]
    result = runner.invoke(app, [*args, "--strict"])
    assert result.exit_code == 1
    text = " ".join(result.output.split())
    assert "rejected (record_errors)" in text and "record 1 (byte 0): p_amt at byte 11 of the record" in text
    result = runner.invoke(app, args)  # not strict: loaded with a null, the error printed
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "errors: 1 record(s)" in text and "p_amt at byte 11 of the record = x'00123A5C': bad packed" in text


def test_bad_options_file_and_rule(files: tuple[Path, Path], tmp_path: Path) -> None:
    _cpy, src = files
    opts = tmp_path / "o.yaml"
    opts.write_text("format: csv\ncolumns: []\n")
    result = runner.invoke(app, ["convert", str(src), "-o", str(tmp_path / "x.parquet"), "--options", str(opts)])
    assert result.exit_code == 2 and "expected the file_drop options block" in " ".join(result.output.split())
    result = runner.invoke(app, ["convert", str(src), "-o", str(tmp_path / "x.parquet"), "--copybook",
                                 str(files[0]), "--redefines", "P-BODY=P-TYPE:B"])  # fmt: skip
    assert result.exit_code == 2 and "expected VALUE=NAME" in " ".join(result.output.split())


def test_convert_imports_neither_airflow_nor_pandas(files: tuple[Path, Path], tmp_path: Path) -> None:
    """The start-up cost of `bulksync convert` (timed in bench/ebcdic_bench.py): no Airflow, no pandas."""
    cpy, src = files
    code = (
        "import sys\nfrom bulksync.cli import main\nsys.argv = ['bulksync', 'convert', sys.argv[1], '-o', sys.argv[2],"
        " '--copybook', sys.argv[3], '--record-format', 'rdw', '--rdw-byte-order', 'little',"
        " '--no-rdw-includes-header', '--skip', 'P-TYPE=H,T', '--redefines', 'P-BODY=P-TYPE:B=P-BODY,C=P-CARD']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print('HEAVY', sorted(m for m in ('airflow', 'pandas', 'sqlalchemy') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code, str(src), str(tmp_path / "y.parquet"), str(cpy)],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert "HEAVY []" in done.stdout, done.stdout + done.stderr
    assert pq.read_table(tmp_path / "y.parquet").num_rows == 2
