"""``bulksync api …`` (presets, try) and ``bulksync sandbox api`` (the stand-ins), a typer sub-app."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

api_app = typer.Typer(help="HTTP API sources: presets and trying a spec against the API.", no_args_is_help=True)
console = Console()
err = Console(stderr=True)


@api_app.command("presets")
def presets(name: Annotated[str | None, typer.Argument(help="A preset: list its objects and columns.")] = None) -> None:
    """List the presets (or one preset's objects, auth kinds and columns)."""
    from bulksync.sources.api.presets import preset, preset_names

    if name is None:
        table = Table("preset", "title", "auth kinds", "objects")
        for n in preset_names():
            p = preset(n)
            table.add_row(n, p.get("title", ""), ", ".join(p.get("auth", {}).get("kinds", [])), ", ".join(p["objects"]))
        console.print(table)
        console.print("Use: source: {kind: api, conn_id: …, options: {preset: NAME, object: OBJECT}}  (docs/api.md)")
        return
    try:
        p = preset(name)
    except ValueError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    console.print(f"[bold]{name}[/bold]: {p.get('title', '')}  (docs/api-{name}.md)")
    for obj, body in p["objects"].items():
        cols = (body.get("records") or {}).get("columns") or []
        window = (body.get("window") or {}).get("cursor_field")
        console.print(f"\n  [bold]{obj}[/bold]  {body.get('description', '')}", soft_wrap=True)
        console.print(f"    incremental on: {window or 'no (full extracts)'}", soft_wrap=True)
        shown = cols if isinstance(cols, str) else ", ".join(f"{c['name']} {c.get('type', 'string')}" for c in cols)
        console.print(f"    columns: {shown}", soft_wrap=True)


@api_app.command("try")
def try_spec(
    spec_file: Annotated[Path, typer.Argument(help="A pipeline spec file.")],
    dataset: Annotated[str, typer.Argument(help="The dataset with the api source.")],
    pages: int = typer.Option(2, min=1, help="Pages to fetch (per query)."),
    start: str | None = typer.Option(None, help="Window start (ISO, UTC if no offset) for incremental specs."),
    end: str | None = typer.Option(None, help="Window end, exclusive."),
    rows: int = typer.Option(10, min=0, help="Typed rows to show."),
) -> None:
    """Fetch the first pages: show the request sequence, the record paths, and the typed rows (no staging)."""
    import datetime as dt
    import logging

    from bulksync.errors import BulksyncError, SpecError
    from bulksync.sources.api.trial import trial
    from bulksync.spec.loader import load_spec
    from bulksync.staging.partition import Window

    logging.basicConfig(level=logging.WARNING)
    try:
        spec = load_spec(spec_file)
        ds = spec.dataset(dataset)
    except (SpecError, KeyError, ValueError) as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    if ds.source.kind != "api":
        err.print(f"[red]dataset {dataset!r} has a {ds.source.kind} source, not api[/red]")
        raise typer.Exit(2)

    def when(v: str | None) -> dt.datetime | None:
        if not v:
            return None
        d = dt.datetime.fromisoformat(v)
        return d if d.tzinfo else d.replace(tzinfo=dt.UTC)

    try:
        result = trial(ds.source, Window(when(start), when(end)), pages)
    except BulksyncError as exc:
        err.print(f"[red]{type(exc).__name__}: {exc}[/red]")
        raise typer.Exit(1) from None
    console.print("[bold]requests[/bold]")
    for line in result["requests"]:
        console.print(f"  {line}", soft_wrap=True, highlight=False)
    console.print("[bold]record paths of the first record[/bold]")
    for path, kind in result["paths"]:
        console.print(f"  {path}: {kind}", highlight=False)
    if result.get("inferred"):
        console.print("[bold]inferred columns (paste into records.columns to freeze them)[/bold]")
        console.print(result["inferred"], highlight=False, markup=False)
    table = result["table"]
    console.print(
        f"[bold]typed rows[/bold] ({table.num_rows} read, schema "
        + ", ".join(f"{f.name}: {f.type}" for f in table.schema)
        + ")",
        soft_wrap=True,
    )
    view = Table(*table.column_names)
    for r in table.slice(0, rows).to_pylist():
        view.add_row(*("" if v is None else str(v) for v in r.values()))
    console.print(view)


def sandbox_api(
    names: Annotated[
        list[str] | None, typer.Argument(help="Stand-ins to start (default: every vendor stand-in).")
    ] = None,
    count: Annotated[
        list[str] | None, typer.Option("--count", help="Rows of a table: NAME.TABLE=N, e.g. hubspot.contacts=100000.")
    ] = None,
    option: Annotated[
        list[str] | None, typer.Option("--option", help="A stand-in option: NAME.KEY=VALUE (JSON value).")
    ] = None,
    records: int = typer.Option(200, help="Rows of every other table."),
    latency: float = typer.Option(0.0, help="Seconds added to every API request."),
    conn_prefix: str = typer.Option("", help="Connection ids are PREFIX + name (e.g. acme_ → acme_hubspot)."),
    workdir: Path = typer.Option(Path(".local/sandbox/api"), help="Certificates and keys go here."),
    env_file: Path | None = typer.Option(None, help="Also write the export lines here once serving (removed on exit)."),
) -> None:
    """Start API stand-ins over HTTPS on free ports and print ready AIRFLOW_CONN_… lines; serve until Ctrl-C."""
    from bulksync.sandbox.apis import STANDINS, standin_class
    from bulksync.sandbox.asgi import FaultSettings, StandInConfig

    chosen = names or [n for n in STANDINS if n != "acme_rest"]
    counts: dict[str, dict[str, int]] = {}
    options: dict[str, dict[str, Any]] = {}
    for item in count or []:
        key, _, value = item.partition("=")
        sname, _, table = key.partition(".")
        if not value.isdigit() or not table:
            err.print(f"[red]--count {item!r}: expected NAME.TABLE=N, e.g. hubspot.contacts=100000[/red]")
            raise typer.Exit(2)
        counts.setdefault(sname, {})[table] = int(value)
    for item in option or []:
        key, _, value = item.partition("=")
        sname, _, opt = key.partition(".")
        try:
            options.setdefault(sname, {})[opt] = json.loads(value)
        except ValueError:
            options.setdefault(sname, {})[opt] = value
    started = []
    try:
        for n in chosen:
            try:
                cls = standin_class(n)
            except KeyError as exc:
                err.print(f"[red]{exc.args[0]}[/red]")
                raise typer.Exit(2) from None
            cfg = StandInConfig(
                records=records,
                counts=counts.get(n, {}),
                options=options.get(n, {}),
                workdir=(workdir / n).resolve(),
                faults=FaultSettings(latency=latency),
            )
            started.append((n, cls(cfg).start()))
        lines = [s.env_line(conn_prefix + n) for n, s in started]
        for n, s in started:
            console.print(
                f"# {n} stand-in at {s.base_url} (admin key {s.admin_key}, header X-Sandbox-Admin-Key)",
                soft_wrap=True,
                highlight=False,
                markup=False,
            )
        for line in lines:
            console.print(line, soft_wrap=True, highlight=False, markup=False)
        if env_file:
            tmp = env_file.with_suffix(".tmp")
            tmp.write_text("\n".join(lines) + "\n")
            tmp.chmod(0o600)
            tmp.replace(env_file)

        def _stop(signum: int, frame: object) -> None:
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, _stop)
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        for _, s in started:
            s.stop()
        if env_file:
            env_file.unlink(missing_ok=True)
