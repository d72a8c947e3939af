"""The sandbox's records: seeded rows generated on demand plus an overlay of REST changes.

Seeded record ``i`` is generated from ``(seed, object, i)`` when a chunk of it is read. Records
created, updated or deleted through the REST API live in a small per-object overlay (index → full
row) that replaces the generated row; new records take the next index, so ids keep sorting like
indices. A delete sets ``IsDeleted`` (the record stays visible to ``queryAll``, as in the recycle bin).
"""

from __future__ import annotations

import bisect
import datetime as dt
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pyarrow as pa

from bulksync.sandbox.salesforce import data, ids
from bulksync.sandbox.salesforce.errors import ApiError
from bulksync.sandbox.salesforce.schema import OBJECTS, FieldDef, ObjectDef

CHUNK_ROWS = 50_000
SANDBOX_USER = data.USER_IDS[0]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Store:
    """All objects' records. Thread-safe; ``version`` changes on every write.

    Args:
        counts: seeded records per object name (objects missing get ``default_count``).
        seed: the generator's seed; the same seed gives the same records.
        modstamp_end: seeded ``SystemModstamp`` values lie in the eight weeks before this instant.
        default_count: records of objects not named in ``counts``.
    """

    def __init__(
        self,
        counts: dict[str, int] | None = None,
        seed: int = 20260101,
        modstamp_end: dt.datetime = data.DEFAULT_MODSTAMP_END,
        default_count: int = 1000,
    ) -> None:
        wanted = {k.lower(): v for k, v in (counts or {}).items()}
        self.seed = seed
        self.modstamp_end = modstamp_end
        self.base = {o.name: int(wanted.get(o.name.lower(), default_count)) for o in OBJECTS.values()}
        self.totals = dict(self.base)
        self.overlay: dict[str, dict[int, dict[str, Any]]] = {o.name: {} for o in OBJECTS.values()}
        self._sorted: dict[str, list[int]] = {o.name: [] for o in OBJECTS.values()}
        self.lock = threading.RLock()
        self.version = 0
        self.clock: Callable[[], dt.datetime] = _now

    def total(self, obj: ObjectDef) -> int:
        """Records of ``obj`` (deleted ones included)."""
        return self.totals[obj.name]

    def chunk(self, obj: ObjectDef, lo: int, hi: int, columns: list[str] | None = None) -> pa.Table:
        """Records ``[lo, hi)`` of ``obj`` with the overlay applied, in Id order (row ``p`` is record ``lo + p``)."""
        return self.rows(obj, np.arange(lo, min(hi, self.total(obj)), dtype=np.int64), columns)

    def rows(self, obj: ObjectDef, indices: np.ndarray, columns: list[str] | None = None) -> pa.Table:
        """Records ``indices`` (ascending) of ``obj``, only ``columns`` (default all), overlay applied."""
        schema = obj.arrow_schema
        if columns is not None:
            wanted = set(columns)
            schema = pa.schema([f for f in schema if f.name in wanted])
        if len(indices) == 0:
            return schema.empty_table()
        lo, hi = int(indices[0]), int(indices[-1]) + 1
        with self.lock:
            keys = self._sorted[obj.name]
            candidates = keys[bisect.bisect_left(keys, lo) : bisect.bisect_left(keys, hi)]
            over = {i: self.overlay[obj.name][i] for i in candidates}
        if not over:
            return data.generate(obj, self.seed, indices, self.base, self.modstamp_end, columns)
        is_over = np.isin(indices, np.fromiter(over, dtype=np.int64, count=len(over)))
        base_idx = indices[~is_over]
        over_idx = indices[is_over]
        parts = [
            data.generate(obj, self.seed, base_idx, self.base, self.modstamp_end, columns),
            pa.Table.from_pylist([{f.name: over[int(i)][f.name] for f in schema} for i in over_idx], schema),
        ]
        order = np.argsort(np.concatenate([base_idx, over_idx]), kind="stable")
        return pa.concat_tables(parts).take(pa.array(order))

    def chunks(
        self,
        obj: ObjectDef,
        lo: int = 0,
        hi: int | None = None,
        size: int = CHUNK_ROWS,
        columns: list[str] | None = None,
    ) -> Iterator[tuple[int, pa.Table]]:
        """``(first index, table)`` for records ``[lo, hi)`` in chunks of ``size``."""
        end = self.total(obj) if hi is None else min(hi, self.total(obj))
        for start in range(lo, end, size):
            yield start, self.chunk(obj, start, min(start + size, end), columns)

    def index_of(self, obj: ObjectDef, record_id: str) -> int:
        """The index of ``record_id``; NOT_FOUND when ``obj`` has no such record."""
        index = ids.index_of(obj.prefix, record_id)
        if index is None or index >= self.total(obj):
            raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
        return index

    def get(self, obj: ObjectDef, record_id: str) -> dict[str, Any]:
        """One record as typed values."""
        index = self.index_of(obj, record_id)
        return dict(self.chunk(obj, index, index + 1).to_pylist()[0])

    def create(self, obj: ObjectDef, values: dict[str, Any]) -> str:
        """Insert a record; return its id."""
        row: dict[str, Any] = {f.name: None for f in obj.columns}
        checked = self._check(obj, values, creating=True)
        missing = [f.name for f in obj.columns if not f.nillable and not f.system and f.type != "boolean"]
        missing = [name for name in missing if checked.get(name) in (None, "") and name not in ("OwnerId",)]
        if missing:
            raise ApiError(400, "REQUIRED_FIELD_MISSING", f"Required fields are missing: [{', '.join(missing)}]")
        with self.lock:
            index = self.totals[obj.name]
            now = self.clock()
            row.update({f.name: False for f in obj.columns if f.type == "boolean"})
            row.update(checked)
            row.update(
                Id=ids.make_id(obj.prefix, index),
                IsDeleted=False,
                OwnerId=row.get("OwnerId") or SANDBOX_USER,
                CreatedDate=now,
                CreatedById=SANDBOX_USER,
            )
            self._write(obj, index, row, now)
            self.totals[obj.name] = index + 1
            return str(row["Id"])

    def update(self, obj: ObjectDef, record_id: str, values: dict[str, Any]) -> None:
        """Change fields of a live record."""
        checked = self._check(obj, values, creating=False)
        with self.lock:
            row = self.get(obj, record_id)
            if row["IsDeleted"]:
                raise ApiError(404, "ENTITY_IS_DELETED", "entity is deleted")
            row.update(checked)
            self._write(obj, self.index_of(obj, record_id), row, self.clock())

    def delete(self, obj: ObjectDef, record_id: str) -> None:
        """Soft-delete a record (``IsDeleted`` true, still returned by ``queryAll``)."""
        with self.lock:
            row = self.get(obj, record_id)
            if row["IsDeleted"]:
                raise ApiError(404, "ENTITY_IS_DELETED", "entity is deleted")
            row["IsDeleted"] = True
            self._write(obj, self.index_of(obj, record_id), row, self.clock())

    def _write(self, obj: ObjectDef, index: int, row: dict[str, Any], now: dt.datetime) -> None:
        now = now.astimezone(dt.UTC).replace(microsecond=now.microsecond // 1000 * 1000)
        row.update(LastModifiedDate=now, LastModifiedById=SANDBOX_USER, SystemModstamp=now)
        _derive(obj, row)
        if index not in self.overlay[obj.name]:
            bisect.insort(self._sorted[obj.name], index)
        self.overlay[obj.name][index] = row
        self.version += 1

    def _check(self, obj: ObjectDef, values: dict[str, Any], creating: bool) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, value in values.items():
            if name == "attributes":
                continue
            fdef = obj.field(name)
            if fdef is None:
                raise ApiError(400, "INVALID_FIELD", f"No such column '{name}' on sobject of type {obj.name}")
            if fdef.system or fdef.calculated or fdef.is_compound or fdef.type == "id":
                verb = "create" if creating else "update"
                raise ApiError(
                    400,
                    "INVALID_FIELD_FOR_INSERT_UPDATE",
                    f"Unable to {verb} fields: {fdef.name}. Please check the security settings of this field and "
                    "verify that it is read/write for your profile or permission set.",
                )
            out[fdef.name] = _coerce(fdef, value)
        return out


def _coerce(fdef: FieldDef, value: Any) -> Any:
    if value is None or value == "":
        return None
    try:
        if fdef.type == "boolean":
            if not isinstance(value, bool):
                raise ValueError(value)
            return value
        if fdef.type == "int":
            return int(value)
        if fdef.type in ("double", "currency", "percent"):
            return round(float(value), fdef.scale)
        if fdef.type == "date":
            return dt.date.fromisoformat(str(value))
        if fdef.type == "datetime":
            return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(dt.UTC)
        text = str(value)
        if fdef.length and len(text) > fdef.length:
            raise ApiError(
                400, "STRING_TOO_LONG", f"{fdef.label}: data value too large: {text[:40]} (max length={fdef.length})"
            )
        return ids.to_18(text) if fdef.type == "reference" else text
    except (TypeError, ValueError):
        raise ApiError(
            400, "JSON_PARSER_ERROR", f"Cannot deserialize instance of {fdef.type} from value {value!r} ({fdef.name})"
        ) from None


def _derive(obj: ObjectDef, row: dict[str, Any]) -> None:
    """Recompute formula and derived fields after a write."""

    def ratio(a: Any, b: Any, scale: float = 1.0) -> float | None:
        if a is None or b in (None, 0):
            return None
        return round(a / b * scale, 2)

    if obj.name == "Account":
        row["Revenue_Per_Employee__c"] = ratio(row.get("AnnualRevenue"), row.get("NumberOfEmployees"))
    elif obj.name in ("Contact", "Lead"):
        row["Name"] = " ".join(p for p in (row.get("FirstName"), row.get("LastName")) if p)
    elif obj.name == "Opportunity":
        amount, probability = row.get("Amount"), row.get("Probability")
        row["ExpectedRevenue"] = None if amount is None or probability is None else round(amount * probability / 100, 2)
        stage = row.get("StageName") or ""
        row["IsClosed"], row["IsWon"] = stage.startswith("Closed"), stage == "Closed Won"
    elif obj.name == "Invoice__c":
        amount, rate = row.get("Amount__c"), row.get("Tax_Rate__c")
        row["Tax__c"] = None if amount is None or rate is None else round(amount * rate / 100, 2)
