"""Building blocks shared by every spec model."""

from __future__ import annotations

import re
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict

_SLUG = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_$#@]{0,127}$")


class StrictModel(BaseModel):
    """A spec model that refuses unknown fields, so typos fail loudly."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _slug(value: str) -> str:
    if not _SLUG.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a valid name: use lowercase letters, digits and '_', "
            "starting with a letter (at most 63 characters)"
        )
    return value


def _identifier(value: str) -> str:
    if not _IDENT.fullmatch(value):
        raise ValueError(f"{value!r} is not a valid SQL identifier (letters, digits, '_'; no quotes or dots)")
    return value


def check_timezone(value: str) -> str:
    """``value`` when it names an IANA time zone; ``ValueError`` with an example otherwise."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r}; use an IANA name such as 'Europe/Berlin'") from None
    return value


Slug = Annotated[str, AfterValidator(_slug)]
"""A lowercase name usable in DAG ids, task ids and paths."""

Identifier = Annotated[str, AfterValidator(_identifier)]
"""A plain SQL identifier (table, schema or column name)."""
