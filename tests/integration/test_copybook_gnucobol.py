"""GnuCOBOL as the independent oracle of the copybook engine.

The COBOL programs in ``tests/cobol/`` (compiled here with Debian's ``cobc -std=ibm``: IBM binary sizes 2-4-8,
big-endian COMP) read values this test chooses from a text file and ``MOVE`` them into the fields of a
copybook, so the compiler — not bulksync — encodes every zoned, packed, binary, float and edited value and
decides every record's length (``LENGTH OF`` with the current OCCURS DEPENDING ON count, the length of a
short REDEFINES branch). bulksync then reads the same copybook and every decoded value is compared with the
value the test gave COBOL.

GnuCOBOL runs on x86 and writes ASCII. Each file is read twice:

* as written: ``code_page: ascii``, COMP-5 and floats little-endian (``comp5_byte_order: little``,
  ``float_format: ieee_little``), zoned signs as GnuCOBOL writes them (built both with the default
  ``-fsign=ASCII``, negative digits ``p``-``y``, and with ``-fsign=EBCDIC``, ``{ A-I`` / ``} J-R``);
* converted to what a z/OS program writes, field by field (the field boundaries are the copybook's):
  text, separate signs and edited fields are re-encoded in the EBCDIC code page (Python's codecs and the
  ``ebcdic`` package, not bulksync's tables); a zoned digit does not depend on the code page — it is a zone
  nibble (F unsigned, C positive, D negative) and a digit nibble — so ``0-9`` become ``F0-F9`` and the
  ``-fsign=EBCDIC`` overpunch characters ``{ A-I`` / ``} J-R`` become ``C0-C9`` / ``D0-D9``; packed
  decimals and big-endian COMP are the same bytes on both machines and are copied; COMP-5 and IEEE floats
  are byte-swapped to the mainframe's big-endian order (GnuCOBOL cannot write IBM hexadecimal floats;
  those are checked against documented bit patterns in tests/unit/legacy/test_decoders.py).

Variable-length files come from GnuCOBOL's own record prefixes (``COB_VARSEQ_FORMAT`` 0: 2-byte big-endian
length + 2 zero bytes; 1: 4-byte big-endian; 2: 4-byte little-endian; none counts itself), i.e. the RDW
variants; VB blocks and records without delimiter are made from them as IBM documents those formats.
"""

from __future__ import annotations

import io
import os
import random
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path
from typing import Any

import ebcdic  # noqa: F401 - registers cp1047 / cp1141 / cp1148 codecs: an encoder independent of bulksync
import pytest

from bulksync.legacy.errors import OdoCounterError
from bulksync.legacy.layout import walk
from bulksync.legacy.plan import compile_plan
from bulksync.legacy.reader import CopybookOptions, load_layout, read_records
from tests.conftest import service_missing

COBOL = Path(__file__).resolve().parents[1] / "cobol"


@pytest.fixture(scope="module")
def cobc(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The test programs compiled: alltypes (EBCDIC-style and ASCII signs), odo, pay."""
    if shutil.which("cobc") is None:
        service_missing("GnuCOBOL (cobc) is not installed: apt-get install gnucobol")
        pytest.skip("no cobc")
    out = tmp_path_factory.mktemp("cobol")
    built = {}
    for name, source, flags in [
        ("alltypes", "alltypes.cbl", ["-fsign=EBCDIC"]),
        ("alltypes_ascii_sign", "alltypes.cbl", []),
        ("odo", "odo.cbl", ["-fsign=EBCDIC"]),
        ("pay", "pay.cbl", ["-fsign=EBCDIC"]),
    ]:
        exe = out / name
        subprocess.run(["cobc", "-std=ibm", *flags, "-x", "-I", str(COBOL), str(COBOL / source), "-o", str(exe)],
                       check=True, capture_output=True, timeout=120)  # fmt: skip
        built[name] = exe
    return built


def run_cobol(exe: Path, lines: list[str], tmp: Path, varseq: int = 0) -> bytes:
    (tmp / "in.txt").write_text("".join(line + "\n" for line in lines), encoding="ascii")
    env = {**os.environ, "DD_INFILE": str(tmp / "in.txt"), "DD_OUTFILE": str(tmp / "out.dat"),
           "COB_VARSEQ_FORMAT": str(varseq)}  # fmt: skip
    subprocess.run([str(exe)], check=True, env=env, cwd=tmp, capture_output=True, timeout=60)
    return (tmp / "out.dat").read_bytes()


def num(value: Decimal | int, digits: int, scale: int) -> str:
    """A number as COBOL reads ``PIC S9(digits-scale)V9(scale) SIGN LEADING SEPARATE``."""
    unscaled = int(Decimal(value).scaleb(scale))
    return ("-" if unscaled < 0 else "+") + str(abs(unscaled)).zfill(digits)


def decode(data: bytes, copybook: Path | str, **kw: Any) -> tuple[list[dict[str, Any]], list[Any]]:
    o = CopybookOptions(copybook=str(copybook), **kw)
    blocks = list(read_records(io.BytesIO(data), o, name="cobol.dat"))
    return [r for b in blocks for r in b.batch.to_pylist()], [e for b in blocks for e in b.errors]


# ---------------------------------------------------------------------------------------------------------------
# every usage, sign form and edited picture (fixed-length records)

# column -> (input slot, integer digits, decimals, signed); slot 1-24: I-NUM(n), "L1"/"L2": I-LONG(n)
FIELDS: dict[str, tuple[int | str, int, int, bool]] = {
    "a_zoned": (1, 7, 2, True), "a_zoned_l": (2, 5, 0, True), "a_sep_t": (3, 5, 1, True),
    "a_sep_l": (4, 4, 0, True), "a_unsigned": (5, 4, 2, False), "a_packed": (6, 11, 2, True),
    "a_packed_u": (7, 5, 0, False), "a_packed_e": (8, 4, 0, True), "a_bin_h": (9, 4, 0, True),
    "a_bin_f": (10, 9, 0, True), "a_bin_d": ("L1", 18, 0, True), "a_bin_u": ("L2", 18, 0, False),
    "a_bin_v": (11, 5, 2, True), "a_comp5": (12, 9, 0, True), "a_float": (13, 5, 4, True),
    "a_double": (14, 9, 4, True), "a_ed_plus": (15, 8, 0, True), "a_ed_zminus": (16, 8, 0, True),
    "a_ed_point": (17, 6, 2, True), "a_ed_explicit": (18, 8, 2, False), "a_ed_comma": (19, 7, 2, True),
    "a_ed_star": (20, 5, 2, True), "a_ed_db": (21, 4, 2, True), "a_ed_float": (22, 4, 2, True),
    "a_ed_blank": (23, 4, 0, False), "a_ed_slash": (24, 6, 0, False),
}  # fmt: skip
TEXT = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 .,-()&/"


def alltypes_rows(n: int) -> list[dict[str, Any]]:
    rng = random.Random(16)
    rows = []
    for i in range(n):
        row: dict[str, Any] = {"a_id": i + 1, "a_text": "".join(rng.choice(TEXT) for _ in range(rng.randrange(13)))}
        for col, (_slot, ints, dec, signed) in FIELDS.items():
            if i == 0:
                unscaled = 0
            elif i == 1:
                unscaled = 10 ** (ints + dec) - 1  # every digit 9
            elif i == 2:
                unscaled = -(10 ** (ints + dec) - 1) if signed else 1
            else:
                unscaled = rng.randrange(10 ** (ints + dec))
                if signed and rng.random() < 0.5:
                    unscaled = -unscaled
            row[col] = Decimal(unscaled).scaleb(-dec) if dec else unscaled
        rows.append(row)
    return rows


def alltypes_line(row: dict[str, Any]) -> str:
    nums = [""] * 24
    longs = ["", ""]
    for col, (slot, _i, _d, _s) in FIELDS.items():
        if isinstance(slot, int):
            nums[slot - 1] = num(row[col], 18, 4)
        else:
            longs[int(slot[1]) - 1] = num(row[col], 18, 0)
    return f"{row['a_id']:06d}{row['a_text']:<12}" + "".join(nums) + "".join(longs)


def check_alltypes(decoded: list[dict[str, Any]], rows: list[dict[str, Any]]) -> None:
    assert len(decoded) == len(rows)
    for got, want in zip(decoded, rows, strict=True):
        for col, value in want.items():
            if col == "a_text":
                assert got[col] == value.rstrip(" "), (want["a_id"], col)
            elif col in ("a_float", "a_double"):
                tol = (2e-7 if col == "a_float" else 1e-15) * max(1.0, abs(float(value)))
                assert abs(got[col] - float(value)) <= tol, (want["a_id"], col, got[col], value)
            else:
                assert got[col] == value, (want["a_id"], col, got[col], value)
                assert type(got[col]) is type(value), (col, got[col])


def to_mainframe(data: bytes, copybook: Path, code_page: str) -> bytes:
    """GnuCOBOL's ASCII record bytes as a z/OS program writes them (see the module docstring)."""
    o = CopybookOptions(copybook=str(copybook))
    plan = compile_plan(load_layout(o), o)
    width = plan.width
    out = bytearray(data)
    zone = {ord(c): 0xF0 + i for i, c in enumerate("0123456789")}
    zone |= {ord(c): 0xC0 + i for i, c in enumerate("{ABCDEFGHI")}
    zone |= {ord(c): 0xD0 + i for i, c in enumerate("}JKLMNOPQR")}
    for start in range(0, len(data), width):
        for it, _idx, off, _b, _a in walk(plan.records[0].record, 0, None):
            lo, hi = start + off, start + off + it.size
            field = data[lo:hi]
            pic = it.picture
            if it.usage in ("comp-5", "comp-1", "comp-2"):
                out[lo:hi] = field[::-1]
            elif it.usage == "display" and pic is not None and pic.kind == "numeric":
                body = (
                    slice(1, None)
                    if it.sign_separate and it.sign_leading
                    else slice(0, -1 if it.sign_separate else None)
                )
                new = bytearray(field.decode("ascii").encode(code_page))  # the separate sign: a character
                new[body] = bytes(zone[b] for b in field[body])
                out[lo:hi] = new
            elif it.usage == "display":
                out[lo:hi] = field.decode("ascii").encode(code_page)
    return bytes(out)


def test_every_usage_sign_and_edited_picture_as_gnucobol_writes_them(cobc: dict[str, Path], tmp_path: Path) -> None:
    rows = alltypes_rows(300)
    lines = [alltypes_line(r) for r in rows]
    cpy = COBOL / "alltypes.cpy"
    o = CopybookOptions(copybook=str(cpy))
    width = compile_plan(load_layout(o), o).width
    for exe in ("alltypes", "alltypes_ascii_sign"):
        data = run_cobol(cobc[exe], lines, tmp_path)
        assert len(data) == len(rows) * width  # the compiler's record length is bulksync's
        decoded, errors = decode(data, cpy, code_page="ascii", comp5_byte_order="little",
                                 float_format="ieee_little", strict=True)  # fmt: skip
        assert errors == []
        check_alltypes(decoded, rows)
    data = run_cobol(cobc["alltypes"], lines, tmp_path)
    for code_page in ("cp037", "cp1047", "cp1141", "cp1148"):
        mainframe = to_mainframe(data, cpy, code_page)
        decoded, errors = decode(mainframe, cpy, code_page=code_page, float_format="ieee", strict=True)
        assert errors == [], code_page
        check_alltypes(decoded, rows)
    # COMP-0 is COMP: the same file read through the copybook spelled with COMP-0 (GnuCOBOL lacks COMP-0)
    comp0 = tmp_path / "alltypes0.cpy"
    comp0.write_text(cpy.read_text().replace("PIC S9(4) COMP.", "PIC S9(4) COMP-0."))
    assert "COMP-0" in comp0.read_text()
    decoded, errors = decode(to_mainframe(data, cpy, "cp037"), comp0, float_format="ieee")
    assert errors == [] and [r["a_bin_h"] for r in decoded] == [r["a_bin_h"] for r in rows]


# ---------------------------------------------------------------------------------------------------------------
# OCCURS DEPENDING ON: RDW variants, VB blocks, records without delimiter, zero counts, no "m TO"


def odo_rows(n: int) -> list[dict[str, Any]]:
    rng = random.Random(5)
    rows = []
    for i in range(n):
        cnt = i % 6  # 0 to 5 items, zero included
        row: dict[str, Any] = {"o_id": i + 1, "o_cnt": cnt, "o_name": f"N{i % 997:<5}".rstrip()}
        for k in range(1, 6):
            have = k <= cnt
            row[f"o_sku_{k}"] = f"S{rng.randrange(999):03d}" if have else None
            row[f"o_qty_{k}"] = rng.randrange(-999, 1000) if have else None
            row[f"o_price_{k}"] = Decimal(rng.randrange(-9999999, 10**7)).scaleb(-2) if have else None
        rows.append(row)
    return rows


def odo_line(row: dict[str, Any]) -> str:
    items = ""
    for k in range(1, 6):
        if row[f"o_sku_{k}"] is None:
            items += "    " + num(0, 3, 0) + num(0, 7, 2)
        else:
            items += row[f"o_sku_{k}"] + num(row[f"o_qty_{k}"], 3, 0) + num(row[f"o_price_{k}"], 7, 2)
    return f"O{row['o_id']:04d}{row['o_cnt']:02d}{row['o_name']:<6}{items}  "


def prefixed(data: bytes, varseq: int) -> list[bytes]:
    """The record bodies of a GnuCOBOL variable file (its 4-byte prefix: see the module docstring)."""
    out, pos = [], 0
    while pos < len(data):
        head = data[pos : pos + 4]
        n = {0: int.from_bytes(head[:2], "big"), 1: int.from_bytes(head, "big"), 2: int.from_bytes(head, "little")}
        length = n[varseq]
        out.append(data[pos + 4 : pos + 4 + length])
        pos += 4 + length
    return out


def vb_file(bodies: list[bytes], block_size: int) -> bytes:
    """IBM variable blocked: each block a BDW (2-byte length incl. itself, 2 zero bytes), then RDW records
    (2-byte length incl. the RDW, 2 zero bytes); z/OS DFSMS Using Data Sets, "Variable-length record formats"."""
    blocks, block = [], b""
    for body in bodies:
        rec = (len(body) + 4).to_bytes(2, "big") + b"\0\0" + body
        if block and 4 + len(block) + len(rec) > block_size:
            blocks.append((4 + len(block)).to_bytes(2, "big") + b"\0\0" + block)
            block = b""
        block += rec
    blocks.append((4 + len(block)).to_bytes(2, "big") + b"\0\0" + block)
    return b"".join(blocks)


def test_odo_records_in_every_framing(cobc: dict[str, Path], tmp_path: Path) -> None:
    rows = odo_rows(120)
    lines = [odo_line(r) for r in rows]
    cpy = COBOL / "odo.cpy"
    ascii_ = {"code_page": "ascii"}
    files = {v: run_cobol(cobc["odo"], lines, tmp_path, varseq=v) for v in (0, 1, 2)}
    bodies = prefixed(files[0], 0)
    assert [len(b) for b in bodies] == [12 + 13 * r["o_cnt"] for r in rows]  # the compiler's lengths
    assert prefixed(files[1], 1) == bodies and prefixed(files[2], 2) == bodies
    variants = {
        "varseq 0: length at 0-1, big-endian": (files[0], {"record_format": "rdw", "rdw_includes_header": False}),
        "varseq 1: length at 2-3": (files[1], {"record_format": "rdw", "rdw_includes_header": False,
                                               "rdw_length_at": 2}),
        "varseq 2: little-endian": (files[2], {"record_format": "rdw", "rdw_includes_header": False,
                                               "rdw_byte_order": "little"}),
        "IBM RDW (length counts the RDW)": (b"".join((len(b) + 4).to_bytes(2, "big") + b"\0\0" + b for b in bodies),
                                            {"record_format": "rdw"}),
        "VB: BDW blocks of RDW records": (vb_file(bodies, 200), {"record_format": "vb"}),
        "no delimiter: lengths from the counters": (b"".join(bodies), {"record_format": "odo"}),
    }  # fmt: skip
    for what, (data, kw) in variants.items():
        decoded, errors = decode(data, cpy, **ascii_, **kw, strict=True, block_records=50)
        assert errors == [], what
        assert decoded == rows, what


def test_odo_without_minimum_is_one_to_n(cobc: dict[str, Path], tmp_path: Path) -> None:
    lines = [f"P{i:04d}{cnt:02d}      " + "".join(f"T{i % 10}{k} " + num(0, 3, 0) + num(0, 7, 2) for k in range(5))
             + "  " for i, cnt in enumerate([1, 2, 3, 4, 4, 1], start=1)]  # fmt: skip
    data = run_cobol(cobc["odo"], lines, tmp_path)
    cpy = COBOL / "odo1.cpy"
    decoded, errors = decode(data, cpy, code_page="ascii", record_format="rdw", rdw_includes_header=False)
    assert errors == []
    assert [[r[f"p_tags_{k}"] for k in range(1, 5)] for r in decoded] == [
        [f"T{i % 10}{k}" if k < cnt else None for k in range(4)] for i, cnt in enumerate([1, 2, 3, 4, 4, 1], 1)
    ]
    # a count of 0 is below the minimum of `OCCURS 4 DEPENDING ON` (1): a record error, not a misread
    zero = run_cobol(cobc["odo"], [lines[0], "P0099" + "00" + lines[0][7:]], tmp_path)
    decoded, errors = decode(zero, cpy, code_page="ascii", record_format="rdw", rdw_includes_header=False)
    assert [(e.record, e.field, e.field_offset) for e in errors] == [(2, "p_cnt", 4)]
    assert "P-CNT = 0 is outside 1..4" in errors[0].reason
    with pytest.raises(OdoCounterError, match=r"record 2 at byte 9: .*P-CNT \(byte 4 of the record\) = 0 is outside"):
        decode(b"".join(prefixed(zero, 0)), cpy, code_page="ascii", record_format="odo")


# ---------------------------------------------------------------------------------------------------------------
# REDEFINES branches of different lengths, header and trailer records


def pay_lines() -> tuple[list[str], list[dict[str, Any]]]:
    rng = random.Random(3)
    lines = ["H " + "20251201" + f"{'SOURCE01':<22}" + num(0, 13, 2)]
    details = []
    total = Decimal(0)
    for i in range(1, 41):
        if rng.random() < 0.5:
            iban = f"DE{rng.randrange(10**20):020d}"
            amount = Decimal(rng.randrange(-(10**11) + 1, 10**11)).scaleb(-2)
            lines.append(f"DB{i:08d}{iban:<22}" + num(amount, 13, 2))
            details.append({"d_id": i, "d_kind": "B", "d_iban": iban, "d_amount": amount,
                            "d_card_no": None, "d_card_amt": None})  # fmt: skip
        else:
            card = rng.randrange(10**4)
            amount = Decimal(rng.randrange(-(10**9) + 1, 10**9)).scaleb(-2)
            lines.append(f"DC{i:08d}{card:04d}{'':<18}" + num(amount, 13, 2))
            details.append({"d_id": i, "d_kind": "C", "d_iban": None, "d_amount": None,
                            "d_card_no": card, "d_card_amt": amount})  # fmt: skip
        total += amount
    lines.append(f"T {len(details):08d}{'':<22}" + num(total, 13, 2))
    return lines, details


BRANCH = {"D-BODY": {"field": "D-KIND", "when": {"B": "D-BODY", "C": "D-CARD"}}}


def test_short_redefines_branch_with_header_and_trailer(cobc: dict[str, Path], tmp_path: Path) -> None:
    lines, details = pay_lines()
    data = run_cobol(cobc["pay"], lines, tmp_path)
    lengths = [len(b) for b in prefixed(data, 0)]
    assert lengths[0] == 17 and lengths[-1] == 14 and set(lengths[1:-1]) == {17, 36}  # card details are short
    cpy = COBOL / "pay.cpy"
    common = {"code_page": "ascii", "record_format": "rdw", "rdw_includes_header": False, "redefines": BRANCH,
              "record": "PAY-DETAIL", "strict": True}  # fmt: skip
    want = [{"d_type": "D", **d} for d in details]
    for kw in (
        {"skip_records": {"field": "D-TYPE", "values": ["H", "T"]}},
        {"header_records": 1, "trailer_records": 1},
    ):
        decoded, errors = decode(data, cpy, **common, **kw)
        assert errors == [], kw
        assert decoded == want, kw
    segments = {"field": "D-TYPE", "when": {"H": "PAY-HEADER", "D": "PAY-DETAIL", "T": "PAY-TRAILER"}}
    decoded, errors = decode(data, cpy, **{**common, "record": None}, segments=segments)
    assert errors == []
    assert decoded[0]["_segment"] == "pay-header" and decoded[-1]["_segment"] == "pay-trailer"
    assert (decoded[0]["h_date"], decoded[0]["h_source"]) == (20251201, "SOURCE01")
    total = sum((d["d_amount"] or d["d_card_amt"]) for d in details)
    assert (decoded[-1]["t_count"], decoded[-1]["t_total"]) == (len(details), total)
    assert [{k: r[k] for k in want[0]} for r in decoded[1:-1]] == want


# ---------------------------------------------------------------------------------------------------------------
# nested OCCURS DEPENDING ON, counters in a group and inside tables, records without delimiter (odonest.cbl);
# separate signs, from a group's SIGN clause and on a PIC without S (signsep.cbl)


@pytest.fixture(scope="module")
def cobc_more(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """odonest (nested ODO: GnuCOBOL refuses it without ``-fodoslide``, which also moves the items after a variable
    table up, as IBM compilers do; ``-fcomplex-odo`` alone is not enough) and signsep."""
    if shutil.which("cobc") is None:
        service_missing("GnuCOBOL (cobc) is not installed: apt-get install gnucobol")
        pytest.skip("no cobc")
    out = tmp_path_factory.mktemp("cobol_more")
    built = {}
    for name, flags in [("odonest", ["-fodoslide", "-fsign=EBCDIC"]), ("signsep", ["-fsign=EBCDIC"])]:
        exe = out / name
        subprocess.run(["cobc", "-std=ibm", *flags, "-x", "-I", str(COBOL), str(COBOL / f"{name}.cbl"), "-o", str(exe)],
                       check=True, capture_output=True, timeout=120)  # fmt: skip
        built[name] = exe
    return built


Counts = dict[tuple[str, tuple[int, ...]], int]  # as bulksync.legacy.layout.Counts: (counter, its indices) -> value


def _field_to_mainframe(it: Any, field: bytes, code_page: str) -> bytes:
    """One field of GnuCOBOL's ASCII record as z/OS writes it (the rules of :func:`to_mainframe`)."""
    pic = it.picture
    if it.usage in ("comp-5", "comp-1", "comp-2"):
        return field[::-1]
    if it.usage == "display" and pic is not None and pic.kind == "numeric":
        zone = {ord(c): 0xF0 + i for i, c in enumerate("0123456789")}
        zone |= {ord(c): 0xC0 + i for i, c in enumerate("{ABCDEFGHI")}
        zone |= {ord(c): 0xD0 + i for i, c in enumerate("}JKLMNOPQR")}
        body = slice(1, None) if it.sign_separate and it.sign_leading else slice(0, -1 if it.sign_separate else None)
        new = bytearray(field.decode("ascii").encode(code_page))  # the separate sign: a character
        new[body] = bytes(zone[b] for b in field[body])
        return bytes(new)
    if it.usage == "display":
        return field.decode("ascii").encode(code_page)
    return field  # packed, big-endian binary: the same bytes on both machines


def to_mainframe_var(bodies: list[bytes], copybook: Path, counts: list[Counts], code_page: str) -> list[bytes]:
    """Variable records converted as :func:`to_mainframe` does, each field located with the counts the test gave
    the record (the occurrences past a count are not in the record)."""
    rec = load_layout(CopybookOptions(copybook=str(copybook))).records[0]
    out = []
    for body, c in zip(bodies, counts, strict=True):
        new = bytearray(body)
        for it, _idx, off, _b, _a in walk(rec, 0, c):
            new[off : off + it.size] = _field_to_mainframe(it, body[off : off + it.size], code_page)
        out.append(bytes(new))
    return out


ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def nest_rows(n: int) -> list[dict[str, Any]]:
    """odonest.cpy rows: the first 80 cover every (outer, inner, fixed-table inner) count, zeros included."""
    rng = random.Random(11)
    rows = []
    for i in range(n):
        if i < 80:
            ocnt, icnt, fcnt = i % 5, i // 5 % 4, i // 20 % 4
        else:
            ocnt, icnt, fcnt = rng.randrange(5), rng.randrange(4), rng.randrange(4)
        row: dict[str, Any] = {"n_id": i + 1, "n_ocnt": ocnt, "n_icnt": icnt, "n_fcnt": fcnt}
        for j in range(1, 5):
            row[f"n_key_{j}"] = f"K{rng.choice(ALNUM)}" if j <= ocnt else None
            for k in range(1, 4):
                have = j <= ocnt and k <= icnt
                row[f"n_code_{j}_{k}"] = "".join(rng.choice(ALNUM) for _ in range(3)) if have else None
                amount = rng.choice([-9999999, 9999999, 0, rng.randrange(-9999999, 10**7)])
                row[f"n_amt_{j}_{k}"] = Decimal(amount).scaleb(-2) if have else None
            row[f"n_flag_{j}"] = rng.choice("YN") if j <= ocnt else None
        for j in (1, 2):
            row[f"n_fx_{j}"] = rng.choice(ALNUM)
            for k in range(1, 4):
                row[f"n_fv_{j}_{k}"] = rng.randrange(100) if k <= fcnt else None
        row["n_tail"] = f"{i % 1000:03d}"
        rows.append(row)
    return rows


def nest_line(row: dict[str, Any]) -> str:
    line = f"N{row['n_id']:04d}{row['n_ocnt']}{row['n_icnt']}{row['n_fcnt']}"
    for j in range(1, 5):
        line += row[f"n_key_{j}"] or "  "
        for k in range(1, 4):
            line += (row[f"n_code_{j}_{k}"] or "   ") + num(row[f"n_amt_{j}_{k}"] or 0, 7, 2)
        line += row[f"n_flag_{j}"] or " "
    for j in (1, 2):
        line += row[f"n_fx_{j}"] + "".join(f"{row[f'n_fv_{j}_{k}'] or 0:02d}" for k in range(1, 4))
    return line + row["n_tail"]


def test_nested_odo_with_counters_in_a_group_end_to_end(cobc_more: dict[str, Path], tmp_path: Path) -> None:
    rows = nest_rows(130)
    data = run_cobol(cobc_more["odonest"], [nest_line(r) for r in rows], tmp_path)
    bodies = prefixed(data, 0)
    # the compiler's lengths: 9 bytes of id and counters, per outer entry a key, the inner entries and a flag,
    # two fixed entries of a letter and the numbers of their inner table, the tail
    assert [len(b) for b in bodies] == [
        9 + r["n_ocnt"] * (2 + 10 * r["n_icnt"] + 1) + 2 * (1 + 2 * r["n_fcnt"]) + 3 for r in rows
    ]
    assert min(len(b) for b in bodies) == 14 and max(len(b) for b in bodies) == 158
    cpy = COBOL / "odonest.cpy"
    counts = [{("N-OCNT", ()): r["n_ocnt"], ("N-ICNT", ()): r["n_icnt"], ("N-FCNT", ()): r["n_fcnt"]} for r in rows]
    variants = {
        "as written: GnuCOBOL's RDW": (data, {"code_page": "ascii", "record_format": "rdw",
                                               "rdw_includes_header": False}),
        "no delimiter: lengths from the counters": (b"".join(bodies), {"code_page": "ascii", "record_format": "odo"}),
    }  # fmt: skip
    for code_page in ("cp037", "cp1047"):
        mainframe = b"".join(to_mainframe_var(bodies, cpy, counts, code_page))
        variants[f"no delimiter, {code_page}"] = (mainframe, {"code_page": code_page, "record_format": "odo"})
    for what, (file, kw) in variants.items():
        decoded, errors = decode(file, cpy, **kw, strict=True, block_records=7)
        assert errors == [], what
        assert decoded == rows, what


def occ_rows(n: int) -> list[dict[str, Any]]:
    """odoocc.cpy rows: the first 64 cover every (C-PCNT(1), C-PCNT(2), C-GCNT) triple, zeros included."""
    rng = random.Random(12)
    rows = []
    for i in range(n):
        row: dict[str, Any] = {"c_id": i + 1}
        for j in (1, 2):
            pcnt = (i if j == 1 else i // 4) % 4 if i < 64 else rng.randrange(4)
            row[f"c_pcnt_{j}"] = pcnt
            for k in range(1, 4):
                row[f"c_pv_{j}_{k}"] = f"{rng.choice(ALNUM)}{k}" if k <= pcnt else None
        gcnt = i // 16 % 4 if i < 64 else rng.randrange(4)
        row["c_gcnt"] = gcnt
        for j in range(1, 4):
            cnt = rng.randrange(5) if j <= gcnt else None
            row[f"c_cnt_{j}"] = cnt
            for k in range(1, 5):
                have = cnt is not None and k <= cnt
                row[f"c_amt_{j}_{k}"] = Decimal(rng.randrange(-9999, 10**4)).scaleb(-1) if have else None
            row[f"c_note_{j}"] = "".join(rng.choice(ALNUM) for _ in range(2)) if j <= gcnt else None
        row["c_tail"] = f"{i % 100:02d}"
        rows.append(row)
    return rows


def occ_line(row: dict[str, Any]) -> str:
    line = f"C{row['c_id']:04d}"
    for j in (1, 2):
        line += str(row[f"c_pcnt_{j}"]) + "".join(row[f"c_pv_{j}_{k}"] or "  " for k in range(1, 4))
    line += str(row["c_gcnt"])
    for j in range(1, 4):
        line += str(row[f"c_cnt_{j}"] or 0) + "".join(num(row[f"c_amt_{j}_{k}"] or 0, 4, 1) for k in range(1, 5))
        line += row[f"c_note_{j}"] or "  "
    return line + row["c_tail"]


def test_odo_counters_inside_tables_each_occurrence_its_own_size(cobc_more: dict[str, Path], tmp_path: Path) -> None:
    rows = occ_rows(150)
    data = run_cobol(cobc_more["odonest"], [occ_line(r) for r in rows], tmp_path)
    bodies = prefixed(data, 0)
    # each occurrence as long as its own count makes it (LENGTH OF the occurrence, appended by the program)
    assert [len(b) for b in bodies] == [
        4 + sum(1 + 2 * r[f"c_pcnt_{j}"] for j in (1, 2)) + 1
        + sum(2 + 3 * r[f"c_cnt_{j}"] + 2 for j in range(1, r["c_gcnt"] + 1)) + 2
        for r in rows
    ]  # fmt: skip
    cpy = COBOL / "odoocc.cpy"
    counts: list[Counts] = []
    for r in rows:
        c: Counts = {("C-PCNT", (1,)): r["c_pcnt_1"], ("C-PCNT", (2,)): r["c_pcnt_2"], ("C-GCNT", ()): r["c_gcnt"]}
        counts.append(c | {("C-CNT", (j,)): r[f"c_cnt_{j}"] for j in range(1, r["c_gcnt"] + 1)})
    variants = {
        "as written: GnuCOBOL's RDW": (data, {"code_page": "ascii", "record_format": "rdw",
                                               "rdw_includes_header": False}),
        "no delimiter: lengths from the counters": (b"".join(bodies), {"code_page": "ascii", "record_format": "odo"}),
        "no delimiter, cp037": (b"".join(to_mainframe_var(bodies, cpy, counts, "cp037")),
                                {"code_page": "cp037", "record_format": "odo"}),
    }  # fmt: skip
    for what, (file, kw) in variants.items():
        decoded, errors = decode(file, cpy, **kw, strict=True, block_records=7)
        assert errors == [], what
        assert decoded == rows, what


# column -> (integer digits, decimals, signed), in the order of signsep.cbl's input numbers
SIGNSEP: dict[str, tuple[int, int, bool]] = {
    "s_lead": (4, 0, True), "s_trail": (3, 2, True), "s_gl_s": (3, 0, True), "s_gl_u": (3, 0, False),
    "s_gl_o": (2, 0, True), "s_gt_s": (2, 1, True), "s_gt_u": (2, 1, False),
}  # fmt: skip


def signsep_rows(n: int) -> list[dict[str, Any]]:
    rng = random.Random(9)
    rows = []
    for i in range(n):
        row: dict[str, Any] = {"s_id": i + 1}
        for col, (ints, dec, signed) in SIGNSEP.items():
            top = 10 ** (ints + dec) - 1
            unscaled = [0, top, -top if signed else 1][i] if i < 3 else rng.randrange(-top if signed else 0, top + 1)
            row[col] = Decimal(unscaled).scaleb(-dec) if dec else unscaled
        rows.append(row)
    return rows


def test_separate_signs_of_a_group_and_on_a_pic_without_s(
    cobc_more: dict[str, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rows = signsep_rows(200)
    lines = [f"{r['s_id']:04d}" + "".join(num(r[col], 18, 4) for col in SIGNSEP) for r in rows]
    data = run_cobol(cobc_more["signsep"], lines, tmp_path)
    cpy = COBOL / "signsep.cpy"
    o = CopybookOptions(copybook=str(cpy))
    width = compile_plan(load_layout(o), o).width
    # a separate sign byte on S-LEAD, S-TRAIL and the group's signed items; none on S-GL-U, S-GT-U (unsigned)
    # and S-GL-O (its own SIGN TRAILING: an overpunch)
    assert width == 4 + 5 + 6 + (4 + 3 + 2) + (4 + 3)
    assert len(data) == len(rows) * width  # the compiler's record length is bulksync's
    files = {"ascii": data, **{cp: to_mainframe(data, cpy, cp) for cp in ("cp037", "cp1148")}}
    for code_page, file in files.items():
        decoded, errors = decode(file, cpy, code_page=code_page, strict=True)
        assert errors == [], code_page
        assert decoded == rows, code_page
    # SIGN ... SEPARATE on a PIC without S: GnuCOBOL 3.x refuses it in every -std ("elementary items with SIGN
    # clause must have S in PICTURE"), so it cannot write such a record. docs/copybooks.md says bulksync counts
    # the sign byte and reads the item as signed (with a warning): the records of the PIC S items must read the
    # same through the copybook with the S removed.
    nos = tmp_path / "no_s"
    nos.mkdir()
    text = cpy.read_text()
    variant = text.replace("PIC S9(4) SIGN LEADING", "PIC 9(4) SIGN LEADING").replace(
        "PIC S9(3)V99 SIGN TRAILING", "PIC 9(3)V99 SIGN TRAILING"
    )
    assert "PIC 9(4) SIGN LEADING SEPARATE" in variant and "PIC 9(3)V99 SIGN TRAILING SEPARATE" in variant
    (nos / "signsep.cpy").write_text(variant)
    shutil.copy(COBOL / "signsep.cbl", nos / "signsep.cbl")
    refused = subprocess.run(["cobc", "-std=ibm", "-x", "-I", str(nos), str(nos / "signsep.cbl"), "-o",
                              str(nos / "signsep")], capture_output=True, text=True, timeout=120)  # fmt: skip
    assert refused.returncode != 0
    lines_without_s = [n for n, line in enumerate(variant.splitlines(), 1) if "S-LEAD " in line or "S-TRAIL " in line]
    assert [line.split("signsep.cpy:", 1)[1] for line in refused.stderr.splitlines() if "error" in line] == [
        f"{n}: error: elementary items with SIGN clause must have S in PICTURE" for n in lines_without_s
    ]
    caplog.set_level("WARNING", logger="bulksync.legacy.copybook_parser")
    o = CopybookOptions(copybook=str(nos / "signsep.cpy"))
    assert compile_plan(load_layout(o), o).width == width  # the sign byte is counted
    warned = [r.getMessage() for r in caplog.records if "has SIGN SEPARATE but no S" in r.getMessage()]
    assert [w.split(": ")[1].split(" PIC")[0] for w in warned] == ["S-LEAD", "S-TRAIL"]
    for code_page, file in files.items():
        decoded, errors = decode(file, nos / "signsep.cpy", code_page=code_page, strict=True)
        assert errors == [], code_page
        assert decoded == rows, code_page  # read as signed: the negative values included
