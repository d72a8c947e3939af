"""Ad-hoc migrations: a pipeline's datasets over a date range (or their whole history) into a target.

The ``bulksync__migration`` DAG (``dags/migration.py``) is triggered from the Airflow UI form; its
Params become a :class:`MigrationRequest`. :func:`plan` checks them against the specs and cuts the
range into slices (one mapped task each); :func:`run_slice` runs the same extract, validate,
transform, load and reconcile code as the nightly DAG on one slice. A slice is idempotent: rerun
alone, it replaces its own staging partition and its own rows in the target.

- ``merge``: each slice upserts on the target's keys (or the source's primary key).
- ``replace``: the target is emptied once (:func:`prepare_targets`), then each slice deletes and
  re-inserts its own window of the source's cursor column (``interval`` mode); a dataset migrated
  in one slice is simply replaced.
- ``dry_run``: each slice counts the source rows of its window; nothing is staged or loaded. A
  Salesforce target's dry run also stages the slice and checks it against the org's describe
  (spec, then every record) without sending anything (Bulk API 2.0 has no validate-only mode).
- Salesforce targets keep their spec's operation (upsert/update/insert …): ``merge`` only;
  ``replace`` and table overrides do not apply to an org.

Only incremental sources (``incremental: true`` with a ``cursor_field``) can be cut by date; other
datasets are migrated in one full slice, and the plan says so.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from bulksync.errors import TerminalError
from bulksync.spec.loader import load_specs
from bulksync.spec.models import DatasetSpec, PipelineSpec, StagingSpec
from bulksync.spec.targets import SqlTargetSpec
from bulksync.staging.partition import Window

log = logging.getLogger(__name__)

SLICES = ("day", "week", "month", "year")
MAX_SLICES = 1000
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class MigrationParamsError(TerminalError):
    """The migration's Params are wrong; the message names the Param and what to do."""


@dataclass(frozen=True)
class MigrationRequest:
    """What the UI form asks for (the DAG's Params)."""

    pipeline: str
    datasets: list[str] = field(default_factory=list)
    from_date: str | None = None
    to_date: str | None = None
    full_history: bool = False
    slice: str = "month"
    load_mode: Literal["merge", "replace"] = "merge"
    target_table: str | None = None
    target_suffix: str | None = None
    dry_run: bool = False

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> MigrationRequest:
        """Build a request from Airflow Params (unknown keys ignored, empty strings as None)."""

        def opt(name: str) -> Any:
            value = params.get(name)
            return None if value in ("", None) else value

        return cls(
            pipeline=str(params.get("pipeline") or ""),
            datasets=[str(d) for d in (params.get("datasets") or [])],
            from_date=opt("from_date"),
            to_date=opt("to_date"),
            full_history=bool(params.get("full_history", False)),
            slice=str(params.get("slice") or "month"),
            load_mode=params.get("load_mode") or "merge",
            target_table=opt("target_table"),
            target_suffix=opt("target_suffix"),
            dry_run=bool(params.get("dry_run", False)),
        )


def pipeline_choices(specs: list[PipelineSpec]) -> list[str]:
    """The pipeline choices of the form: DAG ids ``tenant__pipeline``."""
    return sorted(s.dag_id for s in specs)


def dataset_choices(specs: list[PipelineSpec]) -> list[str]:
    """Every dataset name of every pipeline (the run checks it belongs to the chosen pipeline)."""
    return sorted({ds.name for s in specs for ds in s.datasets})


def is_incremental(ds: DatasetSpec) -> bool:
    """True when the dataset's source reads a window of a cursor field."""
    opts = ds.source.options
    return bool(getattr(opts, "incremental", False) and getattr(opts, "cursor_field", None))


def _date(name: str, value: str | None) -> dt.datetime | None:
    if value is None:
        return None
    try:
        d = dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        raise MigrationParamsError(f"Param {name}={value!r} is not a date; use YYYY-MM-DD") from None
    return dt.datetime(d.year, d.month, d.day, tzinfo=dt.UTC)


def _next(start: dt.datetime, unit: str) -> dt.datetime:
    if unit == "day":
        return start + dt.timedelta(days=1)
    if unit == "week":
        return start + dt.timedelta(days=7)
    if unit == "month":
        return start.replace(year=start.year + start.month // 12, month=start.month % 12 + 1, day=1)
    return start.replace(year=start.year + 1, month=1, day=1)


def cut(start: dt.datetime, end: dt.datetime, unit: str) -> list[Window]:
    """``[start, end)`` cut at calendar boundaries of ``unit`` (the first and last slice may be partial)."""
    windows: list[Window] = []
    cursor = start
    while cursor < end:
        if unit == "day":
            boundary = _next(cursor.replace(hour=0, minute=0, second=0, microsecond=0), "day")
        elif unit == "week":
            monday = cursor.replace(hour=0, minute=0, second=0, microsecond=0) - dt.timedelta(days=cursor.weekday())
            boundary = _next(monday, "week")
        elif unit == "month":
            boundary = _next(cursor.replace(day=1, hour=0, minute=0, second=0, microsecond=0), "month")
        else:
            boundary = _next(cursor.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0), "year")
        windows.append(Window(cursor, min(boundary, end)))
        cursor = min(boundary, end)
        if len(windows) > MAX_SLICES:
            raise MigrationParamsError(
                f"{start:%Y-%m-%d}..{end:%Y-%m-%d} makes more than {MAX_SLICES} {unit} slices; choose a longer slice"
            )
    return windows


def select(specs: list[PipelineSpec], req: MigrationRequest) -> tuple[PipelineSpec, list[DatasetSpec]]:
    """The chosen pipeline and datasets, or a :class:`MigrationParamsError` naming what is wrong."""
    by_id = {s.dag_id: s for s in specs}
    spec = by_id.get(req.pipeline)
    if spec is None:
        raise MigrationParamsError(
            f"Param pipeline={req.pipeline!r} is not a pipeline; choose one of: {', '.join(sorted(by_id)) or 'none'}"
        )
    names = [d.name for d in spec.datasets]
    unknown = [d for d in req.datasets if d not in names]
    if unknown:
        raise MigrationParamsError(
            f"Param datasets names {', '.join(map(repr, unknown))}, not in pipeline {spec.dag_id}; "
            f"it has: {', '.join(names)}"
        )
    chosen = [d for d in spec.datasets if d.name in req.datasets] if req.datasets else list(spec.datasets)
    return spec, chosen


def target_for(ds: DatasetSpec, req: MigrationRequest, sliced: bool) -> Any:
    """The dataset's target with the request's table override / suffix and load mode (SQL targets), or
    its Salesforce target as the spec says."""
    t = ds.target
    if t.kind == "salesforce":
        if req.load_mode != "merge" or req.target_table or req.target_suffix:
            raise MigrationParamsError(
                f"dataset {ds.name} writes into Salesforce ({t.object}, {t.operation}): use load_mode='merge' and no "
                "target_table / target_suffix (an org is not emptied or renamed; the spec's operation applies)"
            )
        return t
    if not isinstance(t, SqlTargetSpec):
        raise MigrationParamsError(
            f"dataset {ds.name} loads into a {t.kind} target; migrations load SQL targets only "
            "(postgres, sqlite): choose other datasets"
        )
    table = req.target_table or f"{t.table}{req.target_suffix or ''}"
    data = t.model_dump()
    data["table"] = table
    if req.load_mode == "merge":
        keys = list(t.keys) or list(getattr(ds.source.options, "primary_key", []) or [])
        if not keys:
            raise MigrationParamsError(
                f"Param load_mode='merge' needs keys, but dataset {ds.name} has no target keys and no source "
                "primary_key; use load_mode='replace' or add keys to the spec"
            )
        data.update(mode="merge", keys=keys)
    elif sliced:
        column = t.interval_column or getattr(ds.source.options, "cursor_field", None)
        data.update(mode="interval", interval_column=column)
    else:
        data["mode"] = "replace"
    return SqlTargetSpec.model_validate(data)


def plan(specs: list[PipelineSpec], req: MigrationRequest, now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """Check the request and cut it into slices: ``[{"dataset", "start", "end", "index", "of"}, …]``.

    Raises:
        MigrationParamsError: unknown pipeline or dataset, bad or reversed dates, no dates and no
            ``full_history``, a target override that is not a table name, merge without keys.
    """
    spec, datasets = select(specs, req)
    if req.slice not in SLICES:
        raise MigrationParamsError(f"Param slice={req.slice!r} is not one of {', '.join(SLICES)}")
    if req.load_mode not in ("merge", "replace"):
        raise MigrationParamsError(f"Param load_mode={req.load_mode!r} must be 'merge' or 'replace'")
    if req.target_table and len(datasets) != 1:
        raise MigrationParamsError(
            f"Param target_table={req.target_table!r} needs exactly one dataset, but {len(datasets)} are chosen "
            f"({', '.join(d.name for d in datasets)}); choose one dataset or use target_suffix"
        )
    for name, value in (("target_table", req.target_table), ("target_suffix", req.target_suffix)):
        if value is not None and not _IDENT.fullmatch(value if name == "target_table" else f"t{value}"):
            raise MigrationParamsError(
                f"Param {name}={value!r} is not usable in a table name; use letters, digits and underscores"
            )
    start, end = _date("from_date", req.from_date), _date("to_date", req.to_date)
    if start and end and start > end:
        raise MigrationParamsError(
            f"Param from_date={req.from_date} is after to_date={req.to_date}; swap them or fix the range"
        )
    if not req.full_history and (start is None or end is None):
        raise MigrationParamsError("set both from_date and to_date (YYYY-MM-DD, to_date exclusive), or full_history")
    slices: list[dict[str, Any]] = []
    for ds in datasets:
        if not is_incremental(ds):
            windows = [Window()]
            log.info("dataset %s is not incremental: migrated in one full slice (dates do not apply)", ds.name)
        elif req.full_history:
            first = start or spec.start_datetime().astimezone(dt.UTC)
            last = end or (now or dt.datetime.now(dt.UTC)).replace(hour=0, minute=0, second=0, microsecond=0)
            windows = [Window(None, first), *cut(first, last, req.slice), Window(max(first, last), None)]
        else:
            assert start is not None and end is not None
            windows = cut(start, end, req.slice)
        target_for(ds, req, sliced=len(windows) > 1)  # fail now, not in slice 7
        for i, w in enumerate(windows):
            slices.append({"dataset": ds.name, **w.to_json(), "index": i + 1, "of": len(windows)})
    log.info(
        "migration of %s: %d slices over %d datasets (%s, %s%s)",
        spec.dag_id,
        len(slices),
        len(datasets),
        req.load_mode,
        f"{req.slice} slices",
        ", dry run" if req.dry_run else "",
    )
    return slices


def migration_spec(spec: PipelineSpec, ds: DatasetSpec, req: MigrationRequest, sliced: bool, run_id: str) -> Any:
    """The pipeline spec the stages run with: the dataset's overridden target, a staging root of its own."""
    from bulksync.quality.model import run_key
    from bulksync.settings import staging_root

    new_ds = ds.model_copy(update={"target": target_for(ds, req, sliced)})
    root = f"{staging_root(spec.staging.root).rstrip('/')}/_migrations/{run_key(run_id)}"
    return spec.model_copy(update={"datasets": [new_ds], "staging": StagingSpec(root=root)}), new_ds


def prepare_targets(specs: list[PipelineSpec], req: MigrationRequest, slices: list[dict[str, Any]]) -> list[str]:
    """Empty the targets that ``replace`` fills slice by slice (one transaction each); return their names."""
    if req.dry_run or req.load_mode != "replace":
        return []
    _, datasets = select(specs, req)
    emptied = []
    for ds in datasets:
        if sum(1 for s in slices if s["dataset"] == ds.name) <= 1 or ds.target.kind == "salesforce":
            continue
        target = target_for(ds, req, sliced=True)
        from bulksync.targets.registry import make_target

        tgt: Any = make_target(target)
        try:
            import sqlalchemy as sa

            with tgt.hook.connect() as conn, conn.begin():
                if sa.inspect(conn).has_table(target.table, schema=target.db_schema):
                    deleted = tgt.delete_all(conn)
                    log.info("replace: emptied %s (%d rows) before its %s slices", target.table, deleted, req.slice)
                    emptied.append(target.table)
        finally:
            tgt.close()
    return emptied


def run_slice(
    specs: list[PipelineSpec], req: MigrationRequest, piece: dict[str, Any], run_id: str, try_number: int | None
) -> dict[str, Any]:
    """Migrate one slice (or count it, on a dry run); return its counts."""
    from bulksync import stages

    spec, _ = select(specs, req)
    ds = spec.dataset(piece["dataset"])
    window = Window.from_json(piece)
    label = f"{ds.name} slice {piece['index']}/{piece['of']} {window.key}"
    if req.dry_run and ds.target.kind == "salesforce":
        mspec, mds = migration_spec(spec, ds, req, piece["of"] > 1, run_id)
        ctx = stages.RunContext(run_id=f"{run_id}__{ds.name}__{window.key}", window=window, try_number=try_number)
        from bulksync.targets.salesforce.load import dry_run

        checked = dry_run(mspec, mds, ctx)
        log.info("dry run %s: %s", label, checked)
        return {"dataset": ds.name, "window": window.key, "dry_run": True, **checked}
    if req.dry_run:
        count = count_rows(ds, window)
        log.info("dry run %s: %d source rows, nothing staged or loaded", label, count)
        return {"dataset": ds.name, "window": window.key, "dry_run": True, "source_rows": count}
    mspec, mds = migration_spec(spec, ds, req, piece["of"] > 1, run_id)
    ctx = stages.RunContext(run_id=f"{run_id}__{ds.name}__{window.key}", window=window, try_number=try_number)
    extracted = stages.extract_all(mspec, mds, ctx)
    if mds.quality is not None:
        stages.validate(mspec, mds, ctx)
    stages.transform(mspec, mds, ctx)
    loaded = stages.load(mspec, mds, ctx)
    rec = stages.reconcile(mspec, mds, ctx)
    log.info(
        "migrated %s into %s (%s): %d extracted, %d loaded, %d quarantined",
        label,
        mds.target.table,
        mds.target.mode,
        extracted.rows,
        loaded.rows,
        rec.get("quarantined", 0),
    )
    return {
        "dataset": ds.name,
        "window": window.key,
        "dry_run": False,
        "table": mds.target.table,
        "mode": mds.target.mode,
        "extracted": extracted.rows,
        "loaded": loaded.rows,
        "inserted": loaded.inserted,
        "updated": loaded.updated,
        "deleted": loaded.deleted,
        "quarantined": int(rec.get("quarantined", 0)),
    }


def count_rows(ds: DatasetSpec, window: Window) -> int:
    """The source's row count for a window: its own count when it has one, else by reading (nothing kept)."""
    from bulksync.sources.registry import make_source

    source = make_source(ds.source, window)
    try:
        count = source.source_count()
        if count is None:
            count = sum(batch.num_rows for batch in source.read())
        return int(count)
    finally:
        source.close()


def summarize(results: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Totals per dataset over all slices (logged by the last task)."""
    totals: dict[str, dict[str, int]] = {}
    for r in results:
        t = totals.setdefault(r["dataset"], {"slices": 0})
        t["slices"] += 1
        for key in ("source_rows", "extracted", "loaded", "inserted", "updated", "deleted", "quarantined", "invalid"):
            if key in r:
                t[key] = t.get(key, 0) + int(r[key])
    for name, t in totals.items():
        log.info("migration total of %s: %s", name, ", ".join(f"{k} {v:,}" for k, v in t.items()))
    return totals


def load_pipeline_specs(folder: str | Path) -> list[PipelineSpec]:
    """The specs of ``folder`` (the same the nightly DAGs are built from)."""
    return load_specs(folder)
