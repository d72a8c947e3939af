"""SQLite locking with real processes and real files: readers take no write lock, writers take turns.

:mod:`bulksync.hooks.sql` opens the ``sql`` source's SQLite connections read-only (plain deferred
``BEGIN``: a shared lock, or a snapshot in WAL mode) and every writer's in ``BEGIN IMMEDIATE`` in WAL
mode with a busy timeout. Before that (issue 14 item 3) two mapped extract chunks reading one file
while something wrote it failed with "database is locked"; and two loads of one window at once
(issue 12 item 3) must run one after the other, the second seeing the first's commit.

Each test runs one side in this process (a thread) and the other in a child process. Both wrap
functions (the child in itself, this process through ``monkeypatch``) only to pause at a chosen
point or to record when a transaction asks for and gets the write lock; the code under test is
unchanged.
"""

from __future__ import annotations

import atexit
import datetime as dt
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from bulksync import stages
from bulksync.hooks.sql import SqlAlchemyHook
from bulksync.sources.sql import SqlSource
from bulksync.spec.loader import load_spec
from bulksync.staging.partition import Window
from bulksync.staging.reader import iter_batches, read_manifest
from tests.loadkit import (
    CHILD,
    DAY1,
    ROOT,
    in_window,
    source_rows,
    spec_dict,
    target_rows,
    write_source,
    write_spec,
)

N = 1200  # rows of the window (three load batches of 500; extract batches of 100)
DEADLINE_S = 20.0  # far below SQLITE_BUSY_MS (30 s): a reader stuck behind the writer fails here, not there


def _spawn(code: str, *args: str, **env_vars: str) -> subprocess.Popen[bytes]:
    path = os.pathsep.join(p for p in (os.environ.get("PYTHONPATH"), str(ROOT)) if p)
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": path, **env_vars},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )

    def reap() -> None:  # a child a failed test left paused must not outlive the test run
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)

    atexit.register(reap)
    return proc


def _output(proc: subprocess.Popen[bytes]) -> str:
    if proc.poll() is None:
        return "(still running)"
    assert proc.stdout is not None
    return proc.stdout.read().decode(errors="replace")


def _wait_for(path: Path, *others: subprocess.Popen[bytes] | Future[Any], timeout: float = DEADLINE_S) -> None:
    """Wait for the flag file ``path``; fail when one of ``others`` (processes, threads) ends first."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        for p in others:
            if isinstance(p, Future):
                assert not p.done(), f"a thread ended before {path.name}: {p.exception()!r}"
            else:
                assert p.poll() is None, f"a child exited ({p.returncode}) before {path.name}:\n{_output(p)}"
        assert time.monotonic() < deadline, f"no {path.name} after {timeout:.0f}s"
        time.sleep(0.02)


def _finish(proc: subprocess.Popen[bytes], timeout: float = 60) -> int:
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=30)
        raise AssertionError(f"child did not finish:\n{_output(proc)}") from None


def _journal_mode(path: Path) -> str:
    con = sqlite3.connect(path)
    try:
        return str(con.execute("PRAGMA journal_mode").fetchone()[0])
    finally:
        con.close()


def _write_lock_free(path: Path) -> bool:
    """Whether a writer could start now: ``BEGIN IMMEDIATE`` without waiting (rolled back at once)."""
    con = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        con.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        assert "database is locked" in str(exc)
        return False
    else:
        con.execute("ROLLBACK")
        return True
    finally:
        con.close()


# -- 1. readers take no write lock -------------------------------------------------------------

# holds the write lock of a SQLite file (BEGIN IMMEDIATE, uncommitted inserts) until told to let go
WRITER = textwrap.dedent("""
    import pathlib, sqlite3, sys, time
    path, flags = sys.argv[1], pathlib.Path(sys.argv[2])
    con = sqlite3.connect(path, isolation_level=None, timeout=0)
    con.execute("BEGIN IMMEDIATE")
    con.executemany("INSERT INTO accounts VALUES (?, ?, ?)",
                    [(90_000 + i, f"uncommitted {i}", "2026-01-01 12:00:00") for i in range(50)])
    con.execute("UPDATE accounts SET name = 'uncommitted edit' WHERE id <= 10")
    (flags / "holding").write_text("holding")
    deadline = time.monotonic() + 120
    while not (flags / "release").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    con.execute("ROLLBACK")
    con.close()
""")

# extracts one chunk of the plan in its own process (a mapped extract task); see paused_reads
EXTRACT_CHUNK = textwrap.dedent("""
    import datetime as dt, pathlib, sys
    from bulksync import stages
    from bulksync.sources.sql import SqlSource
    from bulksync.spec.loader import load_spec
    from bulksync.staging.partition import Window
    from tests.integration.test_sqlite_locking import paused_reads

    spec_path, chunk, start, end, run_id, flags = sys.argv[1:7]
    SqlSource.read = paused_reads(SqlSource.read, pathlib.Path(flags), f"reading-{chunk}")
    spec = load_spec(spec_path)
    window = Window(dt.datetime.fromisoformat(start), dt.datetime.fromisoformat(end))
    stages.extract(spec, spec.datasets[0], stages.RunContext(run_id=run_id, window=window, try_number=1),
                   chunk_index=int(chunk))
""")


def paused_reads(original: Callable[..., Iterator[Any]], flags: Path, name: str) -> Callable[..., Iterator[Any]]:
    """``SqlSource.read`` that, after its first batch, flags ``name`` and waits (its statement still
    open, rows left to read) until ``flags/go`` exists: the chunks provably read the file at once."""

    def read(self: Any) -> Iterator[Any]:
        for i, batch in enumerate(original(self)):
            yield batch
            if i == 0:
                (flags / name).write_text("reading")
                deadline = time.monotonic() + 60
                while not (flags / "go").exists() and time.monotonic() < deadline:
                    time.sleep(0.02)

    return read


def _staged_rows(spec: Any, window: Window) -> list[tuple[Any, ...]]:
    """Every row of the committed extract as (id, name, updated_at text), sorted."""
    ds = spec.datasets[0]
    part = stages.partition_for(spec, ds, window)
    manifest = read_manifest(part, "extract")
    rows = []
    for batch in iter_batches(part, manifest):
        for r in batch.to_pylist():
            ts = r["updated_at"]
            text = ts.strftime("%Y-%m-%d %H:%M:%S") if isinstance(ts, dt.datetime) else str(ts)[:19]
            rows.append((int(r["id"]), r["name"], text))
    return sorted(rows, key=lambda r: (r[0], r[1]))


@pytest.mark.parametrize("journal", ["wal", "delete"])
def test_chunks_read_a_file_at_once_while_another_process_writes_it(
    env: pytest.MonkeyPatch, tmp_path: Path, journal: str
) -> None:
    source = tmp_path / "source.db"
    committed = source_rows(N, 1) + source_rows(40, 2, start_id=5000)  # day 2: outside the window
    write_source(source, committed)  # written by another application: rollback journal ("delete")
    env.setenv("AIRFLOW_CONN_TEST_SOURCE", f"sqlite:///{source}")
    assert _journal_mode(source) == "delete"
    if journal == "wal":  # the file bulksync loads too: its first write engine turns WAL on
        hook = SqlAlchemyHook("test_source")
        with hook.connect():
            pass
        hook.engine.dispose()
    assert _journal_mode(source) == journal
    env.setenv("AIRFLOW_CONN_TEST_SQLITE", f"sqlite:///{tmp_path / 'warehouse.db'}")
    data = spec_dict("sqlite", "test_sqlite", "append")
    data["datasets"][0]["source"]["options"].update(batch_size=100, chunking={"column": "id", "chunks": 2})
    (tmp_path / "specs").mkdir()
    spec_path = write_spec(tmp_path / "specs", data)
    spec = load_spec(spec_path)
    window = Window(*DAY1)
    ctx = stages.RunContext(run_id="scheduled__2026-01-01", window=window, try_number=1)

    flags = tmp_path / "flags"
    flags.mkdir()
    writer = _spawn(WRITER, str(source), str(flags))
    _wait_for(flags / "holding", writer)
    assert not _write_lock_free(source)

    chunks = stages.plan_extract(spec, spec.datasets[0], ctx)  # reads too, beside the writer
    assert len(chunks) == 2
    # chunk 1 in a child process, chunk 0 in this one (a thread): two processes reading at once
    args = (DAY1[0].isoformat(), DAY1[1].isoformat(), ctx.run_id, str(flags))
    reader = _spawn(EXTRACT_CHUNK, str(spec_path), "1", *args)
    env.setattr(SqlSource, "read", paused_reads(SqlSource.read, flags, "reading-0"))
    with ThreadPoolExecutor(1) as pool:
        here = pool.submit(stages.extract, spec, spec.datasets[0], ctx, chunk_index=0)
        try:
            for i in range(2):  # both mid-read at once, while the writer still holds the write lock
                _wait_for(flags / f"reading-{i}", reader, writer, here)
            assert not _write_lock_free(source)
        finally:
            (flags / "go").write_text("go")
        assert here.result(timeout=60).rows > 100
    assert _finish(reader) == 0, _output(reader)
    assert writer.poll() is None and not _write_lock_free(source)  # the write transaction outlived both reads
    (flags / "release").write_text("release")
    assert _finish(writer) == 0, _output(writer)

    manifest = stages.commit_extract(spec, spec.datasets[0], ctx)
    assert (manifest.extra["chunks"], manifest.rows, manifest.source_count) == (2, N, N)
    assert min(manifest.extra["chunk_rows"]) > 100  # each chunk had a batch left to read when it paused
    assert _staged_rows(spec, window) == in_window(committed, DAY1)  # every committed row, nothing uncommitted
    assert _journal_mode(source) == journal  # a reader leaves the file's journal mode alone


# -- 2. two loads of one window at once take turns ---------------------------------------------

# records each writer transaction of the child's bulksync engines: "wants" right before its
# BEGIN IMMEDIATE, "got" once SQLite granted it (listeners around the hook's own "begin" listener)
# (and, given a gate file, holds the load step back until the file exists)
OBSERVE = textwrap.dedent("""
    import os as _os, pathlib as _pl, sys as _sys, time as _time
    from sqlalchemy import event as _event
    import bulksync.hooks.sql as _hooks
    from bulksync import stages as _stages

    _log = _pl.Path(_sys.argv[6]) / "begins.log"
    _original = _hooks._sqlite_transactions

    def _note(what):
        with _log.open("a") as f:
            f.write(f"{what} {_time.time_ns()}\\n")

    def _observed(engine, read_only):
        if not read_only:
            _event.listen(engine, "begin", lambda conn: _note("wants"))
        _original(engine, read_only)
        if not read_only:
            _event.listen(engine, "begin", lambda conn: _note("got"))

    _hooks._sqlite_transactions = _observed

    _gate = _os.environ.get("TEST_LOAD_GATE")
    if _gate:
        _load = _stages.load

        def _gated(*args, **kwargs):
            _pl.Path(_sys.argv[6], "at_gate").write_text("waiting")
            _end = _time.monotonic() + 120
            while not _pl.Path(_gate).exists() and _time.monotonic() < _end:
                _time.sleep(0.02)
            return _load(*args, **kwargs)

        _stages.load = _gated
""")


def _begins(flags: Path) -> list[tuple[str, int]]:
    log = flags / "begins.log"
    if not log.exists():
        return []
    return [(w, int(t)) for w, t in (line.split() for line in log.read_text().splitlines() if line.strip())]


def _load_child(
    spec: Path, steps: str, run_id: str, flags: Path, staging: Path, gate: Path | None = None
) -> subprocess.Popen[bytes]:
    flags.mkdir(parents=True)
    args = (str(spec), steps, DAY1[0].isoformat(), DAY1[1].isoformat(), run_id, str(flags))
    return _spawn(OBSERVE + CHILD, *args, BULKSYNC_STAGING_ROOT=str(staging), TEST_LOAD_GATE=str(gate or ""))


def _paused_batches(original: Callable[..., Iterator[Any]], flags: Path) -> Callable[..., Iterator[Any]]:
    """``stages.iter_batches`` that, after the first batch (inside the load's transaction), flags
    ``in_copy`` and waits until ``flags/go`` exists (as tests/loadkit.py's ``pause_in_copy``)."""

    def batches(*args: Any, **kwargs: Any) -> Iterator[Any]:
        for i, batch in enumerate(original(*args, **kwargs)):
            yield batch
            if i == 0:
                (flags / "in_copy").write_text("reached")
                deadline = time.monotonic() + 60
                while not (flags / "go").exists() and time.monotonic() < deadline:
                    time.sleep(0.02)

    return batches


def _load_result(flags: Path) -> dict[str, Any]:
    import json

    return dict(json.loads((flags / "result.json").read_text()))


def test_two_loads_of_one_window_at_once_take_turns(env: pytest.MonkeyPatch, sqlite_conn: Path, tmp_path: Path) -> None:
    rows = source_rows(N, 1)
    source = tmp_path / "source.db"
    write_source(source, rows)
    env.setenv("AIRFLOW_CONN_TEST_SOURCE", f"sqlite:///{source}")
    (tmp_path / "specs").mkdir()
    spec = write_spec(tmp_path / "specs", spec_dict("sqlite", "test_sqlite", "interval"))
    url = f"sqlite:///{sqlite_conn}"

    # two workers, each with its own extract of the window (own staging): B in a child process,
    # its load held back until A holds the lock; A in this process, its load in a thread
    a_flags, b_flags, gate = tmp_path / "a", tmp_path / "b", tmp_path / "start_b"
    b = _load_child(spec, "extract,transform,load", "manual__2", b_flags, tmp_path / "sb", gate)
    a_spec = load_spec(spec)
    ds = a_spec.datasets[0]
    a_ctx = stages.RunContext(run_id="manual__1", window=Window(*DAY1), try_number=1)
    stages.extract(a_spec, ds, a_ctx)
    stages.transform(a_spec, ds, a_ctx)
    a_flags.mkdir()
    env.setattr(stages, "iter_batches", _paused_batches(stages.iter_batches, a_flags))
    with ThreadPoolExecutor(1) as pool:
        a = pool.submit(stages.load, a_spec, ds, a_ctx)
        try:
            # A: held inside its load transaction, its first batch of 500 inserted and not committed
            _wait_for(a_flags / "in_copy", b, a, timeout=60)
            assert not _write_lock_free(sqlite_conn)
            assert not _has_table(sqlite_conn) or target_rows(url) == []  # a reader sees nothing of A yet

            # B: its load asks for the write lock and waits for A
            _wait_for(b_flags / "at_gate", b, a, timeout=60)
            assert _begins(b_flags) == []  # B has not written the target before its load
            gate.write_text("go")
            deadline = time.monotonic() + 60
            while not _begins(b_flags):
                assert b.poll() is None, "B ended before its load began: " + _output(b)
                assert time.monotonic() < deadline, "B's load never asked for the write lock"
                time.sleep(0.02)
            time.sleep(0.5)  # not needed for the verdict: B stays blocked however long A holds the lock
            assert [w for w, _ in _begins(b_flags)] == ["wants"], f"B got the lock beside A: {_begins(b_flags)}"
            assert b.poll() is None, "B did not wait for A: " + _output(b)
            assert not (b_flags / "result.json").exists() and not a.done()
            assert not _write_lock_free(sqlite_conn)  # still A's
        finally:
            released = time.time_ns()
            (a_flags / "go").write_text("go")
        first = a.result(timeout=60).to_json()
    assert _finish(b) == 0, _output(b)

    begins = _begins(b_flags)
    assert [w for w, _ in begins] == ["wants", "got"] * (len(begins) // 2)  # every one was granted in the end
    assert begins[1][1] > released  # B's first write transaction began only after A let go
    second = _load_result(b_flags)
    assert first["inserted"] == N and first["already_loaded"] is False
    assert (second["deleted"], second["inserted"]) == (N, N)  # B saw A's commit and replaced its rows
    assert second["replaced_load_id"] == first["load_id"]
    assert target_rows(url) == in_window(rows, DAY1)  # the window's rows exactly once
    assert _journal_mode(sqlite_conn) == "wal"  # the hook's promise for writers


def _has_table(path: Path, table: str = "accounts") -> bool:
    con = sqlite3.connect(path)
    try:
        return con.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (table,)).fetchone() is not None
    finally:
        con.close()
