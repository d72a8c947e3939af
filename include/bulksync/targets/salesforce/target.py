"""The ``salesforce`` target: write staged records into an org through Bulk API 2.0 ingest jobs.

One load:

1. refuse a second ``insert`` of an interval whose insert started or committed (duplicates in a CRM
   are expensive to undo) unless forced; the same staged data loaded again is a no-op reported as such;
2. ``/limits``: refuse to start below ``min_remaining_api_requests`` daily requests, or when the
   org's remaining Bulk API batches (10,000 records each) cannot take the records;
3. describe the object (and the relationships' parents) and check the spec against it
   (:func:`~bulksync.targets.salesforce.plan.plan_write`) — before anything is sent;
4. a first streaming pass checks every record describe can judge (length, restricted picklists,
   required fields of inserts, empty or repeated keys, record size): with ``invalid_rows: fail`` any
   problem stops the load before upload, naming row, column and field; with ``quarantine`` those
   records are set aside;
5. a second pass encodes the records as CSV jobs of at most ``max_records_per_job`` records and
   ``max_bytes_per_job`` bytes, ``max_parallel_jobs`` in flight; each job's three result sets are
   read, failed records quarantined with their error, unprocessed records (a failed or aborted job)
   resubmitted in new jobs up to twice, then quarantined;
6. the counts must add up: sent = succeeded + failed + unprocessed, else the load fails.

Memory: the jobs in flight (each at most ``max_bytes_per_job`` of CSV plus its staged rows) and 9
bytes per staged record for the checks.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pyarrow as pa

from bulksync.errors import ConfigurationError, DataError, StagingError
from bulksync.hooks.salesforce import BulksyncSalesforceHook
from bulksync.sources.salesforce.api import SalesforceApi
from bulksync.sources.salesforce.errors import SalesforceApiError, SalesforceJobError, SalesforceLimitError
from bulksync.staging.partition import Partition, Window
from bulksync.staging.writer import PartitionWriter
from bulksync.targets.base import BatchSource, LoadResult, Target
from bulksync.targets.salesforce import accounting as acc
from bulksync.targets.salesforce.encode import Precheck, encode, header_bytes
from bulksync.targets.salesforce.jobs import IngestJob, Results, parse_result
from bulksync.targets.salesforce.plan import WritePlan, plan_write

log = logging.getLogger(__name__)

SLICE_ROWS = 10_000
RESUBMIT_ROUNDS = 2
BULK_BATCH_RECORDS = 10_000
MAX_RECORDS_PER_DAY = 150_000_000
"""Bulk API 2.0: "Maximum number of records uploaded per rolling 24-hour period: 150,000,000"."""


class InsertAlreadyLoadedError(DataError):
    """An insert of this interval started or committed before: running it again would duplicate records."""


@dataclass
class _Payload:
    number: int
    rows: pa.Table
    positions: np.ndarray
    data: bytes
    resent: bool = False


class SalesforceTarget(Target):
    """Write a dataset into a Salesforce object (see :class:`~bulksync.spec.salesforce_target.SalesforceTargetSpec`)."""

    kind = "salesforce"

    def __init__(self, spec: Any) -> None:
        super().__init__(spec)
        self.partition: Partition | None = None
        self.manifest: Any = None
        self.run: Any = None
        self.force = False
        self.retrying = False
        """Re-sending quarantined records (``bulksync sf retry``): no insert ledger check."""
        self.row_map: np.ndarray | None = None
        """Staged row numbers of the batches' rows (a retry sends a subset of the staged data)."""
        self.tally = acc.Tally()

    def bind(self, partition: Partition, manifest: Any, run: Any = None) -> None:
        """The staging partition (for ``quarantine/`` and the ledger) and the manifest being loaded."""
        self.partition, self.manifest, self.run = partition, manifest, run

    @cached_property
    def hook(self) -> BulksyncSalesforceHook:
        return BulksyncSalesforceHook(self.spec.conn_id, timeout=self.spec.request_timeout_seconds)

    @cached_property
    def api(self) -> SalesforceApi:
        return SalesforceApi(self.hook, self.spec)

    def row_count(self) -> int:
        """Live records of the target object in the org (``SELECT COUNT()``, one attempt: for summaries)."""
        body = self.api.request("GET", "query", params={"q": f"SELECT COUNT() FROM {self.spec.object}"}, attempts=1)
        return int(body["totalSize"])

    # -- checks before anything is sent -------------------------------------------------------

    def describe(self, name: str) -> dict[str, Any]:
        """``/sobjects/{name}/describe`` (a clear error for an unknown object)."""
        try:
            result: dict[str, Any] = self.api.request("GET", f"sobjects/{name}/describe")
        except SalesforceApiError as exc:
            if exc.status == 404 or exc.code == "NOT_FOUND":
                raise ConfigurationError(
                    f"Salesforce object {name!r} does not exist or connection {self.spec.conn_id!r} cannot see it: "
                    "check the API name (custom objects end in __c) and the integration user's permissions"
                ) from None
            raise
        return result

    def plan(self, schema: pa.Schema) -> WritePlan:
        """Describe the object and its relationships' parents; check the spec (nothing is sent)."""
        describe = self.describe(self.spec.object)
        parents = {r.object: self.describe(r.object) for r in self.spec.relationships.values()}
        return plan_write(self.spec, schema, describe, parents)

    def check_limits(self, records: int) -> dict[str, Any]:
        """Refuse to start when the org's daily API requests or Bulk API batches cannot take this load."""
        limits = self.api.request("GET", "limits")
        daily = limits.get("DailyApiRequests") or {}
        remaining = daily.get("Remaining")
        floor = self.spec.min_remaining_api_requests
        if remaining is not None and int(remaining) < floor:
            raise SalesforceLimitError(
                f"Salesforce connection {self.spec.conn_id!r} has {remaining} of {daily.get('Max')} daily API requests "
                f"left, below min_remaining_api_requests={floor}; the write-back to {self.spec.object} did not start. "
                "Wait for the rolling 24-hour limit to recover, or lower the floor if that is safe"
            )
        if records > MAX_RECORDS_PER_DAY:
            raise SalesforceLimitError(
                f"the write-back of {records:,} records to {self.spec.object} exceeds what Bulk API 2.0 takes in a "
                f"rolling 24 hours ({MAX_RECORDS_PER_DAY:,} records uploaded); nothing was sent. Split the load "
                "into smaller intervals (a migration's slice) spread over days"
            )
        batches = limits.get("DailyBulkApiBatches") or {}
        needed = math.ceil(records / BULK_BATCH_RECORDS)
        if batches.get("Remaining") is not None and int(batches["Remaining"]) < needed:
            raise SalesforceLimitError(
                f"the write-back of {records} records to {self.spec.object} needs about {needed} Bulk API batches "
                f"(10,000 records each) but the org has {batches['Remaining']} of {batches.get('Max')} left in its "
                "rolling 24 hours (DailyBulkApiBatches); nothing was sent. Wait, or split the load"
            )
        log.info("Salesforce limits: %s daily API requests left (floor %d)", remaining, floor)
        return limits

    def _ledger_check(self) -> acc.InsertLedger | None:
        if self.partition is None or self.retrying:
            return None
        ledger = acc.InsertLedger(self.partition)
        entry = ledger.read()
        key = acc.manifest_key(self.manifest) if self.manifest is not None else None
        if entry and entry.get("state") == "committed" and entry.get("manifest") == key and not self.force:
            raise _AlreadyLoaded(entry)
        if self.spec.operation == "insert" and entry and not self.force:
            state = entry.get("state")
            jobs = ", ".join(entry.get("jobs", [])) or "none recorded"
            raise InsertAlreadyLoadedError(
                f"an insert into {self.spec.object} for interval {self.partition.window.key} of dataset "
                f"{self.partition.dataset} already {'committed' if state == 'committed' else 'started'} "
                f"(run {entry.get('run_id')}, jobs {jobs}); inserting again would duplicate records in Salesforce. "
                "Check the org (the jobs' successfulResults list what was created); to insert anyway run "
                f"`bulksync sf load {self.partition.tenant}__{self.partition.pipeline} {self.partition.dataset} "
                f"--window {self.partition.window.key} --force`, or use upsert with an external id"
            )
        if self.spec.operation == "insert" and not ledger.claim(force=self.force):
            raise InsertAlreadyLoadedError(
                f"another insert into {self.spec.object} for interval {self.partition.window.key} of dataset "
                f"{self.partition.dataset} is running (or died before recording its jobs); two inserts of one "
                "interval would duplicate records. Wait for it, check the org, then rerun with --force"
            )
        return ledger

    # -- the load -----------------------------------------------------------------------------

    def load(self, batches: BatchSource, schema: pa.Schema, *, window: Window, run_id: str) -> LoadResult:
        started = time.monotonic()
        try:
            ledger = self._ledger_check()
        except _AlreadyLoaded as done:
            log.info("write-back of this staged data to %s already committed: nothing sent", self.spec.object)
            return done.result()
        try:
            plan = self.plan(schema)
            check = Precheck(plan, max_record_bytes=self.spec.max_bytes_per_job - len(header_bytes(plan)))
            for batch in self._check_batches(batches, check):
                check.add(batch)
            invalid = check.finish(lambda: self._keys(batches, plan))
            if check.problems and self.spec.invalid_rows == "fail":
                shown = "\n  ".join(p.describe() for p in check.problems[:20])
                raise DataError(
                    f"{check.count} staged records of {self.spec.object} cannot be written as they are (checked "
                    f"against describe before any upload; nothing was sent):\n  {shown}\nFix them in a transform, "
                    "or set invalid_rows: quarantine to send the others and set these aside"
                )
            self.check_limits(check.rows - int(invalid.sum()))
        except BaseException:
            if ledger is not None and self.spec.operation == "insert":
                ledger.release()  # refused before anything was sent: the rerun after the fix must not be refused
            raise
        if ledger is not None:
            ledger.write({"state": "started", "operation": self.spec.operation, "run_id": run_id, "jobs": []})
        qschema = acc.quarantine_schema(schema)
        writer = self._quarantine_writer(qschema, run_id)
        try:
            self._send(plan, batches, invalid, check, qschema, writer, ledger, run_id)
            if writer is not None:
                writer.commit(window=window.to_json(), extra=self._extra())
        except BaseException:
            if writer is not None:
                writer.abort()
            raise
        result = self._result(plan, started)
        if ledger is not None:
            ledger.write(
                {
                    "state": "committed",
                    "operation": self.spec.operation,
                    "run_id": run_id,
                    "manifest": acc.manifest_key(self.manifest) if self.manifest is not None else None,
                    "jobs": self.tally.jobs,
                    "result": result.to_json(),
                }
            )
        return result

    def _check_batches(self, batches: BatchSource, check: Precheck) -> Iterator[pa.RecordBatch]:
        """The batches the record checks read: only the columns they judge, when the partition is bound."""
        if self.partition is None or self.manifest is None or check.check_sizes:
            yield from batches()
            return
        from bulksync.staging.reader import iter_batches

        yield from iter_batches(self.partition, self.manifest, columns=check.columns())

    def _keys(self, batches: BatchSource, plan: WritePlan) -> list[str]:
        from bulksync.targets.salesforce.encode import text_column

        out: list[str] = []
        for batch in batches():
            out.extend(v or "" for v in text_column(batch.column(str(plan.key_source))).to_pylist())
        return out

    def _quarantine_writer(self, qschema: pa.Schema, run_id: str) -> PartitionWriter | None:
        if self.partition is None:
            return None
        return PartitionWriter(self.partition, acc.QUARANTINE_STAGE, qschema, run_id=run_id)

    def _send(
        self,
        plan: WritePlan,
        batches: BatchSource,
        invalid: np.ndarray,
        check: Precheck,
        qschema: pa.Schema,
        writer: PartitionWriter | None,
        ledger: acc.InsertLedger | None,
        run_id: str,
    ) -> None:
        problems = {p.row: p for p in check.problems}
        pending: set[Future[tuple[_Payload, Results]]] = set()
        retry: list[tuple[pa.Table, np.ndarray]] = []
        with ThreadPoolExecutor(self.spec.max_parallel_jobs, thread_name_prefix="sf-ingest") as pool:

            def drain(limit: int) -> None:
                while len(pending) > limit:
                    done, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for future in done:
                        pending.discard(future)
                        payload, results = future.result()
                        self._account(plan, payload, results, qschema, writer, retry)
                        if ledger is not None:
                            ledger.write(
                                {
                                    "state": "started",
                                    "operation": self.spec.operation,
                                    "run_id": run_id,
                                    "jobs": self.tally.jobs,
                                }
                            )

            def submit(payload: _Payload) -> None:
                drain(self.spec.max_parallel_jobs - 1)
                pending.add(pool.submit(self._run_job, plan, payload))

            number = 0
            for payload in self._payloads(plan, self._valid_rows(batches, invalid, problems, qschema, writer)):
                number += 1
                payload.number = number
                submit(payload)
            drain(0)
            for round_ in range(1, RESUBMIT_ROUNDS + 1):
                if not retry:
                    break
                again, retry[:] = list(retry), []
                count = sum(len(p) for _, p in again)
                log.warning("%s: resubmitting %d unprocessed records (round %d)", self.spec.object, count, round_)
                for payload in self._payloads(plan, iter(again)):
                    number += 1
                    payload.number, payload.resent = number, True
                    submit(payload)
                drain(0)
            if retry:
                for rows, positions in retry:
                    self._quarantine(writer, qschema, rows, positions, "unprocessed", None, None, None)
                    self.tally.unprocessed += len(positions)

    def _valid_rows(
        self,
        batches: BatchSource,
        invalid: np.ndarray,
        problems: dict[int, Any],
        qschema: pa.Schema,
        writer: PartitionWriter | None,
    ) -> Iterator[tuple[pa.Table, np.ndarray]]:
        """The staged rows to send with their positions; invalid ones go to quarantine here."""
        offset = 0
        for batch in batches():
            n = batch.num_rows
            positions = np.arange(offset, offset + n, dtype=np.int64)
            bad = invalid[offset : offset + n] if len(invalid) >= offset + n else np.zeros(n, dtype=bool)
            problem_rows = positions
            if self.row_map is not None:
                positions = self.row_map[offset : offset + n]
            offset += n
            table = pa.Table.from_batches([batch])
            if bad.any():
                rows = np.flatnonzero(bad)
                errors = []
                for pos in problem_rows[rows].tolist():
                    p = problems.get(pos)
                    errors.append(
                        (p.code, p.message, [p.field]) if p else ("INVALID_RECORD", "refused by the describe check", [])
                    )
                    self.tally.error(*errors[-1])
                self._write_quarantine(
                    writer,
                    qschema,
                    table.take(pa.array(rows)),
                    "invalid",
                    errors,
                    [None] * len(rows),
                    None,
                    positions[rows].tolist(),
                )
                self.tally.invalid += len(rows)
                keep = np.flatnonzero(~bad)
                table, positions = table.take(pa.array(keep)), positions[keep]
            if table.num_rows:
                yield table, positions

    def _payloads(self, plan: WritePlan, rows: Iterator[tuple[pa.Table, np.ndarray]]) -> Iterator[_Payload]:
        """Jobs of at most ``max_records_per_job`` records and ``max_bytes_per_job`` bytes."""
        head = header_bytes(plan)
        budget = self.spec.max_bytes_per_job - len(head)
        parts: list[bytes] = []
        tables: list[pa.Table] = []
        positions: list[np.ndarray] = []
        size = count = 0

        def flush() -> _Payload:
            nonlocal parts, tables, positions, size, count
            payload = _Payload(0, pa.concat_tables(tables), np.concatenate(positions), head + b"".join(parts))
            parts, tables, positions, size, count = [], [], [], 0, 0
            return payload

        for table, pos in rows:
            for start in range(0, table.num_rows, SLICE_ROWS):
                stack = [(table.slice(start, SLICE_ROWS), pos[start : start + SLICE_ROWS])]
                while stack:
                    piece, where = stack.pop()
                    data = encode(plan, piece, self.spec.nulls, header=False)
                    if len(data) > budget and piece.num_rows > 1:  # split until a piece fits one job
                        half = piece.num_rows // 2
                        stack += [(piece.slice(half), where[half:]), (piece.slice(0, half), where[:half])]
                        continue
                    if count and size + len(data) > budget:
                        yield flush()
                    room = self.spec.max_records_per_job - count
                    if piece.num_rows > room:  # fill this job to max_records_per_job, the rest goes on
                        stack += [(piece.slice(room), where[room:]), (piece.slice(0, room), where[:room])]
                        continue
                    parts.append(data)
                    tables.append(piece)
                    positions.append(where)
                    size += len(data)
                    count += piece.num_rows
                    if count == self.spec.max_records_per_job:
                        yield flush()
        if count:
            yield flush()

    def _run_job(self, plan: WritePlan, payload: _Payload) -> tuple[_Payload, Results]:
        job = IngestJob(
            self.api, self.spec, plan.external_id, f"{self.spec.object} {self.spec.operation} job {payload.number}"
        )
        try:
            return payload, job.run(payload.data)
        finally:
            self.tally.jobs.extend(job.job_ids)

    def _account(
        self,
        plan: WritePlan,
        payload: _Payload,
        results: Results,
        qschema: pa.Schema,
        writer: PartitionWriter | None,
        retry: list[tuple[pa.Table, np.ndarray]],
    ) -> None:
        """Count a finished job; quarantine its failed records; queue its unprocessed ones for a new job."""
        sent = payload.rows.num_rows
        ok, failed, unprocessed = results.ok, results.failed.num_rows, results.unprocessed.num_rows
        if not payload.resent:
            self.tally.sent += sent
        self.tally.succeeded += ok
        self.tally.created += results.created
        if ok + failed + unprocessed > sent:
            raise SalesforceJobError(
                f"ingest job {results.job_id} reported {ok} successful, {failed} failed and {unprocessed} unprocessed "
                f"records, more than the {sent} sent; check the job in Setup → Bulk Data Load Jobs"
            )
        if not failed and ok == sent:
            return
        index = _RowIndex(plan, payload)
        if failed:
            at = index.match(results.failed)
            errors = [acc.split_error(e) for e in results.failed.column("sf__Error").to_pylist()]
            for code, message, fields in errors:
                self.tally.error(code, message, fields)
            names = results.failed.column_names
            ids = results.failed.column("sf__Id").to_pylist() if "sf__Id" in names else [None] * failed
            positions = payload.positions[at].tolist()
            self._write_quarantine(
                writer, qschema, payload.rows.take(pa.array(at)), "failed", errors, ids, results.job_id, positions
            )
            self.tally.failed += failed
        listed = index.match(results.unprocessed)
        if ok + failed + unprocessed < sent:  # records no result set mentions (the job failed early): unprocessed
            index.match(results.successful)
            left = np.setdiff1d(np.arange(sent, dtype=np.int64), index.used)
        else:
            left = listed
        if len(left):
            retry.append((payload.rows.take(pa.array(left)), payload.positions[left]))
            log.warning(
                "%s: job %s ended %s with %d records unprocessed%s",
                self.spec.object,
                results.job_id,
                results.state,
                len(left),
                f" ({results.error_message})" if results.error_message else "",
            )

    def _quarantine(
        self,
        writer: PartitionWriter | None,
        qschema: pa.Schema,
        rows: pa.Table,
        positions: np.ndarray,
        result: str,
        code: str | None,
        message: str | None,
        job_id: str | None,
    ) -> None:
        n = rows.num_rows
        err: tuple[str, str, list[str]] = (
            code or "UNPROCESSED",
            message or f"the ingest jobs ended before processing the record (resubmitted {RESUBMIT_ROUNDS} times)",
            [],
        )
        for _ in range(n):
            self.tally.error(err[0], err[1], [])
        self._write_quarantine(writer, qschema, rows, result, [err] * n, [None] * n, job_id, positions.tolist())

    def _write_quarantine(
        self,
        writer: PartitionWriter | None,
        qschema: pa.Schema,
        rows: pa.Table,
        result: str,
        errors: list[tuple[str, str, list[str]]],
        ids: list[Any],
        job_id: str | None,
        positions: list[int],
    ) -> None:
        if writer is None or not rows.num_rows:
            return
        writer.write_batch(acc.outcome_batch(rows, qschema, result, errors, ids, job_id, positions))

    def _extra(self) -> dict[str, Any]:
        t = self.tally
        return {
            "object": self.spec.object,
            "operation": self.spec.operation,
            "jobs": t.jobs,
            "succeeded": t.succeeded,
            "failed": t.failed + t.invalid,
            "unprocessed": t.unprocessed,
            "errors_by_code": t.errors_by_code(),
            "api_calls": self.api.calls if "api" in self.__dict__ else 0,
            "reauthentications": self.api.reauthentications if "api" in self.__dict__ else 0,
            "api_usage": self.api.api_usage if "api" in self.__dict__ else None,
        }

    def _result(self, plan: WritePlan, started: float) -> LoadResult:
        t = self.tally
        op = self.spec.operation
        staged = t.sent + t.invalid
        if t.succeeded + t.failed + t.unprocessed != t.sent:
            raise StagingError(
                f"write-back to {self.spec.object}: {t.sent} records sent but Salesforce accounted for "
                f"{t.succeeded} succeeded + {t.failed} failed + {t.unprocessed} unprocessed; check the jobs "
                f"({', '.join(t.jobs)}) in Setup → Bulk Data Load Jobs"
            )
        deletes = op in ("delete", "hardDelete")
        inserted = 0 if deletes else t.created
        updated = 0 if deletes else t.succeeded - t.created
        result = LoadResult(
            table=self.spec.object,
            mode=op,
            rows=staged,
            inserted=inserted,
            updated=updated,
            deleted=t.succeeded if deletes else 0,
            duration_seconds=time.monotonic() - started,
            applied_deletes=t.succeeded if deletes else 0,
            failed=t.failed + t.invalid,
            unprocessed=t.unprocessed,
            extra=self._extra(),
        )
        log.info(
            "wrote %s (%s): %d staged records, %d succeeded (%d created, %d updated), %d failed, %d unprocessed, "
            "%d jobs, %d API calls, %d re-authentications in %.1fs",
            self.spec.object,
            op,
            staged,
            t.succeeded,
            inserted,
            updated,
            t.failed + t.invalid,
            t.unprocessed,
            len(t.jobs),
            self.api.calls,
            self.api.reauthentications,
            result.duration_seconds,
        )
        return result

    def close(self) -> None:
        if "hook" in self.__dict__:
            self.hook.http_session.close()


class _AlreadyLoaded(Exception):
    def __init__(self, entry: dict[str, Any]) -> None:
        super().__init__("already loaded")
        self.entry = entry

    def result(self) -> LoadResult:
        data = dict(self.entry.get("result") or {})
        data["duration_seconds"] = 0.0
        data["added_columns"] = tuple(data.get("added_columns", ()))
        extra = dict(data.get("extra") or {})
        extra["already_loaded"] = True
        extra["api_calls"] = extra["reauthentications"] = 0  # this run's: the no-op asks nothing of the org
        data["extra"] = extra
        return LoadResult(**data)


class _RowIndex:
    """Finds the staged rows of a job's result records (results are not in upload order).

    A result repeats the record's fields as they were uploaded, so the CSV values of the upload,
    parsed the same way, are the key; identical records are interchangeable.
    """

    def __init__(self, plan: WritePlan, payload: _Payload) -> None:
        self.headers = plan.headers
        sent = parse_result(payload.data, "upload")
        cols = [sent.column(h).to_pylist() for h in self.headers]
        self.where: dict[tuple[Any, ...], list[int]] = {}
        for pos, key in enumerate(zip(*cols, strict=True)):
            self.where.setdefault(key, []).append(pos)
        self.used = np.zeros(0, dtype=np.int64)

    def match(self, results: pa.Table) -> np.ndarray:
        if not results.num_rows:
            return np.zeros(0, dtype=np.int64)
        names = {n.lower(): n for n in results.column_names}
        cols = [results.column(names.get(h.lower(), h)).to_pylist() for h in self.headers]
        out = []
        for key in zip(*cols, strict=True):
            rows = self.where.get(key)
            if not rows:
                raise SalesforceJobError(
                    f"a result record {dict(zip(self.headers, key, strict=True))} matches no record of the upload; "
                    "the job's results cannot be accounted for (rerun the load: upsert/update are idempotent)"
                )
            out.append(rows.pop())
        found = np.array(out, dtype=np.int64)
        self.used = np.concatenate([self.used, found])
        return found
