"""Where a drop's files live: the :class:`LandingStore` protocol and its local-folder implementation.

Everything above this module (discovery, claiming, reading, archiving) speaks only the protocol, in
names relative to the landing root, so a blob-container store (the Azure issue) plugs in by
implementing the same handful of methods. Every name is checked to stay inside the landing zone:
``../`` or an absolute name is refused, and a symbolic link is reported with where it points.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat as statmod
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Literal, Protocol

from bulksync.errors import ConfigurationError

EntryKind = Literal["file", "dir", "symlink", "other"]


@dataclass(frozen=True)
class Entry:
    """One name in the landing zone.

    Attributes:
        name: the name relative to the landing root (``orders.csv``, ``archive/2026/01/02/orders.csv``).
        kind: ``file``, ``dir``, ``symlink`` or ``other`` (FIFO, socket, device).
        size: bytes (0 for anything but a file).
        mtime: modification time, seconds since the epoch.
        inside: for a symlink, whether its target resolves inside the landing zone.
    """

    name: str
    kind: EntryKind
    size: int
    mtime: float
    inside: bool = True


def unsafe_name(name: str) -> str | None:
    """Why a name cannot be used inside a landing zone, or ``None`` when it is safe."""
    if not name.strip():
        return "the name is empty"
    if "\x00" in name:
        return "the name holds a NUL byte"
    if "\\" in name:
        return "the name holds a backslash"
    p = PurePosixPath(name)
    if p.is_absolute():
        return "the name is an absolute path"
    if any(part in ("..", ".") for part in p.parts) or ".." in name.split("/"):
        return "the name climbs out of the landing zone ('../')"
    return None


class LandingStore(Protocol):
    """The operations the file-drop machinery needs from a landing zone (local folder, blob container …).

    Names are relative to the landing root and use ``/``. Implementations refuse names that
    :func:`unsafe_name` refuses.
    """

    def describe(self) -> str:
        """Where the landing zone is, for messages (no credentials)."""

    def list(self, folder: str = "") -> list[Entry]:
        """The entries directly in the landing root, or in one of its folders (names relative to the root)."""

    def stat(self, name: str) -> Entry | None:
        """One entry, or ``None`` when it does not exist."""

    def open(self, name: str) -> IO[bytes]:
        """Open a file's bytes for reading."""

    def local_path(self, name: str) -> Path | None:
        """The local path of a name when the store is a local folder (for seekable access), else ``None``."""

    def claim(self, name: str, dest: str) -> bool:
        """Move ``name`` to ``dest`` atomically; ``False`` when another claimer took it first."""

    def move(self, name: str, dest: str) -> None:
        """Move (rename) ``name`` to ``dest``, creating folders; replaces nothing."""

    def copy(self, name: str, dest: str) -> None:
        """Copy ``name`` to ``dest``, creating folders."""

    def write_text(self, name: str, text: str) -> None:
        """Write a small text file atomically (reason files, trigger files)."""

    def read_text(self, name: str, encoding: str = "utf-8") -> str:
        """Read a small text file (control files, checksum sidecars)."""

    def delete(self, name: str) -> None:
        """Remove a file if it exists."""

    def exists(self, name: str) -> bool:
        """Whether a name exists (a dangling symlink counts)."""

    def tidy(self, folder: str) -> None:
        """Remove a folder of bulksync's (``processing/<interval>``) once it is empty."""


class LocalLandingStore:
    """A landing zone on a local (or mounted) file system.

    Args:
        root: the landing folder; it must exist.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise ConfigurationError(
                f"landing folder {self.root} does not exist (options.landing): create it or fix the spec"
            )
        self._real = self.root.resolve()

    def describe(self) -> str:
        return str(self.root)

    def _path(self, name: str) -> Path:
        problem = unsafe_name(name)
        if problem:
            raise ValueError(f"{name!r}: {problem}")
        return self.root / name

    def _entry(self, name: str, path: Path) -> Entry | None:
        try:
            st = path.lstat()
        except FileNotFoundError:
            return None
        if statmod.S_ISLNK(st.st_mode):
            target = Path(os.path.realpath(path))
            inside = target == self._real or self._real in target.parents
            return Entry(name, "symlink", 0, st.st_mtime, inside=inside)
        if statmod.S_ISREG(st.st_mode):
            return Entry(name, "file", st.st_size, st.st_mtime)
        if statmod.S_ISDIR(st.st_mode):
            return Entry(name, "dir", 0, st.st_mtime)
        return Entry(name, "other", 0, st.st_mtime)

    def list(self, folder: str = "") -> list[Entry]:
        base = self._path(folder) if folder else self.root
        prefix = f"{folder}/" if folder else ""
        if not base.is_dir():
            return []
        out = []
        with os.scandir(base) as it:
            for d in it:
                e = self._entry(prefix + d.name, base / d.name)
                if e is not None:
                    out.append(e)
        return sorted(out, key=lambda e: e.name)

    def stat(self, name: str) -> Entry | None:
        return self._entry(name, self._path(name))

    def open(self, name: str) -> IO[bytes]:
        return open(self._path(name), "rb")

    def local_path(self, name: str) -> Path | None:
        return self._path(name)

    def claim(self, name: str, dest: str) -> bool:
        src, dst = self._path(name), self._path(dest)
        dst.parent.mkdir(parents=True, exist_ok=True)
        if dst.exists() or dst.is_symlink():
            return False
        try:
            # rename is atomic: of two claimers, exactly one moves the file; the other finds it gone
            os.rename(src, dst)
        except FileNotFoundError:
            return False
        return True

    def move(self, name: str, dest: str) -> None:
        src, dst = self._path(name), self._path(dest)
        dst.parent.mkdir(parents=True, exist_ok=True)
        if dst.exists() or dst.is_symlink():
            raise FileExistsError(f"{dst} already exists")
        os.rename(src, dst)

    def copy(self, name: str, dest: str) -> None:
        src, dst = self._path(name), self._path(dest)
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.with_name(f".{dst.name}.copying")
        shutil.copy2(src, tmp)  # keeps the modification time (stable-size rule)
        os.replace(tmp, dst)

    def write_text(self, name: str, text: str) -> None:
        dst = self._path(name)
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.with_name(f".{dst.name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, dst)

    def read_text(self, name: str, encoding: str = "utf-8") -> str:
        return self._path(name).read_text(encoding=encoding)

    def delete(self, name: str) -> None:
        self._path(name).unlink(missing_ok=True)

    def exists(self, name: str) -> bool:
        p = self._path(name)
        return p.exists() or p.is_symlink()

    def tidy(self, folder: str) -> None:
        with contextlib.suppress(OSError):  # not empty (or gone): leave it
            self._path(folder).rmdir()


def open_store(landing: str) -> LandingStore:
    """The landing store of an ``options.landing`` value (a local folder for now)."""
    from bulksync.settings import resolve_path

    return LocalLandingStore(resolve_path(landing))
