"""GX suites on disk: ``expectations/<suite>.json``, checked without importing Great Expectations.

A suite is the JSON that GX Core 1.x writes with ``ExpectationSuite.to_json_dict()``::

    {"name": "accounts",
     "expectations": [
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "id"},
         "meta": {"severity": "error"}}]}

bulksync reads one extra key, ``meta.severity`` (``error`` or ``warn``) of each expectation. The
checks here run at DAG parse time (the DAG factory) and again when the gate loads the suite, so a
typo shows as an import error naming the file, the expectation and the field, not as a failed task.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from bulksync.errors import SpecError
from bulksync.quality.catalog import (
    COLUMN_KWARGS,
    COMMON_KWARGS,
    EXPECTATION_KWARGS,
    KNOWN_EXPECTATIONS,
    PANDAS_UNSUPPORTED,
    columns_in_kwargs,
)
from bulksync.quality.model import Severity
from bulksync.settings import expectations_dir

SEVERITIES: tuple[Severity, ...] = ("error", "warn")
GX_SEVERITY: dict[str, Severity] = {"critical": "error", "warning": "warn", "info": "warn"}
"""GX 1.x's own ``severity`` field of an expectation, mapped to bulksync's (used when meta has none)."""

SUITE_KEYS = frozenset({"name", "expectations", "suite_parameters", "meta", "notes", "id"})
EXPECTATION_KEYS = frozenset(
    {
        "type",
        "kwargs",
        "meta",
        "notes",
        "description",
        "severity",
        "success_on_last_run",
        "id",
        "expectation_context",
        "rendered_content",
    }
)
_GX0_KEYS = {
    "expectation_suite_name": "name",
    "expectation_type": "type",
}

Problem = tuple[str, str, str]


def suite_path(name: str) -> Path:
    """Where the suite called ``name`` lives: ``expectations_dir()/<name>.json``."""
    return expectations_dir() / f"{name}.json"


def _init_hint(name: str) -> str:
    return (
        f"create it with `bulksync quality init DATASET --pipeline PIPELINE --suite {name}` "
        "(profiles the latest staged partition) or write it by hand (see docs/quality-suites.md)"
    )


def _missing(name: str, path: Path) -> Problem:
    folder = path.parent
    others = sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []
    close = difflib.get_close_matches(name, others, n=3, cutoff=0.6)
    where = (
        f"no suite {name!r}: looked for {path} (the folder is $BULKSYNC_EXPECTATIONS_DIR, "
        "else expectations/ under $BULKSYNC_HOME)"
    )
    if close:
        where += f"; did you mean {', '.join(repr(c) for c in close)}?"
    elif not folder.is_dir():
        where += "; that folder does not exist"
    return (str(path), "", f"{where}; {_init_hint(name)}")


def _read(name: str) -> tuple[Path, Any, list[Problem]]:
    path = suite_path(name)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return path, None, [_missing(name, path)]
    except OSError as exc:
        return path, None, [(str(path), "", f"cannot read the suite: {exc.strerror}")]
    except UnicodeDecodeError as exc:
        return path, None, [(str(path), "", f"not UTF-8 text (byte {exc.start}); save the file as UTF-8")]
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return path, None, [(str(path), "", f"not valid JSON: line {exc.lineno}, column {exc.colno}: {exc.msg}")]
    return path, data, suite_problems(data, str(path), name=name)


def load_suite_json(name: str) -> dict[str, Any]:
    """Read and check the suite called ``name``; the result loads with ``gx.ExpectationSuite(**d)``.

    Raises:
        SpecError: the file is missing, is not JSON, or is not a valid suite (every problem listed).
    """
    _, data, problems = _read(name)
    if problems:
        raise SpecError(problems)
    return dict(data)


def validate_suite_file(name: str) -> None:
    """Check the suite called ``name`` (for the DAG factory at parse time).

    Raises:
        SpecError: listing every problem as ``(file, field path, message)``.
    """
    load_suite_json(name)


def check_suite(name: str) -> list[str]:
    """Problems of the suite called ``name`` as readable lines (``file: field: message``); empty when fine."""
    _, _, problems = _read(name)
    return [f"{file}: {field}: {msg}" if field else f"{file}: {msg}" for file, field, msg in problems]


def _camel_to_snake(value: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", value).lower()


def _unknown_type(value: str) -> str:
    snake = _camel_to_snake(value)
    if snake in KNOWN_EXPECTATIONS:
        return f"{value!r} is a GX class name; a suite names the type in snake_case: {snake!r}"
    close = difflib.get_close_matches(snake, sorted(KNOWN_EXPECTATIONS), n=3, cutoff=0.6)
    hint = f"did you mean {', '.join(repr(c) for c in close)}?" if close else "see docs/quality-suites.md for the list"
    return f"unknown expectation type {value!r} (not in Great Expectations Core 1.24); {hint}"


def _column_problems(kwargs: Mapping[str, Any], where: str, file: str) -> list[Problem]:
    problems: list[Problem] = []
    for key in COLUMN_KWARGS:
        if key not in kwargs:
            continue
        value = kwargs[key]
        if key in ("column", "column_A", "column_B"):
            if not isinstance(value, str) or not value:
                problems.append((file, f"{where}.kwargs.{key}", f"must be a column name (a string), got {value!r}"))
        elif not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
            problems.append((file, f"{where}.kwargs.{key}", f"must be a non-empty list of column names, got {value!r}"))
    return problems


def _unknown_key(key: str, what: str, allowed: Iterable[str]) -> str:
    """The message for a field ``what`` does not have: the GX 1.x name of a 0.x spelling, else the allowed ones."""
    if key in _GX0_KEYS:
        return f"is the Great Expectations 0.x spelling; GX 1.x calls it {_GX0_KEYS[key]!r}"
    return f"unknown field of {what} (allowed: {', '.join(sorted(allowed))})"


def _expectation_problems(exp: Any, where: str, file: str) -> list[Problem]:
    if not isinstance(exp, dict):
        return [(file, where, f"an expectation must be a JSON object, got {type(exp).__name__}")]
    problems: list[Problem] = []
    for key in sorted(set(exp) - EXPECTATION_KEYS):
        problems.append((file, f"{where}.{key}", _unknown_key(key, "an expectation", EXPECTATION_KEYS)))
    exp_type = exp.get("type")
    if "type" not in exp:
        if "expectation_type" not in exp:
            problems.append(
                (file, f"{where}.type", "missing: name the expectation type, e.g. 'expect_column_to_exist'")
            )
        return problems
    if not isinstance(exp_type, str):
        return [*problems, (file, f"{where}.type", f"must be a string, got {exp_type!r}")]
    if exp_type not in KNOWN_EXPECTATIONS:
        return [*problems, (file, f"{where}.type", _unknown_type(exp_type))]
    if exp_type in PANDAS_UNSUPPORTED:
        instead = PANDAS_UNSUPPORTED[exp_type]
        problems.append(
            (
                file,
                f"{where}.type",
                f"{exp_type} runs only on SQL engines, but bulksync validates staged data with pandas"
                + (f"; use {instead} instead" if instead else "; there is no pandas equivalent"),
            )
        )
    meta = exp.get("meta")
    if meta is not None and not isinstance(meta, dict):
        problems.append((file, f"{where}.meta", f"must be a JSON object, got {type(meta).__name__}"))
    elif meta and "severity" in meta and meta["severity"] not in SEVERITIES:
        problems.append(
            (file, f"{where}.meta.severity", f"is {meta['severity']!r}; use 'error' (the default) or 'warn'")
        )
    if "severity" in exp and exp["severity"] not in GX_SEVERITY:
        problems.append(
            (
                file,
                f"{where}.severity",
                f"is {exp['severity']!r}; GX's severity is one of {', '.join(GX_SEVERITY)} "
                "(bulksync's is meta.severity: 'error' or 'warn')",
            )
        )
    kwargs = exp.get("kwargs", {})
    if not isinstance(kwargs, dict):
        return [*problems, (file, f"{where}.kwargs", f"must be a JSON object, got {type(kwargs).__name__}")]
    spec = EXPECTATION_KWARGS[exp_type]
    for key in spec.required:
        if key not in kwargs:
            what = "the column it checks" if key in COLUMN_KWARGS else "a value"
            problems.append((file, f"{where}.kwargs.{key}", f"missing: {exp_type} needs {key!r} ({what})"))
    allowed = set(spec.required) | set(spec.optional) | COMMON_KWARGS
    for key in sorted(set(kwargs) - allowed):
        close = sorted(a for a in allowed if a.startswith(key)) or difflib.get_close_matches(key, sorted(allowed), 1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        problems.append(
            (
                file,
                f"{where}.kwargs.{key}",
                f"{exp_type} takes no {key!r}; {hint}it takes: {', '.join(sorted(allowed - COMMON_KWARGS))}",
            )
        )
    return problems + _column_problems(kwargs, where, file)


def suite_problems(data: Any, file: str, *, name: str | None = None) -> list[Problem]:
    """Every problem of parsed suite JSON, as ``(file, field path, message)``.

    Args:
        data: the parsed JSON.
        file: the file name to report.
        name: the suite name the file is referenced by; its ``name`` must match it.
    """
    if not isinstance(data, dict):
        return [(file, "", f"a suite must be a JSON object with 'name' and 'expectations', got {type(data).__name__}")]
    problems: list[Problem] = []
    for key in sorted(set(data) - SUITE_KEYS):
        problems.append((file, key, _unknown_key(key, "a suite", SUITE_KEYS)))
    suite_name = data.get("name")
    if "name" not in data:
        problems.append((file, "name", "missing: a suite needs a name (the file name without .json)"))
    elif not isinstance(suite_name, str) or not suite_name:
        problems.append((file, "name", f"must be a non-empty string, got {suite_name!r}"))
    elif name is not None and suite_name != name:
        problems.append((file, "name", f"is {suite_name!r} but the file is {name}.json; make them the same"))
    if "meta" in data and data["meta"] is not None and not isinstance(data["meta"], dict):
        problems.append((file, "meta", f"must be a JSON object, got {type(data['meta']).__name__}"))
    expectations = data.get("expectations")
    if "expectations" not in data:
        problems.append((file, "expectations", "missing: a suite needs a list of expectations"))
    elif not isinstance(expectations, list):
        problems.append((file, "expectations", f"must be a list, got {type(expectations).__name__}"))
    else:
        for i, exp in enumerate(expectations):
            problems.extend(_expectation_problems(exp, f"expectations[{i}]", file))
    return problems


def severity_of(expectation: Mapping[str, Any]) -> Severity:
    """What a failure of this expectation means to the gate: ``error`` or ``warn``.

    ``meta.severity`` decides; without it, GX's own ``severity`` field (``critical`` → ``error``,
    ``warning`` / ``info`` → ``warn``); without either, ``error``.
    """
    meta = expectation.get("meta") or {}
    value = meta.get("severity") if isinstance(meta, Mapping) else None
    if value in SEVERITIES:
        return "warn" if value == "warn" else "error"
    gx_value = expectation.get("severity")
    gx_value = getattr(gx_value, "value", gx_value)  # a FailureSeverity enum from a GX object
    return GX_SEVERITY.get(str(gx_value), "error") if gx_value is not None else "error"


def columns_of(suite: Mapping[str, Any]) -> list[str]:
    """Every column a suite refers to, in order of first mention."""
    out: list[str] = []
    for exp in suite.get("expectations") or []:
        kwargs = exp.get("kwargs") if isinstance(exp, Mapping) else None
        if isinstance(kwargs, Mapping):
            out.extend(c for c in columns_in_kwargs(kwargs) if c not in out)
    return out
