"""The ``file_drop`` source: claim complete files from a landing zone, read each, account for every one.

One extract of one interval, holding the interval's lease (:mod:`.lease`) from before it looks at
the landing zone until its files are archived, so a second run of the interval waits (or refuses):

1. **Replay** what the ledger already holds for the interval: files accepted by an earlier try
   (``pending``, still in ``processing/{interval}/``) and, for a rerun of a committed interval,
   the ``staged`` files from the archive. A bounded interval that committed once reads exactly
   its own files again and claims nothing new, so reruns and backfills are idempotent. A full-window
   run (no interval: ``bulksync run`` without ``--start``, a migration's single slice) replays the
   ``staged`` files whose load never reconciled and claims the new ones.
2. **Claim** new complete files (see :mod:`.landing`) by renaming them into
   ``processing/{interval}/``; a file another run renamed first is skipped.
3. **Read** each file into a spool (checksum sidecar verified first; sha256 computed on the way;
   control totals checked at the end). A bad file is quarantined with its reason and the next
   file is read; a good one is accepted in the ledger (an identical file accepted for another
   interval makes this one a ``duplicate``), then its batches are passed on.
4. After the extract's partition is committed, :meth:`FileDropSource.committed` archives the
   accepted files and marks them ``staged`` in one ledger transaction. A crash before that leaves
   them ``pending`` in ``processing/``, where the retry finds them.
5. Reconcile checks the ledger against the partition (:meth:`FileDropSource.reconcile_problems`):
   every file staged for the interval is in the partition with the rows the ledger counted. Then
   :meth:`FileDropSource.reconciled` marks ``loaded`` exactly the files the partition lists.
"""

from __future__ import annotations

import codecs
import datetime as dt
import fnmatch
import hashlib
import io
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import IO, TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from bulksync.errors import ConfigurationError, DataError, FileRejectedError, StagingError
from bulksync.sources.base import Source
from bulksync.sources.file_drop import claim as moves
from bulksync.sources.file_drop.formats import FileReader, make_reader
from bulksync.sources.file_drop.landing import (
    CHECKSUM_SUFFIXES,
    Candidate,
    _is_companion,
    discover,
    parse_control_file,
)
from bulksync.sources.file_drop.store import LandingStore, open_store
from bulksync.sources.file_drop.streams import (
    SNIFF_BYTES,
    HashingReader,
    Spool,
    TrailerHolder,
    check_text,
    compression_of,
    decompressed,
    parse_trailer,
    unclosed_quote_line,
)
from bulksync.spec.file_drop import FileDropOptions

if TYPE_CHECKING:  # the ledger imports Airflow's SQL hooks: only a pipeline run needs it (`bulksync convert` not)
    from bulksync.sources.file_drop.ledger import Ledger

log = logging.getLogger(__name__)


@dataclass
class DropFile:
    """A file one extract reads.

    Attributes:
        name: its name as it arrived.
        location: where it is now, relative to the landing folder.
        companions: current locations of its trigger / checksum files.
        expected_rows: the record count its control file gives.
        mtime: when it arrived (modification time).
        ledger_id: its ledger row when replayed.
    """

    name: str
    location: str
    companions: list[str] = field(default_factory=list)
    expected_rows: int | None = None
    mtime: float | None = None
    ledger_id: int | None = None


@dataclass
class _Accepted:
    ledger_id: int
    file: DropFile
    sha256: str


class FileDropSource(Source):
    """Files dropped by a client into a landing folder (CSV, fixed-width text or copybook files)."""

    kind = "file_drop"
    extract_is_window_snapshot = False  # a run stages only the files that arrived since the last one
    options: FileDropOptions

    def __init__(self, spec: Any, window: Any, chunk: dict[str, Any] | None = None) -> None:
        super().__init__(spec, window, chunk)
        self.ledger: Ledger | None = None
        self.run_id = "manual"
        self._accepted: list[_Accepted] = []
        self.stats = {"files": []}

    @cached_property
    def store(self) -> LandingStore:
        """The landing zone."""
        return open_store(self.options.landing, getattr(self.spec, "conn_id", None))

    @cached_property
    def reader(self) -> FileReader:
        """The reader of the drop's format."""
        return make_reader(self.options)

    def bind(self, pipeline: Any, dataset: Any, run_id: str) -> None:
        """Open the ledger and take the interval's lease (waiting for another run extracting it).

        Raises:
            LeaseHeldError: another live run still extracts the interval after ``options.lease.wait_seconds``.
        """
        conn_id = self.options.ledger_conn_id or getattr(dataset.target, "conn_id", None)
        if not conn_id:
            raise ConfigurationError(
                f"dataset {dataset.name}: the file ledger needs a SQL database; set source.options.ledger_conn_id"
            )
        from bulksync.sources.file_drop.ledger import Ledger

        self.ledger = Ledger(conn_id, pipeline.tenant, pipeline.pipeline, dataset.name)
        self.run_id = run_id
        try_number = os.environ.get("AIRFLOW_CTX_TRY_NUMBER")
        try:
            self.ledger.take_lease(
                self.interval,
                run_id,
                try_number=int(try_number) if try_number and try_number.isdigit() else None,
                expire_seconds=self.options.lease.expire_seconds,
                wait_seconds=self.options.lease.wait_seconds,
                where=self.store.describe(),
            )
        except BaseException:
            self.ledger.close()
            raise
        if hasattr(self.store, "owner"):  # a blob landing records the claiming run on each claimed copy
            token = self.ledger.lease.token[:12] if self.ledger.lease else "?"
            setattr(self.store, "owner", f"{run_id} (lease {token})")  # noqa: B010 - not in the protocol

    def _fence(self) -> None:
        """Stop before touching the landing zone if this run lost its lease."""
        if self.ledger is not None and self.ledger.lease is not None:
            self.ledger.lease.check()

    def schema(self) -> pa.Schema:
        return self.reader.schema()

    @property
    def interval(self) -> str:
        """The interval key the ledger and ``processing/`` use."""
        return str(self.window.key)

    def _ledger(self) -> Ledger:
        if self.ledger is None:
            raise ConfigurationError("the file_drop source keeps a ledger: run it through bulksync.stages.extract")
        return self.ledger

    # -- choosing the files -------------------------------------------------------------------------

    def plan(self) -> list[DropFile]:
        """Replay this interval's files from the ledger, and claim new complete files (unless replaying)."""
        ledger, store, interval = self._ledger(), self.store, self.interval
        todo: list[DropFile] = []
        rows = ledger.for_interval(interval)
        full = self.window.is_full
        replay_only = not full and any(r.status in ("staged", "loaded") for r in rows)
        known = set()
        claimed = moves.processing_folder(interval)
        for r in rows:
            here = [x for x in (r.location, f"{claimed}/{r.file_name}") if x]
            if full and r.status == "loaded":
                # loaded by an earlier full-window run: never read again (a file still in processing/,
                # left by a crash before its archive move, is archived now)
                known.update(here)
                self._archive_loaded(r)
                continue
            # where the ledger says, else still in processing/ (a try stopped before moving it)
            location = next((x for x in here if store.exists(x)), None)
            if location is None:
                raise StagingError(
                    f"the ledger ({ledger.describe()}) lists {r.file_name} for interval {interval} at "
                    f"{r.location}, but it is not in {store.describe()} any more: restore it from a backup to "
                    "rerun the interval"
                )
            todo.append(DropFile(r.file_name, location, self._companions_of(location), r.expected_rows, None, r.id))
            known.add(location)
        if full and todo:
            log.info(
                "full-window file drop: %d file(s) accepted by an earlier run whose load never reconciled are "
                "read again",
                len(todo),
            )
        todo.extend(self._claimed_earlier(known))
        if replay_only:
            log.info("interval %s was committed before: replaying its %d file(s), claiming none", interval, len(todo))
            return todo
        found = discover(store, self.options)
        for cand in found.rejected:
            self._reject_entry(cand)
        if found.waiting:
            log.info("not complete yet, left in the landing folder: %s", found.describe_waiting())
        folder = moves.processing_folder(interval)
        if found.ready:
            self._fence()
        for cand in found.ready:
            if moves.claim(store, cand, interval):
                loc = f"{folder}/{cand.name}"
                todo.append(DropFile(cand.name, loc, self._companions_of(loc), cand.expected_rows, cand.mtime))
        for control in found.controls:
            store.claim(control, f"{folder}/{control}")
        log.info(
            "file drop %s: %d file(s) to read for interval %s (%d rejected at sight, %d not complete yet)",
            store.describe(),
            len(todo),
            interval,
            len(found.rejected),
            len(found.waiting),
        )
        return todo

    def _claimed_earlier(self, known: set[str]) -> list[DropFile]:
        """Files an earlier try of this interval claimed but never accepted (it stopped in between)."""
        folder = moves.processing_folder(self.interval)
        out = []
        controls = []
        for e in self.store.list(folder):
            base = e.name.rsplit("/", 1)[-1]
            if e.name in known:
                continue
            if e.kind == "symlink":  # never followed: set aside as the link it is
                message = f"{base} in {folder}/ is a symbolic link; bulksync reads only regular files"
                where = moves.quarantine(
                    self.store, e.name, base, "symlink", message, interval=self.interval, run_id=self.run_id
                )
                self._record(base, "quarantined", "symlink", message, location=where)
                continue
            if e.kind != "file":
                continue
            if _is_companion(base, self.options):
                pattern = self.options.arrival.control_pattern
                if pattern and fnmatch.fnmatchcase(base, pattern):
                    controls.append(e.name)
                continue
            out.append(DropFile(base, e.name, self._companions_of(e.name), None, e.mtime))
        if controls:  # counts of a control file claimed with the files
            counts = {n: c for ctl in controls for n, c in parse_control_file(self.store.read_text(ctl))}
            for f in out:
                f.expected_rows = counts.get(f.name)
        if out:
            log.info("%d file(s) claimed by an earlier try of interval %s are read again", len(out), self.interval)
        return out

    def _archive_loaded(self, r: Any) -> None:
        """Archive a ``loaded`` file still in ``processing/`` (a crash between its ledger update and its move)."""
        store = self.store
        src = f"{moves.processing_folder(self.interval)}/{r.file_name}"
        if r.location and r.location != src and store.exists(r.location):
            return  # archived where the ledger says
        if not store.exists(src):
            return
        self._fence()
        day = dt.datetime.now(dt.UTC).date()
        free = bool(r.location) and r.location.startswith("archive/") and not store.exists(r.location)
        dest = r.location if free else moves.archive_name(store, r.file_name, r.sha256, day)
        companions = self._companions_of(src)
        store.move(src, dest)
        moves.move_companions(store, companions, src, dest)
        self._ledger().update(r.id, location=dest)
        log.info("%s (loaded earlier) was still in %s: archived as %s", r.file_name, src, dest)

    def _companions_of(self, location: str) -> list[str]:
        folder, _, base = location.rpartition("/")
        stem = base.rsplit(".", 1)[0]
        names = [*(base + s for s in CHECKSUM_SUFFIXES)]
        names += [base + s for s in self.options.arrival.trigger_suffixes]
        names += [stem + s for s in self.options.arrival.trigger_suffixes]
        return [f"{folder}/{n}" if folder else n for n in names if self.store.exists(f"{folder}/{n}" if folder else n)]

    def _reject_entry(self, cand: Candidate) -> None:
        reason, message = cand.problem or ("unknown", "unusable entry")
        self._fence()
        if reason == "unsafe_name":
            self._record(cand.name, "rejected", reason, message)
            log.warning("%s", message)
            return
        where = moves.quarantine(
            self.store,
            cand.name,
            cand.name,
            reason,
            message,
            cand.companions,
            interval=self.interval,
            run_id=self.run_id,
        )
        self._record(cand.name, "quarantined", reason, message, location=where)

    # -- reading ------------------------------------------------------------------------------------

    def read(self) -> Iterator[pa.RecordBatch]:
        todo = self.plan()
        if not todo and not self.options.allow_missing:
            raise DataError(
                f"no complete file matching {self.options.patterns} in {self.store.describe()} for interval "
                f"{self.interval}; the client's drop may be late. Set allow_missing: true if an empty night is normal"
            )
        for f in todo:
            yield from self._read_one(f)
        accepted_rows = sum(n["rows"] for n in self.stats["files"] if n["status"] == "accepted")
        log.info(
            "file drop %s: %d file(s) accepted with %d rows, %d quarantined, %d duplicate",
            self.interval,
            len(self._accepted),
            accepted_rows,
            sum(1 for n in self.stats["files"] if n["status"] == "quarantined"),
            sum(1 for n in self.stats["files"] if n["status"] == "duplicate"),
        )

    def read_checked(self, f: DropFile) -> tuple[Spool, str, int]:
        """Read and check one file completely; its batches wait in the returned spool.

        Returns:
            ``(spool, sha256, size)``.

        Raises:
            DataError: the file cannot be loaded; ``reason`` says why (``FileRejectedError`` or an
                engine error carrying a reason).
        """
        store, opts = self.store, self.options
        entry = store.stat(f.location)
        size = entry.size if entry else 0
        spool = Spool(opts.spool_memory_mb << 20)
        hashers: list[HashingReader] = []
        holders: list[TrailerHolder] = []
        compression = compression_of(f.name, opts.compression)
        limit = opts.max_uncompressed_mb << 20
        quote = self._quote_check()

        trailer = opts.control_total.kind == "trailer"

        def opener() -> IO[bytes]:
            raw: IO[bytes] = store.open(f.location)
            if compression != "zip":
                hashing = HashingReader(raw)
                hashers.append(hashing)
                raw = io.BufferedReader(hashing, 1 << 20)
            data = decompressed(raw, compression, limit, f.name)
            if trailer:
                holder = TrailerHolder(data)
                holders.append(holder)
                data = io.BufferedReader(holder, 1 << 20)
            return data

        try:
            if entry is not None and entry.kind != "file":
                raise FileRejectedError(
                    "symlink" if entry.kind == "symlink" else "not_a_regular_file",
                    f"{f.name} at {f.location} is a {'symbolic link' if entry.kind == 'symlink' else entry.kind}; "
                    "bulksync reads only regular files and never follows a link. Ask the client to upload the file "
                    "itself",
                )
            self._verify_sidecar(f)
            self._check_head(f, compression, limit, size)
            for batch in self.reader.read(f.name, opener):
                spool.add(batch)
            sha256 = next((h.hexdigest() for h in hashers if h.eof and h.bytes == size), None)
            sha256 = sha256 or _digest(store, f.location, "sha256")
            if quote:
                self._check_last_record(f, spool.last, opener)
            self._check_totals(f, spool.rows, holders)
        except DataError as exc:
            spool.close()
            if (
                getattr(exc, "reason", None) in ("column_count", "parse_error", "bad_value", "field_too_large")
                and quote
            ):
                unclosed = self._unclosed_quote(f, opener)
                if unclosed:
                    raise unclosed from None
            raise
        except BaseException:
            spool.close()
            raise
        return spool, sha256, size

    def _read_one(self, f: DropFile) -> Iterator[pa.RecordBatch]:
        try:
            spool, sha256, size = self.read_checked(f)
        except DataError as exc:
            entry = self.store.stat(f.location)
            self._quarantine(f, getattr(exc, "reason", None) or "bad_data", str(exc), entry.size if entry else 0, None)
            return
        ledger = self._ledger()
        arrived = dt.datetime.fromtimestamp(f.mtime, dt.UTC) if f.mtime else None
        ok, row = ledger.accept(
            replaying=f.ledger_id,
            file_name=f.name,
            size=size,
            sha256=sha256,
            interval=self.interval,
            run_id=self.run_id,
            rows=spool.rows,
            expected_rows=f.expected_rows,
            location=f.location,
            arrived_at=arrived,
        )
        if not ok:
            spool.close()
            message = (
                f"{f.name} is identical (size {size}, sha256 {sha256[:12]}…) to the file accepted for interval "
                f"{row.interval} by run {row.run_id}; it was skipped"
            )
            where = moves.quarantine(
                self.store,
                f.location,
                f.name,
                "duplicate",
                message,
                f.companions,
                sha256=sha256,
                size=size,
                interval=self.interval,
                run_id=self.run_id,
                earlier_interval=row.interval,
            )
            self._record(
                f.name, "duplicate", "duplicate", message, size=size, sha256=sha256, location=where, arrived_at=arrived
            )
            return
        self._accepted.append(_Accepted(row.id, f, sha256))
        self._note(f.name, "accepted", rows=spool.rows, sha256=sha256, ledger_id=row.id)
        log.info("read %s: %d rows (sha256 %s…)", f.name, spool.rows, sha256[:12])
        yield from spool.drain()

    def _check_head(self, f: DropFile, compression: str, limit: int, size: int) -> None:
        if size == 0:
            raise FileRejectedError("empty_file", f"{f.name}: the file is empty (0 bytes). Ask the client to resend it")
        if self.options.format == "copybook":
            return
        with decompressed(self.store.open(f.location), compression, limit, f.name) as data:
            head = data.read(SNIFF_BYTES)
        check_text(head, self.options.encoding, f.name)

    def _verify_sidecar(self, f: DropFile) -> None:
        sidecars = {c.rsplit(".", 1)[-1]: c for c in f.companions if c.endswith(CHECKSUM_SUFFIXES)}
        required = self.options.checksum
        if required == "none":
            return
        if required in ("md5", "sha256") and required not in sidecars:
            raise FileRejectedError(
                "checksum_missing",
                f"{f.name}: options.checksum is {required} but no {f.name}.{required} file came with it. "
                "Ask the client to send it",
            )
        for algo, sidecar in sorted(sidecars.items()):
            text = self.store.read_text(sidecar, encoding="latin-1").strip()
            expected = text.split()[0].lower() if text else ""
            actual = _digest(self.store, f.location, algo)
            if expected != actual:
                raise FileRejectedError(
                    "checksum_mismatch",
                    f"{f.name}: {algo} is {actual} but {sidecar.rsplit('/', 1)[-1]} says {expected or '(empty)'}; "
                    "the file was damaged or changed in transit. Ask the client to resend it",
                )

    def _quote_check(self) -> bool:
        """Whether quoting is checked: CSV with a quote character and no escape character."""
        d = self.options.csv
        return self.options.format == "csv" and bool(d.quote_char) and not d.escape_char

    def _check_last_record(self, f: DropFile, last: pa.RecordBatch | None, opener: Any) -> None:
        """Refuse a quoted field that never closes.

        pyarrow reads such a field to the end of the file without complaint, so it is always in the
        last record; when a text value there holds a line break, the csv module reads the file
        again to tell a legitimate quoted newline from an unclosed quote.
        """
        if last is None or not last.num_rows:
            return
        row = last.slice(last.num_rows - 1)
        suspicious = any(
            pc.any(pc.match_substring_regex(col, "[\r\n]")).as_py()
            for col in row.columns
            if pa.types.is_string(col.type) or pa.types.is_large_string(col.type)
        )
        if suspicious:
            unclosed = self._unclosed_quote(f, opener)
            if unclosed:
                raise unclosed

    def _unclosed_quote(self, f: DropFile, opener: Any) -> FileRejectedError | None:
        d = self.options.csv
        enc = "utf-8-sig" if codecs.lookup(self.options.encoding).name == "utf-8" else self.options.encoding
        with io.TextIOWrapper(opener(), encoding=enc, errors="replace", newline="") as text:
            line = unclosed_quote_line(text, d.delimiter, d.quote_char or '"', d.header)
        if line is None:
            return None
        return FileRejectedError(
            "unbalanced_quote",
            f"{f.name}, line {line}: a quoted field starts here and is never closed, so the rest of the file would "
            "be read as one value. Ask the client to fix the quoting (a quote inside a value is written twice)",
        )

    def _check_totals(self, f: DropFile, rows: int, holders: list[TrailerHolder]) -> None:
        ct = self.options.control_total
        expected = None
        if ct.kind == "trailer":
            holder = next((h for h in holders if h.done), None)
            expected = parse_trailer(holder.trailer if holder else None, ct.trailer_pattern, f.name)
            source = "its trailer record"
        elif ct.kind == "control_file":
            if f.expected_rows is None:
                raise FileRejectedError(
                    "control_total_missing", f"{f.name}: its control file gives no record count for it"
                )
            expected, source = f.expected_rows, "the control file"
        if expected is not None and expected != rows:
            raise FileRejectedError(
                "control_total_mismatch",
                f"{f.name}: {rows} records read but {source} says {expected}. The file may be incomplete; "
                "ask the client to resend it",
            )

    def _quarantine(self, f: DropFile, reason: str, message: str, size: int, sha256: str | None) -> None:
        entry = self.store.stat(f.location)
        if sha256 is None and entry is not None and entry.kind == "file":
            sha256 = _digest(self.store, f.location, "sha256")
        self._fence()
        where = moves.quarantine(
            self.store,
            f.location,
            f.name,
            reason,
            message,
            f.companions,
            size=size,
            sha256=sha256,
            interval=self.interval,
            run_id=self.run_id,
        )
        fields = {"location": where, "size": size, "sha256": sha256}
        if f.ledger_id is not None:
            self._ledger().update(f.ledger_id, status="quarantined", reason=reason, detail=message, **fields)
            self._note(f.name, "quarantined", reason=reason)
        else:
            arrived = dt.datetime.fromtimestamp(f.mtime, dt.UTC) if f.mtime else None
            self._record(f.name, "quarantined", reason, message, arrived_at=arrived, **fields)

    def _record(self, name: str, status: str, reason: str, message: str, **fields: Any) -> None:
        """Add the ledger row of a file that is not accepted, and note it in the stats."""
        self._ledger().record(
            file_name=name,
            status=status,
            interval=self.interval,
            run_id=self.run_id,
            reason=reason,
            detail=message,
            **fields,
        )
        self._note(name, status, reason=reason)

    def _note(self, name: str, status: str, **extra: Any) -> None:
        self.stats["files"].append({"name": name, "status": status, "rows": extra.pop("rows", 0), **extra})

    # -- after the commit ---------------------------------------------------------------------------

    def committed(self, manifest: Any) -> None:
        """Archive the accepted files and mark them ``staged`` (the partition holds their rows now)."""
        if self.ledger is None:
            return
        store, interval = self.store, self.interval
        day = dt.datetime.now(dt.UTC).date()
        locations: dict[int, str] = {}
        to_move: list[tuple[DropFile, str]] = []
        for acc in self._accepted:
            f = acc.file
            if f.location.startswith("processing/"):
                dest = moves.archive_name(store, f.name, acc.sha256, day)
                to_move.append((f, dest))
                locations[acc.ledger_id] = dest
            else:
                locations[acc.ledger_id] = f.location
        # the ledger first: a crash before the moves leaves staged files in processing/, where a
        # rerun looks for them (and moves them); never a staged row pointing nowhere
        self.ledger.mark_staged(interval, locations, self.run_id)
        self._fence()
        for f, dest in to_move:
            store.move(f.location, dest)
            moves.move_companions(store, f.companions, f.location, dest)
        for e in store.list(moves.processing_folder(interval)):  # control files and stray companions
            if e.kind == "file":
                moves.archive(store, e.name, e.name.rsplit("/", 1)[-1], None, day)
        store.tidy(moves.processing_folder(interval))
        log.info("file drop %s: %d file(s) staged and archived under archive/%s", interval, len(locations), day)

    @staticmethod
    def partition_files(manifest: Any) -> list[dict[str, Any]]:
        """The files an extract manifest says its rows came from (name, rows, sha256, ledger id)."""
        files = (manifest.extra.get("source_stats") or {}).get("files") or []
        return [f for f in files if f.get("status") == "accepted"]

    @classmethod
    def reconcile_problems(cls, pipeline: Any, dataset: Any, window: Any, manifest: Any) -> list[str]:
        """Compare the ledger's files of the interval with the partition about to be reconciled.

        Every file the ledger has ``staged`` for the interval (for a bounded interval also every
        ``loaded`` one) must be listed by the partition, each with the rows the ledger counted, and
        the listed files' rows must add up to the partition's. A file staged by one run whose
        partition another run replaced is named here, so the loss cannot reconcile.
        """
        from bulksync.sources.file_drop.replay import ledger_for

        listed = cls.partition_files(manifest)
        ledger = ledger_for(pipeline, dataset)
        try:
            rows = ledger.for_interval(window.key, ("staged", "loaded"))
            where = ledger.describe()
        finally:
            ledger.close()
        problems = []
        by_id = {r.id: r for r in rows}
        in_partition = {int(f["ledger_id"]) for f in listed if f.get("ledger_id") is not None}
        legacy = [f for f in listed if f.get("ledger_id") is None]  # manifests written before ledger ids
        for f in listed:
            r = by_id.get(int(f["ledger_id"])) if f.get("ledger_id") is not None else None
            if r is None and f.get("ledger_id") is None:
                r = next((x for x in rows if x.file_name == f["name"] and x.sha256 == f.get("sha256")), None)
                if r is not None:
                    in_partition.add(r.id)
            if r is None:
                problems.append(
                    f"the partition holds {f['name']} ({f['rows']} rows) but the ledger ({where}) has no staged or "
                    f"loaded row of it for interval {window.key}"
                )
            elif int(r.rows or 0) != int(f["rows"]):
                problems.append(f"{f['name']}: the ledger counted {r.rows} rows, the partition holds {f['rows']} of it")
        for r in rows:
            if r.id in in_partition or (r.status == "loaded" and window.is_full):
                continue
            problems.append(
                f"{r.file_name} ({r.rows} rows, ledger row {r.id}, {r.status} by run {r.run_id}) is not in the "
                f"partition (written by run {manifest.run_id}): another run replaced it. Rerun the interval; it "
                "replays the file from the archive"
            )
        total = sum(int(f["rows"]) for f in listed)
        if (listed or not legacy) and total != manifest.rows:
            problems.append(f"the partition's files add up to {total} rows but it holds {manifest.rows}")
        return problems

    @classmethod
    def reconciled(cls, pipeline: Any, dataset: Any, window: Any, run_id: str) -> None:
        """The interval's load reconciled: the files its partition lists become ``loaded`` in the ledger."""
        from bulksync.sources.file_drop.replay import ledger_for
        from bulksync.stages import partition_for
        from bulksync.staging.reader import read_manifest

        manifest = read_manifest(partition_for(pipeline, dataset, window), "extract")
        listed = cls.partition_files(manifest)
        ledger = ledger_for(pipeline, dataset)
        try:
            ids = [int(f["ledger_id"]) for f in listed if f.get("ledger_id") is not None]
            legacy = [f for f in listed if f.get("ledger_id") is None]
            if legacy:
                staged = ledger.for_interval(window.key, ("staged",))
                ids += [r.id for r in staged for f in legacy if r.file_name == f["name"] and r.sha256 == f["sha256"]]
            n = ledger.mark_loaded(window.key, run_id, ids)
        finally:
            ledger.close()
        log.info("file drop %s: %d file(s) loaded and reconciled", window.key, n)

    def close(self) -> None:
        if self.ledger is not None:
            try:
                self.ledger.release_lease()
            finally:
                self.ledger.close()


def _digest(store: LandingStore, name: str, algo: str) -> str:
    h = hashlib.new(algo)
    with store.open(name) as f:
        while chunk := f.read(8 << 20):
            h.update(chunk)
    return h.hexdigest()
