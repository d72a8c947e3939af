"""Errors of the copybook engine: structural file problems are terminal :class:`DataError` s."""

from __future__ import annotations

from dataclasses import dataclass

from bulksync.errors import DataError


class RecordFormatError(DataError):
    """The file does not split into records as the options say (names file, record number and byte offset).

    Attributes:
        file: the file name given to the reader.
        record: 1-based number of the record where the problem was found.
        offset: byte offset of that record in the file.
        reason: a short machine-readable reason (``truncated_record``, ``length_mismatch``, ``rdw_past_eof`` ...).
    """

    reason = "record_format"

    def __init__(self, file: str, record: int, offset: int, message: str) -> None:
        self.file = file
        self.record = record
        self.offset = offset
        super().__init__(f"{file}: record {record} at byte {offset}: {message}")


class TruncatedRecordError(RecordFormatError):
    """The last record of the file is shorter than the record length (the file was cut)."""

    reason = "truncated_record"


class RecordLengthMismatchError(RecordFormatError):
    """The file size is not a multiple of the record length and the records do not line up."""

    reason = "length_mismatch"


class RdwPastEofError(RecordFormatError):
    """An RDW (or length field) announces a record that runs past the end of the file."""

    reason = "rdw_past_eof"


class InvalidRdwError(RecordFormatError):
    """A record descriptor word is malformed (zero/short length, non-zero reserved bytes)."""

    reason = "invalid_rdw"


class OdoCounterError(RecordFormatError):
    """An OCCURS DEPENDING ON counter out of its table's range where it decides where the next record starts."""

    reason = "odo_counter"


class CodePageError(DataError):
    """Text fields decode to mostly unprintable characters: the file is in another code page."""

    reason = "wrong_code_page"

    def __init__(self, file: str, message: str) -> None:
        self.file = file
        super().__init__(f"{file}: {message}")


@dataclass(frozen=True)
class RecordError:
    """One invalid value in one record (the record is kept with a null, or rejected in strict mode).

    Attributes:
        record: 1-based record number in the file.
        offset: byte offset of the record in the file.
        field: output column name of the invalid field.
        raw: the field's bytes as hex.
        reason: what is wrong (``bad packed nibble``, ``bad zoned sign`` ...).
        field_offset: where the field starts in the record (-1: the whole record is at fault).
    """

    record: int
    offset: int
    field: str
    raw: str
    reason: str
    field_offset: int = -1

    def __str__(self) -> str:
        where = f"record {self.record} (byte {self.offset})"
        if not self.field:
            return f"{where}: {self.reason}"
        at = f" at byte {self.field_offset} of the record" if self.field_offset >= 0 else ""
        return f"{where}: {self.field}{at} = x'{self.raw}': {self.reason}"
