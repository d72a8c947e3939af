"""Deterministic, vectorised generation of a Salesforce-like ``Account`` CSV for the benchmarks.

Every value comes from a fixed-seed numpy generator (one stream per chunk), so the same ``--rows``
always produces the same bytes. Strings are built with pyarrow compute kernels from small pools of
words; nothing is generated row by row in Python. Files land in ``bench/.data/`` (git-ignored).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from benchcfg import DATA_DIR

log = logging.getLogger(__name__)

SEED = 20_240_601
CHUNK_ROWS = 250_000

# (name, bulksync declared type); file order
COLUMNS: list[tuple[str, str]] = [
    ("Id", "string"),
    ("Name", "string"),
    ("AccountNumber", "string"),
    ("Type", "string"),
    ("Industry", "string"),
    ("AnnualRevenue", "decimal(18,2)"),
    ("NumberOfEmployees", "int64"),
    ("BillingStreet", "string"),
    ("BillingCity", "string"),
    ("BillingState", "string"),
    ("BillingPostalCode", "string"),
    ("BillingCountry", "string"),
    ("Phone", "string"),
    ("Website", "string"),
    ("Description", "string"),
    ("CreatedDate", "timestamptz"),
    ("LastModifiedDate", "timestamptz"),
    ("IsDeleted", "bool"),
]

ARROW_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "decimal(18,2)": pa.decimal128(18, 2),
    "int64": pa.int64(),
    "timestamptz": pa.timestamp("us", tz="UTC"),
    "bool": pa.bool_(),
}

TIMESTAMP_COLUMNS = [name for name, typ in COLUMNS if typ == "timestamptz"]

_BASE62 = np.frombuffer(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", dtype=np.uint8)
_ID_PREFIX = b"0015g00000"
_ID_DIGITS = 8
_ID_MULT = 2_654_435_761  # odd and not a multiple of 31: a bijection modulo 62**8


def _words(text: str, sep: str | None = None) -> list[str]:
    return text.split(sep)


_WORDS_A = _words(
    "Acme Globex Initech Umbrella Stark Wayne Wonka Tyrell Cyberdyne Soylent Hooli Vandelay Pied Dunder Gringotts "
    "Oscorp Massive Blue Northwind Contoso Fabrikam Adventure Litware Tailspin Wide Alpine Coho Fourth Lucerne Margie"
)
_WORDS_B = _words(
    "Industries Systems Dynamics Logistics Holdings Partners Networks Foods Energy Health Capital Retail Labs "
    "Solutions Manufacturing Media Motors Pharma Analytics Robotics Textiles Airlines Mining Insurance"
)
_SUFFIXES = [" Inc.", " LLC", " Ltd", " Group", " Corp.", " GmbH", " S.A.", " plc", " Co.", ", Inc."]
_TYPES = _words(
    "Prospect|Customer - Direct|Customer - Channel|Channel Partner / Reseller|Installation Partner|"
    "Technology Partner|Other",
    sep="|",
)
_INDUSTRIES = _words(
    "Agriculture|Apparel|Banking|Biotechnology|Chemicals|Communications|Construction|Consulting|Education|"
    "Electronics|Energy|Engineering|Entertainment|Environmental|Finance|Food & Beverage|Government|Healthcare|"
    "Hospitality|Insurance|Machinery|Manufacturing|Media|Not For Profit|Recreation|Retail|Shipping|Technology|"
    "Telecommunications|Transportation|Utilities|Other",
    sep="|",
)
_STREETS = _words(
    "Main Oak Pine Maple Cedar Elm Washington Lake Hill Park Sunset Market Broadway Mission Harbor River Church "
    "Mill Spring Ridge"
)
_STREET_KINDS = _words("St Ave Blvd Rd Way Ln Dr Ct Pl Pkwy")
_CITIES = [
    tuple(pair.split(":"))
    for pair in _words(
        "San Francisco:CA|New York:NY|Chicago:IL|Austin:TX|Seattle:WA|Boston:MA|Denver:CO|Atlanta:GA|Miami:FL|"
        "Portland:OR|Phoenix:AZ|Dallas:TX|San Diego:CA|Detroit:MI|Minneapolis:MN|Toronto:ON|Vancouver:BC|"
        "London:LND|Manchester:MAN|Berlin:BE|Munich:BY|Hamburg:HH|Paris:IDF|Lyon:ARA",
        sep="|",
    )
]
_COUNTRIES = ["US"] * 15 + ["CA"] * 2 + ["GB"] * 2 + ["DE"] * 3 + ["FR"] * 2
_DESC_WORDS = _words(
    "strategic account renewal pending contract signed expansion opportunity quarterly review key stakeholder "
    "procurement budget approved pilot rollout onboarding support escalation invoice net terms discount tier "
    "enterprise platform integration legacy migration data warehouse compliance audit security questionnaire "
    "regional office headquarters subsidiary acquisition partner referral upsell cross-sell churn risk champion "
    "executive sponsor roadmap feedback"
)

_EPOCH_START = int(dt.datetime(2015, 1, 1, tzinfo=dt.UTC).timestamp())
_EPOCH_END = int(dt.datetime(2024, 12, 31, tzinfo=dt.UTC).timestamp())


def arrow_schema() -> pa.Schema:
    """The Arrow schema the CSV is declared with (the same one bulksync derives from the spec)."""
    return pa.schema([pa.field(name, ARROW_TYPES[typ]) for name, typ in COLUMNS])


def csv_path(rows: int, factor: int = 1) -> Path:
    """Where the CSV of ``rows`` rows (repeated ``factor`` times) lives; one folder per file."""
    return DATA_DIR / f"accounts_{rows}_x{factor}" / "accounts.csv"


def _pick(rng: np.random.Generator, pool: list[str], n: int) -> pa.Array:
    return pa.array(pool, pa.string()).take(pa.array(rng.integers(0, len(pool), n)))


def _with_nulls(rng: np.random.Generator, arr: pa.Array, null_share: float) -> pa.Array:
    mask = pa.array(rng.random(len(arr)) < null_share)
    return pc.if_else(mask, pa.scalar(None, arr.type), arr)


def _digits(rng: np.random.Generator, n: int, width: int) -> pa.Array:
    return pc.utf8_lpad(pa.array(rng.integers(0, 10**width, n)).cast(pa.string()), width, "0")


def _join(*parts: pa.Array | str) -> pa.Array:
    return pc.binary_join_element_wise(*parts, "")


def _ids(start: int, n: int) -> pa.Array:
    """Unique 18-character Salesforce-like ids (a scrambled counter in base 62)."""
    idx = (np.arange(start, start + n, dtype=np.int64) * _ID_MULT) % (62**_ID_DIGITS)
    out = np.empty((n, len(_ID_PREFIX) + _ID_DIGITS), dtype=np.uint8)
    out[:, : len(_ID_PREFIX)] = np.frombuffer(_ID_PREFIX, dtype=np.uint8)
    for pos in range(_ID_DIGITS - 1, -1, -1):
        out[:, len(_ID_PREFIX) + pos] = _BASE62[idx % 62]
        idx //= 62
    width = out.shape[1]
    offsets = np.arange(0, (n + 1) * width, width, dtype=np.int32)
    return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(out.tobytes())])


def _decimal_cents(cents: np.ndarray) -> pa.Array:
    """decimal(18,2) from integer cents (non-negative, so the high 64 bits are zero)."""
    buf = np.zeros(2 * len(cents), dtype=np.int64)
    buf[0::2] = cents
    return pa.Array.from_buffers(pa.decimal128(18, 2), len(cents), [None, pa.py_buffer(buf)])


def _timestamps(seconds: np.ndarray) -> pa.Array:
    ts = pa.array(seconds, pa.timestamp("s"))
    return pc.strftime(ts, format="%Y-%m-%dT%H:%M:%S.000Z")


def _descriptions(rng: np.random.Generator, n: int) -> pa.Array:
    """Free text: two half-sentences picked from pools of 2048, so values are nearly unique."""

    def pool(size: int) -> list[str]:
        lengths = rng.integers(2, 7, size)
        words = rng.integers(0, len(_DESC_WORDS), int(lengths.sum()))
        out, at = [], 0
        for ln in lengths:
            text = " ".join(_DESC_WORDS[w] for w in words[at : at + ln])
            out.append(text)
            at += ln
        return out

    first, second = pool(2048), pool(2048)
    text = _join(pc.utf8_capitalize(_pick(rng, first, n)), " ", _pick(rng, second, n), ".")
    return _with_nulls(rng, text, 0.5)


def _streets(rng: np.random.Generator, n: int) -> pa.Array:
    number = pa.array(rng.integers(1, 9999, n)).cast(pa.string())
    street = _join(number, " ", _pick(rng, _STREETS, n), " ", _pick(rng, _STREET_KINDS, n))
    suite = _join("\nSuite ", pa.array(rng.integers(100, 999, n)).cast(pa.string()))
    with_suite = pa.array(rng.random(n) < 0.1)
    return _with_nulls(rng, pc.if_else(with_suite, _join(street, suite), street), 0.03)


def make_chunk(start: int, n: int) -> pa.Table:
    """Rows ``start .. start+n`` of the dataset (deterministic for a given ``start``)."""
    rng = np.random.default_rng([SEED, start])
    word_a, word_b = _pick(rng, _WORDS_A, n), _pick(rng, _WORDS_B, n)
    name = _join(word_a, " ", word_b, _pick(rng, _SUFFIXES, n))
    city_idx = pa.array(rng.integers(0, len(_CITIES), n))
    created = rng.integers(_EPOCH_START, _EPOCH_END, n)
    modified = np.minimum(created + rng.integers(0, 3 * 365 * 86400, n), _EPOCH_END)
    cents = np.round(rng.lognormal(16.0, 2.0, n) * 100).astype(np.int64) % (10**16)
    columns: dict[str, pa.Array] = {
        "Id": _ids(start, n),
        "Name": name,
        "AccountNumber": _with_nulls(rng, _join("CD", _digits(rng, n, 6)), 0.2),
        "Type": _with_nulls(rng, _pick(rng, _TYPES, n), 0.1),
        "Industry": _with_nulls(rng, _pick(rng, _INDUSTRIES, n), 0.15),
        "AnnualRevenue": _with_nulls(rng, _decimal_cents(cents), 0.25),
        "NumberOfEmployees": _with_nulls(rng, pa.array(rng.integers(1, 250_000, n)), 0.2),
        "BillingStreet": _streets(rng, n),
        "BillingCity": pa.array([c for c, _ in _CITIES]).take(city_idx),
        "BillingState": pa.array([s for _, s in _CITIES]).take(city_idx),
        "BillingPostalCode": _digits(rng, n, 5),
        "BillingCountry": _pick(rng, _COUNTRIES, n),
        "Phone": _with_nulls(
            rng, _join("(", _digits(rng, n, 3), ") ", _digits(rng, n, 3), "-", _digits(rng, n, 4)), 0.1
        ),
        "Website": _with_nulls(rng, _join("www.", pc.utf8_lower(word_a), pc.utf8_lower(word_b), ".com"), 0.3),
        "Description": _descriptions(rng, n),
        "CreatedDate": _timestamps(created),
        "LastModifiedDate": _timestamps(modified),
        "IsDeleted": pa.array(rng.random(n) < 0.01),
    }
    return pa.table(columns)


def generate_csv(rows: int, path: Path) -> None:
    """Write ``rows`` rows to ``path`` chunk by chunk (atomically: temp file + rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".csv.tmp")
    started = time.perf_counter()
    schema = make_chunk(0, 1).schema
    with pacsv.CSVWriter(tmp, schema) as writer:
        for start in range(0, rows, CHUNK_ROWS):
            writer.write_table(make_chunk(start, min(CHUNK_ROWS, rows - start)))
    os.replace(tmp, path)
    log.info(
        "generated %s: %d rows, %.0f MiB in %.1fs",
        path,
        rows,
        path.stat().st_size / 2**20,
        time.perf_counter() - started,
    )


def ensure_csv(rows: int) -> Path:
    """The 1x CSV, generated on first use."""
    path = csv_path(rows)
    if not path.exists():
        generate_csv(rows, path)
    return path


def ensure_repeated(rows: int, factor: int) -> Path:
    """The 1x CSV streamed ``factor`` times into one file (one header), generated on first use."""
    path = csv_path(rows, factor)
    if path.exists():
        return path
    source = ensure_csv(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".csv.tmp")
    started = time.perf_counter()
    with open(tmp, "wb") as out:
        for i in range(factor):
            with open(source, "rb") as f:
                header = f.readline()
                if i == 0:
                    out.write(header)
                shutil.copyfileobj(f, out, 16 << 20)
    os.replace(tmp, path)
    log.info(
        "generated %s: %d rows, %.0f MiB in %.1fs",
        path,
        rows * factor,
        path.stat().st_size / 2**20,
        time.perf_counter() - started,
    )
    return path
