"""End to end: `airflow dags test acme__ibmi` on the sample IBM i library (SQLite stand-in).

Real Airflow (SQLite metadata in a temporary AIRFLOW_HOME), the real DAG file and spec: the
order lines are extracted by four mapped tasks (plan_extract → extract[0..3] → commit_extract).
The warehouse is compared with the source library read independently with sqlite3: every order
line (whole-table checksum, dates decoded here by hand), and exactly the orders changed in the
run's data interval.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import sqlite3
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.airflow_env import airflow_env

LOGICAL = "2026-01-02T02:00:00+00:00"
START, END = dt.datetime(2026, 1, 1, 2), dt.datetime(2026, 1, 2, 2)
LINES = 4_000


def _run(cmd: list[str], env: dict[str, str], cwd: Path) -> str:
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"{cmd} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("e2e_ibmi")
    local = home / ".local"
    env = airflow_env(
        home,
        {
            "AIRFLOW_CONN_ACME_AS400": f"sqlite:///{local}/demo/as400.db",
            "AIRFLOW_CONN_ACME_WAREHOUSE": f"sqlite:///{local}/demo/warehouse.db",
            "AIRFLOW_CONN_ACME_CRM": f"sqlite:///{local}/demo/crm.db",
        },
    )
    (local / "demo").mkdir(parents=True)
    bindir = Path(sys.executable).parent
    url = f"sqlite:///{local}/demo/as400.db"
    _run([str(bindir / "bulksync"), "sandbox", "ibmi", "--url", url, "--order-lines", str(LINES)], env, home)
    _run([str(bindir / "airflow"), "db", "migrate"], env, home)
    out = _run([str(bindir / "airflow"), "dags", "test", "acme__ibmi", LOGICAL], env, home)
    assert "state=success" in out and "state=failed" not in out
    return home


def _rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    con = sqlite3.connect(db)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _cyymmdd(v: int) -> str:
    return f"{1900 + v // 10_000:04d}-{v // 100 % 100:02d}-{v % 100:02d}"


def _stamp(d: int, t: int) -> str:
    return f"{_cyymmdd(d)} {t // 10_000:02d}:{t // 100 % 100:02d}:{t % 100:02d}.000000Z"  # SQLite target text


def _digest(rows: list[tuple[Any, ...]]) -> str:
    return hashlib.sha256(repr(sorted(rows)).encode()).hexdigest()


def test_order_lines_from_four_mapped_chunks_equal_the_source(ran: Path) -> None:
    source = _rows(
        ran / ".local/demo/as400.db",
        'SELECT LINSEQ, ORDNUM, LINNUM, ITEM, QTY, PRICE, AMOUNT, DLVDAT, CHGDAT, CHGTIM FROM "ORDLIN"',
    )
    expected = [
        (int(s), int(o), int(n), i.rstrip(), int(q), str(Decimal(repr(p)).quantize(Decimal("0.01"))),
         str(Decimal(repr(a)).quantize(Decimal("0.01"))), _cyymmdd(int(d)), _stamp(int(cd), int(ct)))
        for s, o, n, i, q, p, a, d, cd, ct in source
    ]  # fmt: skip
    loaded = _rows(
        ran / ".local/demo/warehouse.db",
        "SELECT LINSEQ, ORDNUM, LINNUM, ITEM, QTY, PRICE, AMOUNT, DELIVERY_DATE, CHANGED_AT FROM as400_order_lines",
    )
    got = [(int(s), int(o), int(n), i, int(q), p, a, d, c) for s, o, n, i, q, p, a, d, c in loaded]
    assert len(got) == LINES
    assert _digest(got) == _digest(expected)
    part = next((ran / ".local/staging/acme/ibmi/order_lines").glob("2026*"))
    manifest = json.loads((part / "_manifest.json").read_text())
    assert manifest["extra"]["chunks"] == 4 and sum(manifest["extra"]["chunk_rows"]) == LINES
    assert min(manifest["extra"]["chunk_rows"]) > 0


def test_orders_of_the_interval_only(ran: Path) -> None:
    source = _rows(ran / ".local/demo/as400.db", 'SELECT ORDNUM, CHGDAT, CHGTIM, ORDNOTE FROM "ORDHDR"')
    expected = {}
    for num, d, t, note in source:
        changed = dt.datetime.strptime(_stamp(int(d), int(t)), "%Y-%m-%d %H:%M:%S.%fZ")
        if START <= changed < END:
            expected[int(num)] = note.decode("cp037").rstrip()
    loaded = _rows(ran / ".local/demo/warehouse.db", "SELECT ORDNUM, ORDNOTE FROM as400_orders")
    assert expected and {int(n): note for n, note in loaded} == expected
