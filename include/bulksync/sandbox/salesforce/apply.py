"""Applying the records of a Bulk API 2.0 ingest job to the sandbox's store, record by record.

What Salesforce documents for ingest data, and what this module does with it:

- "Prepare CSV Files" (https://developer.salesforce.com/docs/atlas.en-us.api_asynch.meta/api_asynch/
  datafiles_prepare_csv.htm): the first row names the fields (Field Name / API name, matched without
  regard to case); every record is for the job's object; fields missing from an update are left alone.
- "Valid CSV Record Rows" (…/datafiles_csv_valid_record_rows.htm): "Empty field values are ignored
  when you update records. To set a field value to null, use a field value of #N/A."
- "Valid Date Format in Records" (…/datafiles_date_format.htm): dates ``YYYY-MM-DD`` (a trailing
  ``Z`` is accepted, as the documented sample ``1940-06-07Z``), datetimes
  ``YYYY-MM-DDThh:mm:ss[.SSS](Z|±hh:mm)``.
- "Relationship Fields in a Header Row" (…/datafiles_csv_rel_field_header_row.htm):
  ``RelationshipName.IndexedFieldName`` columns (``Parent.Acme_Id__c``) resolve the reference by the
  parent's external id (or ``Id``); a value that matches no record fails the row
  (``INVALID_FIELD: Foreign key external ID: … not found for field … in entity …``).
- Upserts (…/walkthrough_upsert.htm) match ``externalIdFieldName``; no match inserts, a match updates.

Per-record failures carry Salesforce's status codes (SOAP API "StatusCode" values, the same the
``failedResults`` ``sf__Error`` column starts with): ``REQUIRED_FIELD_MISSING``,
``INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST``, ``DUPLICATE_VALUE``, ``STRING_TOO_LONG``, ``INVALID_FIELD``,
``INVALID_FIELD_FOR_INSERT_UPDATE``, ``ENTITY_IS_DELETED``, ``MALFORMED_ID``, ``INVALID_CROSS_REFERENCE_KEY``,
``INVALID_TYPE_ON_FIELD_IN_RECORD``, ``NUMBER_OUTSIDE_VALID_RANGE``, ``MISSING_ARGUMENT`` and
``FIELD_CUSTOM_VALIDATION_EXCEPTION`` (validation rules, configured per object). ``sf__Error`` is
written ``CODE:message:FIELD[,FIELD…] --`` as orgs write it (``…:--`` without fields).

Records are processed in batches of 10,000 (Bulk API 2.0 splits a job's data into 10,000-record
batches internally); each batch is checked column by column with Arrow compute and written to the
store as one segment.
"""

from __future__ import annotations

import datetime as dt
import decimal
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from bulksync.sandbox.salesforce import ids, soql
from bulksync.sandbox.salesforce.schema import FieldDef, ObjectDef, _relationship, find_object
from bulksync.sandbox.salesforce.store import SANDBOX_USER, Store, derive

BATCH_RECORDS = 10_000
NA = "#N/A"
_TRUE = {"true", "1", "yes", "y", "on"}
_FALSE = {"false", "0", "no", "n", "off"}


class JobFailure(Exception):
    """The job's data cannot be processed at all (the job ends ``Failed`` with this ``errorMessage``)."""


@dataclass
class ValidationRule:
    """A validation rule of one object: records for which ``condition`` (a SOQL WHERE expression) holds fail.

    Example: ``ValidationRule("Credit_Needs_Rating", "Credit_Limit__c > 1000000 AND Rating = null",
    "A credit limit above 1M needs a rating", "Rating")``.
    """

    name: str
    condition: str
    message: str
    field: str = ""

    def expression(self, obj: ObjectDef) -> pc.Expression:
        """The rule's condition as an Arrow filter expression (parsed by the sandbox's SOQL parser)."""
        parsed = soql.parse(f"SELECT Id FROM {obj.name} WHERE {self.condition}")
        assert parsed.where is not None
        return parsed.where


@dataclass
class Column:
    """One CSV column: the field it sets, and for relationship columns the parent's object and key."""

    header: str
    field: FieldDef
    parent: ObjectDef | None = None
    parent_key: FieldDef | None = None


@dataclass
class Outcome:
    """What happened to each record of a batch."""

    ok: np.ndarray
    created: np.ndarray
    ids: list[str]
    errors: list[str | None] = field(default_factory=list)


def error_text(code: str, message: str, fields: list[str] | tuple[str, ...] = ()) -> str:
    """``sf__Error`` as an org writes it: ``CODE:message:FIELDS --``."""
    return f"{code}:{message}:{','.join(fields)} --"


def resolve_columns(obj: ObjectDef, header: list[str], operation: str, external_id: str | None) -> list[Column]:
    """Map the CSV header to fields.

    Raises:
        JobFailure: an unknown field or relationship, a repeated column, or a header the operation
            cannot use (delete needs ``Id`` only; update needs ``Id``; upsert its external id).
    """
    seen: set[str] = set()
    out: list[Column] = []
    for name in header:
        key = name.strip().lower()
        if key in seen:
            raise JobFailure(f"InvalidBatch : Duplicate field name: {name}")
        seen.add(key)
        if "." in key:
            out.append(_relationship_column(obj, name))
            continue
        fdef = obj.field(name.strip())
        if fdef is None or fdef.is_compound:
            raise JobFailure(f"InvalidBatch : Field name not found : {name}")
        out.append(Column(name, fdef))
    names = {c.field.name for c in out if c.parent is None}
    if operation in ("delete", "hardDelete") and [c.field.name for c in out] != ["Id"]:
        raise JobFailure(f"InvalidBatch : The '{operation}' batch must contain only the Id field, got {header}")
    if operation == "update" and "Id" not in names:
        raise JobFailure("InvalidBatch : Field name not found : Id (an update needs the Id column)")
    if operation == "upsert" and external_id and external_id.lower() not in {n.lower() for n in names}:
        raise JobFailure(f"InvalidBatch : Field name not found : {external_id} (the job's externalIdFieldName)")
    return out


def _relationship_column(obj: ObjectDef, header: str) -> Column:
    rel, _, key = header.strip().partition(".")
    for fdef in obj.fields:
        if fdef.type == "reference" and _relationship(fdef.name).lower() == rel.lower():
            parent = find_object(fdef.reference_to[0]) if fdef.reference_to else None
            if parent is None:
                raise JobFailure(f"InvalidBatch : Field name not found : {header} (no such parent object here)")
            pkey = parent.field(key)
            if pkey is None:
                raise JobFailure(f"InvalidBatch : Field name not found : {header}")
            if not (pkey.external_id or pkey.type == "id"):
                raise JobFailure(
                    f"InvalidBatch : Field name provided, {pkey.name} is not an External ID or indexed field for "
                    f"{parent.name}"
                )
            return Column(header, fdef, parent, pkey)
    raise JobFailure(f"InvalidBatch : Field name not found : {header}")


class _Batch:
    """The working state of one batch: per-row errors (first one wins) and targets."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.errors: list[str | None] = [None] * n

    def fail(self, rows: np.ndarray | list[int], text: str | list[str]) -> None:
        texts = text if isinstance(text, list) else None
        for k, row in enumerate(rows):
            if self.errors[int(row)] is None:
                self.errors[int(row)] = texts[k] if texts is not None else str(text)

    @property
    def alive(self) -> np.ndarray:
        return np.fromiter((e is None for e in self.errors), dtype=bool, count=self.n)


def process(
    store: Store,
    obj: ObjectDef,
    operation: str,
    external_id: str | None,
    columns: list[Column],
    raw: pa.Table,
    rules: list[ValidationRule],
) -> Outcome:
    """Apply one batch of records (``raw``: the CSV's string columns) and return each record's outcome.

    The caller holds ``store.lock`` so that external-id checks and new record numbers see every
    earlier batch (of any job).
    """
    n = raw.num_rows
    b = _Batch(n)
    text = {c.header: pc.fill_null(raw.column(i).combine_chunks(), "") for i, c in enumerate(columns)}
    target = np.full(n, -1, dtype=np.int64)
    existing_ids: list[str] = [""] * n
    if operation == "insert":
        pass
    elif operation in ("update", "delete", "hardDelete") or (operation == "upsert" and _is_id(external_id)):
        id_col = next(c.header for c in columns if c.field.name == "Id" and c.parent is None)
        _by_id(store, obj, b, text[id_col], target, existing_ids, allow_empty=operation == "upsert")
    else:
        key_col = next(c for c in columns if c.parent is None and c.field.name.lower() == str(external_id).lower())
        _by_external(store, obj, b, key_col, text[key_col.header], target, existing_ids)
    is_new = target < 0
    if operation in ("delete", "hardDelete"):
        return _delete(store, obj, operation, b, target, existing_ids)
    values: dict[str, tuple[pa.Array, np.ndarray]] = {}
    for col in columns:
        if col.field.name == "Id" and col.parent is None:
            continue
        got = _column_values(store, obj, b, col, text[col.header], is_new, operation)
        if got is not None:
            values[col.field.name] = got
    alive = b.alive
    rows = np.flatnonzero(alive)
    if not len(rows):
        return Outcome(alive, is_new & alive, existing_ids, b.errors)
    merged = _merge(store, obj, rows, target, is_new, values)
    _check_required(obj, b, rows, merged)
    merged = derive(obj, merged)
    _check_rules(obj, b, rows, merged, rules)
    _check_unique(store, obj, b, rows, merged, target)
    keep = b.alive[rows]
    if not keep.all():
        rows, merged = rows[keep], merged.filter(pa.array(keep))
    out_ids = list(existing_ids)
    new_rows = is_new[rows]
    indices = target[rows].copy()
    now = store.clock().astimezone(dt.UTC)
    now = now.replace(microsecond=now.microsecond // 1000 * 1000)
    first = store.total(obj)
    indices[new_rows] = np.arange(first, first + int(new_rows.sum()), dtype=np.int64)
    merged = _stamp(obj, merged, indices, new_rows, now)
    store.write_rows(obj, indices, merged)
    for row, record_id in zip(rows.tolist(), merged.column("Id").to_pylist(), strict=True):
        out_ids[row] = str(record_id)
    ok = np.zeros(n, dtype=bool)
    ok[rows] = True
    created = np.zeros(n, dtype=bool)
    created[rows[new_rows]] = True
    return Outcome(ok, created, out_ids, b.errors)


def _is_id(external_id: str | None) -> bool:
    return (external_id or "").lower() == "id"


def _by_id(
    store: Store,
    obj: ObjectDef,
    b: _Batch,
    values: pa.Array,
    target: np.ndarray,
    existing_ids: list[str],
    allow_empty: bool,
) -> None:
    """Rows addressed by ``Id``: its record index, or MALFORMED_ID / INVALID_CROSS_REFERENCE_KEY / ENTITY_IS_DELETED."""
    label = obj.label
    for row, value in enumerate(values.to_pylist()):
        if not value:
            if not allow_empty:
                b.fail([row], error_text("MISSING_ARGUMENT", "Id not specified in an update call", ["Id"]))
            continue
        index = ids.index_of(obj.prefix, value)
        if index is None:
            b.fail([row], error_text("MALFORMED_ID", f"{label} ID: id value of incorrect type: {value}", ["Id"]))
        elif index >= store.total(obj) or ids.to_18(value) in store.purged[obj.name]:
            b.fail([row], error_text("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", ["Id"]))
        else:
            target[row] = index
            existing_ids[row] = ids.to_18(value)
    _refuse_deleted(store, obj, b, target)
    _refuse_repeats(b, target, "Id")


def _by_external(
    store: Store,
    obj: ObjectDef,
    b: _Batch,
    col: Column,
    values: pa.Array,
    target: np.ndarray,
    existing_ids: list[str],
) -> None:
    """Upsert rows: the record whose external id matches, or a new one; repeated keys of one job all fail."""
    name = col.field.name
    keys = [v.lower() for v in values.to_pylist()]
    counts: dict[str, int] = {}
    for key in keys:
        counts[key] = counts.get(key, 0) + 1
    for row, key in enumerate(keys):
        if not key or key == NA.lower():
            b.fail([row], error_text("MISSING_ARGUMENT", f"{name} not specified", [name]))
            continue
        if counts[key] > 1:
            b.fail([row], error_text("DUPLICATE_VALUE", f"Duplicate external id specified: {values[row]}", [name]))
            continue
        index = store.find_external(obj, name, key)
        if index is not None:
            target[row] = index
            existing_ids[row] = ids.make_id(obj.prefix, index)
    _refuse_deleted(store, obj, b, target)


def _refuse_deleted(store: Store, obj: ObjectDef, b: _Batch, target: np.ndarray) -> None:
    rows = np.flatnonzero(target >= 0)
    if not len(rows):
        return
    order = np.argsort(target[rows], kind="stable")
    uniq, inverse = np.unique(target[rows][order], return_inverse=True)
    deleted = store.rows(obj, uniq, ["IsDeleted"]).column("IsDeleted").to_numpy(zero_copy_only=False)
    dead = rows[order][deleted[inverse].astype(bool)]
    b.fail(dead, error_text("ENTITY_IS_DELETED", "entity is deleted"))


def _refuse_repeats(b: _Batch, target: np.ndarray, name: str) -> None:
    rows = np.flatnonzero(target >= 0)
    uniq, counts = np.unique(target[rows], return_counts=True)
    repeated = set(uniq[counts > 1].tolist())
    if repeated:
        dupes = [int(r) for r in rows if int(target[r]) in repeated]
        b.fail(dupes, error_text("DUPLICATE_VALUE", "duplicate value found: Id duplicates value in this batch", [name]))


def _delete(
    store: Store, obj: ObjectDef, operation: str, b: _Batch, target: np.ndarray, existing_ids: list[str]
) -> Outcome:
    alive = b.alive & (target >= 0)
    rows = np.flatnonzero(alive)
    if len(rows):
        gone = [existing_ids[int(r)] for r in rows]
        if operation == "hardDelete":
            store.purge(obj, gone)
        else:
            order = np.argsort(target[rows], kind="stable")
            table = store.rows(obj, target[rows][order])
            now = store.clock().astimezone(dt.UTC)
            now = now.replace(microsecond=now.microsecond // 1000 * 1000)
            n = table.num_rows
            ts = pa.timestamp("ms", tz="UTC")
            for name, value in (
                ("IsDeleted", pa.repeat(pa.scalar(True), n)),
                ("LastModifiedDate", pa.repeat(pa.scalar(now, ts), n)),
                ("SystemModstamp", pa.repeat(pa.scalar(now, ts), n)),
                ("LastModifiedById", pa.repeat(pa.scalar(SANDBOX_USER), n)),
            ):
                table = table.set_column(table.schema.get_field_index(name), name, value)
            store.write_rows(obj, target[rows][order], table)
    return Outcome(alive, np.zeros(b.n, dtype=bool), existing_ids, b.errors)


def _column_values(
    store: Store,
    obj: ObjectDef,
    b: _Batch,
    col: Column,
    text: pa.Array,
    is_new: np.ndarray,
    operation: str,
) -> tuple[pa.Array, np.ndarray] | None:
    """Typed values of one column and the mask of rows that set it (``#N/A`` sets null; empty leaves alone)."""
    fdef = col.field
    provided = pc.not_equal(text, "").to_numpy(zero_copy_only=False)
    if not provided.any():
        return None
    na = pc.equal(text, NA).to_numpy(zero_copy_only=False)
    rows = np.flatnonzero(provided & ~na)
    if not fdef.writable:
        verb = "create" if operation == "insert" else "update"
        b.fail(
            np.flatnonzero(provided),
            error_text(
                "INVALID_FIELD_FOR_INSERT_UPDATE",
                f"Unable to {verb} fields: {fdef.name}. Please check the security settings of this field and verify "
                "that it is read/write for your profile or permission set.",
                [fdef.name],
            ),
        )
        return None
    arrow_type = fdef.arrow_type
    if col.parent is not None:
        typed = _resolve_parents(store, b, col, text, rows)
    else:
        typed = _typed(b, fdef, text, rows)
    # rows not set keep null in `typed`; the merge takes them from the old record (or null for inserts)
    if not fdef.nillable and na.any():
        b.fail(
            np.flatnonzero(na),
            error_text("REQUIRED_FIELD_MISSING", f"Required fields are missing: [{fdef.name}]", [fdef.name]),
        )
    return typed.cast(arrow_type), provided


def _resolve_parents(store: Store, b: _Batch, col: Column, text: pa.Array, rows: np.ndarray) -> pa.Array:
    assert col.parent is not None and col.parent_key is not None
    parent, key = col.parent, col.parent_key
    out: list[str | None] = [None] * len(text)
    values = text.to_pylist()
    for row in rows.tolist():
        value = values[row]
        if key.type == "id":
            index = ids.index_of(parent.prefix, value)
            found = index is not None and index < store.total(parent)
        else:
            index = store.find_external(parent, key.name, value)
            found = index is not None
        if not found or index is None:
            b.fail(
                [row],
                error_text(
                    "INVALID_FIELD",
                    f"Foreign key external ID: {value} not found for field {key.name} in entity {parent.name}",
                    [col.field.name],
                ),
            )
            continue
        out[row] = ids.make_id(parent.prefix, index)
    return pa.array(out, pa.string())


def _typed(b: _Batch, fdef: FieldDef, text: pa.Array, rows: np.ndarray) -> pa.Array:
    """The values of ``rows`` converted to the field's type; conversion failures fail their rows."""
    n = len(text)
    label = fdef.label or fdef.name
    picked = np.zeros(n, dtype=bool)
    picked[rows] = True
    values = pc.if_else(pa.array(picked), text, pa.scalar(None, pa.string()))
    t = fdef.type
    if t in ("string", "textarea", "phone", "url", "email", "picklist", "multipicklist", "combobox"):
        if fdef.length:
            long = np.flatnonzero(_bools(pc.greater(pc.utf8_length(values), fdef.length)))
            sample = values.take(pa.array(long)).to_pylist()
            b.fail(
                long,
                [
                    error_text(
                        "STRING_TOO_LONG",
                        f"{label}: data value too large: {v[:60]} (max length={fdef.length})",
                        [fdef.name],
                    )
                    for v in sample
                ],
            )
        if fdef.restricted and fdef.picklist:
            allowed = pa.array(list(fdef.picklist))
            parts = pc.split_pattern(values, ";") if t == "multipicklist" else None
            if parts is not None:
                flat = pc.list_flatten(parts)
                bad_flat = pc.invert(pc.is_in(flat, allowed)).to_numpy(zero_copy_only=False)
                owner = pc.list_parent_indices(parts).to_numpy()
                bad = np.unique(owner[bad_flat])
            else:
                bad = np.flatnonzero(
                    pc.fill_null(pc.invert(pc.is_in(values, allowed)), False).to_numpy(zero_copy_only=False) & picked
                )
            sample = values.take(pa.array(bad, pa.int64())).to_pylist()
            b.fail(
                bad,
                [
                    error_text(
                        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                        f"{label}: bad value for restricted picklist field: {v}",
                        [fdef.name],
                    )
                    for v in sample
                ],
            )
        return values
    if t == "reference":
        out: list[str | None] = [None] * n
        prefixes = tuple(o.prefix for o in (find_object(r) for r in fdef.reference_to) if o is not None)
        vals = values.to_pylist()
        for row in rows.tolist():
            v = ids.to_18(vals[row])
            if len(v) != 18 or (prefixes and not v.startswith(prefixes)):
                b.fail(
                    [row], error_text("MALFORMED_ID", f"{label}: id value of incorrect type: {vals[row]}", [fdef.name])
                )
            else:
                out[row] = v
        return pa.array(out, pa.string())
    fast = _fast(fdef, values, picked)
    if fast is not None:
        return fast
    converted: list[Any] = [None] * n
    vals = values.to_pylist()
    bad_rows: list[int] = []
    for row in rows.tolist():
        try:
            converted[row] = _convert(fdef, vals[row])
        except (ValueError, OverflowError):
            bad_rows.append(row)
    for row in bad_rows:
        code, message = "INVALID_TYPE_ON_FIELD_IN_RECORD", f"{label}: value not of required type: {vals[row]}"
        if t in ("double", "currency", "percent", "int") and _is_number(vals[row]):
            code, message = (
                "NUMBER_OUTSIDE_VALID_RANGE",
                f"{label}: value outside of valid range on numeric field: {vals[row]}",
            )
        b.fail([row], error_text(code, message, [fdef.name]))
    return pa.array(converted, fdef.arrow_type)


def _fast(fdef: FieldDef, values: pa.Array, picked: np.ndarray) -> pa.Array | None:
    """Vectorised conversion of a whole column; None when some value needs the per-record path."""
    t = fdef.type
    try:
        if t in ("double", "currency", "percent", "int"):
            numbers = pc.cast(values, pa.float64())
            digits = (fdef.precision - fdef.scale) if t != "int" and fdef.precision else (fdef.precision or 9)
            limit = float(10 ** max(digits, 1))
            if pc.any(pc.fill_null(pc.greater_equal(pc.abs(numbers), limit), False)).as_py():
                return None
            if pc.any(pc.is_nan(numbers)).as_py():
                return None
            if t == "int":
                return pc.cast(numbers, pa.int64())  # a fraction raises ArrowInvalid: per-record path
            return pc.round(numbers, fdef.scale, round_mode="half_up")  # values beyond the scale round half up
        if t == "date":
            return pc.cast(pc.utf8_rtrim(values, characters="Z"), pa.date32())
        if t == "datetime":
            return pc.cast(values, pa.timestamp("ms", tz="UTC"))
        if t == "boolean":
            low = pc.utf8_lower(pc.utf8_trim_whitespace(values))
            yes = pc.is_in(low, pa.array(sorted(_TRUE)))
            no = pc.is_in(low, pa.array(sorted(_FALSE)))
            unknown = pc.invert(pc.or_(yes, no)).to_numpy(zero_copy_only=False) & picked
            if unknown.any():
                return None
            return pc.if_else(pa.array(picked), yes, pa.scalar(None, pa.bool_()))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    return None


def _bools(arr: Any) -> np.ndarray:
    """A boolean Arrow array as numpy (null as False)."""
    return np.asarray(pc.fill_null(arr, False).to_numpy(zero_copy_only=False), dtype=bool)


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def _convert(fdef: FieldDef, value: str) -> Any:
    t = fdef.type
    if t == "boolean":
        low = value.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise ValueError(value)
    if t == "int":
        number = float(value)
        if number != int(number) or abs(number) >= 10 ** max(fdef.precision or 9, 1):
            raise OverflowError(value)
        return int(number)
    if t in ("double", "currency", "percent"):
        number = float(value)
        if number != number or abs(number) >= 10 ** (fdef.precision - fdef.scale if fdef.precision else 18):
            raise OverflowError(value)
        return float(
            decimal.Decimal(value.strip()).quantize(decimal.Decimal(1).scaleb(-fdef.scale), decimal.ROUND_HALF_UP)
        )
    if t == "date":
        return dt.date.fromisoformat(value.strip().removesuffix("Z"))
    if t == "datetime":
        parsed = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=dt.UTC)
        return parsed.astimezone(dt.UTC)
    return value


def _merge(
    store: Store,
    obj: ObjectDef,
    rows: np.ndarray,
    target: np.ndarray,
    is_new: np.ndarray,
    values: dict[str, tuple[pa.Array, np.ndarray]],
) -> pa.Table:
    """Whole rows for ``rows``: the current record (or a new one's defaults) with the provided values set."""
    schema = obj.arrow_schema
    n = len(rows)
    base_cols: dict[str, pa.Array] = {}
    old_rows = rows[~is_new[rows]]
    if len(old_rows):
        order = np.argsort(target[old_rows], kind="stable")
        current = store.rows(obj, target[old_rows][order])
        back = np.empty(len(order), dtype=np.int64)
        back[order] = np.arange(len(order))
        current = current.take(pa.array(back))
    else:
        current = schema.empty_table()
    position = np.full(len(target), -1, dtype=np.int64)
    position[old_rows] = np.arange(len(old_rows))
    new_mask = is_new[rows]
    for f in schema:
        defaults = _default(obj, f.name, f.type, n)
        if len(old_rows):
            idx = position[rows]
            old = current.column(f.name).combine_chunks().take(pa.array(np.where(idx < 0, 0, idx)))
            base = pc.if_else(pa.array(new_mask), defaults, old)
        else:
            base = defaults
        if f.name in values:
            typed, provided = values[f.name]
            sub = typed.take(pa.array(rows))
            base = pc.if_else(pa.array(provided[rows]), sub, base)
        base_cols[f.name] = base
    return pa.table([base_cols[f.name].cast(f.type) for f in schema], schema=schema)


def _default(obj: ObjectDef, name: str, type_: pa.DataType, n: int) -> pa.Array:
    fdef = obj.field(name)
    if fdef is not None and fdef.type == "boolean":
        return pa.repeat(pa.scalar(False), n)
    if name == "OwnerId":
        return pa.repeat(pa.scalar(SANDBOX_USER), n)
    return pa.nulls(n, type_)


def _check_required(obj: ObjectDef, b: _Batch, rows: np.ndarray, merged: pa.Table) -> None:
    required = [
        f.name for f in obj.columns if not f.nillable and f.writable and f.type != "boolean" and f.name != "OwnerId"
    ]
    missing: dict[int, list[str]] = {}
    for name in required:
        for pos in np.flatnonzero(merged.column(name).is_null().to_numpy(zero_copy_only=False)).tolist():
            missing.setdefault(pos, []).append(name)
    for pos, names in missing.items():
        b.fail(
            [int(rows[pos])],
            error_text("REQUIRED_FIELD_MISSING", f"Required fields are missing: [{', '.join(names)}]", names),
        )


def _check_rules(obj: ObjectDef, b: _Batch, rows: np.ndarray, merged: pa.Table, rules: list[ValidationRule]) -> None:
    if not rules:
        return
    marked = merged.append_column("__pos", pa.array(np.arange(merged.num_rows, dtype=np.int64)))
    for rule in rules:
        hits = marked.filter(rule.expression(obj))["__pos"].to_numpy()
        b.fail(
            rows[hits],
            error_text("FIELD_CUSTOM_VALIDATION_EXCEPTION", rule.message, [rule.field] if rule.field else []),
        )


def _check_unique(
    store: Store, obj: ObjectDef, b: _Batch, rows: np.ndarray, merged: pa.Table, target: np.ndarray
) -> None:
    for name in store.external[obj.name]:
        values = merged.column(name).to_pylist()
        first: dict[str, int] = {}
        for pos, value in enumerate(values):
            if value in (None, ""):
                continue
            key = str(value).lower()
            row = int(rows[pos])
            owner = store.find_external(obj, name, key)
            if owner is not None and owner != int(target[row]):
                b.fail(
                    [row],
                    error_text(
                        "DUPLICATE_VALUE",
                        f"duplicate value found: {name} duplicates value on record with id: "
                        f"{ids.make_id(obj.prefix, owner)}",
                        [name],
                    ),
                )
            elif key in first:
                b.fail([row], error_text("DUPLICATE_VALUE", f"Duplicate external id specified: {value}", [name]))
            else:
                first[key] = row


def _stamp(obj: ObjectDef, table: pa.Table, indices: np.ndarray, new_rows: np.ndarray, now: dt.datetime) -> pa.Table:
    """Id and audit fields: new records get their Id and Created*, every record LastModified* and SystemModstamp."""
    n = table.num_rows
    ts = pa.timestamp("ms", tz="UTC")
    new_mask = pa.array(new_rows)
    ids_new = pa.array(ids.make_ids(obj.prefix, indices).astype(str), pa.string()) if n else pa.array([], pa.string())

    def put(t: pa.Table, name: str, value: pa.Array) -> pa.Table:
        return t.set_column(t.schema.get_field_index(name), name, value)

    stamp = pa.repeat(pa.scalar(now, ts), n)
    user = pa.repeat(pa.scalar(SANDBOX_USER), n)
    table = put(table, "Id", pc.if_else(new_mask, ids_new, table["Id"]))
    table = put(table, "IsDeleted", pc.if_else(new_mask, pa.repeat(pa.scalar(False), n), table["IsDeleted"]))
    table = put(table, "CreatedDate", pc.if_else(new_mask, stamp, table["CreatedDate"]))
    table = put(table, "CreatedById", pc.if_else(new_mask, user, table["CreatedById"]))
    for name, value in (("LastModifiedDate", stamp), ("LastModifiedById", user), ("SystemModstamp", stamp)):
        table = put(table, name, value)
    return table
