"""From an object's describe to the fields to query and their Arrow types.

Types: string-like types → string, boolean → bool, int/long → int64, double → float64,
currency/percent → decimal128(precision, scale) from describe, date → date32, datetime →
timestamp[us, UTC], time → time64[us]. Compound fields (address, location) cannot be selected
in Bulk queries: ``fields: all`` replaces them with their components, an explicit list naming one
is refused with the components to list instead. base64 fields are not available in Bulk queries.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from bulksync.errors import ConfigurationError

STRING_TYPES = {
    "id",
    "reference",
    "string",
    "picklist",
    "multipicklist",
    "combobox",
    "textarea",
    "phone",
    "url",
    "email",
    "encryptedstring",
    "anyType",
    "datacategorygroupreference",
}
COMPOUND_TYPES = {"address", "location"}
UNSUPPORTED_TYPES = {"base64", "complexvalue", "json"}
MAX_DECIMAL_PRECISION = 38


def arrow_type(field: dict[str, Any]) -> pa.DataType:
    """The Arrow type of one describe field."""
    sf_type = field.get("type", "string")
    if sf_type in STRING_TYPES:
        return pa.string()
    if sf_type == "boolean":
        return pa.bool_()
    if sf_type in ("int", "long"):
        return pa.int64()
    if sf_type == "double":
        return pa.float64()
    if sf_type in ("currency", "percent"):
        scale = int(field.get("scale") or 0)
        precision = int(field.get("precision") or 0) or 18
        precision = min(max(precision, scale + 1), MAX_DECIMAL_PRECISION)
        return pa.decimal128(precision, scale)
    if sf_type == "date":
        return pa.date32()
    if sf_type == "datetime":
        return pa.timestamp("us", tz="UTC")
    if sf_type == "time":
        return pa.time64("us")
    return pa.string()


def select_fields(describe: dict[str, Any], options: Any, required: list[str]) -> list[dict[str, Any]]:
    """The describe fields to query, in describe order, for the spec's ``fields`` option.

    Args:
        describe: the object's describe result.
        options: the source's :class:`~bulksync.spec.salesforce.SalesforceOptions`.
        required: fields always extracted (Id, the cursor field, IsDeleted when deletes are kept).

    Raises:
        ConfigurationError: an unknown, compound or unsupported field is named; the message lists
            what to use instead.
    """
    obj = describe.get("name", options.object)
    by_name = {f["name"].lower(): f for f in describe["fields"]}
    for name in [*required, *options.exclude_fields]:
        if name.lower() not in by_name:
            raise ConfigurationError(
                _unknown(obj, name, by_name, "is required by the spec" if name in required else "")
            )
    if options.fields == "all":
        excluded = {n.lower() for n in options.exclude_fields}
        chosen = [
            f
            for f in describe["fields"]
            if f.get("type") not in COMPOUND_TYPES
            and f.get("type") not in UNSUPPORTED_TYPES
            and (options.include_formula or not f.get("calculated"))
            and f["name"].lower() not in excluded
        ]
    else:
        chosen = []
        for name in options.fields:
            field = by_name.get(name.lower())
            if field is None:
                raise ConfigurationError(_unknown(obj, name, by_name, ""))
            if field.get("type") in COMPOUND_TYPES:
                parts = [f["name"] for f in describe["fields"] if f.get("compoundFieldName") == field["name"]]
                raise ConfigurationError(
                    f"field {field['name']!r} of {obj} is a compound {field['type']} field, and Bulk API 2.0 refuses "
                    f"compound fields (Selecting compound data not supported in Bulk Query): list its components "
                    f"instead: {', '.join(parts) or '(none in describe)'}"
                )
            if field.get("type") in UNSUPPORTED_TYPES:
                raise ConfigurationError(
                    f"field {field['name']!r} of {obj} has type {field['type']}, which Bulk API 2.0 queries cannot "
                    "return; remove it from fields"
                )
            chosen.append(field)
    names = {f["name"].lower() for f in chosen}
    for name in required:
        if name.lower() not in names:
            chosen.append(by_name[name.lower()])
            names.add(name.lower())
    return chosen


def schema_of(fields: list[dict[str, Any]]) -> pa.Schema:
    """Arrow schema of the chosen fields (Salesforce's API names as column names)."""
    return pa.schema(
        [
            pa.field(
                f["name"],
                arrow_type(f),
                nullable=bool(f.get("nillable", True)) or f.get("type") != "id",
                metadata={"salesforce_type": str(f.get("type", ""))},
            )
            for f in fields
        ]
    )


def field_name(describe: dict[str, Any], name: str) -> str:
    """The describe spelling of a field name (Salesforce names are case-insensitive)."""
    for f in describe["fields"]:
        if f["name"].lower() == name.lower():
            return str(f["name"])
    return name


def _unknown(obj: str, name: str, by_name: dict[str, Any], why: str) -> str:
    import difflib

    close = difflib.get_close_matches(name.lower(), list(by_name), n=3)
    hint = f"; did you mean {', '.join(by_name[c]['name'] for c in close)}?" if close else ""
    why = f" ({why})" if why else ""
    return f"{obj} has no field {name!r}{why}{hint} (check the spelling and the user's field-level security)"
