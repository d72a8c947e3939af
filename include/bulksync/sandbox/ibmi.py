"""A sample IBM i library for the demo, the tests and the benchmark: ``ACMELIB``.

* ``QCUSTCDT``: customer master in the shape of IBM's well-known sample (CHAR names, NUMERIC
  zip code, credit limit, balance due);
* ``ORDHDR``: order headers with ``CYYMMDD`` order dates, ``HHMMSS`` times, a ``YYYYMMDD`` ship
  date (0 = not shipped), a ``YYMMDD`` promised date (all nines = none), a Julian ``CYYDDD``
  invoice date, a packed total, a ``FOR BIT DATA`` note holding cp037 (EBCDIC) bytes and the
  ``CHGDAT``/``CHGTIM`` pair of the last change; member ``ARCHIVE`` holds orders of 1998–2000
  (century digit 0, then 1);
* ``ORDLIN``: order lines (packed prices and amounts, ``CYYMMDD`` delivery dates), unique on
  ``LINSEQ``, scalable to millions of rows.

Everything is generated with a fixed seed, so the same size always gives the same data. Loaders
write it into SQLite (the demo), PostgreSQL (schema ``ACMELIB``, ``COPY``) and MariaDB (the
connection's database, batched ``executemany``); members other than the first are tables
``FILE__MEMBER`` (see :mod:`bulksync.ibmi.sqlgen`). Column texts become column comments.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import sqlalchemy as sa

log = logging.getLogger(__name__)

LIBRARY = "ACMELIB"
SEED = 400
EPOCH = dt.datetime(2025, 12, 29)  # orders span 2025-12-29 .. 2026-01-03 (local time of the IBM i)
SPAN_SECONDS = 5 * 86_400
NOTES = [
    "",
    "CALL BEFORE DELIVERY",
    "Lieferung an Tor 3",
    "Fragile: glass",
    "Paiement à 30 jours",
    "RUSH",
    "Leave at reception",
    "Größe prüfen",
]
ITEMS = ["BOLT-M8", "NUT-M8", "WASHER-8", "BRACKET-L", "HINGE-90", "PANEL-1200", "CABLE-3M", "GASKET-S"]
LAST_NAMES = ["Henning", "Jones", "Vine", "Johnson", "Tyron", "Stevens", "Alison", "Doe", "Thomas", "Williams", "Lee"]
CITIES = [("Dallas", "TX"), ("Clay", "NY"), ("Broton", "VT"), ("Helen", "GA"), ("Hector", "NY"), ("Denver", "CO")]


@dataclass(frozen=True)
class Col:
    """A column of the sample library: name, kind (char, num, bin), size, scale and column text."""

    name: str
    kind: str
    size: int
    scale: int = 0
    text: str = ""


QCUSTCDT = [
    Col("CUSNUM", "num", 6, 0, "Customer number"),
    Col("LSTNAM", "char", 8, 0, "Last name"),
    Col("INIT", "char", 3, 0, "First and middle initials"),
    Col("STREET", "char", 13, 0, "Street address"),
    Col("CITY", "char", 6, 0, "City"),
    Col("STATE", "char", 2, 0, "State"),
    Col("ZIPCOD", "num", 5, 0, "Zip code"),
    Col("CDTLMT", "num", 4, 0, "Credit limit"),
    Col("CHGCOD", "num", 1, 0, "Charge code"),
    Col("BALDUE", "num", 6, 2, "Balance due"),
    Col("CDTDUE", "num", 6, 2, "Credit due"),
]
ORDHDR = [
    Col("ORDNUM", "num", 9, 0, "Order number"),
    Col("CUSNUM", "num", 6, 0, "Customer number"),
    Col("ORDDAT", "num", 7, 0, "Order date CYYMMDD"),
    Col("ORDTIM", "num", 6, 0, "Order time HHMMSS"),
    Col("SHPDAT", "num", 8, 0, "Ship date YYYYMMDD, 0 = not shipped"),
    Col("PRMDAT", "num", 6, 0, "Promised date YYMMDD, 999999 = none"),
    Col("INVJUL", "num", 6, 0, "Invoice date CYYDDD (Julian)"),
    Col("STATUS", "char", 1, 0, "Status O/S/I/C"),
    Col("ORDTOT", "num", 11, 2, "Order total (packed)"),
    Col("ORDNOTE", "bin", 30, 0, "Note, CCSID 65535 (EBCDIC 37)"),
    Col("CHGDAT", "num", 7, 0, "Last change date CYYMMDD"),
    Col("CHGTIM", "num", 6, 0, "Last change time HHMMSS"),
]
ORDLIN = [
    Col("LINSEQ", "num", 11, 0, "Line sequence (unique)"),
    Col("ORDNUM", "num", 9, 0, "Order number"),
    Col("LINNUM", "num", 3, 0, "Line number"),
    Col("ITEM", "char", 15, 0, "Item number"),
    Col("QTY", "num", 7, 0, "Quantity"),
    Col("PRICE", "num", 9, 2, "Unit price (packed)"),
    Col("AMOUNT", "num", 11, 2, "Line amount (packed)"),
    Col("DLVDAT", "num", 7, 0, "Delivery date CYYMMDD"),
    Col("CHGDAT", "num", 7, 0, "Last change date CYYMMDD"),
    Col("CHGTIM", "num", 6, 0, "Last change time HHMMSS"),
]
LAYOUTS = {"QCUSTCDT": QCUSTCDT, "ORDHDR": ORDHDR, "ORDLIN": ORDLIN}
# (table, key columns, unique)
INDEXES = [
    ("QCUSTCDT", ["CUSNUM"], "pk"),
    ("ORDHDR", ["ORDNUM"], "pk"),
    ("ORDHDR__ARCHIVE", ["ORDNUM"], "pk"),
    ("ORDLIN", ["LINSEQ"], "pk"),
    ("ORDLIN", ["ORDNUM", "LINNUM"], "unique"),
    ("ORDLIN", ["ORDNUM"], "index"),
    ("ORDLIN", ["ITEM"], "index"),
]


# -- numeric IBM i encodings (NumPy) -----------------------------------------------------------


def _cyymmdd(days: np.ndarray) -> np.ndarray:
    d = days.astype("datetime64[D]")
    y = d.astype("datetime64[Y]").astype(np.int64) + 1970
    m = d.astype("datetime64[M]").astype(np.int64) % 12 + 1
    dd = (d - d.astype("datetime64[M]").astype("datetime64[D]")).astype(np.int64) + 1
    return (y - 1900) * 10_000 + m * 100 + dd


def _hhmmss(seconds: np.ndarray) -> np.ndarray:
    s = seconds % 86_400
    return (s // 3600) * 10_000 + (s % 3600 // 60) * 100 + s % 60


def _dec(values: np.ndarray) -> pa.Array:
    """Whole numbers as exact decimal128 values (NUMERIC(p, 0))."""
    return pa.array(values.astype(np.int64), pa.int64()).cast(pa.decimal128(38, 0))


def _cents(values: np.ndarray, size: int) -> pa.Array:
    text = pa.array([f"{v // 100}.{v % 100:02d}" for v in values.tolist()], pa.string())
    return text.cast(pa.decimal128(size, 2))


def customers(n: int) -> pa.Table:
    """The customer master (``QCUSTCDT``) of ``n`` customers."""
    rng = np.random.default_rng(SEED)
    cus = 100_000 + np.arange(n) * 37
    city = rng.integers(0, len(CITIES), n)
    return pa.table(
        {
            "CUSNUM": _dec(cus),
            "LSTNAM": pa.array([LAST_NAMES[i % len(LAST_NAMES)] for i in rng.integers(0, 1000, n)]),
            "INIT": pa.array([f"{chr(65 + a)} {chr(65 + b)}" for a, b in rng.integers(0, 26, (n, 2))]),
            "STREET": pa.array([f"{k} Main St" for k in rng.integers(1, 999, n)]),
            "CITY": pa.array([CITIES[i][0] for i in city]),
            "STATE": pa.array([CITIES[i][1] for i in city]),
            "ZIPCOD": _dec(rng.integers(501, 99_950, n)),  # some start with 0: 00501 …
            "CDTLMT": _dec(rng.integers(1, 100, n) * 100),
            "CHGCOD": _dec(rng.integers(1, 4, n)),
            "BALDUE": _cents(rng.integers(0, 999_999, n), 6),
            "CDTDUE": _cents(rng.integers(0, 99_999, n), 6),
        }
    )


def _notes(rng: np.random.Generator, n: int) -> pa.Array:
    pool = [t.encode("cp037").ljust(30, b"\x40") for t in NOTES]
    return pa.array([pool[i] for i in rng.integers(0, len(pool), n)], pa.binary())


def orders(n: int, customers_n: int, *, archive: bool = False) -> pa.Table:
    """Order headers (``ORDHDR``; with ``archive``, its ``ARCHIVE`` member of 1998–2000)."""
    rng = np.random.default_rng(SEED + (2 if archive else 1))
    base = (dt.datetime(1998, 6, 1) if archive else EPOCH) - dt.datetime(1970, 1, 1)
    start = int(base.total_seconds())
    span = 700 * 86_400 if archive else SPAN_SECONDS  # the archive crosses 2000-01-01
    ordnum = (1 if archive else 5_000_000) + np.arange(n)
    when = start + np.sort(rng.integers(0, span, n))
    changed = when + rng.integers(0, 36 * 3600, n)
    shipped = rng.random(n) < 0.6
    ship_days = when // 86_400 + rng.integers(1, 6, n)
    ship = np.where(shipped, (_cyymmdd(ship_days) + 19_000_000), 0)  # CYYMMDD + 19000000 = YYYYMMDD
    promised = _cyymmdd(when // 86_400 + rng.integers(3, 15, n)) % 1_000_000
    promised = np.where(rng.random(n) < 0.1, 999_999, promised)
    inv_days = (when // 86_400 + rng.integers(0, 20, n)).astype("datetime64[D]")
    inv_year = inv_days.astype("datetime64[Y]")
    julian = (
        (inv_year.astype(np.int64) + 70) * 1000 + (inv_days - inv_year.astype("datetime64[D]")).astype(np.int64) + 1
    )
    julian = np.where(shipped, julian, 0)
    return pa.table(
        {
            "ORDNUM": _dec(ordnum),
            "CUSNUM": _dec(100_000 + rng.integers(0, customers_n, n) * 37),
            "ORDDAT": _dec(_cyymmdd(when // 86_400)),
            "ORDTIM": _dec(_hhmmss(when)),
            "SHPDAT": _dec(ship),
            "PRMDAT": _dec(promised),
            "INVJUL": _dec(julian),
            "STATUS": pa.array(np.array(list("OSIC"))[rng.integers(0, 4, n)]),
            "ORDTOT": _cents(rng.integers(100, 5_000_000, n), 11),
            "ORDNOTE": _notes(rng, n),
            "CHGDAT": _dec(_cyymmdd(changed // 86_400)),
            "CHGTIM": _dec(_hhmmss(changed)),
        }
    )


def order_lines(lines: int, header: pa.Table) -> pa.Table:
    """``lines`` order lines spread over the orders of ``header`` (1–7 lines per order)."""
    rng = np.random.default_rng(SEED + 3)
    per = rng.integers(1, 8, header.num_rows)
    per[-1] += max(0, lines - int(per.sum()))
    order_idx = np.repeat(np.arange(header.num_rows), per)[:lines]
    first = np.concatenate([[0], np.cumsum(per)[:-1]])
    linnum = np.arange(lines) - first[order_idx] + 1
    ordnum = np.asarray(header["ORDNUM"].cast(pa.int64()).to_numpy())[order_idx]
    orddat = np.asarray(header["ORDDAT"].cast(pa.int64()).to_numpy())[order_idx]
    chgdat = np.asarray(header["CHGDAT"].cast(pa.int64()).to_numpy())[order_idx]
    chgtim = np.asarray(header["CHGTIM"].cast(pa.int64()).to_numpy())[order_idx]
    qty = rng.integers(1, 500, lines)
    price = rng.integers(5, 99_999, lines)
    base_days = _days_of_cyymmdd(orddat)
    return pa.table(
        {
            "LINSEQ": _dec(np.arange(1, lines + 1)),
            "ORDNUM": _dec(ordnum),
            "LINNUM": _dec(linnum),
            "ITEM": pa.array(np.array(ITEMS)[rng.integers(0, len(ITEMS), lines)]),
            "QTY": _dec(qty),
            "PRICE": _cents(price, 9),
            "AMOUNT": _cents(price * qty, 11),
            "DLVDAT": _dec(_cyymmdd(base_days + rng.integers(1, 30, lines))),
            "CHGDAT": _dec(chgdat),
            "CHGTIM": _dec(chgtim),
        }
    )


def _days_of_cyymmdd(codes: np.ndarray) -> np.ndarray:
    y = 1900 + codes // 10_000
    m = codes // 100 % 100
    d = codes % 100
    months = ((y - 1970) * 12 + m - 1).astype("datetime64[M]")
    return months.astype("datetime64[D]").astype(np.int64) + d - 1


def library(order_lines_n: int = 10_000) -> dict[str, pa.Table]:
    """The whole sample library for a number of order lines (about 4 lines per order)."""
    n_orders = max(1, order_lines_n // 4)
    n_customers = max(12, n_orders // 20)
    header = orders(n_orders, n_customers)
    return {
        "QCUSTCDT": customers(n_customers),
        "ORDHDR": header,
        "ORDHDR__ARCHIVE": orders(max(10, n_orders // 10), n_customers, archive=True),
        "ORDLIN": order_lines(order_lines_n, header),
    }


# -- loaders ------------------------------------------------------------------------------------


def _q(dialect: str, name: str) -> str:
    return f"`{name}`" if dialect == "mysql" else f'"{name}"'


def _qualified(dialect: str, table: str) -> str:
    return f"{_q(dialect, LIBRARY)}.{_q(dialect, table)}" if dialect == "postgresql" else _q(dialect, table)


def _ddl(dialect: str, table: str, cols: list[Col]) -> str:
    parts = []
    for c in cols:
        if c.kind == "char":
            typ = f"CHAR({c.size})"
        elif c.kind == "num":
            typ = f"NUMERIC({c.size},{c.scale})"
        else:
            typ = {"postgresql": "BYTEA", "mysql": f"BINARY({c.size})"}.get(dialect, "BLOB")
        comment = f" COMMENT '{c.text}'" if dialect == "mysql" and c.text else ""
        parts.append(f"{_q(dialect, c.name)} {typ} NOT NULL{comment}")
    return f"CREATE TABLE {_qualified(dialect, table)} ({', '.join(parts)})"


def load(url: str, tables: dict[str, pa.Table], batch_rows: int = 10_000) -> dict[str, int]:
    """Create the library's tables (dropping earlier ones) in the database at ``url`` and load them.

    Args:
        url: SQLAlchemy URL (``sqlite:///…``, ``postgresql+psycopg://…``, ``mysql+pymysql://…``).
        tables: the tables from :func:`library`.
        batch_rows: rows per ``executemany`` (SQLite, MariaDB).

    Returns:
        Rows loaded per table.
    """
    engine = sa.create_engine(url)
    dialect = engine.dialect.name
    try:
        with engine.begin() as conn:
            if dialect == "postgresql":
                conn.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {_q(dialect, LIBRARY)}")
            for name, table in tables.items():
                cols = LAYOUTS[name.split("__")[0]]
                conn.exec_driver_sql(f"DROP TABLE IF EXISTS {_qualified(dialect, name)}")
                conn.exec_driver_sql(_ddl(dialect, name, cols))
                if dialect == "postgresql":
                    for c in cols:
                        if c.text:
                            conn.exec_driver_sql(
                                f"COMMENT ON COLUMN {_qualified(dialect, name)}.{_q(dialect, c.name)} IS '{c.text}'"
                            )
                _insert(conn, dialect, name, table, batch_rows)
            for i, (name, keys, kind) in enumerate(INDEXES):
                if name not in tables:
                    continue
                keycols = ", ".join(_q(dialect, k) for k in keys)
                if kind == "pk":
                    if dialect == "sqlite":
                        conn.exec_driver_sql(
                            f"CREATE UNIQUE INDEX {_q(dialect, f'{name}_PK')} ON {_q(dialect, name)} ({keycols})"
                        )
                    else:
                        conn.exec_driver_sql(f"ALTER TABLE {_qualified(dialect, name)} ADD PRIMARY KEY ({keycols})")
                else:
                    unique = "UNIQUE " if kind == "unique" else ""
                    conn.exec_driver_sql(
                        f"CREATE {unique}INDEX {_q(dialect, f'{name}_X{i}')} ON {_qualified(dialect, name)} ({keycols})"
                    )
    finally:
        engine.dispose()
    counts = {f"{LIBRARY}/{n}": t.num_rows for n, t in tables.items()}
    log.info("loaded the sample IBM i library into %s: %s", dialect, counts)
    return counts


def _insert(conn: sa.Connection, dialect: str, name: str, table: pa.Table, batch_rows: int) -> None:
    cols = ", ".join(_q(dialect, c) for c in table.column_names)
    if dialect == "postgresql":
        raw: Any = conn.connection.driver_connection
        with raw.cursor() as cur, cur.copy(f"COPY {_qualified(dialect, name)} ({cols}) FROM STDIN (FORMAT csv)") as cp:
            for batch in table.to_batches(max_chunksize=100_000):
                buf = io.BytesIO()
                pacsv.write_csv(_pg_csv_ready(batch), buf, pacsv.WriteOptions(include_header=False))
                cp.write(buf.getvalue())
        return
    mark = "%s" if dialect == "mysql" else "?"
    sql = f"INSERT INTO {_qualified(dialect, name)} ({cols}) VALUES ({', '.join(mark for _ in table.column_names)})"
    raw = conn.connection.driver_connection
    cur = raw.cursor()
    try:
        for batch in table.to_batches(max_chunksize=batch_rows):
            arrays = [
                c.cast(pa.string()) if pa.types.is_decimal(c.type) and dialect == "sqlite" else c for c in batch.columns
            ]
            cur.executemany(sql, list(zip(*(a.to_pylist() for a in arrays), strict=True)))
    finally:
        cur.close()


def _pg_csv_ready(batch: pa.RecordBatch) -> pa.RecordBatch:
    arrays = []
    for col in batch.columns:
        if pa.types.is_binary(col.type):
            col = pa.array(["\\x" + v.hex() for v in col.to_pylist()], pa.string())
        arrays.append(col)
    return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)


def build(url: str, order_lines_n: int = 10_000) -> dict[str, int]:
    """Generate the sample library for ``order_lines_n`` order lines and load it into ``url``."""
    return load(url, library(order_lines_n))
