"""``bulksync files`` (the ledger: list, reprocess) and ``bulksync convert`` (one file to Parquet).

``convert`` reads a file with exactly the code a pipeline uses (same checks, same conversions,
same error messages) and writes it to Parquet, printing rows, errors and the schema: for the
engineer who just received a new client file.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from types import SimpleNamespace
from typing import IO, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from bulksync.errors import BulksyncError, DataError

files_app = typer.Typer(help="File drops: the ledger of every file that arrived, and replays.", no_args_is_help=True)
console = Console()
err = Console(stderr=True)

SpecsOpt = Annotated[Path | None, typer.Option("--specs", help="Spec folder (default: dags/pipelines).")]


def _dataset(pipeline: str, dataset: str, specs: Path | None) -> tuple[Any, Any]:
    from bulksync.cli import _pipeline

    spec = _pipeline(specs, pipeline)
    try:
        return spec, spec.dataset(dataset)
    except KeyError as exc:
        err.print(f"[red]{exc.args[0]}[/red]")
        raise typer.Exit(2) from None


@files_app.command("list")
def list_files(
    pipeline: Annotated[str, typer.Argument(help="Pipeline name or DAG id.")],
    dataset: Annotated[str, typer.Argument(help="The file_drop dataset.")],
    file: Annotated[str | None, typer.Option("--file", help="Only this file name.")] = None,
    limit: int = typer.Option(50, help="Newest rows shown."),
    specs: SpecsOpt = None,
) -> None:
    """Every file of a drop the ledger knows: status, interval, rows, reason, where it is now."""
    from bulksync.sources.file_drop.replay import ledger_for

    spec, ds = _dataset(pipeline, dataset, specs)
    try:
        ledger = ledger_for(spec, ds)
        rows = ledger.rows(file, limit)
        held = ledger.leases_held()
        where = ledger.describe()
        ledger.close()
    except BulksyncError as exc:
        err.print(f"[red]{type(exc).__name__}: {exc}[/red]")
        raise typer.Exit(1) from None
    table = Table("id", "file", "status", "interval", "rows", "reason", "location", "sha256", title=where)
    for r in rows:
        table.add_row(
            str(r.id),
            r.file_name,
            r.status,
            r.interval or "",
            "" if r.rows is None else f"{r.rows:,}",
            r.reason or "",
            r.location or "",
            (r.sha256 or "")[:12],
        )
    out = console if console.is_terminal else Console(width=200)  # piped: no truncated names
    out.print(table)
    for interval, holder in held:
        out.print(f"interval {interval} is being extracted: lease held by {holder.describe()}")


@files_app.command("reprocess")
def reprocess_file(
    pipeline: Annotated[str, typer.Argument(help="Pipeline name or DAG id.")],
    dataset: Annotated[str, typer.Argument(help="The file_drop dataset.")],
    file: Annotated[str, typer.Argument(help="The file name as it arrived.")],
    row_id: Annotated[int | None, typer.Option("--id", help="Ledger row id when the name has several.")] = None,
    specs: SpecsOpt = None,
) -> None:
    """Put a processed or quarantined file back into the landing folder; the next run loads it again."""
    from bulksync.sources.file_drop.replay import reprocess

    spec, ds = _dataset(pipeline, dataset, specs)
    try:
        row, name = reprocess(spec, ds, file, row_id)
    except BulksyncError as exc:
        err.print(f"[red]{type(exc).__name__}: {exc}[/red]")
        raise typer.Exit(1) from None
    console.print(
        f"[green]✓[/green] {name} (ledger row {row.id}, was {row.status}) is back in the landing folder; "
        "the next run of the pipeline loads it"
    )


def _column_names(
    path: Path, delimiter: str, quote: str | None, encoding: str, header: bool, detect: bool
) -> list[dict[str, str]]:
    """String columns named after a CSV file's header (``col_1`` … without one)."""
    import gzip
    import zipfile

    opener: Any = open
    if path.name.lower().endswith((".gz", ".gzip")):
        opener = gzip.open
    if path.name.lower().endswith(".zip"):
        with zipfile.ZipFile(path) as z:
            first = z.read(z.infolist()[0])[:65536]
        raw = io.BytesIO(first)
    else:
        with opener(path, "rb") as f:
            raw = io.BytesIO(f.read(65536))
    enc = "utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding
    text: IO[str] = io.TextIOWrapper(raw, encoding=enc, errors="replace", newline="")
    if detect:
        from bulksync.sources.file_drop.formats import DELIMITERS

        sample = text.read()
        text = io.StringIO(sample)
        try:
            sniffed = csv.Sniffer().sniff(sample[: sample.rfind("\n")] or sample, delimiters=DELIMITERS)
            delimiter, quote = sniffed.delimiter, sniffed.quotechar or quote
        except csv.Error:
            pass
    first_row = next(csv.reader(text, delimiter=delimiter, quotechar=quote or '"'), [])
    names = []
    for i, value in enumerate(first_row):
        name = re.sub(r"\W", "_", value.strip()) if header else ""
        if not name or not re.match(r"[A-Za-z_]", name):
            name = f"col_{i + 1}" if not name else f"c_{name}"
        while name in names:
            name += "_"
        names.append(name[:120])
    return [{"name": n, "type": "string"} for n in names]


def convert(
    file: Annotated[Path, typer.Argument(help="The file to read.", exists=True, dir_okay=False)],
    output: Annotated[Path, typer.Option("--output", "-o", help="Parquet file to write.")],
    delimiter: Annotated[str, typer.Option(help="CSV delimiter: , ; | tab ^ `")] = ",",
    quote: Annotated[str, typer.Option(help="CSV quote character ('' for none).")] = '"',
    escape: Annotated[str | None, typer.Option(help="CSV escape character.")] = None,
    header: Annotated[bool, typer.Option(help="The CSV file starts with a header line.")] = True,
    detect: Annotated[bool, typer.Option(help="Detect the CSV delimiter and quote (csv.Sniffer).")] = False,
    encoding: Annotated[str, typer.Option(help="Text encoding: utf-8, cp1252, latin-1, utf-16 …")] = "utf-8",
    columns: Annotated[
        str | None, typer.Option(help="CSV columns 'name:type,…' (default: the header's names, as strings).")
    ] = None,
    fixed_width: Annotated[
        Path | None, typer.Option("--fixed-width", help="YAML layout: {columns: [{name, type, start, width}]}.")
    ] = None,
    copybook: Annotated[Path | None, typer.Option(help="COBOL copybook (.cpy) describing the records.")] = None,
    record_format: Annotated[str, typer.Option(help="Copybook files: fixed, rdw or length_field.")] = "fixed",
    code_page: Annotated[str, typer.Option(help="Copybook files: cp037, cp500, cp273, cp1140 or ascii.")] = "cp037",
    compression: Annotated[str, typer.Option(help="auto (by suffix), none, gzip or zip.")] = "auto",
    show: Annotated[int, typer.Option(help="Rows to print.")] = 5,
) -> None:
    """Read one file as a pipeline would (CSV, fixed-width or copybook) and write it to Parquet."""
    import pyarrow.parquet as pq
    import yaml
    from pydantic import ValidationError

    from bulksync.sources.file_drop.source import DropFile, FileDropSource
    from bulksync.spec.file_drop import FileDropOptions
    from bulksync.staging.partition import Window

    file = file.resolve()
    delimiter = "\t" if delimiter in ("tab", "\\t") else delimiter
    opts: dict[str, Any] = {
        "landing": str(file.parent),
        "pattern": "*",
        "encoding": encoding,
        "compression": compression,
        "checksum": "none",
        "arrival": {"mode": "immediate"},
    }
    try:
        if copybook is not None:
            cb = {"copybook": str(copybook.resolve()), "record_format": record_format, "code_page": code_page}
            opts |= {"format": "copybook", "copybook": cb, "on_record_errors": "load"}
        elif fixed_width is not None:
            opts |= {"format": "fixed_width", "fixed_width": yaml.safe_load(fixed_width.read_text(encoding="utf-8"))}
        else:
            cols = (
                [
                    {"name": n.strip(), "type": t.strip()}
                    for n, _, t in (c.partition(":") for c in re.split(r",(?![^(]*\))", columns))
                ]
                if columns
                else _column_names(file, delimiter, quote or None, encoding, header, detect)
            )
            dialect = {
                "delimiter": delimiter,
                "quote_char": quote or None,
                "escape_char": escape,
                "header": header,
                "check_header": bool(columns),  # names derived from the header are cleaned up: no comparison
            }
            opts |= {"format": "csv", "columns": cols, "csv": {**dialect, "detect": detect}}
        options = FileDropOptions.model_validate(opts)
    except ValidationError as exc:
        err.print(f"[red]invalid options: {exc}[/red]")
        raise typer.Exit(2) from None
    source = FileDropSource(SimpleNamespace(kind="file_drop", options=options), Window())
    try:
        spool, sha256, size = source.read_checked(DropFile(file.name, file.name))
    except DataError as exc:
        err.print(f"[red]✗ rejected ({getattr(exc, 'reason', None) or 'bad_data'}): {exc}[/red]")
        raise typer.Exit(1) from None
    except BulksyncError as exc:
        err.print(f"[red]{type(exc).__name__}: {exc}[/red]")
        raise typer.Exit(2) from None
    schema = source.schema()
    shown: list[Any] = []
    with pq.ParquetWriter(output, schema, compression="zstd") as writer:
        for batch in spool.drain():
            writer.write_batch(batch)
            if len(shown) < show:
                shown.extend(batch.slice(0, show - len(shown)).to_pylist())
    record_errors = getattr(source.reader, "record_errors", 0)
    console.print(f"[green]✓[/green] {file.name}: {spool.rows:,} rows, {size:,} bytes, sha256 {sha256}")
    console.print(f"  errors: {record_errors:,} record(s) with undecodable values (loaded as null)")
    console.print(f"  wrote {output}")
    console.print("  schema:")
    for field in schema:
        console.print(f"    {field.name}: {field.type}{'' if field.nullable else ' not null'}")
    if shown:
        table = Table(*schema.names, title=f"first {len(shown)} rows")
        for row in shown:
            table.add_row(*("" if v is None else str(v) for v in row.values()))
        console.print(table)
