"""Finding complete files in a landing zone: patterns, arrival conventions and what travels with a file.

:func:`discover` looks at the landing root once and sorts what it sees into files ready to claim,
files not complete yet (and why), and entries that can never be loaded (a directory or FIFO
matching the pattern, a symlink, an unsafe name in a control file), each with a reason code. It
changes nothing; the sensor and the extract both call it.
"""

from __future__ import annotations

import fnmatch
import logging
import re
import time
from dataclasses import dataclass, field

from bulksync.sources.file_drop.store import Entry, LandingStore, unsafe_name
from bulksync.spec.file_drop import RESERVED_FOLDERS, FileDropOptions

log = logging.getLogger(__name__)

CHECKSUM_SUFFIXES = (".sha256", ".md5")


@dataclass
class Candidate:
    """A data file found in the landing root.

    Attributes:
        name: its name in the landing root.
        size: bytes when found.
        mtime: modification time when found.
        companions: trigger and checksum files that travel with it (claimed, archived, quarantined too).
        control: the control file that listed it, if any.
        expected_rows: the record count its control file gives, if any.
        problem: ``(reason, message)`` when the entry can never be loaded.
    """

    name: str
    size: int = 0
    mtime: float = 0.0
    companions: list[str] = field(default_factory=list)
    control: str | None = None
    expected_rows: int | None = None
    problem: tuple[str, str] | None = None


@dataclass
class Discovery:
    """What one look at the landing root found."""

    ready: list[Candidate] = field(default_factory=list)
    rejected: list[Candidate] = field(default_factory=list)
    waiting: list[tuple[str, str]] = field(default_factory=list)
    controls: list[str] = field(default_factory=list)

    def describe_waiting(self) -> str:
        """``name (why)`` for each file not complete yet."""
        return ", ".join(f"{n} ({why})" for n, why in self.waiting) or "none"


def matches(name: str, patterns: list[str]) -> bool:
    """Whether a name matches one of the glob patterns (case-sensitive, like the file system)."""
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def _companions(name: str, names: set[str], opts: FileDropOptions) -> tuple[list[str], list[str]]:
    """(trigger files, checksum sidecars) of a data file present in ``names``."""
    stem = name.rsplit(".", 1)[0] if "." in name else name
    triggers = []
    for suffix in opts.arrival.trigger_suffixes:
        for candidate in (name + suffix, stem + suffix):
            if candidate in names and candidate not in triggers and candidate != name:
                triggers.append(candidate)
    sums = [name + s for s in CHECKSUM_SUFFIXES if name + s in names]
    return triggers, sums


def _is_companion(name: str, opts: FileDropOptions) -> bool:
    suffixes = (*opts.arrival.trigger_suffixes, *CHECKSUM_SUFFIXES)
    if name.endswith(suffixes):
        return True
    return bool(opts.arrival.control_pattern and fnmatch.fnmatchcase(name, opts.arrival.control_pattern))


_CONTROL_LINE = re.compile(r"^\s*(?P<name>[^\s,;|]+)(?:\s*[\s,;|]\s*(?P<count>\d+))?")


def parse_control_file(text: str) -> list[tuple[str, int | None]]:
    """The ``(file name, record count)`` lines of a control file.

    One data file per line, optionally followed by its record count, separated by blanks, ``,``,
    ``;`` or ``|``; empty lines and lines starting with ``#`` are ignored.
    """
    out: list[tuple[str, int | None]] = []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        m = _CONTROL_LINE.match(line)
        if m:
            out.append((m["name"], int(m["count"]) if m["count"] else None))
    return out


def _unusable(e: Entry, opts: FileDropOptions) -> tuple[str, str] | None:
    what = ", ".join(repr(p) for p in opts.patterns)
    if e.kind == "symlink":
        if not e.inside:
            return (
                "symlink_outside_landing",
                f"{e.name} is a symbolic link pointing outside the landing zone; bulksync never follows it. "
                "Ask the client to upload the file itself",
            )
        return ("symlink", f"{e.name} is a symbolic link; bulksync reads only regular files. Upload the file itself")
    if e.kind == "dir":
        return ("not_a_regular_file", f"{e.name} is a directory matching {what}; only regular files are read")
    if e.kind == "other":
        return ("not_a_regular_file", f"{e.name} is a FIFO, socket or device matching {what}; only regular files")
    return None


def discover(store: LandingStore, opts: FileDropOptions, now: float | None = None) -> Discovery:
    """Sort the landing root into ready, waiting and rejected files (changes nothing).

    Args:
        store: the landing zone.
        opts: the file drop's options (patterns, arrival convention).
        now: the current time (seconds since the epoch), for the stable-size rule.
    """
    now = time.time() if now is None else now
    entries = {e.name: e for e in store.list() if e.name not in RESERVED_FOLDERS and not e.name.startswith(".")}
    names = set(entries)
    found = Discovery()
    arrival = opts.arrival
    if arrival.mode == "control_file":
        _from_control_files(store, opts, entries, found, now)
        return found
    for name, e in entries.items():
        if not matches(name, opts.patterns) or _is_companion(name, opts):
            continue
        triggers, sums = _companions(name, names, opts)
        cand = Candidate(name, e.size, e.mtime, companions=[*triggers, *sums])
        problem = _unusable(e, opts)
        if problem:
            cand.problem = problem
            found.rejected.append(cand)
            continue
        if arrival.mode == "trigger" and not triggers:
            found.waiting.append((name, f"no trigger file {name}{arrival.trigger_suffixes[0]} yet"))
            continue
        if arrival.mode == "stable_size" and now - e.mtime < arrival.stable_seconds:
            found.waiting.append((name, f"still being written: changed {now - e.mtime:.0f}s ago"))
            continue
        found.ready.append(cand)
    return found


def _from_control_files(
    store: LandingStore, opts: FileDropOptions, entries: dict[str, Entry], found: Discovery, now: float
) -> None:
    pattern = opts.arrival.control_pattern or ""
    names = set(entries)
    for name, e in sorted(entries.items()):
        if not fnmatch.fnmatchcase(name, pattern) or e.kind != "file":
            continue
        if now - e.mtime < opts.arrival.stable_seconds and opts.arrival.stable_seconds:
            found.waiting.append((name, f"control file still being written: changed {now - e.mtime:.0f}s ago"))
            continue
        listed = parse_control_file(store.read_text(name, encoding="utf-8"))
        missing = [n for n, _ in listed if unsafe_name(n) is None and n not in entries]
        if missing:
            found.waiting.extend((n, f"listed in {name} but not arrived yet") for n in missing)
            continue
        found.controls.append(name)
        for data, count in listed:
            problem = unsafe_name(data)
            if problem:
                found.rejected.append(
                    Candidate(
                        data,
                        control=name,
                        problem=(
                            "unsafe_name",
                            f"{name} lists {data!r}: {problem}; the entry is ignored. Ask the client to list plain "
                            "file names of the landing folder",
                        ),
                    )
                )
                continue
            entry = entries[data]
            _, sums = _companions(data, names, opts)
            cand = Candidate(data, entry.size, entry.mtime, companions=sums, control=name, expected_rows=count)
            unusable = _unusable(entry, opts)
            if unusable:
                cand.problem = unusable
                found.rejected.append(cand)
            else:
                found.ready.append(cand)
