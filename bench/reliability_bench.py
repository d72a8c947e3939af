"""Reliability bench: SIGKILLs at random points of every stage, concurrent runs, a worker lost after the
load's commit; does the target stay exact?

Usage::

    .venv/bin/python bench/reliability_bench.py                      # 30 kills per scenario (~40 minutes)
    .venv/bin/python bench/reliability_bench.py --kills 5 --rows 20000 --scenarios append,merge

Scenarios: the four load modes of a ``sql`` source (SQLite, incremental on a daily window) into
PostgreSQL, each with a quality gate (GX) and a transform step; and file drops (CSV files in a
landing folder, trigger files) with a bounded window and with the full window (no interval).

For each scenario the bench runs, in real processes:

- ``--kills`` trials: a stage among extract, validate, transform and load is picked at random, then a
  point in it (a uniform fraction of that stage's calibrated duration); a child process running the
  whole pipeline is SIGKILLed there. Airflow's recovery is then replayed: the killed task is retried
  and the tasks after it run;
- ``--pairs`` trials of two runs of the interval at once (two processes, one staging root); a run
  that failed is retried once its twin has finished;
- ``--lost`` trials of a worker lost right after the load's commit (the process dies before the task
  is marked done); the load task is retried, then reconcile.

After each trial the whole target table is compared with what it must hold (every row, every
column the test reads), reconcile must pass, and for file drops every dropped file must be
``loaded`` in the file ledger. It prints and writes (``bench/RESULTS-reliability.md``) kills
survived / total (the recovery finished without error) and exact-target checks passed / total.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import logging
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO / "include"))

log = logging.getLogger("reliability")

PG = os.environ.get("BULKSYNC_TEST_PG", "postgresql://postgres@127.0.0.1:5432")
DB = "bulksync_reliability"
DAY = (dt.datetime(2026, 1, 1, tzinfo=dt.UTC), dt.datetime(2026, 1, 2, tzinfo=dt.UTC))
MODES = ("append", "merge", "replace", "interval")
SCENARIOS = (*MODES, "drops_bounded", "drops_full")
STAGES = ("extract", "validate", "transform", "load")
SUITE = {
    "name": "reliability",
    "expectations": [
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "id"}, "meta": {"severity": "error"}},
        {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "id"}, "meta": {"severity": "error"}},
    ],
}

CHILD = textwrap.dedent("""
    import json, os, signal, sys, time, datetime as dt, pathlib
    from bulksync import stages
    from bulksync.spec.loader import load_spec
    from bulksync.staging.partition import Window

    spec_path, window, run_id, marks, options = sys.argv[1:6]
    marks = pathlib.Path(marks)
    spec = load_spec(spec_path)
    ds = spec.datasets[0]
    w = json.loads(window)
    win = Window(*(dt.datetime.fromisoformat(v) if v else None for v in w))
    ctx = stages.RunContext(run_id=run_id, window=win, try_number=1)
    if "die_after_commit" in options:
        def lost(*args, **kwargs):
            os.kill(os.getpid(), signal.SIGKILL)   # the worker dies between the commit and success
        stages._write_report = lost
    times = {}
    for stage in ("extract", "validate", "transform", "load", "reconcile"):
        (marks / f"at-{stage}").write_text(str(time.monotonic()))
        started = time.monotonic()
        getattr(stages, stage)(spec, ds, ctx)
        times[stage] = time.monotonic() - started
    (marks / "times.json").write_text(json.dumps(times))
""")


@dataclass
class Tally:
    """Outcome counts of one scenario and kind of trial."""

    trials: int = 0
    killed: int = 0
    survived: int = 0
    exact: int = 0
    failures: list[str] = field(default_factory=list)


def psql_url(database: str) -> str:
    return f"{PG.replace('postgresql://', 'postgresql+psycopg://')}/{database}"


class World:
    """One scenario's source, landing folder, staging root, spec and target database."""

    def __init__(self, scenario: str, rows: int, root: Path) -> None:
        self.scenario, self.rows, self.root = scenario, rows, root
        self.drops = scenario.startswith("drops")
        self.files = 0
        self.mode = "merge" if self.drops else scenario
        self.window: tuple[dt.datetime | None, dt.datetime | None] = (None, None) if scenario == "drops_full" else DAY
        self.source = root / "source.db"
        self.landing = root / "landing"
        self.staging = root / "staging"
        self.specs = root / "specs"
        self.spec_path = self.specs / "acme__rel.yaml"
        self.expect = root / "expectations"
        for d in (self.specs, self.expect):
            d.mkdir(parents=True, exist_ok=True)
        (self.expect / "reliability.json").write_text(json.dumps(SUITE))
        self._write_spec()
        self.env = {
            "AIRFLOW_CONN_REL_PG": psql_url(DB).replace("+psycopg", ""),
            "AIRFLOW_CONN_REL_SOURCE": f"sqlite:///{self.source}",
            "BULKSYNC_STAGING_ROOT": str(self.staging),
            "BULKSYNC_REPORTS_ROOT": str(root / "reports"),
            "BULKSYNC_EXPECTATIONS_DIR": str(self.expect),
            "BULKSYNC_HOME": str(root),
        }
        os.environ.update(self.env)

    def _write_spec(self) -> None:
        import yaml

        target: dict[str, Any] = {"kind": "postgres", "conn_id": "rel_pg", "table": f"rel_{self.scenario}"}
        target["mode"] = self.mode
        if self.mode == "merge":
            target["keys"] = ["id"]
        if self.mode == "interval":
            target["interval_column"] = "updated_at"
        if self.drops:
            source: dict[str, Any] = {
                "kind": "file_drop",
                "options": {
                    "landing": str(self.landing),
                    "pattern": "orders_*.csv",
                    "arrival": {"mode": "trigger"},
                    "columns": [
                        {"name": "id", "type": "int64", "nullable": False},
                        {"name": "name", "type": "string"},
                        {"name": "updated_at", "type": "string"},
                    ],
                    "primary_key": ["id"],
                },
            }
        else:
            source = {
                "kind": "sql",
                "conn_id": "rel_source",
                "options": {
                    "table": "accounts",
                    "incremental": True,
                    "cursor_field": "updated_at",
                    "batch_size": 20000,
                },
            }
        spec = {
            "tenant": "acme",
            "pipeline": "rel",
            "start_date": "2026-01-01",
            "datasets": [
                {
                    "name": "orders" if self.drops else "accounts",
                    "source": source,
                    "quality": {"suite": "reliability"},
                    "transforms": [{"derive": {"name_upper": "upper(name)"}}],
                    "target": target,
                }
            ],
        }
        self.spec_path.write_text(yaml.safe_dump(spec), encoding="utf-8")

    # -- state ---------------------------------------------------------------------------

    def source_rows(self) -> list[tuple[int, str, str]]:
        base = DAY[0]
        return [
            (i, f"name {i}", (base + dt.timedelta(seconds=(i * 13) % 86_000)).strftime("%Y-%m-%d %H:%M:%S"))
            for i in range(1, self.rows + 1)
        ]

    def reset(self) -> None:
        """A clean slate: the source (or the dropped files), an empty staging, no target table or ledgers."""
        import sqlalchemy as sa

        shutil.rmtree(self.staging, ignore_errors=True)
        shutil.rmtree(self.root / "reports", ignore_errors=True)
        rows = self.source_rows()
        if self.drops:
            shutil.rmtree(self.landing, ignore_errors=True)
            self.landing.mkdir(parents=True)
            per = max(1, len(rows) // 5)
            self.files = len(range(0, len(rows), per))
            for n, start in enumerate(range(0, len(rows), per)):
                chunk = rows[start : start + per]
                text = "id,name,updated_at\n" + "".join(f"{i},{nm},{t}\n" for i, nm, t in chunk)
                (self.landing / f"orders_{n}.csv").write_text(text)
                (self.landing / f"orders_{n}.csv.done").write_text("")
        else:
            self.source.unlink(missing_ok=True)
            con = sqlite3.connect(self.source)
            with con:
                con.execute("CREATE TABLE accounts (id BIGINT NOT NULL, name TEXT, updated_at TIMESTAMP NOT NULL)")
                con.executemany("INSERT INTO accounts VALUES (?, ?, ?)", rows)
            con.close()
        engine = sa.create_engine(psql_url(DB))
        with engine.begin() as conn:
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS rel_{self.scenario}")
            for t in ("bulksync_audit.loads", "bulksync_audit.files", "bulksync_audit.runs"):
                with contextlib.suppress(Exception), conn.begin_nested():
                    conn.exec_driver_sql(f"DELETE FROM {t}")
            if self.mode == "merge" and not self.drops:
                # a table to merge into: a third of the keys with older values
                conn.exec_driver_sql(
                    f"CREATE TABLE rel_{self.scenario} (id bigint PRIMARY KEY, name text, updated_at timestamp, "
                    "name_upper text, _bulksync_run_id text, _bulksync_loaded_at timestamptz)"
                )
                conn.exec_driver_sql(
                    f"INSERT INTO rel_{self.scenario} SELECT g, 'old', '2025-12-31', 'OLD', 'seed', now() "
                    f"FROM generate_series(1, {self.rows // 3}) g"
                )
        engine.dispose()

    def expected(self) -> list[tuple[Any, ...]]:
        return [(i, n, t, n.upper()) for i, n, t in self.source_rows()]

    def table(self) -> list[tuple[Any, ...]]:
        import sqlalchemy as sa

        engine = sa.create_engine(psql_url(DB))
        with engine.connect() as conn:
            rows = conn.exec_driver_sql(
                f"SELECT id, name, updated_at::text, name_upper FROM rel_{self.scenario} ORDER BY id, name"
            ).fetchall()
        engine.dispose()
        return [(int(r[0]), r[1], str(r[2])[:19], r[3]) for r in rows]

    def files_loaded(self) -> bool:
        import sqlalchemy as sa

        if not self.drops:
            return True
        engine = sa.create_engine(psql_url(DB))
        with engine.connect() as conn:
            statuses = [r[0] for r in conn.exec_driver_sql("SELECT status FROM bulksync_audit.files").fetchall()]
        engine.dispose()
        return len(statuses) == self.files and set(statuses) == {"loaded"}

    # -- running -------------------------------------------------------------------------

    def child(self, run_id: str, marks: Path, options: str = "") -> subprocess.Popen[bytes]:
        marks.mkdir(parents=True, exist_ok=True)
        window = json.dumps([w.isoformat() if w else None for w in self.window])
        env = {**os.environ, "PYTHONPATH": str(REPO / "include")}
        log_file = open(marks / "child.log", "wb")  # noqa: SIM115 - closed with the process
        return subprocess.Popen(
            [sys.executable, "-c", CHILD, str(self.spec_path), window, run_id, str(marks), options],
            cwd=REPO,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )

    def run_from(self, stage: str, run_id: str, try_number: int = 2) -> dict[str, Any]:
        """Airflow's recovery: the task of ``stage`` again, then every task after it; the reconcile result."""
        from bulksync import stages
        from bulksync.spec.loader import load_spec
        from bulksync.staging.partition import Window

        spec = load_spec(self.spec_path)
        ds = spec.datasets[0]
        ctx = stages.RunContext(run_id=run_id, window=Window(*self.window), try_number=try_number)
        order = ["extract", "validate", "transform", "load", "reconcile"]
        result: dict[str, Any] = {}
        for s in order[order.index(stage) :]:
            result = getattr(stages, s)(spec, ds, ctx)
        return result

    def check(self, tally: Tally, label: str, recover: Any, *, killed: bool = True) -> None:
        """Recover, then compare the target; a kill is survived when the recovery finished without error."""
        try:
            rec = recover()
        except Exception as exc:  # noqa: BLE001 - counted and reported
            tally.failures.append(f"{label}: recovery failed: {type(exc).__name__}: {str(exc)[:300]}")
            rec = None
        else:
            tally.survived += int(killed)
        got = self.table()
        ok = got == self.expected() and self.files_loaded() and (rec is None or rec.get("status") == "success")
        if ok and rec is not None:
            tally.exact += 1
        elif rec is not None:
            want = self.expected()
            tally.failures.append(
                f"{label}: target not exact ({len(got)} rows, {len(set(r[0] for r in got))} distinct ids; "
                f"want {len(want)}; files loaded: {self.files_loaded()})"
            )


def calibrate(world: World) -> dict[str, float]:
    world.reset()
    marks = world.root / "calibrate"
    proc = world.child("calibrate", marks)
    if proc.wait(timeout=900) != 0:
        raise SystemExit(f"calibration run failed:\n{(marks / 'child.log').read_text()[-3000:]}")
    times = json.loads((marks / "times.json").read_text())
    log.info("%s: stage times %s", world.scenario, {k: round(v, 2) for k, v in times.items()})
    return {k: float(v) for k, v in times.items()}


def wait_for(path: Path, proc: subprocess.Popen[bytes], timeout: float = 300) -> bool:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def kill_trials(world: World, times: dict[str, float], n: int, rng: random.Random) -> Tally:
    tally = Tally()
    for i in range(n):
        world.reset()
        stage = rng.choice(STAGES)
        delay = rng.random() * times[stage]
        marks = world.root / f"kill-{i}"
        shutil.rmtree(marks, ignore_errors=True)
        run_id = f"scheduled__kill_{i}"
        proc = world.child(run_id, marks)
        tally.trials += 1
        reached = wait_for(marks / f"at-{stage}", proc)
        if reached:
            time.sleep(delay)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            tally.killed += 1
            reached_stages = [s for s in (*STAGES, "reconcile") if (marks / f"at-{s}").exists()]
            at = reached_stages[-1] if reached_stages else "extract"
            world.check(tally, f"kill {i} in {at} (+{delay:.2f}s)", lambda a=at, r=run_id: world.run_from(a, r))
        else:
            # the run ended before its kill point: not a kill, but its target is checked all the same
            if proc.returncode:
                why = _last_error(marks / "child.log")
                tally.failures.append(f"kill {i}: the run failed (exit {proc.returncode}) before its kill point: {why}")
            world.check(
                tally, f"kill {i} (finished first)", lambda r=run_id: world.run_from("extract", r), killed=False
            )
        log.info("%s kill %d/%d at %s +%.2fs: exact %d/%d", world.scenario, i + 1, n, stage, delay, tally.exact, i + 1)
    return tally


def pair_trials(world: World, n: int) -> Tally:
    tally = Tally()
    for i in range(n):
        world.reset()
        procs = [world.child(f"manual__pair_{i}_{j}", world.root / f"pair-{i}-{j}") for j in range(2)]
        codes = [p.wait(timeout=900) for p in procs]
        tally.trials += 1

        def recover(codes: list[int] = codes, i: int = i) -> dict[str, Any]:
            result: dict[str, Any] = {"status": "success"}
            for j, code in enumerate(codes):
                if code != 0:  # Airflow retries the failed run's tasks once the other one is done
                    result = world.run_from("extract", f"manual__pair_{i}_{j}")
            return result

        why = [_last_error(world.root / f"pair-{i}-{j}" / "child.log") for j, code in enumerate(codes) if code]
        world.check(tally, f"pair {i} (exit codes {codes}{'; ' + ' / '.join(why) if why else ''})", recover)
        log.info("%s pair %d/%d: exit codes %s, exact %d/%d", world.scenario, i + 1, n, codes, tally.exact, i + 1)
    return tally


def _last_error(log_path: Path) -> str:
    """The last exception line of a child's log (what made the run fail)."""
    lines = [ln for ln in log_path.read_text(errors="replace").splitlines() if "Error" in ln or "error" in ln]
    return lines[-1].strip()[:200] if lines else "no error in the log"


def lost_trials(world: World, n: int) -> Tally:
    tally = Tally()
    for i in range(n):
        world.reset()
        proc = world.child(f"scheduled__lost_{i}", world.root / f"lost-{i}", "die_after_commit")
        proc.wait(timeout=900)
        tally.trials += 1
        tally.killed += int(proc.returncode == -signal.SIGKILL)
        world.check(tally, f"lost {i}", lambda i=i: world.run_from("load", f"scheduled__lost_{i}"))
    return tally


def render(results: dict[str, dict[str, Tally]], args: argparse.Namespace, started: float) -> str:
    import platform

    load = os.getloadavg()
    lines = [
        "# bulksync reliability bench",
        "",
        f"Run on {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC with `bench/reliability_bench.py "
        f"--kills {args.kills} --pairs {args.pairs} --lost {args.lost} --rows {args.rows} --seed {args.seed}` "
        f"({(time.monotonic() - started) / 60:.0f} minutes; {os.cpu_count()} CPUs, {platform.platform()}; load "
        f"average at the end {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}).",
        "",
        "| scenario | SIGKILLs survived | exact after kill trials | concurrent runs exact | "
        "worker lost after commit exact |",
        "|---|---|---|---|---|",
    ]
    for scenario, r in results.items():
        k, p, lost = r["kills"], r["pairs"], r["lost"]
        lines.append(
            f"| {scenario} | {k.survived}/{k.killed} | {k.exact}/{k.trials} | {p.exact}/{p.trials} | "
            f"{lost.exact}/{lost.trials} |"
        )
    kills_total = sum(r["kills"].killed for r in results.values())
    survived = sum(r["kills"].survived for r in results.values())
    exact = sum(t.exact for r in results.values() for t in r.values())
    checks = sum(t.trials for r in results.values() for t in r.values())
    lines += [
        "",
        f"**Kills survived: {survived}/{kills_total}. Exact-target checks passed: {exact}/{checks}.**",
        "",
        "Each check compares every row of the target table with the source, requires reconcile to pass and, for "
        "file drops, every dropped file to be `loaded` in the file ledger.",
    ]
    fails = [(s, f) for s, r in results.items() for t in r.values() for f in t.failures]
    if fails:
        lines += ["", "## Failures", ""] + [f"- {s}: {f}" for s, f in fails[:60]]
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def database() -> Iterator[None]:
    import sqlalchemy as sa

    admin = sa.create_engine(psql_url("postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
        conn.exec_driver_sql(f"CREATE DATABASE {DB}")
    try:
        yield
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
        admin.dispose()


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kills", type=int, default=30, help="SIGKILL trials per scenario (default 30)")
    p.add_argument("--pairs", type=int, default=2, help="trials of two concurrent runs per scenario (default 2)")
    p.add_argument("--lost", type=int, default=1, help="trials of a worker lost after the commit (default 1)")
    p.add_argument("--rows", type=int, default=60_000, help="rows of the interval (default 60,000)")
    p.add_argument("--scenarios", default=",".join(SCENARIOS), help=f"comma-separated, of {', '.join(SCENARIOS)}")
    p.add_argument("--seed", type=int, default=20261202)
    p.add_argument("--output", type=Path, default=BENCH / "RESULTS-reliability.md")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("bulksync", "great_expectations", "airflow", "sqlalchemy"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    rng = random.Random(args.seed)
    started = time.monotonic()
    results: dict[str, dict[str, Tally]] = {}
    home = Path(tempfile.mkdtemp(prefix="bulksync-reliability-"))
    os.environ.setdefault("AIRFLOW_HOME", str(home / "airflow"))
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    try:
        with database():
            for scenario in [s.strip() for s in args.scenarios.split(",") if s.strip()]:
                if scenario not in SCENARIOS:
                    p.error(f"unknown scenario {scenario!r}")
                world = World(scenario, args.rows, home / scenario)
                times = calibrate(world)
                results[scenario] = {
                    "kills": kill_trials(world, times, args.kills, rng),
                    "pairs": pair_trials(world, args.pairs),
                    "lost": lost_trials(world, args.lost),
                }
                args.output.write_text(render(results, args, started), encoding="utf-8")
    finally:
        shutil.rmtree(home, ignore_errors=True)
    text = render(results, args, started)
    args.output.write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
