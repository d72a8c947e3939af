"""``bulksync staging``: the staging partitions of a pipeline and their retention (prune)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from bulksync.errors import BulksyncError

staging_app = typer.Typer(help="Staging partitions: retention and pruning.", no_args_is_help=True)
console = Console()
err = Console(stderr=True)


def _mib(n: int) -> str:
    return f"{n / 2**20:,.1f} MiB"


@staging_app.command("prune")
def prune_cmd(
    pipeline: Annotated[
        list[str] | None, typer.Argument(help="Pipelines (name or DAG id); default: every pipeline.")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", "-n", help="Show what would be removed; remove nothing.")
    ] = False,
    keep_last: Annotated[
        int | None, typer.Option(min=1, help="Keep this many newest partitions per dataset (default: the spec's).")
    ] = None,
    keep_days: Annotated[
        float | None, typer.Option(min=0, help="Keep partitions committed within this many days (default: the spec's).")
    ] = None,
    specs: Annotated[
        Path | None, typer.Option("--specs", help="Spec folder (default $BULKSYNC_SPECS_DIR or dags/pipelines).")
    ] = None,
) -> None:
    """Remove old staging partitions by the specs' retention (never the latest, never one in use)."""
    from bulksync.settings import specs_dir
    from bulksync.spec.loader import load_specs
    from bulksync.staging.retention import plan_prune, prune, summary

    try:
        chosen = load_specs(specs or specs_dir())
    except BulksyncError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    if pipeline:
        unknown = [p for p in pipeline if not any(p in (s.dag_id, s.pipeline) for s in chosen)]
        if unknown:
            err.print(f"[red]no pipeline {', '.join(map(repr, unknown))}; see `bulksync list`[/red]")
            raise typer.Exit(2)
        chosen = [s for s in chosen if s.dag_id in pipeline or s.pipeline in pipeline]
    failed = False
    for spec in chosen:
        try:
            plan = plan_prune(spec, keep_last=keep_last, keep_days=keep_days)
        except BulksyncError as exc:
            err.print(f"[yellow]{spec.dag_id}: {exc}[/yellow]")
            failed = True
            continue
        table = Table("dataset", "interval", "size", "action", "why", title=spec.dag_id)
        for d in plan.decisions:
            action = ("would remove" if dry_run else "remove") if d.remove else "keep"
            table.add_row(d.dataset, d.interval, _mib(d.bytes), action, d.reason)
        if plan.decisions:
            console.print(table)
        done = plan.removed if dry_run else prune(plan, spec)
        s = summary(done)
        verb = "would remove" if dry_run else "removed"
        console.print(f"{spec.dag_id}: {verb} {s['partitions']} partition(s), {_mib(s['bytes'])}")
    if failed:
        raise typer.Exit(1)
