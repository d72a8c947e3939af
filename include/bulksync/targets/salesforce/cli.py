"""``bulksync sf …``: Salesforce write-back commands (registered by :mod:`bulksync.cli`).

- ``bulksync sf retry PIPELINE DATASET --window W`` re-sends only the records the write-back of that
  interval quarantined (after the cause — a validation rule, a picklist value — was fixed).
- ``bulksync sf load PIPELINE DATASET --window W [--force]`` loads the interval's committed staged
  data again; ``--force`` lets an ``insert`` run although the interval's insert started or committed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from bulksync.errors import BulksyncError, SpecError

sf_app = typer.Typer(no_args_is_help=True)

WindowOpt = Annotated[
    str,
    typer.Option(
        "--window",
        help="The interval: its partition key (20260101T000000Z_20260102T000000Z, or full) or START/END dates.",
    ),
]
SpecsOpt = Annotated[Path | None, typer.Option("--specs", help="Spec folder (default $BULKSYNC_SPECS_DIR).")]
PipelineArg = Annotated[str, typer.Argument(help="The pipeline: its DAG id (acme__writeback) or name.")]
DatasetArg = Annotated[str, typer.Argument(help="The dataset of the pipeline whose target is Salesforce.")]


@sf_app.callback()
def sf() -> None:
    """Salesforce write-back: retry quarantined records, load an interval again."""


def _dataset(specs: Path | None, pipeline: str, dataset: str, err: Console) -> tuple[Any, Any]:
    from bulksync.settings import specs_dir
    from bulksync.spec.loader import load_specs

    try:
        found = load_specs(specs or specs_dir())
    except SpecError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    for spec in found:
        if pipeline in (spec.dag_id, spec.pipeline):
            try:
                return spec, spec.dataset(dataset)
            except KeyError as exc:
                err.print(f"[red]{exc.args[0]}[/red]")
                raise typer.Exit(2) from None
    err.print(f"[red]no pipeline {pipeline!r} in {specs or specs_dir()}; see `bulksync list`[/red]")
    raise typer.Exit(2)


@sf_app.command()
def retry(pipeline: PipelineArg, dataset: DatasetArg, window: WindowOpt, specs: SpecsOpt = None) -> None:
    """Re-send only the records the write-back of one interval quarantined, then reconcile again."""
    from bulksync.targets.salesforce.retry import retry_quarantined, window_from_key

    out, err = Console(), Console(stderr=True)
    spec, ds = _dataset(specs, pipeline, dataset, err)
    try:
        outcome = retry_quarantined(spec, ds, window_from_key(window))
    except BulksyncError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    out.print(
        f"{ds.name} {window}: re-sent {outcome.resent:,} quarantined records to {ds.target.object} "
        f"({ds.target.operation}): {outcome.succeeded:,} succeeded, {outcome.failed:,} still failed, "
        f"{outcome.unprocessed:,} unprocessed"
    )
    if outcome.errors_by_code:
        table = Table("status code", "records", "fields", "example")
        for e in outcome.errors_by_code:
            table.add_row(e["code"], f"{e['count']:,}", ", ".join(e["fields"]), e["sample"])
        out.print(table)
    rec = outcome.reconciliation
    out.print(
        f"reconciled: staged {rec['staged']:,} = loaded {rec['loaded']:,} + failed {rec['failed']:,} + unprocessed "
        f"{rec['unprocessed']:,} + quarantined by the gate {rec['quarantined']:,} + rejected {rec['rejected']:,} "
        f"({rec['status']})"
    )
    if outcome.failed or outcome.unprocessed:
        raise typer.Exit(3)


@sf_app.command()
def load(
    pipeline: PipelineArg,
    dataset: DatasetArg,
    window: WindowOpt,
    force: Annotated[bool, typer.Option(help="Insert although this interval's insert started or committed.")] = False,
    specs: SpecsOpt = None,
) -> None:
    """Load one interval's committed staged data into Salesforce again, then reconcile."""
    import datetime as dt

    from bulksync import stages
    from bulksync.targets.salesforce.load import load_partition
    from bulksync.targets.salesforce.retry import window_from_key

    out, err = Console(), Console(stderr=True)
    spec, ds = _dataset(specs, pipeline, dataset, err)
    ctx = stages.RunContext(run_id=f"cli__{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}", window=window_from_key(window))
    try:
        result = load_partition(spec, ds, ctx, force=force)
        rec = stages.reconcile(spec, ds, ctx)
    except BulksyncError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    out.print(
        f"{ds.name} {window}: {result.inserted:,} inserted, {result.updated:,} updated, {result.deleted:,} deleted, "
        f"{result.failed:,} failed, {result.unprocessed:,} unprocessed ({rec['status']})"
    )
