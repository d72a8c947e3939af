"""Loading specs from YAML with errors that name the file, the field path and the problem.

Specs are read with bounds, because the DAG processor parses every spec of the folder: a file may
hold at most :data:`MAX_SPEC_BYTES` bytes, nest at most :data:`MAX_DEPTH` levels, and hold at most
:data:`MAX_NODES` values once its aliases (``*anchor``) are expanded — a kilobyte "billion laughs"
file is refused before anything walks its expansion. ``bulksync validate`` and the DAG file read
specs through this one loader, so validate refuses whatever the DAG processor would choke on.

Booleans are YAML 1.2's: only ``true`` / ``false`` (any case). YAML 1.1 also read ``on``, ``off``,
``yes`` and ``no`` as booleans, which turned the documented ``alerts: {on: [failed]}`` into a
``True:`` key and country codes like ``NO`` into ``false``; boolean fields still accept those words.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from bulksync.errors import SpecError
from bulksync.spec.hints import did_you_mean, line_of
from bulksync.spec.models import PipelineSpec

SPEC_SUFFIXES = (".yaml", ".yml")

MAX_SPEC_BYTES = 1 << 20
"""Largest spec file read (1 MiB; ``$BULKSYNC_SPEC_MAX_BYTES`` overrides). Real specs are a few KB."""
MAX_NODES = 200_000
"""Most YAML values (scalars, lists, mappings) a spec may hold with its aliases expanded."""
MAX_DEPTH = 64
"""Deepest nesting of lists and mappings in a spec."""


class _SpecLimitError(yaml.YAMLError):
    """A spec exceeds a bound; carries the message for the user."""


def max_spec_bytes() -> int:
    """The spec size bound: ``$BULKSYNC_SPEC_MAX_BYTES`` or :data:`MAX_SPEC_BYTES`."""
    raw = os.environ.get("BULKSYNC_SPEC_MAX_BYTES", "").strip()
    return int(raw) if raw.isdigit() and int(raw) > 0 else MAX_SPEC_BYTES


_LOADER_BASE: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class SpecYamlLoader(_LOADER_BASE):  # type: ignore[misc, valid-type]
    """``yaml.SafeLoader`` (libyaml's when installed) with YAML 1.2 booleans.

    Use it through :func:`parse_yaml`, which checks the bounds first: libyaml's composer recurses
    without a limit and crashes the process (SIGSEGV) on a deeply nested file.
    """

    yaml_implicit_resolvers = {  # noqa: RUF012 - PyYAML's class-level resolver table
        first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }


SpecYamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def _line(event: Any) -> str:
    mark = getattr(event, "start_mark", None)
    return f"line {mark.line + 1}" if mark is not None else "somewhere"


def check_bounds(text: str) -> None:
    """Refuse YAML nesting deeper than :data:`MAX_DEPTH` or expanding past :data:`MAX_NODES` values.

    One pass over the parser's events, no tree built: each anchor's expanded size is known when its
    node ends and an alias adds that size, so a kilobyte alias bomb is refused after reading a
    kilobyte. An alias to a node that is still open (a recursive structure) is refused too.

    Raises:
        _SpecLimitError: naming the line and the bound.
        yaml.YAMLError: the text is not YAML.
    """
    sizes: dict[str, int] = {}
    frames: list[list[Any]] = []  # [anchor, expanded size so far] per open list or mapping
    total = 0  # values of the document so far, aliases expanded
    parser = _LOADER_BASE(text)
    try:
        while parser.check_event():
            event = parser.get_event()
            if isinstance(event, yaml.CollectionStartEvent):
                if len(frames) >= MAX_DEPTH:
                    raise _SpecLimitError(
                        f"{_line(event)}: lists and mappings are nested more than {MAX_DEPTH} "
                        "levels deep; a pipeline spec needs far fewer, flatten the structure"
                    )
                frames.append([event.anchor, 1])
                total += 1
                continue
            if isinstance(event, yaml.CollectionEndEvent):
                anchor, size = frames.pop()
                if anchor is not None:
                    sizes[anchor] = size
                if frames:
                    frames[-1][1] += size
                continue
            if isinstance(event, yaml.ScalarEvent):
                size = 1
                if event.anchor is not None:
                    sizes[event.anchor] = 1
            elif isinstance(event, yaml.AliasEvent):
                if event.anchor not in sizes:
                    raise _SpecLimitError(
                        f"{_line(event)}: alias *{event.anchor} refers to a list or mapping "
                        "that contains it (a recursive structure), or to no anchor; a spec cannot be recursive"
                    )
                size = sizes[event.anchor]
            else:
                continue
            total += size
            if frames:
                frames[-1][1] += size
            if total > MAX_NODES:
                raise _SpecLimitError(
                    f"{_line(event)}: the document expands to more than {MAX_NODES:,} values "
                    "once its aliases (*name) are expanded (an alias bomb, or anchors reused far too often); "
                    "write the values out or reuse anchors less"
                )
    finally:
        parser.dispose()


def spec_files(folder: str | Path) -> list[Path]:
    """Return the spec files of a folder, sorted (files starting with ``_`` or ``.`` are skipped)."""
    root = Path(folder)
    if not root.is_dir():
        raise SpecError([(str(root), "", "spec folder does not exist; set BULKSYNC_SPECS_DIR or BULKSYNC_HOME")])
    return sorted(
        p for p in root.iterdir() if p.suffix in SPEC_SUFFIXES and p.is_file() and not p.name.startswith(("_", "."))
    )


def format_loc(loc: Iterable[int | str]) -> str:
    """Turn a pydantic error location into a readable path like ``datasets[0].source.options.table``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(part, str) and part.startswith(("kind=", "step=")):
            continue
        else:
            out += f".{part}" if out else str(part)
    return out


def _dataset_hint(data: Any, loc: tuple[int | str, ...]) -> str:
    """Add the dataset's name after its index, so ``datasets[1]`` reads ``datasets[1] (orders)``."""
    if len(loc) >= 2 and loc[0] == "datasets" and isinstance(loc[1], int) and isinstance(data, dict):
        try:
            name = data["datasets"][loc[1]].get("name")
        except (KeyError, IndexError, TypeError, AttributeError):
            return ""
        return f" (dataset {name!r})" if name else ""
    return ""


def parse_spec(data: Any, file: str, text: str | None = None) -> PipelineSpec:
    """Validate already-loaded YAML data as a pipeline spec (``text``: the YAML, for line numbers).

    Raises:
        SpecError: listing every problem with its field path.
    """
    if not isinstance(data, dict):
        raise SpecError([(file, "", f"a spec must be a YAML mapping, got {type(data).__name__}")])
    try:
        return PipelineSpec.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False):
            loc = tuple(err["loc"])
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = "unknown field (check the spelling; see docs/specs.md for the fields)"
            msg += did_you_mean(PipelineSpec, err) + (f" (line {n})" if (n := line_of(text, loc)) else "")
            problems.append((file, format_loc(loc) + _dataset_hint(data, loc), msg))
        raise SpecError(problems) from None


def read_spec_yaml(path: str | Path) -> Any:
    """Read one spec file as YAML data, within the bounds of this module.

    Raises:
        SpecError: the file cannot be read, is larger than :func:`max_spec_bytes`, nests too deep,
            expands its aliases past :data:`MAX_NODES` values, or is not YAML.
    """
    return parse_yaml(read_spec_text(path), str(path))


def read_spec_text(path: str | Path) -> str:
    """Read one spec file's text, refusing files larger than :func:`max_spec_bytes` or not UTF-8.

    Raises:
        SpecError: the file cannot be read, is too large or is not UTF-8.
    """
    path = Path(path)
    limit = max_spec_bytes()
    try:
        with path.open("rb") as f:
            raw = f.read(limit + 1)
    except OSError as exc:
        raise SpecError([(str(path), "", f"cannot read the file: {exc.strerror}")]) from None
    if len(raw) > limit:
        raise SpecError(
            [
                (
                    str(path),
                    "",
                    f"the file is larger than {limit:,} bytes, the limit for a pipeline spec; split it into one "
                    "spec per pipeline, or raise BULKSYNC_SPEC_MAX_BYTES if it really must be this big",
                )
            ]
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError([(str(path), "", f"not UTF-8 text (byte {exc.start}); save the spec as UTF-8")]) from None
    return text


def parse_yaml(text: str, file: str) -> Any:
    """Parse spec YAML text with :class:`SpecYamlLoader`.

    Raises:
        SpecError: not YAML, nested too deep or expanding past the alias bound; names ``file``.
    """
    try:
        check_bounds(text)
        return yaml.load(text, Loader=SpecYamlLoader)  # a SafeLoader subclass: no arbitrary objects
    except _SpecLimitError as exc:
        raise SpecError([(file, "", str(exc))]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise SpecError([(file, "", f"not valid YAML: {where}{getattr(exc, 'problem', exc)}")]) from None


def load_spec(path: str | Path) -> PipelineSpec:
    """Read and validate one spec file.

    Raises:
        SpecError: the file cannot be read, is not YAML, or does not validate.
    """
    path = Path(path)
    text = read_spec_text(path)
    spec = parse_spec(parse_yaml(text, str(path)), str(path), text)
    expected = path.stem
    if spec.pipeline != expected and f"{spec.tenant}__{spec.pipeline}" != expected:
        raise SpecError(
            [
                (
                    str(path),
                    "pipeline",
                    f"is {spec.pipeline!r} but the file is named {path.name!r}; "
                    f"name the file {spec.pipeline}.yaml or {spec.tenant}__{spec.pipeline}.yaml",
                )
            ]
        )
    return spec


def load_specs(folder: str | Path) -> list[PipelineSpec]:
    """Load every spec of a folder; raise one :class:`SpecError` listing the problems of all files."""
    specs: list[PipelineSpec] = []
    problems: list[tuple[str, str, str]] = []
    seen: dict[str, Path] = {}
    for path in spec_files(folder):
        try:
            spec = load_spec(path)
        except SpecError as exc:
            problems.extend(exc.problems)
            continue
        if spec.dag_id in seen:
            problems.append(
                (str(path), "pipeline", f"tenant+pipeline {spec.dag_id!r} is already defined in {seen[spec.dag_id]}")
            )
            continue
        seen[spec.dag_id] = path
        specs.append(spec)
    if problems:
        raise SpecError(problems)
    return specs
