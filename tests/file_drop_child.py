"""A file-drop run in its own process, for the kill and concurrency tests: ``python -m tests.file_drop_child JSON``.

JSON: ``spec`` (a pipeline spec dump), ``window`` ([start, end] ISO or nulls), ``run_id``,
``try_number``, ``stages`` (``extract``, ``transform``, ``load``, ``reconcile``) and optionally
``pause``: ``{"at": point, "nth": n, "flag": path, "go": path}``. At the ``nth`` pass of ``point`` the
child creates ``flag`` and waits until ``go`` exists (or until the test SIGKILLs it). Points:

``claim``        after a file was claimed into ``processing/``
``accept``       after a file's ledger row was accepted (committed)
``committed``    after the staging partition committed, before archiving
``archive``      after one accepted file was moved into ``archive/``
``reconcile``    after the load, before reconcile
``lease``        right after the interval's lease was taken

The child prints one JSON line on stdout: ``{"ok": true, "rows": …}`` or ``{"ok": false, "error": …}``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any


def _pause_after(owner: Any, name: str, pause: dict[str, Any], when: Any = None) -> None:
    real = getattr(owner, name)
    seen = [0]

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        out = real(*args, **kwargs)
        if when is None or when(args, kwargs, out):
            seen[0] += 1
            if seen[0] == int(pause.get("nth", 1)):
                Path(pause["flag"]).write_text("here")
                while not Path(pause["go"]).exists():
                    time.sleep(0.02)
        return out

    setattr(owner, name, wrapper)


def _install(pause: dict[str, Any]) -> None:
    from bulksync import stages
    from bulksync.sources.file_drop import claim, ledger, source, store

    at = pause["at"]
    if at == "claim":
        _pause_after(claim, "claim", pause, lambda a, k, out: bool(out))
    elif at == "accept":
        _pause_after(ledger.Ledger, "accept", pause)
    elif at == "committed":
        real = source.FileDropSource.committed

        def committed(self: Any, manifest: Any) -> None:
            Path(pause["flag"]).write_text("here")
            while not Path(pause["go"]).exists():
                time.sleep(0.02)
            real(self, manifest)

        source.FileDropSource.committed = committed  # type: ignore[method-assign]
    elif at == "archive":
        _pause_after(store.LocalLandingStore, "move", pause, lambda a, k, out: str(a[2]).startswith("archive/"))
    elif at == "lease":
        _pause_after(ledger.Ledger, "take_lease", pause)
    elif at == "reconcile":
        _pause_after(stages, "load", pause)
    else:
        raise ValueError(at)


def main(arg: str) -> int:
    from bulksync import stages
    from bulksync.errors import BulksyncError
    from bulksync.spec.models import PipelineSpec
    from bulksync.staging.partition import Window

    logging.getLogger("bulksync").setLevel(logging.INFO)
    args = json.loads(arg)
    spec = PipelineSpec.model_validate(args["spec"])
    start, end = (dt.datetime.fromisoformat(x) if x else None for x in args["window"])
    window = Window(start, end)
    if args.get("pause"):
        _install(args["pause"])
    ds = spec.datasets[0]
    ctx = stages.RunContext(run_id=args["run_id"], window=window, try_number=args.get("try_number", 1))
    out: dict[str, Any] = {"ok": True}
    try:
        for stage in args.get("stages", ["extract"]):
            result = getattr(stages, stage)(spec, ds, ctx)
            if stage == "extract":
                out["rows"] = result.rows
                out["files"] = sorted(f["name"] for f in result.extra["source_stats"]["files"])
    except BulksyncError as exc:
        out = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    print(json.dumps(out), flush=True)
    return 0 if out["ok"] else 3


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
