"""The sandbox's records: seeded rows generated on demand plus an overlay of REST changes.

Seeded record ``i`` is generated from ``(seed, object, i)`` when a chunk of it is read. Records
created, updated or deleted through the REST API or Bulk ingest jobs live in an overlay of Arrow
segments (whole rows) that replaces the generated row; new records take the next index, so ids
keep sorting like indices. A delete sets ``IsDeleted`` (the record stays visible to ``queryAll``, as
in the recycle bin); a hard delete purges it.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from bulksync.sandbox.salesforce import data, ids
from bulksync.sandbox.salesforce.errors import ApiError
from bulksync.sandbox.salesforce.schema import OBJECTS, FieldDef, ObjectDef

log = logging.getLogger(__name__)
CHUNK_ROWS = 50_000
_DEAD = pa.table({})
SANDBOX_USER = data.USER_IDS[0]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Store:
    """All objects' records. Thread-safe; ``version`` changes on every write.

    Changed and new records live in an overlay of Arrow *segments*: every write appends one table
    of whole rows (a REST change one row, a Bulk ingest batch thousands) and points the records'
    indices at their row in it; the latest write of a record wins. External-id values of written
    records are indexed for upserts and relationship columns. Hard-deleted records are purged:
    no query, not even ``queryAll``, returns them.

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
        self.segments: dict[str, list[pa.Table]] = {o.name: [] for o in OBJECTS.values()}
        self._live: dict[str, list[int]] = {o.name: [] for o in OBJECTS.values()}
        """Live rows per segment; a segment whose rows were all written again is freed."""
        self.overlay: dict[str, dict[int, tuple[int, int]]] = {o.name: {} for o in OBJECTS.values()}
        self._keys: dict[str, np.ndarray | None] = {o.name: None for o in OBJECTS.values()}
        self.external: dict[str, dict[str, dict[str, int]]] = {
            o.name: {f.name: {} for f in o.fields if f.external_id or f.unique} for o in OBJECTS.values()
        }
        self._external_of: dict[str, dict[str, dict[int, str]]] = {
            o: {f: {} for f in fields} for o, fields in self.external.items()
        }
        self.purged: dict[str, set[str]] = {o.name: set() for o in OBJECTS.values()}
        self.lock = threading.RLock()
        self.version = 0
        self.clock: Callable[[], dt.datetime] = _now

    def total(self, obj: ObjectDef) -> int:
        """Records of ``obj`` (deleted ones included)."""
        return self.totals[obj.name]

    def chunk(self, obj: ObjectDef, lo: int, hi: int, columns: list[str] | None = None) -> pa.Table:
        """Records ``[lo, hi)`` of ``obj`` with the overlay applied, in Id order (row ``p`` is record ``lo + p``)."""
        return self.rows(obj, np.arange(lo, min(hi, self.total(obj)), dtype=np.int64), columns)

    def overlay_keys(self, obj: ObjectDef) -> np.ndarray:
        """The sorted indices of written records (cached until the next write)."""
        with self.lock:
            keys = self._keys[obj.name]
            if keys is None:
                over = self.overlay[obj.name]
                keys = np.sort(np.fromiter(over, dtype=np.int64, count=len(over)))
                self._keys[obj.name] = keys
            return keys

    def rows(self, obj: ObjectDef, indices: np.ndarray, columns: list[str] | None = None) -> pa.Table:
        """Records ``indices`` (ascending) of ``obj``, only ``columns`` (default all), overlay applied."""
        schema = obj.arrow_schema
        if columns is not None:
            wanted = set(columns)
            schema = pa.schema([f for f in schema if f.name in wanted])
        if len(indices) == 0:
            return schema.empty_table()
        keys = self.overlay_keys(obj)
        lo, hi = np.searchsorted(keys, [int(indices[0]), int(indices[-1]) + 1])
        candidates = keys[lo:hi]
        if not len(candidates):
            return data.generate(obj, self.seed, indices, self.base, self.modstamp_end, columns)
        is_over = np.isin(indices, candidates, assume_unique=True)
        base_idx = indices[~is_over]
        over_idx = indices[is_over]
        with self.lock:
            where = self.overlay[obj.name]
            located = [where[int(i)] for i in over_idx]
            segments = self.segments[obj.name]
            seg = np.fromiter((s for s, _ in located), dtype=np.int64, count=len(located))
            pos = np.fromiter((p for _, p in located), dtype=np.int64, count=len(located))
            parts_over: list[pa.Table] = []
            order_over: list[np.ndarray] = []
            for number in np.unique(seg):
                at = np.flatnonzero(seg == number)
                parts_over.append(segments[int(number)].select(schema.names).take(pa.array(pos[at])))
                order_over.append(at)
        over_table = pa.concat_tables(parts_over).take(pa.array(np.argsort(np.concatenate(order_over), kind="stable")))
        parts = [data.generate(obj, self.seed, base_idx, self.base, self.modstamp_end, columns), over_table]
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
        """The index of ``record_id``; NOT_FOUND when ``obj`` has no such (or a hard-deleted) record."""
        index = ids.index_of(obj.prefix, record_id)
        if index is None or index >= self.total(obj) or ids.to_18(record_id) in self.purged[obj.name]:
            raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
        return index

    def get(self, obj: ObjectDef, record_id: str) -> dict[str, Any]:
        """One record as typed values."""
        index = self.index_of(obj, record_id)
        return dict(self.chunk(obj, index, index + 1).to_pylist()[0])

    def find_external(self, obj: ObjectDef, field_name: str, value: str) -> int | None:
        """The index of the record whose external id (or unique field) ``field_name`` is ``value``.

        Case-insensitive, as Salesforce matches text external ids."""
        return self.external[obj.name].get(field_name, {}).get(value.lower())

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
            self._check_unique(obj, checked, index)
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
            index = self.index_of(obj, record_id)
            self._check_unique(obj, checked, index)
            row.update(checked)
            self._write(obj, index, row, self.clock())

    def delete(self, obj: ObjectDef, record_id: str) -> None:
        """Soft-delete a record (``IsDeleted`` true, still returned by ``queryAll``)."""
        with self.lock:
            row = self.get(obj, record_id)
            if row["IsDeleted"]:
                raise ApiError(404, "ENTITY_IS_DELETED", "entity is deleted")
            row["IsDeleted"] = True
            self._write(obj, self.index_of(obj, record_id), row, self.clock())

    def _check_unique(self, obj: ObjectDef, values: dict[str, Any], index: int) -> None:
        for name, known in self.external[obj.name].items():
            value = values.get(name)
            owner = known.get(str(value).lower()) if value not in (None, "") else None
            if owner is not None and owner != index:
                raise ApiError(
                    400,
                    "DUPLICATE_VALUE",
                    f"duplicate value found: {name} duplicates value on record with id: "
                    f"{ids.make_id(obj.prefix, owner)}",
                )

    def _write(self, obj: ObjectDef, index: int, row: dict[str, Any], now: dt.datetime) -> None:
        now = now.astimezone(dt.UTC).replace(microsecond=now.microsecond // 1000 * 1000)
        row.update(LastModifiedDate=now, LastModifiedById=SANDBOX_USER, SystemModstamp=now)
        table = derive(obj, pa.Table.from_pylist([row], obj.arrow_schema))
        self.write_rows(obj, np.array([index], dtype=np.int64), table)

    def write_rows(self, obj: ObjectDef, indices: np.ndarray, table: pa.Table) -> None:
        """Make ``table`` (whole rows of ``obj``'s schema, already stamped and derived) the records ``indices``.

        Indices at or past the current total extend the object. External-id values are indexed;
        a record's old value stops pointing at it.
        """
        if not len(indices):
            return
        table = table.select(obj.arrow_schema.names).cast(obj.arrow_schema)
        with self.lock:
            segments = self.segments[obj.name]
            number = len(segments)
            segments.append(table)
            where = self.overlay[obj.name]
            live = self._live[obj.name]
            live.append(len(indices))
            for pos, index in enumerate(indices.tolist()):
                before = where.get(index)
                if before is not None:
                    live[before[0]] -= 1
                    if not live[before[0]]:  # every row of that segment was written again: free it
                        segments[before[0]] = _DEAD
                where[index] = (number, pos)
            self._keys[obj.name] = None
            for name, known in self.external[obj.name].items():
                of = self._external_of[obj.name][name]
                for index, value in zip(indices.tolist(), table.column(name).to_pylist(), strict=True):
                    old = of.pop(index, None)
                    if old is not None and known.get(old) == index:
                        known.pop(old)
                    if value not in (None, ""):
                        key = str(value).lower()
                        known[key] = index
                        of[index] = key
            top = int(indices.max()) + 1
            if top > self.totals[obj.name]:
                self.totals[obj.name] = top
            self.version += 1

    def purge(self, obj: ObjectDef, record_ids: list[str]) -> None:
        """Hard-delete records: gone from every query (``queryAll`` included) and from the external-id index."""
        with self.lock:
            gone = {ids.to_18(r) for r in record_ids}
            self.purged[obj.name] |= gone
            for name, known in self.external[obj.name].items():
                of = self._external_of[obj.name][name]
                for record_id in gone:
                    index = ids.index_of(obj.prefix, record_id)
                    old = of.pop(index, None) if index is not None else None
                    if old is not None and known.get(old) == index:
                        known.pop(old)
            self.version += 1

    def _check(self, obj: ObjectDef, values: dict[str, Any], creating: bool) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, value in values.items():
            if name == "attributes":
                continue
            fdef = obj.field(name)
            if fdef is None:
                raise ApiError(400, "INVALID_FIELD", f"No such column '{name}' on sobject of type {obj.name}")
            if not fdef.writable:
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


def derive(obj: ObjectDef, table: pa.Table) -> pa.Table:
    """Recompute formula and derived fields of whole rows after a write (vectorised)."""

    def put(name: str, values: Any) -> None:
        nonlocal table
        i = table.schema.get_field_index(name)
        table = table.set_column(i, name, pa.array(values, table.schema.field(name).type))

    def ratio(a: pa.ChunkedArray, b: pa.ChunkedArray) -> pa.Array:
        divisor = pc.if_else(pc.equal(b, 0), pa.scalar(None, pa.float64()), b.cast(pa.float64()))
        return pc.round(pc.divide(a.cast(pa.float64()), divisor), 2)

    if obj.name == "Account":
        put("Revenue_Per_Employee__c", ratio(table["AnnualRevenue"], table["NumberOfEmployees"]))
    elif obj.name in ("Contact", "Lead"):
        put("Name", pc.binary_join_element_wise(table["FirstName"], table["LastName"], " ", null_handling="skip"))
    elif obj.name == "Opportunity":
        put("ExpectedRevenue", pc.round(pc.divide(pc.multiply(table["Amount"], table["Probability"]), 100.0), 2))
        stage = pc.fill_null(table["StageName"], "")
        put("IsClosed", pc.starts_with(stage, "Closed"))
        put("IsWon", pc.equal(stage, "Closed Won"))
    elif obj.name == "Invoice__c":
        put("Tax__c", pc.round(pc.divide(pc.multiply(table["Amount__c"], table["Tax_Rate__c"]), 100.0), 2))
    return table
