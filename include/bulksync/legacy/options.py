"""Spec options of a file described by a COBOL copybook (``format: copybook`` in a file source)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from bulksync.spec.common import StrictModel

CodePage = Literal["cp037", "cp500", "cp273", "cp1140", "ascii"]


class SelectRule(StrictModel):
    """Choose a record layout (or a REDEFINES branch) per record by the value of one field."""

    field: str = Field(
        description="COBOL name of the selector field (e.g. REC-TYPE); decoded, trimmed, compared as text"
    )
    when: dict[str, str] = Field(
        description="selector value -> COBOL name of the 01 record (segments) or REDEFINES branch to decode"
    )


class CopybookOptions(StrictModel):
    """How to read a mainframe / AS/400 file described by a COBOL copybook.

    A full example (YAML, under a file source's ``options``)::

        copybook: orders.cpy          # relative to include/copybooks/
        record_format: rdw            # fixed | rdw | length_field
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
    record_format: Literal["fixed", "rdw", "length_field"] = Field(
        "fixed", description="fixed length; variable with a 4-byte RDW; or length read from a copybook field"
    )
    rdw_byte_order: Literal["big", "little"] = Field("big", description="byte order of the RDW length (IBM: big)")
    rdw_includes_header: bool = Field(True, description="the RDW length counts its own 4 bytes (IBM standard)")
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
    trim: Literal["right", "both", "none"] = Field("right", description="how text fields are trimmed of spaces")
    strict: bool = Field(False, description="records with an invalid value go to DecodedBlock.rejected, not the batch")
    comp5_byte_order: Literal["big", "little"] = Field(
        "big", description="COMP-5 (native binary): big on z/OS and IBM i, little for files from x86 COBOL"
    )
    float_format: Literal["ibm_hex", "ieee"] = Field("ibm_hex", description="COMP-1 / COMP-2 encoding")
    naming: Literal["short", "qualified"] = Field(
        "short", description="short: field name, qualified by its groups only where needed; qualified: always"
    )
    code_page_check: bool = Field(True, description="fail when text fields look like another code page")
    block_records: int = Field(65536, ge=1, description="records decoded per Arrow record batch")
    max_error_details: int = Field(1000, ge=0, description="RecordError details kept per block (all are counted)")
