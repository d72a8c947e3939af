"""Loading specs from YAML with errors that name the file, the field path and the problem."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from bulksync.errors import SpecError
from bulksync.spec.hints import did_you_mean, line_of
from bulksync.spec.models import PipelineSpec

SPEC_SUFFIXES = (".yaml", ".yml")


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


def load_spec(path: str | Path) -> PipelineSpec:
    """Read and validate one spec file.

    Raises:
        SpecError: the file cannot be read, is not YAML, or does not validate.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError([(str(path), "", f"cannot read the file: {exc.strerror}")]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise SpecError([(str(path), "", f"not valid YAML: {where}{getattr(exc, 'problem', exc)}")]) from None
    spec = parse_spec(data, str(path), text)
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
