"""The manifest that commits a staging partition: rows, files with checksums, schema, window."""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

import pyarrow as pa
from pydantic import BaseModel, Field

FORMAT_VERSION = 1


class FileEntry(BaseModel):
    """One Parquet part: its path relative to the manifest's folder, rows, bytes and sha256."""

    path: str
    rows: int
    bytes: int
    sha256: str


class Manifest(BaseModel):
    """What a committed stage output holds. Written last; a partition without one does not exist."""

    format_version: int = FORMAT_VERSION
    tenant: str
    pipeline: str
    dataset: str
    stage: str
    interval: str
    window: dict[str, str | None]
    rows: int
    files: list[FileEntry]
    columns: list[dict[str, Any]]
    arrow_schema: str = Field(description="Arrow IPC schema, base64.")
    source_count: int | None = None
    run_id: str | None = None
    try_number: int | None = None
    created_at: dt.datetime
    duration_seconds: float
    extra: dict[str, Any] = Field(default_factory=dict)

    @staticmethod
    def encode_schema(schema: pa.Schema) -> tuple[list[dict[str, Any]], str]:
        """Readable column list and exact IPC encoding of an Arrow schema."""
        cols = [{"name": f.name, "type": str(f.type), "nullable": f.nullable} for f in schema]
        return cols, base64.b64encode(schema.serialize().to_pybytes()).decode("ascii")

    def read_schema(self) -> pa.Schema:
        """The exact Arrow schema of the staged data."""
        return pa.ipc.read_schema(pa.py_buffer(base64.b64decode(self.arrow_schema)))

    def summary(self) -> dict[str, Any]:
        """The small dict passed through XCom: never data, only where it is and how much."""
        return {
            "dataset": self.dataset,
            "stage": self.stage,
            "interval": self.interval,
            "rows": self.rows,
            "files": len(self.files),
            "bytes": sum(f.bytes for f in self.files),
            "source_count": self.source_count,
            "duration_seconds": round(self.duration_seconds, 3),
        }
