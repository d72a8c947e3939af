"""What each target database can hold, declared as data (not as branches in the load code).

A spec is checked against these limits when it is validated (names written in the spec) and again
before a load opens its transaction (names that only the source knows), so a name the database
would silently truncate, or a table it cannot create, is refused with a message saying what to do
instead of failing half-way or, worse, loading once and failing every later run.

The figures come from each database's documentation:

- PostgreSQL: identifiers up to ``NAMEDATALEN - 1`` = 63 **bytes** (longer ones are truncated,
  https://www.postgresql.org/docs/current/sql-syntax-lexical.html#SQL-SYNTAX-IDENTIFIERS); at most
  1,600 columns per table (https://www.postgresql.org/docs/current/limits.html); ``NaN`` is a
  value of ``double precision``.
- SQLite: no identifier length limit; at most 2,000 columns (``SQLITE_MAX_COLUMN``,
  https://www.sqlite.org/limits.html); a ``NaN`` bound as a REAL is stored as NULL
  (https://www.sqlite.org/floatingpoint.html).
- MariaDB / MySQL: identifiers up to 64 **characters**
  (https://mariadb.com/kb/en/identifier-names/#maximum-length); at most 4,096 columns
  (https://mariadb.com/kb/en/innodb-limitations/); no ``NaN`` in ``DOUBLE``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class TargetCapabilities:
    """The limits of one target database that bulksync checks before it loads.

    Attributes:
        name: the database, as messages show it.
        max_identifier_length: the longest table / column name it keeps (``None``: no limit).
        identifier_unit: whether that length counts UTF-8 ``bytes`` or ``chars``.
        max_columns: the most columns a table may have (audit columns included).
        stores_nan: whether a floating-point ``NaN`` survives a load (else it would become NULL).
    """

    name: str
    max_identifier_length: int | None
    identifier_unit: Literal["bytes", "chars"]
    max_columns: int
    stores_nan: bool

    def identifier_length(self, name: str) -> int:
        """The length of ``name`` as this database counts it."""
        return len(name.encode("utf-8")) if self.identifier_unit == "bytes" else len(name)

    def too_long(self, names: list[str]) -> list[str]:
        """The names this database would truncate."""
        limit = self.max_identifier_length
        return [] if limit is None else [n for n in names if self.identifier_length(n) > limit]

    def describe_limit(self) -> str:
        """``63 bytes`` / ``64 characters``, for messages."""
        unit = "bytes" if self.identifier_unit == "bytes" else "characters"
        return f"{self.max_identifier_length} {unit}"


POSTGRESQL = TargetCapabilities("PostgreSQL", 63, "bytes", 1600, True)
SQLITE = TargetCapabilities("SQLite", None, "chars", 2000, False)
MARIADB = TargetCapabilities("MariaDB", 64, "chars", 4096, False)

BY_DIALECT: dict[str, TargetCapabilities] = {"postgresql": POSTGRESQL, "sqlite": SQLITE, "mysql": MARIADB}
"""Capabilities by SQLAlchemy dialect name (what a connection turns out to be)."""

BY_KIND: dict[str, TargetCapabilities] = {"postgres": POSTGRESQL, "sqlite": SQLITE, "mariadb": MARIADB}
"""Capabilities by target kind (what a spec declares, known before any connection is opened)."""


def for_dialect(dialect: str) -> TargetCapabilities:
    """The capabilities of a SQLAlchemy dialect; unknown dialects get the strictest known limits."""
    return BY_DIALECT.get(dialect, TargetCapabilities(dialect, 63, "bytes", 1600, False))


def identifier_problems(caps: TargetCapabilities, names: dict[str, list[str]]) -> list[str]:
    """One message per name too long for the database, ``names`` being ``{what: [names]}``."""
    problems = []
    for what, values in names.items():
        for name in caps.too_long([v for v in values if v]):
            problems.append(
                f"{what} {name!r} is {caps.identifier_length(name)} {caps.identifier_unit} long; {caps.name} keeps "
                f"names of at most {caps.describe_limit()} (it would truncate it, and the next load would then fail "
                "on a duplicate column). Rename it (a 'rename' transform step, or a shorter table name)"
            )
    return problems
