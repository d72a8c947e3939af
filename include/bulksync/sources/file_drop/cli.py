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
from rich import markup
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
    from bulksync.sources.csv_checks import DELIMITERS, likely_delimiter

    if detect:
        sample = text.read()
        text = io.StringIO(sample)
        try:
            sniffed = csv.Sniffer().sniff(sample[: sample.rfind("\n")] or sample, delimiters=DELIMITERS)
            delimiter, quote = sniffed.delimiter, sniffed.quotechar or quote
        except csv.Error:
            pass  # a one-column file: no delimiter to find
    sample = text.read()
    lines = [ln for ln in sample.splitlines()[:50] if ln.strip()]
    if len(lines) > 1 and sample.count("\n") > len(lines) - 1:
        lines = lines[:-1]  # the sample may end inside a line
    first_row = next(csv.reader(io.StringIO(sample), delimiter=delimiter, quotechar=quote or '"'), [])
    if not detect and len(first_row) == 1:
        likely = likely_delimiter(lines, delimiter)
        if likely is not None:
            shown = "tab" if likely == "\t" else likely
            err.print(
                f"[red]{path.name}: the header has one column with --delimiter {delimiter!r}, but {likely!r} appears "
                f"the same number of times in every line: the file looks {shown!r}-delimited. Pass --delimiter "
                f"'{shown}' (or --detect); for a genuine one-column file pass --columns[/red]"
            )
            raise typer.Exit(2)
    columns = []
    names: list[str] = []
    for i, value in enumerate(first_row):
        name = re.sub(r"\W", "_", value.strip()) if header else ""
        if not name or not re.match(r"[A-Za-z_]", name):
            name = f"col_{i + 1}" if not name else f"c_{name}"
        while name in names:
            name += "_"
        names.append(name[:120])
        col = {"name": name[:120], "type": "string"}
        if header and value != name[:120]:
            col["header"] = value  # the header check compares the name as it appears in the file
        columns.append(col)
    return columns


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
    options_file: Annotated[
        Path | None,
        typer.Option(
            "--options",
            help="Copybook files: YAML holding the spec's option block (format: copybook, copybook: {…}) or the "
            "copybook block itself; the flags below override it.",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    record_format: Annotated[
        str | None, typer.Option(help="Copybook: fixed, rdw, vb (BDW + RDW), length_field or odo (default fixed).")
    ] = None,
    code_page: Annotated[
        str | None, typer.Option(help="Copybook: cp037 (default), cp500, cp273, cp875, cp1047, cp1140-cp1149, ascii.")
    ] = None,
    record: Annotated[str | None, typer.Option(help="Copybook: the 01 record to decode.")] = None,
    segments: Annotated[
        str | None, typer.Option(help="Copybook: 01 record per record, FIELD:VALUE=RECORD,… (e.g. REC-TYPE:H=HDR)")
    ] = None,
    redefines: Annotated[
        list[str] | None,
        typer.Option(help="Copybook: BASE=BRANCH, or BASE=FIELD:VALUE=BRANCH,… to choose per record (repeatable)."),
    ] = None,
    rdw_byte_order: Annotated[str | None, typer.Option(help="Copybook RDW: big (IBM, default) or little.")] = None,
    rdw_includes_header: Annotated[
        bool | None, typer.Option(help="Copybook RDW: the length counts the 4-byte RDW (IBM, default).")
    ] = None,
    rdw_length_at: Annotated[
        int | None, typer.Option(help="Copybook RDW: length in bytes 0-1 (default) or 2-3.")
    ] = None,
    header_bytes: Annotated[int | None, typer.Option(help="Copybook: bytes to skip at the start.")] = None,
    trailer_bytes: Annotated[int | None, typer.Option(help="Copybook: bytes to skip at the end.")] = None,
    header_records: Annotated[int | None, typer.Option(help="Copybook: records to leave out at the start.")] = None,
    trailer_records: Annotated[int | None, typer.Option(help="Copybook: records to leave out at the end.")] = None,
    skip: Annotated[
        str | None, typer.Option(help="Copybook: leave out records by a field's value, FIELD=VALUE,… (REC-TYPE=H,T).")
    ] = None,
    record_length: Annotated[int | None, typer.Option(help="Copybook fixed records: the length in bytes.")] = None,
    length_field: Annotated[str | None, typer.Option(help="Copybook length_field: the field holding it.")] = None,
    length_adjust: Annotated[int | None, typer.Option(help="Copybook length_field: added to its value.")] = None,
    trim: Annotated[str | None, typer.Option(help="Copybook text: right (default), both or none.")] = None,
    float_format: Annotated[
        str | None, typer.Option(help="Copybook COMP-1/COMP-2: ibm_hex (default), ieee or ieee_little.")
    ] = None,
    comp5_byte_order: Annotated[str | None, typer.Option(help="Copybook COMP-5: big (default) or little.")] = None,
    source_format: Annotated[str | None, typer.Option(help="Copybook text: fixed columns (default) or free.")] = None,
    edited_numbers: Annotated[
        str | None, typer.Option(help="Copybook numeric-edited pictures: decimal (default) or text.")
    ] = None,
    null_low_values: Annotated[
        str | None, typer.Option(help="Copybook fields of x'00': numbers (default: null numbers), all or none.")
    ] = None,
    null_spaces: Annotated[
        str | None, typer.Option(help="Copybook fields of spaces: numbers (default: null numbers), all or none.")
    ] = None,
    strict: Annotated[
        bool | None, typer.Option(help="Copybook: a record with an invalid value rejects the file (as a pipeline).")
    ] = None,
    set_option: Annotated[
        list[str] | None, typer.Option("--set", help="Copybook: any option by its spec name, KEY=VALUE (repeatable).")
    ] = None,
    compression: Annotated[str, typer.Option(help="auto (by suffix), none, gzip or zip.")] = "auto",
    block_size_mb: Annotated[
        int, typer.Option("--block-size-mb", help="Read block in MiB: must exceed the largest record (1-512).")
    ] = 4,
    lenient_quotes: Annotated[
        bool, typer.Option(help="CSV: read malformed quoting as pyarrow does instead of rejecting the file.")
    ] = False,
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
    if len(delimiter) != 1:
        err.print(
            f"[red]--delimiter must be one character, not {delimiter!r}: pyarrow's CSV reader (the pipelines' "
            "reader) splits on a single character. Ask the client for a one-character delimiter, or replace "
            f"{delimiter!r} by one (e.g. sed 's/{delimiter}/|/g') before converting[/red]"
        )
        raise typer.Exit(2)
    if file.stat().st_size == 0:
        err.print(f"[red]✗ rejected (empty_file): {file.name} is empty (0 bytes). Ask the client to resend it[/red]")
        raise typer.Exit(1)
    opts: dict[str, Any] = {
        "landing": str(file.parent),
        "pattern": "*",
        "encoding": encoding,
        "compression": compression,
        "checksum": "none",
        "arrival": {"mode": "immediate"},
        "block_size_mb": block_size_mb,
    }
    try:
        if copybook is not None or options_file is not None:
            from bulksync.legacy import convert_options as co

            flags = {
                "record_format": record_format, "code_page": code_page, "record": record,
                "segments": co.parse_rule(segments, "--segments") if segments else None,
                "redefines": co.parse_redefines(redefines) if redefines else None,
                "rdw_byte_order": rdw_byte_order, "rdw_includes_header": rdw_includes_header,
                "rdw_length_at": rdw_length_at, "header_bytes": header_bytes, "trailer_bytes": trailer_bytes,
                "header_records": header_records, "trailer_records": trailer_records,
                "skip_records": co.parse_skip(skip) if skip else None, "record_length": record_length,
                "record_length_field": length_field, "record_length_adjust": length_adjust, "trim": trim,
                "float_format": float_format, "comp5_byte_order": comp5_byte_order, "source_format": source_format,
                "edited_numbers": edited_numbers, "null_low_values": null_low_values, "null_spaces": null_spaces,
                "strict": strict, **co.parse_set(set_option or []),
            }  # fmt: skip
            opts |= co.copybook_block(options_file, copybook, flags)
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
                "check_header": header,  # derived names keep the header's own spelling in 'header'
                "lenient_quotes": lenient_quotes,
            }
            opts |= {"format": "csv", "columns": cols, "csv": {**dialect, "detect": detect}}
        options = FileDropOptions.model_validate(opts)
    except ValidationError as exc:  # escaped: pydantic's "[type=…, input_value=…]" is no Rich markup
        err.print(f"[red]invalid options: {markup.escape(str(exc))}[/red]")
        raise typer.Exit(2) from None
    except BulksyncError as exc:
        err.print(f"[red]{type(exc).__name__}: {exc}[/red]")
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
    for line in getattr(source.reader, "error_lines", [])[:10]:
        console.print(f"    {line}", markup=False)
    console.print(f"  wrote {output}")
    console.print("  schema:")
    for field in schema:
        console.print(f"    {field.name}: {field.type}{'' if field.nullable else ' not null'}")
    if shown:
        table = Table(*schema.names, title=f"first {len(shown)} rows")
        for row in shown:
            table.add_row(*("" if v is None else str(v) for v in row.values()))
        console.print(table)
