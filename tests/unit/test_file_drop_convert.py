"""``bulksync convert``: one file read with the pipelines' code, written to Parquet; rows, errors and schema printed."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pyarrow.parquet as pq
from typer.testing import CliRunner

import bulksync.sources.file_drop.source  # noqa: F401 - Airflow sets up logging on import: not inside CliRunner
from bulksync.cli import app

runner = CliRunner()


def test_convert_csv_with_declared_columns(tmp_path: Path) -> None:
    src = tmp_path / "orders.csv"
    src.write_bytes('id;name;amount\n1;"A; b";1.50\n2;Zoë;-2\n'.encode("cp1252"))
    out = tmp_path / "orders.parquet"
    result = runner.invoke(
        app,
        [
            "convert",
            str(src),
            "-o",
            str(out),
            "--delimiter",
            ";",
            "--encoding",
            "cp1252",
            "--columns",
            "id:int64,name:string,amount:decimal(9,2)",
        ],
    )
    assert result.exit_code == 0, result.output
    assert pq.read_table(out).to_pylist() == [
        {"id": 1, "name": "A; b", "amount": Decimal("1.50")},
        {"id": 2, "name": "Zoë", "amount": Decimal("-2.00")},
    ]
    text = " ".join(result.output.split())
    assert "orders.csv: 2 rows" in text and "amount: decimal128(9, 2)" in text and "id: int64" in text


def test_convert_detects_the_dialect_and_names_columns_from_the_header(tmp_path: Path) -> None:
    src = tmp_path / "new.csv"
    src.write_text("Order Id|Customer name\n7|x\n8|y\n", encoding="utf-8")
    out = tmp_path / "new.parquet"
    result = runner.invoke(app, ["convert", str(src), "-o", str(out), "--detect"])
    assert result.exit_code == 0, result.output
    assert pq.read_table(out).to_pylist() == [
        {"Order_Id": "7", "Customer_name": "x"},
        {"Order_Id": "8", "Customer_name": "y"},
    ]


def test_convert_fixed_width_layout(tmp_path: Path) -> None:
    layout = tmp_path / "layout.yaml"
    layout.write_text(
        "columns:\n"
        "  - {name: sku, type: string, start: 1, width: 5}\n"
        "  - {name: qty, type: int64, start: 6, width: 4}\n",
        encoding="utf-8",
    )
    src = tmp_path / "stock.txt"
    src.write_text("A1      7\nB2     12\n", encoding="latin-1")
    out = tmp_path / "stock.parquet"
    result = runner.invoke(app, ["convert", str(src), "-o", str(out), "--fixed-width", str(layout)])
    assert result.exit_code == 0, result.output
    assert pq.read_table(out).to_pylist() == [{"sku": "A1", "qty": 7}, {"sku": "B2", "qty": 12}]


def test_convert_copybook(tmp_path: Path) -> None:
    cpy = tmp_path / "acct.cpy"
    cpy.write_text("000100 01  ACCT-REC.\n000200     05  ACCT-ID  PIC 9(4).\n000300     05  ACCT-NM  PIC X(4).\n")
    src = tmp_path / "acct.dat"
    src.write_bytes("0001ANNA0002BOB ".encode("cp037"))
    out = tmp_path / "acct.parquet"
    result = runner.invoke(app, ["convert", str(src), "-o", str(out), "--copybook", str(cpy), "--code-page", "cp037"])
    assert result.exit_code == 0, result.output
    assert pq.read_table(out).to_pylist() == [{"acct_id": 1, "acct_nm": "ANNA"}, {"acct_id": 2, "acct_nm": "BOB"}]
    assert "errors: 0 record(s)" in result.output


def test_convert_names_the_bad_line_and_writes_nothing(tmp_path: Path) -> None:
    src = tmp_path / "bad.csv"
    src.write_text("id,amount\n1,2.00\nx,3.00\n", encoding="utf-8")
    out = tmp_path / "bad.parquet"
    result = runner.invoke(app, ["convert", str(src), "-o", str(out), "--columns", "id:int64,amount:decimal(9,2)"])
    assert result.exit_code == 1
    assert "rejected (bad_value): bad.csv, line 3, column 'id': value 'x' is not a valid int64" in " ".join(
        result.output.split()
    )
    assert not out.exists()
