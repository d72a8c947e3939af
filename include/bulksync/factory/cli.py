"""``bulksync dags``: keep one Airflow DAG file beside every pipeline spec."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from bulksync.errors import SpecError

dags_app = typer.Typer(help="The Airflow DAG files of the specs (one per spec).", no_args_is_help=True)
console = Console()
err = Console(stderr=True)


@dags_app.command("sync")
def sync(
    specs: Annotated[
        Path | None, typer.Option("--specs", help="Spec folder (default $BULKSYNC_SPECS_DIR or dags/pipelines).")
    ] = None,
    check: Annotated[
        bool, typer.Option("--check", help="Only report what is missing or stale (exit 1 if so); write nothing.")
    ] = False,
) -> None:
    """Write the DAG file of every spec (pipelines/NAME.py beside NAME.yaml); remove ours whose spec is gone."""
    from bulksync.factory.dag_files import sync_dag_files
    from bulksync.settings import specs_dir

    folder = specs or specs_dir()
    try:
        result = sync_dag_files(folder, check=check)
    except SpecError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    verb = ("would write", "would remove") if check else ("wrote", "removed")
    for path in result.written:
        console.print(f"[green]+[/green] {verb[0]} {path}", soft_wrap=True)
    for path in result.removed:
        console.print(f"[yellow]-[/yellow] {verb[1]} {path} (its spec is gone)", soft_wrap=True)
    for path in result.foreign:
        err.print(f"[yellow]![/yellow] {path}: not written by bulksync; left alone", soft_wrap=True)
    console.print(f"{len(result.unchanged)} DAG file(s) up to date in {folder}", soft_wrap=True)
    if check and (result.written or result.removed):
        raise typer.Exit(1)
