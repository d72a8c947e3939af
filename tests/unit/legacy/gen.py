"""Deterministic rows for the sample copybooks (tests encode them, decode the file and compare every row)."""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

from bulksync.legacy.plan import SEGMENT_COLUMN

NAMES = ["Müller GmbH", "ACME Corp", "O'Brien & Sons", "Zoë Ltd", "Åsa AB", "Schröder KG", "", "X"]


def _money(rng: random.Random, digits: int, scale: int, signed: bool = True) -> Decimal:
    n = rng.randrange(10**digits)
    if signed and rng.random() < 0.4:
        n = -n
    return Decimal(n).scaleb(-scale)


def customer_rows(n: int, seed: int = 7) -> list[dict[str, Any]]:
    """Rows of custmast.cpy, every field filled with edge values mixed in."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        rows.append({
            "cust_id": i + 1,
            "cust_name": rng.choice(NAMES) + ("" if i % 3 else f" {i}"),
            "cust_type": rng.choice("RW"),
            "cust_street": f"{rng.randrange(1, 999)} Main Street",
            "cust_city": rng.choice(["Berlin", "Zürich", "New York", "Paris"]),
            "cust_zip": f"{rng.randrange(10**5):05d}",
            "cust_country": rng.choice(["DE", "CH", "US", "FR"]),
            "cust_balance": _money(rng, 11, 2) if i % 5 else Decimal("-999999999.99") if i % 2 else Decimal("0.00"),
            "cust_credit_limit": _money(rng, 9, 2),
            "cust_ytd_orders": rng.randrange(-9999999, 9999999),
            "cust_discount_pct": _money(rng, 4, 3),
            "cust_opened": 20000101 + rng.randrange(250000),
            "cust_last_order": 20250101 + rng.randrange(1000),
            "cust_segment_code": rng.randrange(-32768, 32767),
            "cust_rating": rng.randrange(-999, 999),
            "cust_phone_type_1": "M",
            "cust_phone_no_1": f"+49 {rng.randrange(10**9)}",
            "cust_phone_type_2": "" if i % 2 else "L",
            "cust_phone_no_2": "" if i % 2 else f"+1 {rng.randrange(10**9)}",
            "cust_status": rng.choice("AIC"),
        })  # fmt: skip
    return rows


def order_rows(n: int, seed: int = 11) -> list[dict[str, Any]]:
    """Rows of orders.cpy: payment REDEFINES chosen by ORD-PAY-TYPE, 1-20 items (ODO)."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        count = 1 + (i * 7) % 20 if i % 4 else 1
        pay = "CI"[i % 2]
        total = _money(rng, 13, 2)
        row: dict[str, Any] = {
            "ord_no": 1_000_000_000 + i,
            "ord_cust_id": rng.randrange(1, 10**8),
            "ord_date": 20250101 + i % 28,
            "ord_status": rng.choice(["OP", "SH", "CL"]),
            "ord_total": total,
            "ord_tax": _money(rng, 11, 2),
            "ord_weight_kg": _money(rng, 8, 3, signed=False),
            "ord_exch_rate": rng.choice([1.0, 0.5, 1.0859375, 1234.5625, -0.25]),
            "ord_pay_type": pay,
            "ord_amount_edited": _edited_amount(total % 1_000_000),
            "ord_item_count": count,
        }
        if pay == "C":
            row.update(ord_card_last4=rng.randrange(10**4), ord_card_expiry=1230, ord_card_auth=f"A{i:011d}")
        else:
            row.update(ord_inv_no=f"INV{i:07d}", ord_inv_due_days=rng.choice([30, 60, -1, 0]))
        for k in range(1, count + 1):
            row[f"ord_sku_{k}"] = f"SKU-{k:02d}-{i % 1000:04d}"
            row[f"ord_qty_{k}"] = rng.randrange(-99999, 99999)
            row[f"ord_price_{k}"] = _money(rng, 9, 2)
            row[f"ord_disc_{k}"] = _money(rng, 2, 2)
        rows.append(row)
    return rows


def bank_rows(details: int, seed: int = 3) -> list[dict[str, Any]]:
    """Rows of bankfile.cpy: a header, ``details`` detail records and a trailer with the control totals."""
    rng = random.Random(seed)
    rows: list[dict[str, Any]] = [
        {SEGMENT_COLUMN: "bank-header", "bh_rec_type": "H", "bh_bank_id": "DEUTDEFF", "bh_run_date": 20250131}
    ]
    total = Decimal(0)
    for i in range(details):
        amount = _money(rng, 15, 2)
        total += amount
        rows.append({
            SEGMENT_COLUMN: "bank-detail", "bd_rec_type": "D", "bd_account": 4000_0000_0000 + i, "bd_amount": amount,
            "bd_currency": rng.choice(["EUR", "USD"]), "bd_text": f"Überweisung {i} Straße",
            "bd_fx_rate": rng.choice([1.0, 0.5, 1.25, 0.1015625]),
        })  # fmt: skip
    rows.append({SEGMENT_COLUMN: "bank-trailer", "bt_rec_type": "T", "bt_count": details, "bt_total": total})
    return rows


def _edited_amount(value: Decimal) -> str:
    """``value`` as COBOL shows it in ``PIC -Z,ZZZ,ZZ9.99``: a fixed sign position, zero-suppressed digits."""
    return ("-" if value < 0 else " ") + f"{abs(value):>12,.2f}"


EDITED = {"ord_amount_edited"}  # numeric-edited columns: written as text, decoded as numbers


def expected(rows: list[dict[str, Any]], names: list[str], trim: str = "right") -> list[dict[str, Any]]:
    """The decoded form of generated rows: every schema column present, text trimmed like the reader."""
    out = []
    for r in rows:
        row = {}
        for name in names:
            v = r.get(name)
            if name in EDITED and isinstance(v, str):
                v = Decimal(v.replace(",", "").replace(" ", ""))
            elif isinstance(v, str) and trim == "right":
                v = v.rstrip(" ")
            row[name] = v
        out.append(row)
    return out
