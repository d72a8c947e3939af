"""The copybook options of ``bulksync convert``: command-line flags and ``--options FILE.yaml`` merged into
the file-drop option block a pipeline spec holds, so that convert reads a file exactly as the pipeline would.

``--options`` takes either the dataset's whole ``source.options`` block of a ``file_drop`` spec (with
``format: copybook`` and a ``copybook:`` mapping) or just the ``copybook:`` mapping itself
(:class:`~bulksync.legacy.options.CopybookOptions`). Flags given on the command line override the file.
A relative copybook path is looked for as a pipeline would (``$BULKSYNC_HOME/include/copybooks/``), then
next to the options file, then in the current directory.

Only light modules are imported here: ``bulksync convert`` must start fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bulksync.errors import SpecError

#: Flags whose value is a rule: parsed by :func:`parse_rule` / :func:`parse_skip`.
FILE_DROP_KEYS = ("on_record_errors", "encoding", "compression", "max_uncompressed_mb")


def parse_rule(text: str, what: str) -> str | dict[str, Any]:
    """``BRANCH`` or ``FIELD:VALUE=NAME,VALUE=NAME`` (a :class:`SelectRule`)."""
    if ":" not in text:
        return text
    field, _, rest = text.partition(":")
    when: dict[str, str] = {}
    for pair in filter(None, (p.strip() for p in rest.split(","))):
        value, sep, name = pair.partition("=")
        if not sep or not name.strip():
            raise SpecError([("command line", what, f"{pair!r}: expected VALUE=NAME (e.g. C=ORD-CARD)")])
        when[value.strip()] = name.strip()
    if not when:
        raise SpecError([("command line", what, f"{text!r}: expected FIELD:VALUE=NAME,VALUE=NAME")])
    return {"field": field.strip(), "when": when}


def parse_redefines(values: list[str]) -> dict[str, Any]:
    """``--redefines BASE=BRANCH`` or ``--redefines BASE=FIELD:VALUE=BRANCH,…`` (repeatable)."""
    out: dict[str, Any] = {}
    for v in values:
        base, sep, rule = v.partition("=")
        if not sep or not rule:
            raise SpecError([("command line", "--redefines", f"{v!r}: expected BASE=BRANCH or BASE=FIELD:V=BRANCH,…")])
        out[base.strip()] = parse_rule(rule, "--redefines")
    return out


def parse_skip(text: str) -> dict[str, Any]:
    """``--skip FIELD=VALUE,VALUE`` (a :class:`SkipRule`)."""
    field, sep, values = text.partition("=")
    if not sep or not values:
        raise SpecError(
            [("command line", "--skip", f"{text!r}: expected FIELD=VALUE[,VALUE…] (e.g. REC-TYPE=HDR,TRL)")]
        )
    return {"field": field.strip(), "values": [v.strip() for v in values.split(",") if v.strip()]}


def parse_set(values: list[str]) -> dict[str, Any]:
    """``--set KEY=VALUE`` (repeatable; the value is read as YAML): any copybook option by its spec name."""
    import yaml

    out: dict[str, Any] = {}
    for v in values:
        key, sep, raw = v.partition("=")
        if not sep:
            raise SpecError([("command line", "--set", f"{v!r}: expected KEY=VALUE (e.g. record_length=120)")])
        out[key.strip()] = yaml.safe_load(raw) if raw.strip() else None
    return out


def _read_options(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(file-drop keys, copybook block) of an options file."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise SpecError([(str(path), "", f"cannot read the options file: {e.strerror or e}")]) from None
    except yaml.YAMLError as e:
        raise SpecError([(str(path), "", f"not valid YAML: {e}")]) from None
    if isinstance(data, dict) and isinstance(data.get("options"), dict):
        data = data["options"]  # a dataset's `source:` block pasted whole
    if not isinstance(data, dict) or "copybook" not in data:
        raise SpecError(
            [
                (
                    str(path),
                    "",
                    "expected the file_drop options block (format: copybook, copybook: {…}) or the "
                    "copybook block itself (copybook: FILE.cpy, record_format: …)",
                )
            ]
        )
    if isinstance(data["copybook"], dict):
        fmt = data.get("format", "copybook")
        if fmt != "copybook":
            raise SpecError([(str(path), "format", f"format is {fmt!r}: convert --options reads copybook options")])
        drop = {k: data[k] for k in FILE_DROP_KEYS if k in data}
        return drop, dict(data["copybook"])
    return {}, dict(data)


def _locate(copybook: str, options_file: Path | None) -> str:
    from bulksync.legacy.plan import copybook_path

    p = Path(copybook)
    if p.is_absolute():
        return str(p)
    for candidate in (copybook_path(copybook), *((options_file.parent / p,) if options_file else ()), Path.cwd() / p):
        if candidate.exists():
            return str(candidate.resolve())
    return copybook  # the reader names the missing file


def copybook_block(options_file: Path | None, copybook: Path | None, flags: dict[str, Any]) -> dict[str, Any]:
    """The file-drop option keys of a copybook file: ``{"format", "copybook", "on_record_errors", …}``.

    Args:
        options_file: ``--options`` (or None).
        copybook: ``--copybook`` (or None: the options file must name it).
        flags: copybook options given as flags (None values are flags not given).

    Raises:
        SpecError: the options file is unreadable or names no copybook.
    """
    drop: dict[str, Any] = {}
    block: dict[str, Any] = {}
    if options_file is not None:
        drop, block = _read_options(options_file)
    block.update({k: v for k, v in flags.items() if v is not None})
    if copybook is not None:
        block["copybook"] = str(copybook.resolve())
    if "copybook" not in block:
        raise SpecError([("command line", "--copybook", "name the copybook (--copybook FILE.cpy or in --options)")])
    block["copybook"] = _locate(str(block["copybook"]), options_file)
    strict = bool(block.get("strict"))
    drop.setdefault("on_record_errors", "quarantine_file" if strict else "load")
    return {**drop, "format": "copybook", "copybook": block}
