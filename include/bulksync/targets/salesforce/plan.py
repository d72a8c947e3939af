"""What one write-back sends, decided from the spec, the staged schema and the org's describe.

:func:`plan_write` runs at the start of a load, before any upload: every refusal names the field
and says what to do (unknown fields with close matches, fields the user may not create or update
for the operation, required fields left unmapped, an upsert key that is not an external id, a
relationship to an object the reference does not point to).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from bulksync.errors import ConfigurationError, TargetSchemaError

STRING_TYPES = {
    "string",
    "textarea",
    "phone",
    "url",
    "email",
    "picklist",
    "multipicklist",
    "combobox",
    "encryptedstring",
    "id",
    "reference",
}
NUMBER_TYPES = {"int", "long", "double", "currency", "percent"}
MAX_FIELD_CHARS = 32_000
"""Bulk API 2.0 limit: "Maximum number of characters in a field: 32,000" (bulk_api_2_limits.htm)."""


@dataclass(frozen=True)
class Column:
    """One CSV column of the upload."""

    header: str
    """The CSV header: a field's API name, or ``Relationship.ExternalIdField``."""
    source: str
    """The staged column it is read from."""
    field: dict[str, Any]
    """The describe entry of the field it sets (the reference field for a relationship column)."""
    relationship: bool = False

    @property
    def sf_type(self) -> str:
        """The field's Salesforce type (``string`` for relationship columns: parent keys are text)."""
        return "string" if self.relationship else str(self.field.get("type", "string"))


@dataclass
class WritePlan:
    """The columns of every upload and the record key."""

    object: str
    operation: str
    external_id: str | None
    columns: list[Column]
    key_source: str | None
    """The staged column holding the record key (external id or Id); None for insert."""
    required: list[Column] = field(default_factory=list)
    """Columns of fields a new record must have (checked per row for inserts)."""

    @property
    def headers(self) -> list[str]:
        """The CSV header, in upload order."""
        return [c.header for c in self.columns]


def _close(name: str, names: list[str]) -> str:
    close = difflib.get_close_matches(name.lower(), [n.lower() for n in names], n=3, cutoff=0.6)
    spelled = {n.lower(): n for n in names}
    return f"; did you mean {', '.join(spelled[c] for c in close)}?" if close else ""


def plan_write(spec: Any, schema: pa.Schema, describe: dict[str, Any], parents: dict[str, dict[str, Any]]) -> WritePlan:
    """Check the spec against the staged schema and the object's describe; return the upload's columns.

    Args:
        spec: the :class:`~bulksync.spec.salesforce_target.SalesforceTargetSpec`.
        schema: the staged (transformed) schema.
        describe: ``/sobjects/{object}/describe``.
        parents: describes of the relationship objects, by API name.

    Raises:
        ConfigurationError: the object cannot take the operation, or a key/relationship is wrong.
        TargetSchemaError: a staged column or mapped field does not fit (names both and the fix).
    """
    obj = describe.get("name", spec.object)
    op = spec.operation
    fields = {f["name"].lower(): f for f in describe.get("fields", [])}
    names = [f["name"] for f in describe.get("fields", [])]
    staged = {n.lower(): n for n in schema.names}
    _check_object(describe, op, spec.conn_id)

    def staged_column(column: str, what: str) -> str:
        real = staged.get(column.lower()) if column not in schema.names else column
        if real is None:
            raise TargetSchemaError(
                f"{what} names the staged column {column!r}, which the staged data of {obj} does not have "
                f"(columns: {', '.join(schema.names)}){_close(column, schema.names)}"
            )
        return real

    def sf_field(name: str, what: str) -> dict[str, Any]:
        found = fields.get(name.lower())
        if found is None:
            raise TargetSchemaError(
                f"{obj} has no field {name!r} ({what}){_close(name, names)}; check the API name (custom fields end "
                "in __c) and the integration user's field-level security"
            )
        return found

    rel_sources = {r.from_ for r in spec.relationships.values()}
    pairs: list[tuple[dict[str, Any], str]] = []
    if spec.fields is not None:
        for name, column in spec.fields.items():
            pairs.append(
                (sf_field(name, f"mapped from staged column {column!r}"), staged_column(column, f"fields.{name}"))
            )
    else:
        excluded = {c.lower() for c in spec.exclude_columns}
        for column in schema.names:
            if column.lower() in excluded or column in rel_sources:
                continue
            found = fields.get(column.lower())
            if found is None:
                raise TargetSchemaError(
                    f"staged column {column!r} has no field on {obj} and no mapping{_close(column, names)}: map it "
                    f"(fields: {{<Field>: {column}}}), leave it out (exclude_columns: [{column}]) or drop it in a "
                    "transform; nothing was sent"
                )
            pairs.append((found, column))
    columns: list[Column] = []
    for fdef, column in pairs:
        _check_writable(obj, fdef, column, op, spec.external_id)
        _check_type(obj, fdef, column, schema.field(column).type)
        columns.append(Column(fdef["name"], column, fdef))
    for rel, target in spec.relationships.items():
        columns.append(
            _relationship(obj, describe, rel, target, parents, staged_column(target.from_, f"relationships.{rel}.from"))
        )
    headers = [c.header.lower() for c in columns]
    if len(set(headers)) != len(headers):
        twice = sorted({h for h in headers if headers.count(h) > 1})
        raise TargetSchemaError(f"the upload to {obj} would set {', '.join(twice)} twice; map each field once")
    key_source = _key(spec, obj, fields, columns)
    plan = WritePlan(obj, op, _external_name(spec, fields), columns, key_source)
    if op in ("insert", "upsert"):
        plan.required = _required(spec, obj, describe, columns)
    if op in ("delete", "hardDelete"):
        plan.columns = [c for c in columns if c.header == "Id"]
    return plan


def _check_object(describe: dict[str, Any], op: str, conn_id: str) -> None:
    obj = describe.get("name")
    needs = {"insert": ["createable"], "update": ["updateable"], "upsert": ["createable", "updateable"]}.get(
        op, ["deletable"]
    )
    for flag in needs:
        if describe.get(flag) is False:
            raise ConfigurationError(
                f"{obj} is not {flag} for the user of connection {conn_id!r}, so operation {op!r} cannot run: grant "
                f"the integration user's profile or permission set the object permission, or choose another operation"
            )


def _check_writable(obj: str, fdef: dict[str, Any], column: str, op: str, external_id: str | None) -> None:
    name = fdef["name"]
    if name == "Id":
        if op == "insert":
            raise TargetSchemaError(
                f"staged column {column!r} is sent as {obj}.Id, but an insert cannot set Id: leave it out "
                "(exclude_columns) or use operation update/upsert"
            )
        return
    if op in ("delete", "hardDelete"):
        raise TargetSchemaError(
            f"operation {op!r} sends only Id, but staged column {column!r} maps to {obj}.{name}: leave it out "
            "(fields: {Id: <column>})"
        )
    is_key = op == "upsert" and external_id and name.lower() == external_id.lower()
    flags = {"insert": ["createable"], "update": ["updateable"], "upsert": ["createable", "updateable"]}[op]
    if is_key:
        flags = ["createable"]
    for flag in flags:
        if not fdef.get(flag, False):
            why = "a formula field" if fdef.get("calculated") else "read-only for the integration user"
            raise TargetSchemaError(
                f"{obj}.{name} (from staged column {column!r}) is not {flag} ({why}) so operation {op!r} cannot "
                f"write it: leave it out (exclude_columns: [{column}]) or give the integration user edit access "
                "to the field"
            )


def _check_type(obj: str, fdef: dict[str, Any], column: str, arrow: pa.DataType) -> None:
    t = str(fdef.get("type"))
    if pa.types.is_string(arrow) or pa.types.is_large_string(arrow) or pa.types.is_null(arrow):
        return  # text is sent as it is; Salesforce (or the row check) judges the value
    ok = {
        "boolean": pa.types.is_boolean(arrow),
        "date": pa.types.is_date(arrow) or pa.types.is_timestamp(arrow),
        "datetime": pa.types.is_timestamp(arrow) or pa.types.is_date(arrow),
        "time": pa.types.is_time(arrow),
    }.get(t)
    if t in NUMBER_TYPES:
        ok = pa.types.is_integer(arrow) or pa.types.is_floating(arrow) or pa.types.is_decimal(arrow)
    if t in STRING_TYPES:
        ok = not (pa.types.is_list(arrow) or pa.types.is_struct(arrow) or pa.types.is_binary(arrow))
    if ok is False or (ok is None and not pa.types.is_primitive(arrow)):
        raise TargetSchemaError(
            f"staged column {column!r} is {arrow} but {obj}.{fdef['name']} is a {t} field: cast the column in a "
            f"transform (cast: {{{column}: <type>}}) or map another column"
        )


def _relationship(
    obj: str, describe: dict[str, Any], rel: str, target: Any, parents: dict[str, dict[str, Any]], column: str
) -> Column:
    refs = [f for f in describe.get("fields", []) if f.get("type") == "reference" and f.get("relationshipName")]
    ref = next((f for f in refs if str(f["relationshipName"]).lower() == rel.lower()), None)
    if ref is None:
        raise TargetSchemaError(
            f"{obj} has no relationship {rel!r}{_close(rel, [f['relationshipName'] for f in refs])}; relationships "
            f"are named by the reference field's relationshipName (e.g. Parent for ParentId)"
        )
    points_to = [str(o).lower() for o in ref.get("referenceTo", [])]
    if target.object.lower() not in points_to:
        raise TargetSchemaError(
            f"relationship {rel} of {obj} ({ref['name']}) points to "
            f"{', '.join(ref.get('referenceTo', [])) or 'nothing'}, not {target.object}: fix relationships.{rel}.object"
        )
    parent = parents.get(target.object) or parents.get(target.object.lower(), {})
    pfields = {f["name"].lower(): f for f in parent.get("fields", [])}
    key = pfields.get(target.external_id.lower())
    if key is None:
        raise TargetSchemaError(
            f"{target.object} has no field {target.external_id!r} (relationships.{rel}.external_id)"
            f"{_close(target.external_id, [f['name'] for f in parent.get('fields', [])])}"
        )
    if not (key.get("externalId") or key.get("idLookup") or key["name"] == "Id"):
        raise TargetSchemaError(
            f"{target.object}.{key['name']} is not an external id (externalId false in describe), so "
            f"relationship {rel} cannot look parents up by it: mark the field External ID in Setup, or use another key"
        )
    field_ok = ref.get("createable") or ref.get("updateable")
    if not field_ok:
        raise TargetSchemaError(f"{obj}.{ref['name']} (relationship {rel}) is read-only for the integration user")
    return Column(f"{ref['relationshipName']}.{key['name']}", column, ref, relationship=True)


def _external_name(spec: Any, fields: dict[str, dict[str, Any]]) -> str | None:
    if spec.operation != "upsert":
        return None
    return str(fields[str(spec.external_id).lower()]["name"]) if str(spec.external_id).lower() in fields else None


def _key(spec: Any, obj: str, fields: dict[str, dict[str, Any]], columns: list[Column]) -> str | None:
    op = spec.operation
    if op == "insert":
        return None
    key = spec.external_id if op == "upsert" else "Id"
    fdef = fields.get(str(key).lower())
    if fdef is None:
        raise ConfigurationError(
            f"{obj} has no field {key!r} (the {'external_id' if op == 'upsert' else 'record key'} of operation {op!r})"
            f"{_close(str(key), list(f['name'] for f in fields.values()))}"
        )
    if op == "upsert" and not (fdef.get("externalId") or fdef["name"] == "Id"):
        raise ConfigurationError(
            f"{obj}.{fdef['name']} is not an external id (externalId: false in describe), so it cannot be the upsert "
            "key: mark it External ID (and Unique) in Setup, or choose an external id field as external_id"
        )
    column = next((c for c in columns if c.header.lower() == fdef["name"].lower()), None)
    if column is None:
        raise TargetSchemaError(
            f"operation {op!r} needs the key {obj}.{fdef['name']} in every record, but no staged column maps to it: "
            f"map one (fields: {{{fdef['name']}: <column>}}) or name the column {fdef['name']}"
        )
    return column.source


def _required(spec: Any, obj: str, describe: dict[str, Any], columns: list[Column]) -> list[Column]:
    """Fields a new record needs (not nillable, createable, no default); refuse the ones left unmapped."""
    mapped = {c.field["name"].lower(): c for c in columns}
    required = [
        f
        for f in describe.get("fields", [])
        if not f.get("nillable", True)
        and f.get("createable")
        and not f.get("defaultedOnCreate")
        and f.get("type") != "boolean"
    ]
    missing = [f["name"] for f in required if f["name"].lower() not in mapped]
    if missing:
        raise TargetSchemaError(
            f"{obj} requires {', '.join(missing)} on every new record (nillable: false, no default) but no staged "
            f"column maps to {'it' if len(missing) == 1 else 'them'}: map a column "
            f"(fields: {{{missing[0]}: <column>}}) or derive it in a transform; nothing was sent"
        )
    return [mapped[f["name"].lower()] for f in required]
