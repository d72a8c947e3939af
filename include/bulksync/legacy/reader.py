"""Public API of the copybook engine: read a mainframe file described by a COBOL copybook as Arrow batches.

Usage::

    from bulksync.legacy.reader import CopybookOptions, load_layout, arrow_schema, read_records

    options = CopybookOptions(copybook="orders.cpy", record_format="rdw", code_page="cp037")
    layout = load_layout(options)                # SpecError naming the copybook file and line on bad syntax
    schema = arrow_schema(layout, options)        # the Arrow schema every batch has
    with open(path, "rb") as f:
        for block in read_records(f, options, name="orders.dat", layout=layout):
            block.batch          # pyarrow.RecordBatch (strict: the valid records only)
            block.errors         # list[RecordError]: record number, byte offset, field, raw hex, reason
            block.error_records  # number of records with at least one invalid value
            block.rejected       # strict mode: RecordBatch(_record, _offset, _raw, _reason) of the bad records

* Structural problems raise a :class:`~bulksync.legacy.errors.RecordFormatError` subclass
  (``TruncatedRecordError``, ``RecordLengthMismatchError``, ``RdwPastEofError``, ``InvalidRdwError``) naming the
  file, record number and byte offset; text in the wrong code page raises ``CodePageError``. All are
  :class:`~bulksync.errors.DataError` s (terminal), with a ``reason`` attribute for quarantine files.
* An invalid numeric (bad packed nibble, bad zoned sign ...) becomes null and is reported in ``block.errors``;
  with ``strict: true`` the whole record moves to ``block.rejected`` instead.
* Column names: see :mod:`bulksync.legacy.layout` (lower case, ``-`` -> ``_``, OCCURS suffix ``_1`` ...).

See docs/copybooks.md for the supported copybook syntax.
"""

from __future__ import annotations

from bulksync.legacy.errors import RecordError
from bulksync.legacy.options import CopybookOptions, SelectRule

__all__ = ["CopybookOptions", "RecordError", "SelectRule"]
