"""What the system knows about a file: columns (type, CCSID, column text), members, keys.

On an IBM i this comes from the SQL catalogue views in ``QSYS2`` (``SYSCOLUMNS``,
``SYSPARTITIONSTAT``, ``SYSCST``/``SYSKEYCST``, ``SYSINDEXES``/``SYSKEYS``). On an emulating
database it comes from SQLAlchemy's inspector (``information_schema`` and friends), where binary
columns stand for ``FOR BIT DATA`` (CCSID 65535) and column comments for the column text.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from bulksync.errors import ConfigurationError
from bulksync.ibmi.ccsid import BIT_DATA
from bulksync.ibmi.names import FileName
from bulksync.ibmi.sqlgen import MEMBER_SEPARATOR, Sql, SqlBuilder

log = logging.getLogger(__name__)

CHAR_TYPES = {"CHAR", "CHARACTER", "GRAPHIC", "NCHAR"}
TEXT_TYPES = CHAR_TYPES | {"VARCHAR", "VARGRAPHIC", "NVARCHAR", "CLOB", "DBCLOB", "NCLOB", "TEXT"}
BINARY_TYPES = {"BINARY", "VARBINARY", "BLOB"}
DECIMAL_TYPES = {"DECIMAL", "NUMERIC"}
INTEGER_TYPES = {"SMALLINT", "INTEGER", "BIGINT"}


@dataclass(frozen=True)
class CatalogColumn:
    """One column as the catalogue describes it.

    Attributes:
        name: column name.
        sql_type: catalogue type name (CHAR, VARCHAR, DECIMAL, NUMERIC, INTEGER, DATE, BINARY …).
        length: length of character and binary columns.
        precision: digits of DECIMAL / NUMERIC columns.
        scale: decimal places of DECIMAL / NUMERIC columns.
        ccsid: the column's CCSID (65535 for FOR BIT DATA), when known.
        text: the column text (``LABEL ON COLUMN … TEXT IS``), when any.
        nullable: whether nulls are allowed.
    """

    name: str
    sql_type: str
    length: int | None = None
    precision: int | None = None
    scale: int | None = None
    ccsid: int | None = None
    text: str | None = None
    nullable: bool = True

    @property
    def is_bit_data(self) -> bool:
        """Untranslated bytes: FOR BIT DATA / CCSID 65535 or a binary type."""
        return self.ccsid == BIT_DATA or self.sql_type in BINARY_TYPES

    @property
    def is_char(self) -> bool:
        """Fixed-length character data, padded with blanks."""
        return self.sql_type in CHAR_TYPES and not self.is_bit_data


# -- Db2 for i -------------------------------------------------------------------------------


def columns_sql(b: SqlBuilder, name: FileName) -> Sql:
    """The columns of a file from ``QSYS2.SYSCOLUMNS`` (SQL or system table name)."""
    lib = "TABLE_SCHEMA = :library" if name.library else "TABLE_SCHEMA = CURRENT SCHEMA"
    params: dict[str, Any] = {"file": name.file, **({"library": name.library} if name.library else {})}
    return Sql(
        "SELECT COLUMN_NAME, DATA_TYPE, LENGTH, NUMERIC_PRECISION, NUMERIC_SCALE, CCSID, COLUMN_TEXT, IS_NULLABLE "
        f"FROM QSYS2.SYSCOLUMNS WHERE {lib} AND (TABLE_NAME = :file OR SYSTEM_TABLE_NAME = :file) "
        "ORDER BY ORDINAL_POSITION FOR READ ONLY WITH UR",
        params,
    )


def members_sql(b: SqlBuilder, name: FileName) -> Sql:
    """The members of a file from ``QSYS2.SYSPARTITIONSTAT``."""
    lib = "SYSTEM_TABLE_SCHEMA = :library" if name.library else "TABLE_SCHEMA = CURRENT SCHEMA"
    params: dict[str, Any] = {"file": name.file, **({"library": name.library} if name.library else {})}
    return Sql(
        f"SELECT SYSTEM_TABLE_MEMBER FROM QSYS2.SYSPARTITIONSTAT WHERE {lib} "
        "AND (TABLE_NAME = :file OR SYSTEM_TABLE_NAME = :file) ORDER BY SYSTEM_TABLE_MEMBER FOR READ ONLY WITH UR",
        params,
    )


def key_indexes_sql(b: SqlBuilder, name: FileName, key: str) -> Sql:
    """Constraints and indexes whose *leading* column is ``key``: ``(kind, unique, number of key columns)``."""
    lib_c = "C.TABLE_SCHEMA = :library" if name.library else "C.TABLE_SCHEMA = CURRENT SCHEMA"
    lib_i = "I.TABLE_SCHEMA = :library" if name.library else "I.TABLE_SCHEMA = CURRENT SCHEMA"
    params: dict[str, Any] = {"file": name.file, "key": key, **({"library": name.library} if name.library else {})}
    return Sql(
        "SELECT 'CONSTRAINT', 'Y', (SELECT COUNT(*) FROM QSYS2.SYSKEYCST A WHERE A.CONSTRAINT_SCHEMA = "
        "C.CONSTRAINT_SCHEMA AND A.CONSTRAINT_NAME = C.CONSTRAINT_NAME) "
        "FROM QSYS2.SYSCST C JOIN QSYS2.SYSKEYCST K ON K.CONSTRAINT_SCHEMA = C.CONSTRAINT_SCHEMA "
        "AND K.CONSTRAINT_NAME = C.CONSTRAINT_NAME "
        f"WHERE {lib_c} AND C.TABLE_NAME = :file AND C.CONSTRAINT_TYPE IN ('PRIMARY KEY', 'UNIQUE') "
        "AND K.COLUMN_NAME = :key AND K.ORDINAL_POSITION = 1 "
        "UNION ALL "
        "SELECT 'INDEX', CASE WHEN I.IS_UNIQUE IN ('U', 'V') THEN 'Y' ELSE 'N' END, (SELECT COUNT(*) FROM "
        "QSYS2.SYSKEYS A WHERE A.INDEX_SCHEMA = I.INDEX_SCHEMA AND A.INDEX_NAME = I.INDEX_NAME) "
        "FROM QSYS2.SYSINDEXES I JOIN QSYS2.SYSKEYS K ON K.INDEX_SCHEMA = I.INDEX_SCHEMA "
        "AND K.INDEX_NAME = I.INDEX_NAME "
        f"WHERE {lib_i} AND I.TABLE_NAME = :file AND K.COLUMN_NAME = :key AND K.ORDINAL_POSITION = 1 "
        "FOR READ ONLY WITH UR",
        params,
    )


@dataclass(frozen=True)
class KeyIndex:
    """An index or constraint led by a column: unique or not, over how many columns."""

    kind: str
    unique: bool
    columns: int


class Catalog:
    """The catalogue of the connected system (Db2 for i, or an emulating database).

    Args:
        conn: an open SQLAlchemy connection.
        builder: the SQL builder of the connection's dialect.
        where: the connection's description for messages (no credentials).
    """

    def __init__(self, conn: sa.Connection, builder: SqlBuilder, where: str) -> None:
        self.conn = conn
        self.b = builder
        self.where = where

    def _run(self, sql: Sql) -> list[Any]:
        return list(self.conn.execute(sa.text(sql.text), sql.params).fetchall())

    # -- columns ---------------------------------------------------------------------------

    def columns(self, name: FileName) -> list[CatalogColumn]:
        """The file's columns in order.

        Raises:
            ConfigurationError: the file does not exist (or the user may not see it).
        """
        cols = self._db2i_columns(name) if self.b.is_db2i else self._emulated_columns(name)
        if not cols:
            raise ConfigurationError(
                f"file {name.library or '(default library)'}/{name.file} not found on {self.where} "
                f"({name.describe()}){self._close_files(name)}: check the library and file names, and that the "
                "user is authorised to them"
            )
        return cols

    def _close_files(self, name: FileName) -> str:
        """``; did you mean …`` from the files of the library, or nothing."""
        import difflib

        try:
            if self.b.is_db2i:
                if not name.library:
                    return ""
                sql = Sql("SELECT TABLE_NAME FROM QSYS2.SYSTABLES WHERE TABLE_SCHEMA = :lib", {"lib": name.library})
                files = [str(r[0]).strip() for r in self._run(sql)]
            else:
                schema, _ = self._emulated_table(name)
                files = [t for t in sa.inspect(self.conn).get_table_names(schema=schema) if MEMBER_SEPARATOR not in t]
        except sa.exc.DBAPIError:
            return ""
        close = difflib.get_close_matches(name.file.upper(), [f.upper() for f in files], n=3, cutoff=0.6)
        return f"; did you mean {', '.join(close)}?" if close else ""

    def _db2i_columns(self, name: FileName) -> list[CatalogColumn]:
        out = []
        for r in self._run(columns_sql(self.b, name)):
            out.append(
                CatalogColumn(
                    name=str(r[0]).strip(),
                    sql_type=str(r[1]).strip().upper(),
                    length=r[2],
                    precision=r[3],
                    scale=r[4],
                    ccsid=r[5],
                    text=(str(r[6]).strip() or None) if r[6] is not None else None,
                    nullable=str(r[7]).strip().upper() in ("Y", "YES"),
                )
            )
        return out

    def _emulated_table(self, name: FileName) -> tuple[str | None, str]:
        schema = name.library if self.b.dialect == "postgresql" else None
        table = name.file
        if name.member and name.member != name.file:
            table = f"{name.file}{MEMBER_SEPARATOR}{name.member}"
        return schema, table

    def _emulated_columns(self, name: FileName) -> list[CatalogColumn]:
        schema, table = self._emulated_table(name)
        insp = sa.inspect(self.conn)
        try:
            reflected = insp.get_columns(table, schema=schema)
        except sa.exc.NoSuchTableError:
            return []
        return [_from_sqlalchemy(c) for c in reflected]

    # -- members ---------------------------------------------------------------------------

    def members(self, name: FileName) -> list[str]:
        """The members of a file (on emulation: the file itself plus its ``FILE__MEMBER`` tables)."""
        if self.b.is_db2i:
            return [str(r[0]).strip() for r in self._run(members_sql(self.b, name))]
        schema, _ = self._emulated_table(name)
        tables = sa.inspect(self.conn).get_table_names(schema=schema)
        prefix = f"{name.file}{MEMBER_SEPARATOR}"
        found = [name.file] if name.file in tables else []
        return found + sorted(t[len(prefix) :] for t in tables if t.startswith(prefix))

    def check_member(self, name: FileName) -> None:
        """Refuse a member the file does not have, naming library, file and member.

        Raises:
            ConfigurationError: no such member (the message lists the members there are).
        """
        if not name.member:
            return
        members = self.members(name)
        if name.member not in members and not (not self.b.is_db2i and name.member == name.file and members):
            have = ", ".join(members[:20]) or "none: the file itself is missing"
            raise ConfigurationError(
                f"member {name.member} does not exist in library {name.library or '(default)'}, file {name.file} "
                f"on {self.where} (members: {have}); check the member name (DSPFD FILE({name.library}/{name.file}) "
                "TYPE(*MBRLIST) lists them)"
            )

    # -- keys ------------------------------------------------------------------------------

    def key_indexes(self, name: FileName, key: str) -> list[KeyIndex]:
        """Indexes and constraints whose leading column is ``key``."""
        if self.b.is_db2i:
            return [
                KeyIndex(str(r[0]), str(r[1]) == "Y", int(r[2])) for r in self._run(key_indexes_sql(self.b, name, key))
            ]
        schema, table = self._emulated_table(name)
        insp = sa.inspect(self.conn)
        out: list[KeyIndex] = []
        pk = insp.get_pk_constraint(table, schema=schema).get("constrained_columns") or []
        if pk and pk[0] == key:
            out.append(KeyIndex("PRIMARY KEY", True, len(pk)))
        for uc in insp.get_unique_constraints(table, schema=schema):
            cols = uc.get("column_names") or []
            if cols and cols[0] == key:
                out.append(KeyIndex("UNIQUE", True, len(cols)))
        for ix in insp.get_indexes(table, schema=schema):
            cols = [c for c in ix.get("column_names") or [] if c]
            if cols and cols[0] == key:
                out.append(KeyIndex("INDEX", bool(ix.get("unique")), len(cols)))
        return out

    def check_chunk_key(self, name: FileName, key: str) -> None:
        """Refuse a chunking key that is not indexed, or not unique on its own.

        Raises:
            ConfigurationError: the message says which, and what to use instead.
        """
        found = self.key_indexes(name, key)
        if not found:
            raise ConfigurationError(
                f"chunking key {key} of {name} is not indexed on {self.where}: every chunk would scan the whole "
                "file. Choose a column with a unique index or primary key of its own (chunking.key), or drop "
                "chunking"
            )
        if not any(k.unique and k.columns == 1 for k in found):
            kinds = ", ".join(
                f"{k.kind.lower()} over {k.columns} column(s){'' if k.unique else ', not unique'}" for k in found
            )
            raise ConfigurationError(
                f"chunking key {key} of {name} is not unique on its own ({kinds}): key ranges of a non-unique "
                "column give uneven chunks and boundaries that split equal keys. Choose a column with a unique "
                "index or a one-column primary key (chunking.key)"
            )


def _from_sqlalchemy(c: Any) -> CatalogColumn:
    """A catalogue column from SQLAlchemy's reflected column (emulation)."""
    t = c["type"]
    name, comment, nullable = c["name"], c.get("comment"), bool(c.get("nullable", True))
    if isinstance(t, sa.LargeBinary | sa.types._Binary):
        return CatalogColumn(
            name, "BINARY", getattr(t, "length", None), ccsid=BIT_DATA, text=comment, nullable=nullable
        )
    if isinstance(t, sa.Boolean):
        return CatalogColumn(name, "BOOLEAN", text=comment, nullable=nullable)
    if isinstance(t, sa.Numeric) and not isinstance(t, sa.Float):
        return CatalogColumn(
            name, "DECIMAL", precision=t.precision, scale=t.scale or 0, text=comment, nullable=nullable
        )
    if isinstance(t, sa.Float):
        return CatalogColumn(name, "DOUBLE", text=comment, nullable=nullable)
    if isinstance(t, sa.BigInteger):
        return CatalogColumn(name, "BIGINT", text=comment, nullable=nullable)
    if isinstance(t, sa.SmallInteger):
        return CatalogColumn(name, "SMALLINT", text=comment, nullable=nullable)
    if isinstance(t, sa.Integer):
        return CatalogColumn(name, "INTEGER", text=comment, nullable=nullable)
    if isinstance(t, sa.DateTime):
        return CatalogColumn(name, "TIMESTAMP", text=comment, nullable=nullable)
    if isinstance(t, sa.Date):
        return CatalogColumn(name, "DATE", text=comment, nullable=nullable)
    if isinstance(t, sa.Time):
        return CatalogColumn(name, "TIME", text=comment, nullable=nullable)
    if isinstance(t, sa.CHAR | sa.NCHAR):
        return CatalogColumn(name, "CHAR", t.length, text=comment, nullable=nullable)
    return CatalogColumn(name, "VARCHAR", getattr(t, "length", None), text=comment, nullable=nullable)
