"""Staging retention: which committed partitions may go, and ``bulksync staging prune``.

Every run leaves a partition ``{root}/{tenant}/{pipeline}/{dataset}/{interval}/``; without a policy
staging grows forever. A spec's ``staging.retention`` (default: keep the 7 newest partitions of a
dataset and everything committed in the last 30 days) decides what :func:`plan_prune` may remove.
Whatever the policy says, a prune never removes

- the latest committed partition of a dataset (the newest window, and the most recently committed
  one when that is another): it is what a rerun or a downstream reader needs;
- a partition a running task uses: every bulksync stage task marks the partition it works on with
  an in-use file (:func:`in_use`) beside it for its duration; a marker of a live process on this
  host, or younger than the pipeline's task timeout for another host, keeps the partition;
- a folder without a manifest (an extract being written, or not bulksync's).

Only local staging roots are pruned (an object-store root says so and removes nothing).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import shutil
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bulksync.errors import ConfigurationError
from bulksync.spec.models import PipelineSpec

log = logging.getLogger(__name__)

MANIFEST = "_manifest.json"
IN_USE = ".in_use"


@dataclass
class Decision:
    """What a prune does with one partition, and why."""

    dataset: str
    interval: str
    path: Path
    committed_at: dt.datetime | None
    bytes: int
    remove: bool
    reason: str


@dataclass
class PrunePlan:
    """Every partition of a pipeline's datasets with its decision."""

    pipeline: str
    decisions: list[Decision] = field(default_factory=list)

    @property
    def removed(self) -> list[Decision]:
        return [d for d in self.decisions if d.remove]

    @property
    def kept(self) -> list[Decision]:
        return [d for d in self.decisions if not d.remove]


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _committed_at(part: Path) -> dt.datetime:
    try:
        created = json.loads((part / MANIFEST).read_text()).get("created_at")
        if created:
            value = dt.datetime.fromisoformat(str(created).replace("Z", "+00:00"))
            return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    except (OSError, ValueError):
        pass
    return dt.datetime.fromtimestamp((part / MANIFEST).stat().st_mtime, dt.UTC)


def _marker_dir(dataset_dir: Path) -> Path:
    return dataset_dir / IN_USE


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def users(dataset_dir: Path, interval: str, max_age_seconds: float) -> list[str]:
    """The live in-use markers of a partition (``host pid run_id``); stale ones are removed."""
    folder = _marker_dir(dataset_dir)
    live = []
    for marker in sorted(folder.glob(f"{interval}__*.json")) if folder.is_dir() else []:
        try:
            info = json.loads(marker.read_text())
            age = time.time() - marker.stat().st_mtime
        except (OSError, ValueError):
            continue
        same_host = info.get("host") == socket.gethostname()
        alive = _pid_alive(int(info.get("pid", 0))) if same_host else age < max_age_seconds
        if alive:
            live.append(f"{info.get('host')} pid {info.get('pid')} run {info.get('run_id')}")
        else:
            marker.unlink(missing_ok=True)
    return live


@contextlib.contextmanager
def in_use(spec: PipelineSpec, dataset: str, interval: str, run_id: str) -> Iterator[None]:
    """Mark a local partition as used by this process while the block runs (prune keeps it)."""
    from bulksync.settings import staging_root

    root = staging_root(spec.staging.root)
    if "://" in root:
        yield
        return
    folder = _marker_dir(Path(root) / spec.tenant / spec.pipeline / dataset)
    marker = folder / f"{interval}__{socket.gethostname()}__{os.getpid()}.json"
    for attempt in range(2):  # another task may remove the empty folder between mkdir and write
        try:
            folder.mkdir(parents=True, exist_ok=True)
            marker.write_text(json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "run_id": run_id}))
            break
        except OSError as exc:  # a read-only or missing root: the stage reports that itself
            if attempt:
                log.debug("cannot mark %s in use: %s", interval, exc)
    try:
        yield
    finally:
        marker.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            folder.rmdir()  # only when no other task marks a partition of the dataset


def plan_prune(
    spec: PipelineSpec,
    *,
    now: dt.datetime | None = None,
    keep_last: int | None = None,
    keep_days: float | None = None,
) -> PrunePlan:
    """Decide, per committed partition of the pipeline, whether a prune removes it.

    Args:
        spec: the pipeline.
        now: the time to measure ages from (default: now).
        keep_last: override the spec's ``staging.retention.keep_last``.
        keep_days: override the spec's ``staging.retention.keep_days``.

    Raises:
        ConfigurationError: the staging root is an object store.
    """
    from bulksync.settings import staging_root

    root = staging_root(spec.staging.root)
    if "://" in root:
        raise ConfigurationError(
            f"staging root {root} of {spec.dag_id} is an object store: prune it with the store's lifecycle rules"
        )
    policy = spec.staging.retention
    last = policy.keep_last if keep_last is None else keep_last
    days = policy.keep_days if keep_days is None else keep_days
    if last < 1:
        raise ConfigurationError("keep_last must be at least 1: the latest committed partition is always kept")
    now = now or dt.datetime.now(dt.UTC)
    in_use_for = spec.tasks.execution_timeout_minutes * 60
    plan = PrunePlan(spec.dag_id)
    for ds in spec.datasets:
        dataset_dir = Path(root) / spec.tenant / spec.pipeline / ds.name
        parts = (
            [p for p in dataset_dir.iterdir() if p.is_dir() and not p.name.startswith(".")]
            if dataset_dir.is_dir()
            else []
        )
        committed = [p for p in parts if (p / MANIFEST).is_file()]
        when = {p: _committed_at(p) for p in committed}
        by_window = sorted(committed, key=lambda p: p.name)  # interval keys sort by time; "full" after digits
        newest_window = [p for p in by_window if p.name != "full"][-1:] or by_window[-1:]
        newest_commit = max(committed, key=lambda p: when[p]) if committed else None
        recent = sorted(committed, key=lambda p: when[p], reverse=True)[:last]
        for p in sorted(parts, key=lambda p: p.name):
            if p not in when:
                plan.decisions.append(Decision(ds.name, p.name, p, None, _size(p), False, "not committed"))
                continue
            using = users(dataset_dir, p.name, in_use_for)
            if p in newest_window or p == newest_commit:
                reason, remove = "latest committed partition", False
            elif using:
                reason, remove = f"in use by {', '.join(using)}", False
            elif p in recent:
                reason, remove = f"among the {last} newest", False
            elif days is not None and now - when[p] < dt.timedelta(days=days):
                reason, remove = f"committed less than {days:g} days ago", False
            else:
                reason, remove = f"older than {days:g} days and not among the {last} newest", True
            plan.decisions.append(Decision(ds.name, p.name, p, when[p], _size(p), remove, reason))
    return plan


def prune(plan: PrunePlan, spec: PipelineSpec) -> list[Decision]:
    """Remove the partitions the plan marks (each checked again for users just before); return them."""
    done = []
    in_use_for = spec.tasks.execution_timeout_minutes * 60
    for d in plan.removed:
        if users(d.path.parent, d.interval, in_use_for):
            d.remove, d.reason = False, "in use (started while pruning)"
            continue
        trash = d.path.parent / f".{d.path.name}.pruning"
        os.rename(d.path, trash)  # one rename: readers see the whole partition or none of it
        shutil.rmtree(trash, ignore_errors=True)
        done.append(d)
        log.info("pruned %s/%s %s (%d bytes): %s", plan.pipeline, d.dataset, d.interval, d.bytes, d.reason)
    return done


def summary(decisions: list[Decision]) -> dict[str, Any]:
    """Counts and bytes of a list of decisions."""
    return {"partitions": len(decisions), "bytes": sum(d.bytes for d in decisions)}
