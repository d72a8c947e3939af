"""Where a dataset's staged data for one interval lives.

``{root}/{tenant}/{pipeline}/{dataset}/{interval}/`` holds the extract (``part-*.parquet`` and
``_manifest.json``); sub-folders hold the later stages, each with its own manifest:
``validated/`` (rows that passed the quality gate), ``quarantine/`` (rows set aside, with the
expectations they failed) and ``transformed/`` (what the load reads).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bulksync.storage.location import Location

MANIFEST = "_manifest.json"
TRANSFORMED = "transformed"
STAGE_FOLDERS = {
    "validate": "validated",
    "quarantine": "quarantine",
    "transform": TRANSFORMED,
    "target_quarantine": "quarantine/target",  # records a write-back target refused (Salesforce)
}
CHUNK_STAGE_PREFIX = "chunk-"
CHUNKS_FOLDER = ".chunks"


@dataclass(frozen=True)
class Window:
    """A half-open time window ``[start, end)``; both ``None`` means "everything" (full extract)."""

    start: dt.datetime | None = None
    end: dt.datetime | None = None

    def __post_init__(self) -> None:
        for v in (self.start, self.end):
            if v is not None and v.tzinfo is None:
                raise ValueError("window bounds must be timezone-aware")
        if self.start and self.end and self.start > self.end:
            raise ValueError(f"window start {self.start} is after its end {self.end}")

    @property
    def is_full(self) -> bool:
        """True when the window is unbounded."""
        return self.start is None and self.end is None

    @property
    def key(self) -> str:
        """The partition folder name: ``20260101T000000Z_20260102T000000Z`` or ``full``."""
        if self.is_full:
            return "full"

        def fmt(v: dt.datetime | None) -> str:
            return v.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ") if v else "open"

        return f"{fmt(self.start)}_{fmt(self.end)}"

    def widened(self, minutes: int) -> Window:
        """This window with its start moved ``minutes`` earlier (for late-arriving changes)."""
        if not minutes or self.start is None:
            return self
        return Window(self.start - dt.timedelta(minutes=minutes), self.end)

    def to_json(self) -> dict[str, str | None]:
        """ISO strings of both bounds."""
        return {
            "start": self.start.isoformat() if self.start else None,
            "end": self.end.isoformat() if self.end else None,
        }

    @classmethod
    def from_json(cls, data: dict[str, str | None]) -> Window:
        """Inverse of :meth:`to_json`."""

        def parse(v: str | None) -> dt.datetime | None:
            return dt.datetime.fromisoformat(v) if v else None

        return cls(parse(data.get("start")), parse(data.get("end")))


@dataclass(frozen=True)
class Partition:
    """The staging location of one (tenant, pipeline, dataset, window).

    ``root`` is a local folder or an Azure URL (``abfs://container/prefix``), which needs
    ``conn_id`` (an Airflow ``wasb`` connection). :attr:`path` and the other ``Path`` properties
    are for local roots; :meth:`location` and :meth:`stage_location` work on both.
    """

    root: str
    tenant: str
    pipeline: str
    dataset: str
    window: Window
    conn_id: str | None = None

    @property
    def is_remote(self) -> bool:
        """True when the staging root is an object store (commits by writing the manifest last)."""
        from bulksync.storage.location import is_remote

        return is_remote(self.root)

    def _rel(self) -> tuple[str, str, str]:
        return self.tenant, self.pipeline, self.dataset

    def location(self) -> Location:
        """The partition folder (extract stage) on its filesystem."""
        return self.root_location().child(*self._rel(), self.window.key)

    def root_location(self) -> Location:
        """The staging root on its filesystem."""
        from bulksync.storage.location import open_location

        return open_location(self.root, self.conn_id)

    def chunks_location(self) -> Location:
        """Where the chunks of a chunked extract are committed (see :attr:`chunks_path`)."""
        return self.root_location().child(*self._rel(), CHUNKS_FOLDER, self.window.key)

    def stage_location(self, stage: str) -> Location:
        """Folder of a stage's output on its filesystem (see :meth:`stage_path`)."""
        if stage == "extract":
            return self.location()
        if stage.startswith(CHUNK_STAGE_PREFIX):
            return self.chunks_location().child(stage.removeprefix(CHUNK_STAGE_PREFIX))
        return self.location().child(STAGE_FOLDERS[stage])

    @property
    def url(self) -> str:
        """The partition folder as messages show it."""
        return str(self.path) if not self.is_remote else self.location().url

    @property
    def path(self) -> Path:
        """The partition folder (extract stage)."""
        return Path(self.root) / self.tenant / self.pipeline / self.dataset / self.window.key

    @property
    def chunks_path(self) -> Path:
        """Where the chunks of a chunked extract are committed, one folder each, beside (not in)
        the partition, so that committing the extract (which replaces the partition folder) keeps
        them: ``{dataset}/.chunks/{interval}/``."""
        return Path(self.root) / self.tenant / self.pipeline / self.dataset / CHUNKS_FOLDER / self.window.key

    def stage_path(self, stage: str) -> Path:
        """Folder of a stage's output: the partition itself for ``extract``, a sub-folder otherwise;
        ``chunk-00003`` is the fourth chunk of a chunked extract."""
        if stage == "extract":
            return self.path
        if stage.startswith(CHUNK_STAGE_PREFIX):
            return self.chunks_path / stage.removeprefix(CHUNK_STAGE_PREFIX)
        return self.path / STAGE_FOLDERS[stage]

    def manifest_path(self, stage: str) -> Path:
        """Path of the manifest that commits a stage's output."""
        return self.stage_path(stage) / MANIFEST


def chunk_stage(index: int) -> str:
    """The stage name of chunk ``index`` of a chunked extract."""
    return f"{CHUNK_STAGE_PREFIX}{index:05d}"
