"""IBM i object names: ``LIB/FILE`` (system naming), ``LIB.FILE`` (SQL naming) and members.

A physical file may hold several members (same layout, separate data). SQL sees only the first
one; the others are read through an alias (``CREATE ALIAS QTEMP.x FOR LIB.FILE(MEMBER)``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# a system or SQL name: letters, digits, _ $ # @ (not starting with a digit)
_NAME = r"[A-Za-z_$#@][A-Za-z0-9_$#@]{0,127}"
_QUALIFIED = re.compile(rf"^(?:(?P<lib>{_NAME})\s*[./]\s*)?(?P<file>{_NAME})\s*(?:\(\s*(?P<mbr>{_NAME})\s*\))?$")


@dataclass(frozen=True)
class FileName:
    """A file (table) of a library, and optionally one of its members.

    Attributes:
        library: the library (schema), ``None`` for the connection's default library.
        file: the file (table) name.
        member: the member to read, ``None`` for the first member.
    """

    library: str | None
    file: str
    member: str | None = None

    def __str__(self) -> str:
        lib = f"{self.library}/" if self.library else ""
        mbr = f"({self.member})" if self.member else ""
        return f"{lib}{self.file}{mbr}"

    def describe(self) -> str:
        """``library ACMELIB, file ORDHDR, member ARCHIVE`` for messages."""
        parts = [f"library {self.library or '(default)'}", f"file {self.file}"]
        if self.member:
            parts.append(f"member {self.member}")
        return ", ".join(parts)


def parse_file_name(text: str, member: str | None = None) -> FileName:
    """Parse ``LIB/FILE``, ``LIB.FILE``, ``FILE``, optionally with ``(MEMBER)``.

    Names are upper-cased, as the system stores them (unquoted names are case-insensitive).

    Args:
        text: the name as written in the spec.
        member: a member given separately (``member:`` option); may not contradict ``(MEMBER)``.

    Raises:
        ValueError: the name is malformed, or the member is given twice differently.
    """
    m = _QUALIFIED.match(text.strip())
    if not m:
        raise ValueError(
            f"{text!r} is not an IBM i file name; write LIB/FILE or LIB.FILE, optionally with (MEMBER), "
            "e.g. ACMELIB/ORDHDR(ARCHIVE)"
        )
    in_name = m.group("mbr")
    if in_name and member and in_name.upper() != member.upper():
        raise ValueError(f"member given twice: {in_name!r} in {text!r} and member: {member!r}")
    mbr = (in_name or member or "").upper() or None
    lib = m.group("lib")
    return FileName(lib.upper() if lib else None, m.group("file").upper(), mbr)
