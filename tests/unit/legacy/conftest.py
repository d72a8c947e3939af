"""Helpers of the copybook engine tests: decode known bytes through the public reader."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bulksync.legacy.block import DecodedBlock
from bulksync.legacy.reader import CopybookOptions, read_records

Decode = Callable[..., tuple[list[dict[str, Any]], list[DecodedBlock]]]


def copybook(*fields: str) -> str:
    """A fixed-format copybook: ``01 REC.`` and one ``05`` line per field (columns 8-72)."""
    return "\n".join(["       01  REC."] + [f"           05  {f}." for f in fields]) + "\n"


@pytest.fixture
def decode(tmp_path: Path) -> Decode:
    """decode(copybook_text, data, **options) -> (rows of every block, the blocks)."""

    def run(text: str, data: bytes, **options: Any) -> tuple[list[dict[str, Any]], list[DecodedBlock]]:
        path = tmp_path / "t.cpy"
        path.write_text(text)
        opts = CopybookOptions(copybook=str(path), **options)
        blocks = list(read_records(io.BytesIO(data), opts, name="in.dat"))
        rows = [r for b in blocks for r in b.batch.to_pylist()]
        return rows, blocks

    return run
