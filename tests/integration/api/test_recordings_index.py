"""tests/fixtures/api_recordings is a copy of /work/shared/api-recordings: INDEX.md lists exactly the files
that are there, and every file is used by a test of this folder (a recording nobody replays proves nothing)."""

from __future__ import annotations

import re
from pathlib import Path

from tests.integration.api.recorded import REC

HERE = Path(__file__).resolve().parent


def indexed() -> set[str]:
    folder, out = None, set()
    for line in (REC / "INDEX.md").read_text().splitlines():
        if m := re.match(r"^## (\w+)/", line):
            folder = m.group(1)
        elif folder and (m := re.match(r"^\| `([^`]+\.json)` \|", line)):
            out.add(f"{folder}/{m.group(1)}")
    return out


def on_disk() -> set[str]:
    return {str(p.relative_to(REC)) for p in REC.rglob("*.json")}


def test_index_lists_exactly_the_files_there() -> None:
    assert indexed() == on_disk() and len(on_disk()) == 44


def test_every_recording_is_used_by_a_test() -> None:
    sources = "\n".join(p.read_text() for p in HERE.glob("test_*.py") if p.name != Path(__file__).name)
    unused = sorted(f for f in on_disk() if Path(f).name not in sources)
    assert not unused, f"recordings no test replays: {unused}"
