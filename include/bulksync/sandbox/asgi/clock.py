"""A movable clock: the stand-in's notion of "now" for stamps of changed records."""

from __future__ import annotations

import datetime as dt


class Clock:
    """``now()`` is the real UTC time unless :meth:`set` fixed it (tests move it to stamp changes)."""

    def __init__(self) -> None:
        self._fixed: dt.datetime | None = None

    def set(self, now: dt.datetime | None) -> None:
        """Fix the clock at ``now`` (aware, any zone); ``None`` restores the real time."""
        self._fixed = None if now is None else now.astimezone(dt.UTC)

    def advance(self, seconds: float) -> dt.datetime:
        """Move a fixed clock forward (fixing it at the real time first); returns the new now."""
        self._fixed = self.now() + dt.timedelta(seconds=seconds)
        return self._fixed

    def now(self) -> dt.datetime:
        """The current stand-in time (UTC)."""
        return self._fixed or dt.datetime.now(dt.UTC)
