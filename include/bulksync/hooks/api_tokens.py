"""Where OAuth tokens of ``api`` connections live between requests and between tasks.

Access tokens are cached per connection in the process. Refresh tokens that the provider *rotates*
(every refresh returns a new one and revokes the old) must survive the task and never be used by two
tasks at once, or one of them loses the chain: the :class:`FileTokenStore` serialises refreshes of a
connection with an exclusive ``flock`` and writes the new token atomically (temp file, fsync,
rename, mode 0600) *before* the new access token is used. A second task waiting on the lock finds
the fresh access token and uses it instead of refreshing again.

The store lives under ``$BULKSYNC_TOKEN_DIR`` (default ``$BULKSYNC_HOME/.local/tokens``); on a
multi-host deployment point it at a shared volume (docs/api.md#rotating-refresh-tokens).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def token_dir() -> Path:
    """The folder of persisted tokens."""
    explicit = os.environ.get("BULKSYNC_TOKEN_DIR")
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("BULKSYNC_HOME", ".")) / ".local" / "tokens"


class FileTokenStore:
    """Persisted token state of one connection: ``{"refresh_token", "access_token", "expires_at"}``."""

    def __init__(self, conn_id: str, folder: Path | None = None) -> None:
        self.folder = folder or token_dir()
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in conn_id)
        self.path = self.folder / f"{safe}.json"
        self.lock_path = self.folder / f"{safe}.lock"

    @contextlib.contextmanager
    def locked(self) -> Iterator[dict[str, Any]]:
        """Hold the connection's lock; yields the current state (a dict to update in place, then saved)."""
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(self.lock_path, "a+") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                state = self.read()
                before = dict(state)
                yield state
                if state != before:
                    self._write(state)
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)

    def read(self) -> dict[str, Any]:
        """The saved state ({} when none)."""
        try:
            return dict(json.loads(self.path.read_text(encoding="utf-8")))
        except (FileNotFoundError, ValueError):
            return {}

    def _write(self, state: dict[str, Any]) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".tok-")
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(state, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
            dfd = os.open(self.folder, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise


def fresh(state: dict[str, Any], margin: float = 30.0) -> str | None:
    """The saved access token when it is still valid for ``margin`` seconds."""
    token, expires = state.get("access_token"), float(state.get("expires_at") or 0)
    return str(token) if token and expires - margin > time.time() else None
