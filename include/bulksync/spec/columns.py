"""Declared column types, shared by file sources and casts.

Type names are the ones an integration engineer writes in a spec: ``string``, ``int64``,
``decimal(18,2)``, ``timestamp``, ``date``, ``bool``, ``float64``. They map to exact Arrow types.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field

from bulksync.spec.common import Identifier, StrictModel

SIMPLE_TYPES = {
    "string",
    "int32",
    "int64",
    "float64",
    "bool",
    "date",
    "timestamp",
    "timestamptz",
    "binary",
}
_DECIMAL = re.compile(r"^decimal\((\d{1,2}),\s*(\d{1,2})\)$")
ALIASES = {
    "str": "string",
    "text": "string",
    "int": "int64",
    "integer": "int64",
    "bigint": "int64",
    "float": "float64",
    "double": "float64",
    "boolean": "bool",
    "datetime": "timestamp",
}


def normalize_type(value: str) -> str:
    """Return the canonical spelling of a declared type, or raise ``ValueError``."""
    v = value.strip().lower()
    v = ALIASES.get(v, v)
    if v in SIMPLE_TYPES:
        return v
    m = _DECIMAL.fullmatch(v)
    if m:
        precision, scale = int(m.group(1)), int(m.group(2))
        if not 1 <= precision <= 38 or scale > precision:
            raise ValueError(f"decimal({precision},{scale}): precision must be 1..38 and scale <= precision")
        return f"decimal({precision},{scale})"
    raise ValueError(f"unknown type {value!r}; use one of {', '.join(sorted(SIMPLE_TYPES))} or decimal(p,s)")


TypeName = Annotated[str, AfterValidator(normalize_type)]


class ColumnSpec(StrictModel):
    """One declared column: ``{name: amount, type: decimal(18,2), nullable: true}``."""

    name: Identifier
    type: TypeName
    nullable: bool = True
    format: str | None = Field(None, description="strptime format for date/timestamp columns.")
    header: str | None = Field(
        None,
        description="CSV: the column's name in the file's header line when it is not an identifier "
        "('Contact Phone Number'); the header check compares with it, the data keeps 'name'.",
    )
