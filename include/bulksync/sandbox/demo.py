"""The demo's sample sources: a client CRM in SQLite, nightly order CSV drops and a fixed-width stock drop.

Everything is generated deterministically (fixed seed), so two ``make demo`` runs see the same
data and must produce the same warehouse.
"""

from __future__ import annotations

import csv
import datetime as dt
import logging
import random
import sqlite3
from pathlib import Path

log = logging.getLogger(__name__)

ACCOUNTS = 2_000
ORDERS_PER_FILE = 1_500
ORDER_FILES = 3
DEMO_DAY = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
INDUSTRIES = ["Manufacturing", "Retail", "Banking", "Logistics", "Healthcare", "Energy"]
COUNTRIES = ["DE", "FR", "US", "GB", "NL", "IT"]


def build_crm(path: Path, accounts: int = ACCOUNTS) -> int:
    """Create the CRM database with an ``accounts`` table; return its row count."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    rng = random.Random(20260101)
    con = sqlite3.connect(path)
    con.execute(
        """CREATE TABLE accounts (
            account_id INTEGER PRIMARY KEY,
            acct_name VARCHAR(120) NOT NULL,
            industry VARCHAR(40),
            country CHAR(2),
            status CHAR(1),
            annual_revenue NUMERIC(18, 2),
            employees INTEGER,
            contact_email VARCHAR(200),
            created_at DATETIME NOT NULL,
            updated_at DATETIME NOT NULL
        )"""
    )
    rows = []
    for i in range(1, accounts + 1):
        created = DEMO_DAY - dt.timedelta(days=rng.randint(30, 900), seconds=rng.randint(0, 86399))
        # about a third changed during the demo day, the rest before it
        changed = (
            DEMO_DAY + dt.timedelta(seconds=rng.randint(0, 86399))
            if i % 3 == 0
            else (created + dt.timedelta(days=rng.randint(0, 25)))
        )
        rows.append(
            (
                i,
                f"  Account {i:05d} {rng.choice(['GmbH', 'SA', 'Inc', 'Ltd', 'BV'])} ",
                rng.choice(INDUSTRIES),
                rng.choice(COUNTRIES),
                rng.choice("AAAIP"),
                f"{rng.randint(10_000, 90_000_000)}.{rng.randint(0, 99):02d}",
                rng.randint(1, 50_000) if i % 17 else None,
                f"buyer{i}@client{i % 97}.example",
                created.strftime("%Y-%m-%d %H:%M:%S.%f"),
                changed.strftime("%Y-%m-%d %H:%M:%S.%f"),
            )
        )
    con.executemany("INSERT INTO accounts VALUES (?,?,?,?,?,?,?,?,?,?)", rows)
    con.commit()
    con.close()
    return accounts


def build_order_drops(folder: Path, files: int = ORDER_FILES, per_file: int = ORDERS_PER_FILE) -> int:
    """Write the nightly order CSV files (with a few re-sent updates and test orders); return rows."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("orders_*.csv"):
        old.unlink()
    rng = random.Random(7)
    total = 0
    order_id = 100_000
    for f in range(files):
        path = folder / f"orders_{DEMO_DAY:%Y%m%d}_{f + 1:02d}.csv"
        with open(path, "w", newline="", encoding="utf-8") as out:
            w = csv.writer(out)
            w.writerow(
                ["order_id", "account_id", "ordered_at", "status", "quantity", "unit_price", "note", "updated_at"]
            )
            for _ in range(per_file):
                # every 10th row re-sends an earlier order with a later change
                if total and total % 10 == 0:
                    oid = order_id - rng.randint(1, min(order_id - 100_000, 500) or 1)
                else:
                    order_id += 1
                    oid = order_id
                ts = DEMO_DAY + dt.timedelta(seconds=rng.randint(0, 86399))
                w.writerow(
                    [
                        oid,
                        rng.randint(1, ACCOUNTS),
                        ts.isoformat().replace("+00:00", "Z"),
                        rng.choice(["open", "shipped", "shipped", "invoiced", "test"]),
                        rng.randint(1, 40),
                        f"{rng.randint(1, 999)}.{rng.randint(0, 99):02d}",
                        rng.choice(["", "urgent, call first", 'said "asap"', "multi\nline note"]),
                        (ts + dt.timedelta(minutes=total)).isoformat().replace("+00:00", "Z"),
                    ]
                )
                total += 1
    return total


STOCK_ITEMS = 400
STOCK_WORDS = ["Schraube", "Mutter", "Dübel", "Säge", "Bohrer", "Hammer", "Zange", "Lötkolben", "Kabel", "Kühler"]


def build_stock_drop(folder: Path, items: int = STOCK_ITEMS) -> int:
    """Drop the client's nightly fixed-width stock file (latin-1, header and trailer) with its trigger file.

    The drop arrives once: when the landing folder already archived it (an earlier ``make demo``),
    nothing is written, so a rerun of the same night replays the archived file.
    """
    folder.mkdir(parents=True, exist_ok=True)
    name = f"STOCK_{DEMO_DAY:%Y%m%d}.TXT"
    archived = folder / "archive"
    if archived.exists() and any(archived.rglob(name)):
        return items
    rng = random.Random(42)
    lines = [f"{'SKU':12}{'DESCRIPTION':30}{'QTY':>8}{'PRICE':>10}COUNTED"]
    for i in range(1, items + 1):
        words = " ".join(rng.sample(STOCK_WORDS, 2)) + f" {rng.randint(1, 99)}mm"
        counted = DEMO_DAY - dt.timedelta(days=rng.randint(0, 6))
        lines.append(
            f"SKU{i:06d}   {words:30.30}{rng.randint(0, 5000):>8}{rng.randint(10, 99999) / 100:>10.2f}{counted:%Y%m%d}"
        )
    lines.append(f"TRL{items:06d}")
    (folder / name).write_bytes(("\r\n".join(lines) + "\r\n").encode("latin-1"))
    (folder / f"{name}.done").write_bytes(b"")
    return items


def prepare(root: Path) -> dict[str, int]:
    """Create every demo source under ``root`` (``.local/demo``); return row counts."""
    counts = {
        "crm.accounts": build_crm(root / "crm.db"),
        "drops/orders": build_order_drops(root / "drops" / "orders"),
        "landing/stock": build_stock_drop(root / "landing" / "stock"),
    }
    log.info("demo sources ready under %s: %s", root, counts)
    return counts
