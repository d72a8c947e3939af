"""The Source contract: a declared schema, a stream of record batches for a window, and a count."""

from __future__ import annotations

import abc
from collections.abc import Iterator
from typing import Any, ClassVar

import pyarrow as pa

from bulksync.staging.partition import Window


class Source(abc.ABC):
    """A system bulksync extracts from.

    Subclasses set :attr:`kind` and implement :meth:`schema` and :meth:`read`; they may report the
    count the system itself claims (:meth:`source_count`) so reconciliation has an independent
    number to compare with.

    A source that can split a large extract into independent chunks (key ranges, Id ranges)
    declares a ``chunking`` field in its options and overrides :meth:`plan_chunks`; each chunk is
    then extracted by its own (mapped) task, and :meth:`read` / :meth:`source_count` honour
    :attr:`chunk`.

    Args:
        spec: the parsed ``source`` section of the dataset spec.
        window: the data interval to read (``Window()`` for a full extract).
        chunk: the chunk this instance reads (one of :meth:`plan_chunks`), or ``None`` for all.
    """

    kind: ClassVar[str]
    reports_deletes: ClassVar[bool] = False
    extract_is_window_snapshot: ClassVar[bool] = True
    """Whether an extract holds everything the source has for its window, so that a new extract of
    the window replaces, in the target, what the previous one loaded (append, interval). False for
    sources whose extract holds only what arrived since the last run (file drops: each file is loaded
    once by the file ledger, and a later run's partition of the same window adds to it)."""

    def __init__(self, spec: Any, window: Window, chunk: dict[str, Any] | None = None) -> None:
        self.spec = spec
        self.options = spec.options
        self.window = window
        self.chunk = chunk
        self.stats: dict[str, Any] = {}

    @property
    def primary_key(self) -> list[str]:
        """Columns identifying a row, when the source knows them."""
        return list(getattr(self.options, "primary_key", []) or [])

    @property
    def cursor_field(self) -> str | None:
        """The change timestamp column used for incremental windows, if any."""
        return getattr(self.options, "cursor_field", None)

    @abc.abstractmethod
    def schema(self) -> pa.Schema:
        """The Arrow schema every yielded batch has."""

    @abc.abstractmethod
    def read(self) -> Iterator[pa.RecordBatch]:
        """Yield the window's rows as record batches of :meth:`schema`."""

    def plan_chunks(self) -> list[dict[str, Any]]:
        """Split the window's extract into chunks whose union is the whole extract, exactly.

        Runs once per run at run time (it may query the source). Each chunk is a small JSON-able
        dict (for instance a key range) handed back as :attr:`chunk` to the task extracting it.
        The default is one chunk holding everything.
        """
        return [{}]

    def source_count(self) -> int | None:
        """The row count the source claims for the window (``None`` when it cannot say)."""
        return None

    def bind(self, pipeline: Any, dataset: Any, run_id: str) -> None:  # noqa: B027 - optional hook
        """Called by the extract stage before reading: the pipeline and dataset specs and the run id.

        Sources keeping state of their own (the file drop's ledger) use it to know whose state it is.
        """

    def committed(self, manifest: Any) -> None:  # noqa: B027 - optional hook
        """Called by the extract stage once the partition's extract is committed (archive, ledger …)."""

    @classmethod
    def reconcile_problems(cls, pipeline: Any, dataset: Any, window: Window, manifest: Any) -> list[str]:
        """Checks of the source's own before the window reconciles, as problems (none by default).

        The file drop compares its ledger's files with the extract ``manifest`` of the partition.
        """
        return []

    @classmethod
    def reconciled(cls, pipeline: Any, dataset: Any, window: Window, run_id: str) -> None:
        """Called by the reconcile stage once the window's load reconciled (a file drop marks its files loaded)."""
        return

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections and files."""
