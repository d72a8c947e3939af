"""Moving files through a landing zone: claim into ``processing/``, then ``archive/`` or ``quarantine/``.

``processing/{interval}/`` holds the files one interval's extract claimed and has not committed
yet; a retry of that interval finds them there. ``archive/YYYY/MM/DD/`` holds processed files,
``quarantine/`` rejected ones, each beside a ``<name>.reason.json`` saying why and what to do.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any

from bulksync.sources.file_drop.landing import Candidate
from bulksync.sources.file_drop.store import LandingStore

log = logging.getLogger(__name__)

WHAT_TO_DO = {
    "checksum_mismatch": "Ask the client to resend the file (it was damaged or changed after its checksum was made).",
    "control_total_mismatch": "Ask the client whether the file is complete and resend it.",
    "trailer_missing": "Ask the client for the agreed trailer record, or fix options.control_total.",
    "duplicate": "Nothing to do if the resend was a mistake; to load it again use `bulksync files reprocess`.",
    "empty_file": "Ask the client to resend the file.",
    "size_limit_exceeded": "Raise options.max_uncompressed_mb if the file is genuine, then reprocess it.",
    "zip_members": "Ask the client to send one file per zip.",
}
DEFAULT_TO_DO = (
    "Fix the file (or the spec if the layout changed), drop it into the landing folder again or run "
    "`bulksync files reprocess`"
)


def processing_folder(interval: str) -> str:
    """The folder of files claimed for an interval."""
    return f"processing/{interval}"


def claim(store: LandingStore, cand: Candidate, interval: str) -> bool:
    """Claim a file (and its trigger / checksum companions) for an interval by an atomic rename.

    Returns:
        ``False`` when another run claimed it first.
    """
    folder = processing_folder(interval)
    if not store.claim(cand.name, f"{folder}/{cand.name}"):
        log.info("%s was claimed by another run", cand.name)
        return False
    for comp in cand.companions:
        if store.exists(comp):
            store.claim(comp, f"{folder}/{comp}")
    return True


def _free(store: LandingStore, name: str, sha256: str | None) -> str:
    if not store.exists(name):
        return name
    stamp = sha256[:12] if sha256 else dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%f")
    candidate = f"{name}.{stamp}"
    n = 1
    while store.exists(candidate):
        n += 1
        candidate = f"{name}.{stamp}-{n}"
    return candidate


def archive_name(store: LandingStore, name: str, sha256: str | None, day: dt.date) -> str:
    """A free name for a file in ``archive/YYYY/MM/DD/`` (a name taken already gets its sha256 prefix)."""
    return _free(store, f"archive/{day:%Y/%m/%d}/{name}", sha256)


def archive(store: LandingStore, current: str, name: str, sha256: str | None, day: dt.date) -> str:
    """Move a processed file to ``archive/YYYY/MM/DD/``; return its new name."""
    dest = archive_name(store, name, sha256, day)
    store.move(current, dest)
    return dest


def _suffix(companion: str, data: str) -> str:
    """``.sha256`` of ``x.csv.sha256`` beside ``x.csv``; ``.done`` of a trigger ``x.done``."""
    if companion.startswith(data):
        return companion[len(data) :]
    return "." + companion.rsplit(".", 1)[-1]


def move_companions(store: LandingStore, companions: list[str], data: str, dest: str) -> None:
    """Move companions of a data file beside its new name ``dest``."""
    for comp in companions:
        if store.exists(comp):
            store.move(comp, _free(store, f"{dest}{_suffix(comp, data)}", None))


def quarantine(
    store: LandingStore,
    current: str | None,
    name: str,
    reason: str,
    message: str,
    companions: list[str] | None = None,
    **info: Any,
) -> str:
    """Move a rejected file (and its companions) to ``quarantine/`` and write its ``.reason.json``.

    Args:
        store: the landing zone.
        current: where the file is now (``None`` when there is no file, e.g. an unsafe name).
        name: the file's name as it arrived.
        reason: the reason code.
        message: what is wrong, naming file / line / column / value.
        companions: trigger and checksum files moved along.
        info: more fields for the reason file (size, sha256, interval, run id …).

    Returns:
        the file's name in the landing zone after the move.
    """
    safe = name if "/" not in name and name not in ("", ".", "..") else name.replace("/", "_").replace("..", "__")
    dest = _free(store, f"quarantine/{safe}", info.get("sha256"))
    if current is not None and store.exists(current):
        store.move(current, dest)
    for comp in companions or []:
        if store.exists(comp):
            store.move(comp, _free(store, f"{dest}{_suffix(comp, current or name)}", None))
    body = {
        "file": name,
        "quarantined_as": dest,
        "reason": reason,
        "message": message,
        "what_to_do": WHAT_TO_DO.get(reason, DEFAULT_TO_DO),
        "quarantined_at": dt.datetime.now(dt.UTC).isoformat(),
        **info,
    }
    store.write_text(f"{dest}.reason.json", json.dumps(body, indent=2, default=str))
    log.warning("quarantined %s as %s: %s: %s", name, dest, reason, message)
    return dest
