"""Spec options of a file described by a COBOL copybook (``format: copybook`` in a file source)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from bulksync.spec.common import StrictModel

CodePage = Literal[
    "cp037", "cp500", "cp273", "cp875", "cp1047", "cp1140", "cp1141", "cp1142", "cp1143", "cp1144", "cp1145",
    "cp1146", "cp1147", "cp1148", "cp1149", "ascii",
]  # fmt: skip
NullPolicy = Literal["numbers", "all", "none"]


class SelectRule(StrictModel):
    """Choose a record layout (or a REDEFINES branch) per record by the value of one field."""

    field: str = Field(
        description="COBOL name of the selector field (e.g. REC-TYPE); decoded, trimmed, compared as text"
    )
    when: dict[str, str] = Field(
        description="selector value -> COBOL name of the 01 record (segments) or REDEFINES branch to decode"
    )


class SkipRule(StrictModel):
    """Leave out records (file headers, trailers) recognised by the value of one field."""

    field: str = Field(description="COBOL name of the field (at a fixed offset), e.g. REC-TYPE")
    values: list[str] = Field(min_length=1, description="values (decoded, trimmed, as text) of records to leave out")


class CopybookOptions(StrictModel):
    """How to read a mainframe / AS/400 file described by a COBOL copybook.

    A full example (YAML, under a file source's ``options``)::

        copybook: orders.cpy          # relative to include/copybooks/
        record_format: rdw            # fixed | rdw | vb | length_field | odo
        code_page: cp037
        redefines: {ORD-PAYMENT: {field: ORD-PAY-TYPE, when: {C: ORD-CARD, I: ORD-INVOICE}}}
        strict: true
    """

    copybook: str = Field(description="copybook file: relative to include/copybooks/ under BULKSYNC_HOME, or absolute")
    source_format: Literal["fixed", "free"] = Field(
        "fixed", description="fixed: COBOL columns 7-72 (col 7 = indicator); free: whole lines, '*>' comments"
    )
    record: str | None = Field(None, description="the 01 record to decode when the copybook defines several")
    segments: SelectRule | None = Field(
        None, description="multi-segment files: the 01 record of each record chosen by a field's value"
    )
    redefines: dict[str, str | SelectRule] = Field(
        default_factory=dict,
        description="per REDEFINES-d item: a fixed branch name, or a rule choosing the branch per record; "
        "unlisted REDEFINES emit every branch",
    )
    record_format: Literal["fixed", "rdw", "vb", "length_field", "odo"] = Field(
        "fixed",
        description="fixed length; rdw: variable with a 4-byte RDW; vb: variable blocked (each block starts with "
        "a 4-byte BDW, each record with an RDW); length_field: length read from a copybook field; odo: no "
        "delimiter, each record as long as its OCCURS DEPENDING ON counters make it",
    )
    rdw_byte_order: Literal["big", "little"] = Field("big", description="byte order of the RDW length (IBM: big)")
    rdw_includes_header: bool = Field(True, description="the RDW length counts its own 4 bytes (IBM standard)")
    rdw_length_at: Literal[0, 2] = Field(
        0, description="where the RDW's 2-byte length is: bytes 0-1 (IBM) or 2-3 (a 4-byte big-endian length)"
    )
    record_length: int | None = Field(
        None, ge=1, description="fixed records: the length in bytes when it differs from the copybook's (padding)"
    )
    record_length_field: str | None = Field(
        None, description="record_format length_field: the COBOL field holding each record's length in bytes"
    )
    record_length_adjust: int = Field(0, description="added to the length field's value to get the record length")
    code_page: CodePage = Field("cp037", description="code page of text and zoned fields")
    header_bytes: int = Field(0, ge=0, description="bytes to skip at the start of the file")
    trailer_bytes: int = Field(0, ge=0, description="bytes to skip at the end of the file")
    header_records: int = Field(
        0, ge=0, description="records to leave out at the start of the file (after header_bytes)"
    )
    trailer_records: int = Field(0, ge=0, description="records to leave out at the end of the file")
    skip_records: SkipRule | None = Field(
        None, description="leave out records whose field has one of the values (headers / trailers by record type)"
    )
    trim: Literal["right", "both", "none"] = Field("right", description="how text fields are trimmed of spaces")
    strict: bool = Field(False, description="records with an invalid value go to DecodedBlock.rejected, not the batch")
    comp5_byte_order: Literal["big", "little"] = Field(
        "big", description="COMP-5 (native binary): big on z/OS and IBM i, little for files from x86 COBOL"
    )
    float_format: Literal["ibm_hex", "ieee", "ieee_little"] = Field(
        "ibm_hex",
        description="COMP-1 / COMP-2 encoding: IBM hexadecimal (z/OS), IEEE big-endian, or IEEE little-endian "
        "(files from x86 COBOL: GnuCOBOL, Micro Focus)",
    )
    edited_numbers: Literal["decimal", "text"] = Field(
        "decimal", description="numeric-edited pictures (Z(8)-, 9(6).99-, +9(8), CR/DB): decoded as numbers, or text"
    )
    decimal_comma: bool = Field(False, description="DECIMAL-POINT IS COMMA: ',' is the point of edited pictures")
    null_low_values: NullPolicy = Field(
        "numbers",
        description="fields of all x'00' (LOW-VALUES): numbers: zoned, packed and edited numbers read null; all: "
        "every field (text, binary, float too); none: a number of LOW-VALUES is an invalid value",
    )
    null_spaces: NullPolicy = Field(
        "numbers",
        description="fields of all spaces: numbers: zoned, packed and edited numbers read null; all: text fields "
        "too (else ''); none: a number of spaces is an invalid value",
    )
    keep_filler_groups: bool = Field(False, description="emit the named items of FILLER groups (dropped by default)")
    naming: Literal["short", "qualified"] = Field(
        "short", description="short: field name, qualified by its groups only where needed; qualified: always"
    )
    code_page_check: bool = Field(True, description="fail when text fields look like another code page")
    block_records: int = Field(65536, ge=1, description="records decoded per Arrow record batch")
    max_error_details: int = Field(1000, ge=0, description="RecordError details kept per block (all are counted)")
