"""Deterministic seeded records for the sandbox's objects, generated lazily in vectorised chunks.

Record ``i`` of an object is a pure function of ``(seed, object, i)``: nothing is stored for the
seeded rows, so two million Accounts cost no memory until a chunk of them is asked for. Every value
comes from a 64-bit hash of ``(seed, object, field, i)`` (splitmix64), turned into picks from
pools, numbers in ranges, dates and datetimes with numpy and pyarrow compute.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from bulksync.sandbox.salesforce import ids
from bulksync.sandbox.salesforce.schema import (
    ACCOUNT_TYPES,
    INDUSTRIES,
    INVOICE_STATUS,
    LANGUAGES,
    LEAD_SOURCES,
    LEAD_STATUS,
    RATINGS,
    REGIONS,
    SALUTATIONS,
    STAGES,
    ObjectDef,
)

DEFAULT_MODSTAMP_END = dt.datetime(2026, 1, 2, tzinfo=dt.UTC)
MODSTAMP_SPAN = dt.timedelta(weeks=8)
DELETED_SHARE = 0.02
USER_IDS = [ids.make_id("005", i) for i in range(5)]

COMPANY_A = ["Acme", "Globex", "Initech", "Umbrella", "Müller", "Dupont", "Nakamura", "Øresund", "Zoë's", "Hooli",
             "Stark", "Wayne", "Soylent", "Tyrell", "Cyberdyne", "Aperture"]  # fmt: skip
COMPANY_B = ["Logistik GmbH", "Industries", "Holdings, Inc.", "S.A.", "Trading Co.", "Systems", "Pharma AG", "& Sons",
             "Energía S.L.", "Retail Ltd", "株式会社", "Bank plc"]  # fmt: skip
FIRST = ["Anna", "José", "Chloé", "Björn", "Li", "María", "Sven", "Zoë", "Ahmed", "Kenji", "Olga", "Ian", "Ngozi",
         "François", "Priya", "O'Neil"]  # fmt: skip
LAST = ["Smith", "Müller", "García", "Dubois", "Tanaka", "Kowalski", "O'Brien", "Rossi", "Nguyen", "Ødegaard",
        "Jensen", "Silva", "Иванов", "Khan"]  # fmt: skip
CITIES = [
    ("München", "BY", "DE", "Germany"),
    ("São Paulo", "SP", "BR", "Brazil"),
    ("Zürich", "ZH", "CH", "Switzerland"),
    ("東京", "13", "JP", "Japan"),
    ("Lyon", "ARA", "FR", "France"),
    ("Austin", "TX", "US", "United States"),
    ("Toronto", "ON", "CA", "Canada"),
    ("Kraków", "MA", "PL", "Poland"),
]
STREETS = ["Main St", "Hauptstraße", "Rue de l'Église", "Calle Mayor", "High Street", "Broadway", "銀座通り"]
SUITES = ["", "", "\nSuite 400", '\nFloor 3, Unit "B"']
TEXTS = [
    "Key account, renewed early.",
    'Customer said: "ship it, now"\nFollow up next quarter.',
    "Großkunde; Ansprechpartner: Zoë Ærø, Tel. +49 89 1234",
    "東京支社\n担当: 山田",
    "Line one\r\nLine two, with a comma",
    "Prefers e-mail; no calls before 10:00",
]
TITLES = ["CEO", "CFO", "VP Sales", "Buyer", "Head of IT", "Procurement Manager", "Directeur général"]
DOMAINS = ["example.com", "example.org", "example.net"]


Columns = dict[str, Callable[[], pa.Array]]
"""Column name → a function computing that column for the chunk (columns are built on demand)."""


def _splitmix(x: np.ndarray) -> np.ndarray:
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


class Gen:
    """Value makers for one chunk of record indices of one object."""

    def __init__(self, seed: int, obj: ObjectDef, idx: np.ndarray, counts: dict[str, int], end: dt.datetime) -> None:
        self.idx = idx.astype(np.uint64)
        self.n = len(idx)
        self.counts = counts
        self.salt = (seed * 1_000_003 + sum(ord(c) * 131**i for i, c in enumerate(obj.name))) & (2**63 - 1)
        self.end_ms = int(end.timestamp() * 1000)
        self._stamps: tuple[pa.Array, pa.Array, pa.Array] | None = None

    def h(self, name: str) -> np.ndarray:
        """64-bit hashes of (seed, object, ``name``, index)."""
        salt = np.uint64((self.salt ^ (hash_str(name) * 0x100000001B3)) & (2**64 - 1))
        with np.errstate(over="ignore"):
            return _splitmix(self.idx ^ salt)

    def pick(self, name: str, pool: list[str] | tuple[str, ...], null_share: float = 0.0) -> pa.Array:
        """A value of ``pool`` per record, null for ``null_share`` of them."""
        hh = self.h(name)
        arr = pa.array(list(pool), pa.string()).take(pa.array((hh % np.uint64(len(pool))).astype(np.int64)))
        return self.nulls(arr, hh, null_share)

    def nulls(self, arr: pa.Array, hh: np.ndarray, share: float) -> pa.Array:
        """Null out ``share`` of ``arr`` (chosen by the high bits of ``hh``)."""
        if share <= 0:
            return arr
        mask = pa.array(((hh >> np.uint64(40)) % np.uint64(10_000)) < np.uint64(int(share * 10_000)))
        return pc.if_else(mask, pa.nulls(len(arr), arr.type), arr)

    def ints(self, name: str, lo: int, hi: int) -> np.ndarray:
        """Integers in ``[lo, hi)``."""
        return (self.h(name) % np.uint64(hi - lo)).astype(np.int64) + lo

    def money(self, name: str, lo: int, hi: int, scale: int, null_share: float = 0.0) -> pa.Array:
        """Decimal amounts in ``[lo, hi)`` with ``scale`` decimals, as float64."""
        unit = 10**scale
        values = self.ints(name, lo * unit, hi * unit).astype(np.float64) / unit
        return self.nulls(pa.array(np.round(values, scale)), self.h(name + "#n"), null_share)

    def flag(self, name: str, share: float) -> pa.Array:
        """True for ``share`` of the records."""
        return pa.array((self.h(name) % np.uint64(10_000)) < np.uint64(int(share * 10_000)))

    def ref(self, name: str, prefix: str, obj: str, null_share: float = 0.0) -> pa.Array:
        """Ids of existing records of ``obj``."""
        total = max(self.counts.get(obj, 0), 1)
        hh = self.h(name)
        return self.nulls(id_array(prefix, (hh % np.uint64(total)).astype(np.int64)), hh, null_share)

    def join(self, *parts: pa.Array | str, sep: str = " ") -> pa.Array:
        """Element-wise join of arrays and constants."""
        cols = [p if isinstance(p, pa.Array) else pa.array([p] * self.n, pa.string()) for p in parts]
        return pc.binary_join_element_wise(*cols, sep)

    def number(self, values: np.ndarray) -> pa.Array:
        """Integers as strings."""
        return pc.cast(pa.array(values), pa.string())

    def stamps(self) -> tuple[pa.Array, pa.Array, pa.Array]:
        """CreatedDate, LastModifiedDate and SystemModstamp, spread over the weeks before the end."""
        if self._stamps is None:
            self._stamps = self._make_stamps()
        return self._stamps

    def _make_stamps(self) -> tuple[pa.Array, pa.Array, pa.Array]:
        span_s = int(MODSTAMP_SPAN.total_seconds())
        modstamp = self.end_ms - self.ints("SystemModstamp", 1, span_s) * 1000
        modified = modstamp - np.where(self.ints("LastModifiedDate", 0, 4) == 0, self.ints("lm", 1, 90), 0) * 1000
        created = modified - self.ints("CreatedDate", 0, 400 * 86_400) * 1000
        ts = pa.timestamp("ms", tz="UTC")
        return pa.array(created).cast(ts), pa.array(modified).cast(ts), pa.array(modstamp).cast(ts)

    def dates(self, name: str, lo_days: int, hi_days: int, null_share: float = 0.0) -> pa.Array:
        """Dates between ``lo_days`` and ``hi_days`` days from the end."""
        base = (self.end_ms // 86_400_000) + self.ints(name, lo_days, hi_days)
        return self.nulls(pa.array(base.astype(np.int32)).cast(pa.date32()), self.h(name + "#n"), null_share)

    def multi(self, name: str, pool: tuple[str, ...], null_share: float = 0.0) -> pa.Array:
        """Multipicklist values: one or two pool values joined by ``;``."""
        hh = self.h(name)
        first = pa.array(list(pool)).take(pa.array((hh % np.uint64(len(pool))).astype(np.int64)))
        second_idx = ((hh >> np.uint64(8)) % np.uint64(len(pool))).astype(np.int64)
        second = pa.array(list(pool)).take(pa.array(second_idx))
        both = pc.binary_join_element_wise(first, second, ";")
        two = pa.array(
            ((hh >> np.uint64(16)) % np.uint64(2)).astype(bool)
            & pc.not_equal(first, second).to_numpy(zero_copy_only=False)
        )
        return self.nulls(pc.if_else(two, both, first), hh, null_share)

    def address(self, prefix: str) -> Columns:
        """Street/City/State/PostalCode/Country/Latitude/Longitude columns of one address."""

        def city(k: int) -> pa.Array:
            index = (self.h(prefix + "City") % np.uint64(len(CITIES))).astype(np.int64)
            return pa.array([c[k] for c in CITIES]).take(pa.array(index))

        def street() -> pa.Array:
            text = self.join(self.number(self.ints(prefix + "No", 1, 400)), self.pick(prefix + "Street", STREETS))
            return pc.binary_join_element_wise(text, self.pick(prefix + "Suite", SUITES), "")

        def degrees(name: str, lo: int, hi: int) -> pa.Array:
            values = np.round(self.ints(prefix + name, lo, hi) / 1e6, 6)
            return self.nulls(pa.array(values), self.h(prefix + "City"), 0.1)

        return {
            prefix + "Street": street,
            prefix + "City": lambda: city(0),
            prefix + "State": lambda: city(1),
            prefix + "PostalCode": lambda: self.number(self.ints(prefix + "Zip", 10_000, 99_999)),
            prefix + "Country": lambda: city(3),
            prefix + "Latitude": lambda: degrees("Lat", -60_000_000, 70_000_000),
            prefix + "Longitude": lambda: degrees("Lon", -170_000_000, 170_000_000),
        }

    def system(self) -> Columns:
        """Audit columns and IsDeleted."""
        return {
            "IsDeleted": lambda: self.flag("IsDeleted", DELETED_SHARE),
            "OwnerId": lambda: self.pick("OwnerId", USER_IDS),
            "CreatedDate": lambda: self.stamps()[0],
            "CreatedById": lambda: self.pick("CreatedById", USER_IDS),
            "LastModifiedDate": lambda: self.stamps()[1],
            "LastModifiedById": lambda: self.pick("LastModifiedById", USER_IDS),
            "SystemModstamp": lambda: self.stamps()[2],
        }


def hash_str(text: str) -> int:
    """A stable (not per-process) 32-bit string hash."""
    value = 2166136261
    for ch in text.encode():
        value = ((value ^ ch) * 16777619) & 0xFFFFFFFF
    return value


def id_array(prefix: str, indices: np.ndarray) -> pa.Array:
    """An Arrow string array of the ids of ``indices``."""
    raw = ids.make_ids(prefix, indices)
    offsets = pa.py_buffer((np.arange(len(indices) + 1, dtype=np.int32) * 18).tobytes())
    return pa.StringArray.from_buffers(len(indices), offsets, pa.py_buffer(raw.tobytes()))


def _account(g: Gen) -> Columns:
    def revenue() -> pa.Array:
        return g.money("AnnualRevenue", 50_000, 5_000_000_000, 0, 0.1)

    def employees() -> pa.Array:
        return g.nulls(pa.array(g.ints("NumberOfEmployees", 0, 250_000)), g.h("emp#n"), 0.05)

    def per_employee() -> pa.Array:
        staff = employees()
        return pc.round(pc.divide(revenue(), pc.if_else(pc.equal(staff, 0), None, staff)), 2)

    return {
        "MasterRecordId": lambda: pa.nulls(g.n, pa.string()),
        "Name": lambda: g.join(
            g.pick("NameA", COMPANY_A), g.pick("NameB", COMPANY_B), g.number(g.idx.astype(np.int64) + 1)
        ),
        "Type": lambda: g.pick("Type", ACCOUNT_TYPES, 0.05),
        "ParentId": lambda: g.ref("ParentId", "001", "Account", 0.9),
        **g.address("Billing"),
        "Phone": lambda: g.join("+1", g.number(g.ints("Phone", 2_000_000_000, 9_999_999_999))),
        "Website": lambda: g.join("https://www.", g.pick("Website", DOMAINS), sep=""),
        "Industry": lambda: g.pick("Industry", INDUSTRIES, 0.1),
        "AnnualRevenue": revenue,
        "NumberOfEmployees": employees,
        "Rating": lambda: g.pick("Rating", RATINGS, 0.3),
        "Description": lambda: g.pick("Description", TEXTS, 0.3),
        "LastActivityDate": lambda: g.dates("LastActivityDate", -120, 0, 0.4),
        "Region__c": lambda: g.multi("Region__c", REGIONS, 0.1),
        "Credit_Limit__c": lambda: g.money("Credit_Limit__c", 1_000, 10_000_000, 2, 0.2),
        "Discount__c": lambda: g.money("Discount__c", 0, 40, 2, 0.3),
        "Active__c": lambda: g.flag("Active__c", 0.85),
        "Acme_Id__c": lambda: pa.nulls(g.n, pa.string()),
        "customExtIdField__c": lambda: pa.nulls(g.n, pa.string()),
        "Revenue_Per_Employee__c": per_employee,
    }


def _person(g: Gen) -> Columns:
    def first() -> pa.Array:
        return g.pick("FirstName", FIRST, 0.05)

    def last() -> pa.Array:
        return g.pick("LastName", LAST)

    def email() -> pa.Array:
        local = g.join("person", g.number(g.idx.astype(np.int64) + 1), sep="")
        return g.nulls(g.join(local, g.pick("Domain", DOMAINS), sep="@"), g.h("em"), 0.1)

    return {
        "FirstName": first,
        "LastName": last,
        "Name": lambda: pc.binary_join_element_wise(first(), last(), " ", null_handling="skip"),
        "Phone": lambda: g.nulls(
            g.join("+44", g.number(g.ints("Phone", 1_000_000_000, 9_999_999_999))), g.h("ph"), 0.2
        ),
        "Email": email,
    }


def _contact(g: Gen) -> Columns:
    return {
        "MasterRecordId": lambda: pa.nulls(g.n, pa.string()),
        "AccountId": lambda: g.ref("AccountId", "001", "Account", 0.05),
        "Salutation": lambda: g.pick("Salutation", SALUTATIONS, 0.3),
        **_person(g),
        **g.address("Mailing"),
        "Title": lambda: g.pick("Title", TITLES, 0.2),
        "Birthdate": lambda: g.dates("Birthdate", -25_000, -6_600, 0.5),
        "LeadSource": lambda: g.pick("LeadSource", LEAD_SOURCES, 0.2),
        "HasOptedOutOfEmail": lambda: g.flag("HasOptedOutOfEmail", 0.1),
        "Description": lambda: g.pick("Description", TEXTS, 0.5),
        "Languages__c": lambda: g.multi("Languages__c", LANGUAGES, 0.3),
        "Acme_Contact_Id__c": lambda: pa.nulls(g.n, pa.string()),
    }


def _opportunity(g: Gen) -> Columns:
    def stage() -> pa.Array:
        return g.pick("StageName", STAGES)

    def amount() -> pa.Array:
        return g.money("Amount", 500, 2_000_000, 2, 0.05)

    def probability() -> pa.Array:
        return g.money("Probability", 0, 101, 0)

    return {
        "AccountId": lambda: g.ref("AccountId", "001", "Account"),
        "Name": lambda: g.join(g.pick("NameA", COMPANY_A), "-", g.pick("What", ["Renewal", "Upsell", "New Business"])),
        "Description": lambda: g.pick("Description", TEXTS, 0.6),
        "StageName": stage,
        "Amount": amount,
        "Probability": probability,
        "ExpectedRevenue": lambda: pc.round(pc.divide(pc.multiply(amount(), probability()), 100.0), 2),
        "CloseDate": lambda: g.dates("CloseDate", -200, 200),
        "LeadSource": lambda: g.pick("LeadSource", LEAD_SOURCES, 0.2),
        "IsClosed": lambda: pc.starts_with(stage(), "Closed"),
        "IsWon": lambda: pc.equal(stage(), "Closed Won"),
        "Discount_Rate__c": lambda: g.money("Discount_Rate__c", 0, 30, 2, 0.5),
    }


def _lead(g: Gen) -> Columns:
    return {
        **_person(g),
        "Company": lambda: g.join(g.pick("NameA", COMPANY_A), g.pick("NameB", COMPANY_B)),
        **g.address(""),
        "Status": lambda: g.pick("Status", LEAD_STATUS),
        "Industry": lambda: g.pick("Industry", INDUSTRIES, 0.2),
        "AnnualRevenue": lambda: g.money("AnnualRevenue", 10_000, 500_000_000, 0, 0.3),
        "NumberOfEmployees": lambda: g.nulls(pa.array(g.ints("NumberOfEmployees", 1, 50_000)), g.h("emp#n"), 0.2),
        "IsConverted": lambda: g.flag("IsConverted", 0.15),
        "Interests__c": lambda: g.multi("Interests__c", INDUSTRIES, 0.4),
    }


def _invoice(g: Gen) -> Columns:
    def amount() -> pa.Array:
        return g.money("Amount__c", 10, 250_000, 2)

    def rate() -> pa.Array:
        return g.money("Tax_Rate__c", 0, 25, 3)

    def name() -> pa.Array:
        numbers = pc.utf8_lpad(g.number(g.idx.astype(np.int64) + 1), 8, "0")
        return pc.binary_join_element_wise(pa.array(["INV-"] * g.n), numbers, "")

    return {
        "Name": name,
        "Account__c": lambda: g.ref("Account__c", "001", "Account"),
        "Opportunity__c": lambda: g.ref("Opportunity__c", "006", "Opportunity", 0.3),
        "Status__c": lambda: g.pick("Status__c", INVOICE_STATUS),
        "Amount__c": amount,
        "Tax_Rate__c": rate,
        "Tax__c": lambda: pc.round(pc.divide(pc.multiply(amount(), rate()), 100.0), 2),
        "Lines__c": lambda: pa.array(g.ints("Lines__c", 1, 40).astype(np.float64)),
        "Issued_On__c": lambda: g.dates("Issued_On__c", -300, 0),
        "Due_On__c": lambda: g.dates("Due_On__c", 0, 60, 0.1),
        "Paid__c": lambda: g.flag("Paid__c", 0.6),
        "Notes__c": lambda: g.pick("Notes__c", TEXTS, 0.7),
    }


GENERATORS: dict[str, Callable[[Gen], Columns]] = {
    "Account": _account,
    "Contact": _contact,
    "Opportunity": _opportunity,
    "Lead": _lead,
    "Invoice__c": _invoice,
}


def generate(
    obj: ObjectDef,
    seed: int,
    indices: np.ndarray,
    counts: dict[str, int],
    end: dt.datetime = DEFAULT_MODSTAMP_END,
    columns: list[str] | None = None,
) -> pa.Table:
    """The seeded records ``indices`` of ``obj`` as an Arrow table in describe column order.

    Only ``columns`` (default: all) are computed: a query filters on a few cheap columns first and
    generates the rest for the matching records only.
    """
    g = Gen(seed, obj, indices, counts, end)
    makers: Columns = {"Id": lambda: id_array(obj.prefix, indices), **g.system(), **GENERATORS[obj.name](g)}
    wanted = set(columns) if columns is not None else None
    fields = [f for f in obj.arrow_schema if wanted is None or f.name in wanted]
    return pa.Table.from_arrays([makers[f.name]().cast(f.type) for f in fields], schema=pa.schema(fields))
