"""The ``bulksync`` command: check specs, list pipelines, run them outside the scheduler, summaries."""

from __future__ import annotations

import datetime as dt
import logging
import os
import signal
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from bulksync.errors import BulksyncError, SpecError
from bulksync.factory.cli import dags_app
from bulksync.quality.cli import quality_app
from bulksync.sources.api.cli import api_app, sandbox_api
from bulksync.sources.file_drop.cli import convert, files_app
from bulksync.staging.retention_cli import staging_app
from bulksync.targets.salesforce.cli import sf_app

# no locals in tracebacks: they could hold connection URLs or salts
app = typer.Typer(
    help="bulksync: nightly bulk syncs as Airflow DAGs built from YAML specs.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
demo_app = typer.Typer(help="The demo's sample sources.", no_args_is_help=True)
app.add_typer(demo_app, name="demo")
sandbox_app = typer.Typer(help="Local stand-ins of enterprise systems (demo, tests, benchmarks).", no_args_is_help=True)
app.add_typer(sandbox_app, name="sandbox")
app.add_typer(quality_app, name="quality")
app.add_typer(files_app, name="files")
app.add_typer(dags_app, name="dags")
app.add_typer(staging_app, name="staging")
app.add_typer(sf_app, name="sf")
app.add_typer(api_app, name="api")
sandbox_app.command("api")(sandbox_api)
app.command("convert")(convert)
console = Console()
err = Console(stderr=True)


def _flags_take_no_value() -> None:
    """Typer prints ``<bool>`` after every flag (``--verbose <bool>``) as if it took a value: show none."""
    from typer.core import TyperOption

    shown = TyperOption.display_type_rich

    def display_type_rich(self: TyperOption, ctx: Any) -> str | None:
        return None if self.is_flag else shown(self, ctx)

    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


_flags_take_no_value()


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        def v(name: str) -> str:
            try:
                return version(name)
            except PackageNotFoundError:
                return "not installed"

        typer.echo(
            f"bulksync {v('bulksync')} (apache-airflow {v('apache-airflow')}, great-expectations "
            f"{v('great-expectations')}, pyarrow {v('pyarrow')})"
        )
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the versions and exit.")
    ] = False,
) -> None:
    """bulksync: nightly bulk syncs as Airflow DAGs built from YAML specs."""


SpecsOpt = Annotated[
    Path | None, typer.Option("--specs", help="Spec folder (default $BULKSYNC_SPECS_DIR or dags/pipelines).")
]


def _specs_dir(specs: Path | None) -> Path:
    from bulksync.settings import specs_dir

    return specs or specs_dir()


def _load(specs: Path | None) -> list[Any]:
    from bulksync.spec.loader import load_specs

    try:
        return load_specs(_specs_dir(specs))
    except SpecError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None


def _pipeline(specs: Path | None, name: str) -> Any:
    for spec in _load(specs):
        if name in (spec.dag_id, spec.pipeline):
            return spec
    err.print(f"[red]no pipeline {name!r} in {_specs_dir(specs)}; see `bulksync list`[/red]")
    raise typer.Exit(2)


@app.command()
def validate(
    specs: SpecsOpt = None,
    transforms: Annotated[
        bool, typer.Option("--transforms/--no-transforms", help="Also check that named transforms are registered.")
    ] = True,
) -> None:
    """Check every spec and print each problem with its file, field and line."""
    from bulksync.factory.dag_files import dag_file_of
    from bulksync.spec.loader import load_spec, spec_files
    from bulksync.spec.transforms import PythonStep

    folder = _specs_dir(specs)
    try:
        files = spec_files(folder)
    except SpecError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    problems = 0
    for path in files:
        found: list[str] = []
        try:
            spec = load_spec(path)
        except SpecError as exc:
            found = [
                f"{file}: [bold]{field}[/bold] {msg}" if field else f"{file}: {msg}"
                for file, field, msg in exc.problems
            ]
            spec = None
        if spec is not None:
            from bulksync.quality.suites import check_suite

            for suite in sorted({ds.quality.suite for ds in spec.datasets if ds.quality}):
                found.extend(check_suite(suite))
            if transforms:
                from bulksync.transform.registry import load_transforms

                registry = load_transforms()
                for ds in spec.datasets:
                    for i, step in enumerate(ds.transforms):
                        if isinstance(step, PythonStep) and step.python.name not in registry:
                            found.append(
                                f"{path}: [bold]datasets.{ds.name}.transforms[{i}][/bold] "
                                f"no registered transform {step.python.name!r}"
                            )
        for line in found:
            err.print(f"[red]✗[/red] {line}", soft_wrap=True, highlight=False)
        problems += len(found)
        if spec is not None and not found:
            console.print(f"[green]✓[/green] {path.name}: {spec.dag_id}, {len(spec.datasets)} datasets")
            if folder.name == "pipelines" and not dag_file_of(path).is_file():
                err.print(f"[yellow]![/yellow] {path.name}: no DAG file beside it, so no DAG: run `bulksync dags sync`")
    if not files:
        err.print(f"no spec files in {folder}")
        raise typer.Exit(2)
    if problems:
        err.print(f"[red]{problems} problem(s)[/red]")
        raise typer.Exit(1)


@app.command("list")
def list_pipelines(specs: SpecsOpt = None) -> None:
    """List pipelines and their datasets (tab-separated, nothing cut, when the output is not a terminal)."""
    header = ("DAG id", "schedule", "dataset", "source", "target", "mode")
    rows = [
        (
            spec.dag_id,
            str(spec.schedule),
            ds.name,
            ds.source.kind,
            f"{ds.target.kind}:{ds.target.conn_id}/{ds.target.table}",
            ds.target.mode,
        )
        for spec in _load(specs)
        for ds in spec.datasets
    ]
    if not console.is_terminal:  # piped into grep, cut, a file: whole values, one row per dataset
        typer.echo("\t".join(header))
        for row in rows:
            typer.echo("\t".join(row))
        return
    table = Table(*header)
    for column in table.columns[:3]:
        column.no_wrap = True
        column.overflow = "fold"
    previous = None
    for row in rows:
        first = row[0] != previous
        table.add_row(row[0] if first else "", row[1] if first else "", *row[2:])
        previous = row[0]
    console.print(table)


def _parse_when(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    d = dt.datetime.fromisoformat(value)
    return d if d.tzinfo else d.replace(tzinfo=dt.UTC)


class _Bar:
    """A rich progress task fed by a stage: ``start(total)`` when the stage knows its total, then ``(rows)``."""

    def __init__(self, progress: Any, description: str, *, rate: bool = True) -> None:
        self.progress = progress
        self.task = progress.add_task(description, total=None, start=False, rate=rate)

    def start(self, total: int | None) -> None:
        self.progress.update(self.task, total=total)
        self.progress.start_task(self.task)

    def __call__(self, rows: int) -> None:
        self.progress.advance(self.task, rows)

    def done(self, rows: int | None = None, note: str | None = None) -> None:
        """Finish the bar: ``rows`` done out of ``rows`` (validate: rows checked), with an optional note."""
        task = self.progress.tasks[self.task]
        if not task.started:
            self.progress.start_task(self.task)
        total = rows if rows is not None else task.completed
        self.progress.update(self.task, total=total, completed=total)
        if note:
            self.progress.update(self.task, description=f"{task.description} ({note})")


def _progress() -> Any:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    class RowsPerSecond(TransferSpeedColumn):
        def render(self, task: Any) -> Any:
            from rich.text import Text

            speed = task.finished_speed or task.speed
            if speed is None and task.elapsed and task.completed:
                speed = task.completed / task.elapsed
            if speed is None or not task.fields.get("rate", True):
                return Text("")
            return Text(f"{speed:,.0f}/s", style="progress.data.speed")

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        MofNCompleteColumn(),
        RowsPerSecond(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=console,
    )


@app.command()
def run(
    pipeline: Annotated[str, typer.Argument(help="Pipeline name or DAG id.")],
    dataset: Annotated[list[str] | None, typer.Option("--dataset", "-d", help="Only these datasets.")] = None,
    start: Annotated[str | None, typer.Option(help="Window start (ISO date/time, UTC if no offset).")] = None,
    end: Annotated[str | None, typer.Option(help="Window end, exclusive.")] = None,
    specs: SpecsOpt = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log each stage's INFO lines.")] = False,
) -> None:
    """Run a pipeline outside the scheduler (development): extract, transform and load each dataset."""
    from bulksync import stages
    from bulksync.preflight import preflight
    from bulksync.quality.model import COUNT_LABELS, Counts, Reconciliation
    from bulksync.staging.partition import Window

    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    spec = _pipeline(specs, pipeline)
    window = Window(_parse_when(start), _parse_when(end))
    ctx = stages.RunContext(run_id=f"cli__{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}", window=window, try_number=1)
    try:
        chosen = [spec.dataset(d) for d in dataset] if dataset else spec.datasets
    except (KeyError, ValueError) as exc:
        err.print(f"[red]{exc}; see `bulksync list`[/red]")
        raise typer.Exit(2) from None
    problems = preflight(spec, chosen)
    if problems:
        err.print(f"[red]{spec.dag_id}: {len(problems)} thing(s) the run needs are missing; nothing was run:[/red]")
        for p in problems:
            err.print(f"  [red]✗[/red] {p}", soft_wrap=True, highlight=False)
        raise typer.Exit(2)
    labels = [COUNT_LABELS[k] for k in ("staged", "quarantined", "rejected", "loaded", "deletions")]
    results = Table("dataset", *labels, "load", "seconds", "target")
    failed = False
    with _progress() as progress:
        for ds in chosen:
            started = time.monotonic()
            try:
                bar = _Bar(progress, f"{ds.name}: extract")
                stages.extract_all(spec, ds, ctx, bar)
                bar.done()
                if ds.quality:
                    bar = _Bar(progress, f"{ds.name}: validate")
                    verdict = stages.validate(spec, ds, ctx)
                    bar.done(
                        verdict["rows_checked"], f"{verdict['status']}, {verdict['rows_quarantined']:,} quarantined"
                    )
                bar = _Bar(progress, f"{ds.name}: transform")
                stages.transform(spec, ds, ctx, bar)
                bar.done()
                bar = _Bar(progress, f"{ds.name}: load")
                ld = stages.load(spec, ds, ctx, bar)
                bar.done()
                bar = _Bar(progress, f"{ds.name}: reconcile", rate=False)
                rec = stages.reconcile(spec, ds, ctx)
                bar.done(rec["staged"], "counts add up")
            except BulksyncError as exc:
                failed = True
                err.print(f"[red]{ds.name}: {type(exc).__name__}: {exc}[/red]")
                continue
            counts = Counts.of(
                Reconciliation.model_validate({**rec, "ok": True}),
                inserted=ld.inserted,
                updated=ld.updated,
                deleted=ld.deleted,
                mode=ld.mode,
            )
            results.add_row(
                ds.name,
                *(f"{getattr(counts, k):,}" for k in ("staged", "quarantined", "rejected", "loaded", "deletions")),
                counts.load_detail(),
                f"{time.monotonic() - started:.1f}",
                f"{ds.target.conn_id}/{ld.table}",
            )
    console.print(results)
    if failed:
        raise typer.Exit(1)


@app.command()
def summary(
    pipeline: Annotated[str, typer.Argument(help="Pipeline name or DAG id.")],
    specs: SpecsOpt = None,
) -> None:
    """Per dataset, the latest committed partition: rows extracted, staged, loaded, duration, where."""
    from bulksync.reporting import latest_runs

    spec = _pipeline(specs, pipeline)
    console.print(f"[bold]{spec.dag_id}[/bold]: latest committed partition per dataset")
    for row in latest_runs(spec):
        quality = f"  ·  quality {row['quality']}" if row["quality"] else ""
        console.print(
            f"\n  [bold]{row['dataset']}[/bold]  window {row['window']}  ({row['seconds']} s){quality}", soft_wrap=True
        )
        console.print(f"    {row['line']}", soft_wrap=True, highlight=False)
        console.print(f"    staging   {row['partition']}", soft_wrap=True)
        console.print(f"    target    {row['target']}", soft_wrap=True)


@demo_app.command("prepare")
def demo_prepare(root: Path = typer.Option(Path(".local/demo"), help="Where the sample sources go.")) -> None:
    """Create the demo's sample sources (CRM database and order CSV drops)."""
    from bulksync.sandbox.demo import prepare

    counts = prepare(root.resolve())
    for name, n in counts.items():
        console.print(f"[green]✓[/green] {name}: {n:,} rows")


@demo_app.command("azure")
def demo_azure(
    conn_id: str = typer.Option("demo_azure", help="Airflow connection (type wasb) of the storage account."),
    warehouse: Path = typer.Option(Path(".local/demo/azure_warehouse.db"), help="SQLite warehouse (recreated)."),
) -> None:
    """Azure demo: order drops in a container → staging in a container → SQLite, then → a Parquet lake."""
    from bulksync.sandbox.azure_demo import DROPS, LAKE, run_azure_demo

    result = run_azure_demo(conn_id, warehouse.resolve())
    console.print(
        f"[green]✓[/green] drop zone abfs://{DROPS}/acme/orders → {warehouse}: {result['orders']:,} rows",
        soft_wrap=True,
    )
    console.print(f"  archived: {', '.join(n.rsplit('/', 1)[-1] for n in result['archived'])}", soft_wrap=True)
    parts = ", ".join(f"{k} ({v:,})" for k, v in result["lake_partitions"].items())
    console.print(
        f"[green]✓[/green] lake abfs://{LAKE}/sales/orders: {result['orders_lake']:,} rows; partitions {parts}",
        soft_wrap=True,
    )


@sandbox_app.command("ibmi")
def sandbox_ibmi(
    url: str = typer.Option(
        "sqlite:///.local/demo/as400.db",
        help="SQLAlchemy URL to load the sample library into (sqlite:///…, postgresql+psycopg://…, mysql+pymysql://…).",
    ),
    order_lines: int = typer.Option(10_000, min=1, help="Order lines to generate (about 4 per order)."),
) -> None:
    """Create the sample IBM i library ACMELIB (QCUSTCDT, ORDHDR + member ARCHIVE, ORDLIN)."""
    from sqlalchemy.engine import make_url

    from bulksync.sandbox.ibmi import build

    target = make_url(url)
    if target.get_backend_name() == "sqlite" and target.database:
        Path(target.database).parent.mkdir(parents=True, exist_ok=True)
    counts = build(url, order_lines)
    where = target.render_as_string(hide_password=True)
    for name, n in counts.items():
        console.print(f"[green]✓[/green] {name}: {n:,} rows in {where}", soft_wrap=True)


@sandbox_app.command("salesforce")
def sandbox_salesforce(
    port: int = typer.Option(8443, help="HTTPS port (0 picks a free one)."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on (0.0.0.0 inside a container)."),
    public_host: str | None = typer.Option(
        None, help="Host name clients use when not on this machine (e.g. the compose service name)."
    ),
    records_per_object: int = typer.Option(1000, help="Seeded records of each object."),
    count: Annotated[
        list[str] | None, typer.Option("--count", help="Records of one object, e.g. --count Account=2000000.")
    ] = None,
    seed: int = typer.Option(20260101, help="Generator seed (same seed, same records)."),
    token_lifetime: float = typer.Option(7200.0, help="Seconds an access token stays valid."),
    job_seconds: float = typer.Option(0.3, help="Simulated minimum processing time of a Bulk query job."),
    modstamp_end: str = typer.Option(
        "2026-01-02T00:00:00Z", help="Seeded SystemModstamp values lie in the 8 weeks before this (ISO, or 'now')."
    ),
    conn_id: str = typer.Option("salesforce_sandbox", help="Airflow connection id in the printed lines."),
    workdir: Path = typer.Option(Path(".local/sandbox/salesforce"), help="Certificates and keys go here."),
    env_file: Path | None = typer.Option(None, help="Also write the export lines to this file once serving."),
) -> None:
    """Run a local Salesforce org (REST, Bulk API 2.0, OAuth over HTTPS) until Ctrl-C."""
    from bulksync.sandbox.salesforce import SalesforceSandbox, SandboxConfig
    from bulksync.sandbox.salesforce.banner import banner, write_env_file

    counts: dict[str, int] = {}
    for item in count or []:
        name, _, value = item.partition("=")
        if not value.isdigit():
            err.print(f"[red]--count {item!r}: expected OBJECT=N, e.g. Account=2000000[/red]")
            raise typer.Exit(2)
        counts[name] = int(value)
    try:
        end = dt.datetime.now(dt.UTC) if modstamp_end == "now" else dt.datetime.fromisoformat(modstamp_end)
    except ValueError:
        err.print(f"[red]--modstamp-end {modstamp_end!r}: expected an ISO date-time such as 2026-01-02T00:00:00Z[/red]")
        raise typer.Exit(2) from None
    config = SandboxConfig(
        port=port,
        host=host,
        public_host=public_host,
        job_seconds=job_seconds,
        modstamp_end=end if end.tzinfo else end.replace(tzinfo=dt.UTC),
        records_per_object=records_per_object,
        counts=counts,
        seed=seed,
        token_lifetime=token_lifetime,
        workdir=workdir.resolve(),
    )
    try:
        sandbox = SalesforceSandbox(config)
    except OSError as exc:
        err.print(f"[red]cannot listen on {host}:{port}: {exc.strerror}; choose another --port[/red]")
        raise typer.Exit(1) from None
    console.print(banner(sandbox, conn_id), soft_wrap=True, highlight=False, markup=False)
    if env_file:
        write_env_file(sandbox, conn_id, env_file)

    def _stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)
    try:
        sandbox.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        sandbox.stop()
        if env_file:
            env_file.unlink(missing_ok=True)


def main() -> None:  # pragma: no cover - console entry point
    """Entry point with terse errors instead of tracebacks for expected failures."""
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    app()
