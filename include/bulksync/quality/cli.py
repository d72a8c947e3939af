"""``bulksync quality …``: commands about GX suites (registered by :mod:`bulksync.cli`).

``bulksync quality init DATASET --pipeline P`` profiles the last committed extracts of a dataset
(``--partitions``, default 7) and writes a starting suite to ``expectations/<suite>.json``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from bulksync.errors import BulksyncError, SpecError

quality_app = typer.Typer(no_args_is_help=True)


@quality_app.callback()
def quality() -> None:
    """Great Expectations suites (expectations/<suite>.json): profile a starting suite."""


def _consoles() -> tuple[Console, Console]:
    # made per command so the terminal width (COLUMNS) and output streams are read when it runs
    return Console(), Console(stderr=True)


def _find_pipeline(specs: Path | None, name: str, err: Console) -> tuple[Any, Path]:
    """The spec called ``name`` (pipeline name or DAG id) and its file."""
    from bulksync.settings import specs_dir
    from bulksync.spec.loader import load_specs, spec_files

    folder = specs or specs_dir()
    try:
        loaded = load_specs(folder)
    except SpecError as exc:
        err.print(f"[red]{exc}[/red]", soft_wrap=True)
        raise typer.Exit(2) from None
    for spec in loaded:
        if name in (spec.dag_id, spec.pipeline):
            files = [p for p in spec_files(folder) if p.stem in (spec.pipeline, spec.dag_id)]
            return spec, files[0] if files else folder
    known = ", ".join(s.dag_id for s in loaded) or "none"
    err.print(f"[red]no pipeline {name!r} in {folder} (pipelines: {known})[/red]", soft_wrap=True)
    raise typer.Exit(2)


def _window_from_key(key: str) -> Any:
    """The :class:`Window` whose folder name is ``key`` (``full`` or ``START_END`` in UTC)."""
    from bulksync.staging.partition import Window

    if key == "full":
        return Window()

    def parse(part: str) -> dt.datetime | None:
        return None if part == "open" else dt.datetime.strptime(part, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)

    start, _, end = key.partition("_")
    return Window(parse(start), parse(end))


def _latest_intervals(folder: Path, n: int) -> list[str]:
    """The ``n`` newest committed interval folders under ``folder``, oldest first.

    Windows sort by their start; a ``full`` partition sorts by when it was committed.
    """
    from bulksync.staging.partition import MANIFEST

    if not folder.is_dir():
        return []
    committed = [p for p in folder.iterdir() if not p.name.startswith(".") and (p / MANIFEST).is_file()]
    committed.sort(key=lambda p: (p.name != "full", p.name if p.name != "full" else (p / MANIFEST).stat().st_mtime))
    return [p.name for p in committed[-n:]]


def _arguments(kwargs: dict[str, Any]) -> str:
    shown = {k: v for k, v in kwargs.items() if k not in ("column", "column_list")}
    return ", ".join(f"{k}={json.dumps(v)}" for k, v in shown.items())


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


@quality_app.command("init")
def init(
    dataset: Annotated[str, typer.Argument(help="Dataset name, as in the spec.")],
    pipeline: Annotated[str, typer.Option("--pipeline", "-p", help="Pipeline name or DAG id.")],
    interval: Annotated[
        str | None,
        typer.Option("--interval", help="Profile only this partition folder, e.g. 20260101T000000Z_20260102T000000Z."),
    ] = None,
    partitions: Annotated[
        int, typer.Option("--partitions", "-n", min=1, help="Profile the last N committed partitions (nights).")
    ] = 7,
    suite: Annotated[str | None, typer.Option("--suite", help="Suite name (default: the dataset name).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing suite file.")] = False,
    max_distinct: Annotated[
        int, typer.Option("--max-distinct", min=1, help="Most distinct values of a string column's value set.")
    ] = 20,
    specs: Annotated[
        Path | None, typer.Option("--specs", help="Spec folder (default $BULKSYNC_SPECS_DIR or dags/pipelines).")
    ] = None,
) -> None:
    """Profile the last committed extracts of DATASET and write a starting suite to expectations/."""
    from bulksync.quality.profile import profile_partitions
    from bulksync.quality.suites import suite_path, suite_problems
    from bulksync.settings import staging_conn_id, staging_root
    from bulksync.staging.partition import Partition
    from bulksync.staging.reader import read_manifest

    out, err = _consoles()
    spec, spec_file = _find_pipeline(specs, pipeline, err)
    try:
        ds = spec.dataset(dataset)
    except KeyError as exc:
        err.print(f"[red]{exc.args[0]}[/red]", soft_wrap=True)
        raise typer.Exit(2) from None
    name = suite or ds.name
    if not re.fullmatch(r"[a-z][a-z0-9_]{0,62}", name):
        err.print(f"[red]--suite {name!r}: use lowercase letters, digits and '_', starting with a letter[/red]")
        raise typer.Exit(2)
    path = suite_path(name)
    if path.exists() and not force:
        err.print(
            f"[red]{path} already exists; pass --force to overwrite it, or --suite NAME to write another suite[/red]",
            soft_wrap=True,
        )
        raise typer.Exit(1)
    root = staging_root(spec.staging.root)
    ds_folder = Path(root) / spec.tenant / spec.pipeline / ds.name
    keys = [interval] if interval else _latest_intervals(ds_folder, partitions)
    if not keys:
        err.print(
            f"[red]no committed extract of {ds.name!r} under {ds_folder}; run the pipeline first "
            f"(`bulksync run {spec.pipeline} -d {ds.name}` or the DAG {spec.dag_id} in Airflow)[/red]",
            soft_wrap=True,
        )
        raise typer.Exit(1)
    chosen = []
    for key in keys:
        try:
            window = _window_from_key(key)
            conn = staging_conn_id(spec.staging.conn_id)
            chosen.append(Partition(root, spec.tenant, spec.pipeline, ds.name, window, conn))
        except ValueError:
            err.print(
                f"[red]{key!r} is not a partition folder name (e.g. full, 20260101T000000Z_20260102T000000Z)[/red]"
            )
            raise typer.Exit(2) from None
    options = ds.source.options
    primary_key = list(getattr(options, "primary_key", None) or [])
    incremental = bool(getattr(options, "incremental", False))
    cursor = getattr(options, "cursor_field", None) if incremental else None
    try:
        parts = [(read_manifest(p, "extract"), p) for p in chosen]
        data = profile_partitions(
            parts,
            primary_key=primary_key,
            cursor_field=cursor,
            incremental=incremental,
            max_distinct=max_distinct,
            name=name,
        )
        manifest = parts[-1][0]
    except BulksyncError as exc:
        err.print(f"[red]{type(exc).__name__}: {exc}[/red]", soft_wrap=True)
        raise typer.Exit(1) from None
    problems = suite_problems(data, str(path), name=name)
    if problems:  # pragma: no cover - the profiler writes only known expectations
        raise SpecError(problems)
    _write_json(path, data)

    table = Table("#", "expectation", "column", "arguments", "severity", title=f"suite {name!r}")
    for i, exp in enumerate(data["expectations"]):
        kwargs = exp["kwargs"]
        column = kwargs.get("column") or ", ".join(kwargs.get("column_list", []))
        table.add_row(str(i), exp["type"], column, _arguments(kwargs), exp["meta"]["severity"])
    out.print(table)
    rows = sum(m.rows for m, _ in parts)
    span = manifest.interval if len(parts) == 1 else f"{parts[0][0].interval} .. {manifest.interval}"
    out.print(
        f"wrote {len(data['expectations'])} expectations to {path}\n"
        f"profiled from {ds.name} {span} ({len(parts)} partition(s), {rows:,} rows"
        + (f", key {', '.join(primary_key)})" if primary_key else ", no primary key in the spec)"),
        soft_wrap=True,
    )
    if rows == 0:
        out.print("[yellow]the partitions are empty: profile partitions with data for useful ranges and sets[/yellow]")
    learnt = "one interval" if len(parts) == 1 else f"{len(parts)} intervals"
    out.print(
        f"review it: ranges and value sets were learnt from {learnt} (they only warn); "
        + (f"the cursor {cursor!r} has no range; " if cursor else "")
        + "dates, timestamps, the key and growing columns have no upper bound",
        soft_wrap=True,
    )
    if ds.quality is None:
        out.print(
            f"to use it, add to dataset {ds.name!r} in {spec_file}:\n  quality: {{suite: {name}}}",
            soft_wrap=True,
        )
    elif ds.quality.suite != name:
        out.print(
            f"dataset {ds.name!r} uses suite {ds.quality.suite!r}; set quality: {{suite: {name}}} to use this one",
            soft_wrap=True,
        )
    else:
        out.print(f"dataset {ds.name!r} already uses suite {name!r}", soft_wrap=True)
