"""CCSIDs of EBCDIC code pages and the Python codecs that decode them.

``FOR BIT DATA`` columns (CCSID 65535) hold bytes the system does not translate; when they really
hold EBCDIC text, the spec declares the CCSID to decode them with. Only single-byte code pages
that Python ships a codec for are listed: a CCSID missing here is refused when the spec is read.
"""

from __future__ import annotations

# CCSID -> Python codec
CODECS: dict[int, str] = {
    37: "cp037",  # USA, Canada, Netherlands, Portugal, Brazil, Australia, New Zealand
    273: "cp273",  # Germany, Austria
    424: "cp424",  # Hebrew
    500: "cp500",  # International (Belgium, Switzerland)
    875: "cp875",  # Greek
    1026: "cp1026",  # Turkish
    1140: "cp1140",  # USA, Canada … with the euro sign
}

BIT_DATA = 65535
"""The CCSID of columns the system stores as untranslated bytes (``FOR BIT DATA``)."""


def codec_for(ccsid: int) -> str:
    """The Python codec of an EBCDIC CCSID.

    Raises:
        ValueError: the CCSID is not a known single-byte EBCDIC code page (message lists the known ones).
    """
    try:
        return CODECS[ccsid]
    except KeyError:
        known = ", ".join(str(c) for c in sorted(CODECS))
        raise ValueError(
            f"CCSID {ccsid} is not a supported EBCDIC code page; use one of {known} "
            "(check the column's CCSID on the IBM i: QSYS2.SYSCOLUMNS.CCSID, or DSPFFD)"
        ) from None
