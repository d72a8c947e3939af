"""Where a drop's files live: the :class:`LandingStore` protocol and its local-folder implementation.

Everything above this module (discovery, claiming, reading, archiving) speaks only the protocol, in
names relative to the landing root, so a blob-container store (the Azure issue) plugs in by
implementing the same handful of methods. Every name is checked to stay inside the landing zone:
``../`` or an absolute name is refused, a symbolic link is reported with where it points, and the
local store never follows a link below its root (:class:`LocalLandingStore`).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat as statmod
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any, Literal, Protocol

from bulksync.errors import ConfigurationError, FileRejectedError

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
        etag: the blob's ETag on object stores (``None`` on a file system).
    """

    name: str
    kind: EntryKind
    size: int
    mtime: float
    inside: bool = True
    etag: str | None = None


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


class LandingSymlinkError(ConfigurationError):
    """A folder of the landing zone bulksync writes into (``processing/``, ``archive/``, ``quarantine/`` or
    one below them) is a symbolic link; bulksync refuses to follow it out of the landing folder."""


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


class LocalLandingStore:
    """A landing zone on a local (or mounted) file system, confined to its root.

    The root itself may be a symbolic link (an administrator's choice, resolved once). Below it,
    nothing is followed: every operation walks from the root one folder at a time with
    ``O_NOFOLLOW | O_DIRECTORY`` and works relative to the folder's descriptor (``openat``,
    ``renameat``, ``mkdirat``), so a folder swapped for a link between a check and its use is still
    refused. A symlinked folder raises :class:`LandingSymlinkError` naming it; a symlinked *file* is
    only ever renamed as a link (quarantined), never opened: reading one raises
    :class:`~bulksync.errors.FileRejectedError` (``symlink``).

    Args:
        root: the landing folder; it must exist.

    Raises:
        ConfigurationError: the folder does not exist.
        LandingSymlinkError: ``processing/``, ``archive/`` or ``quarantine/`` is a symbolic link.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise ConfigurationError(
                f"landing folder {self.root} does not exist (options.landing): create it or fix the spec"
            )
        self._real = self.root.resolve()
        from bulksync.spec.file_drop import RESERVED_FOLDERS

        for folder in RESERVED_FOLDERS:  # an early, clear refusal (every operation checks again)
            self._check_folder(folder)

    def describe(self) -> str:
        return str(self.root)

    # -- confinement ----------------------------------------------------------------------------------

    def _refuse(self, folder: str, what: str = "a symbolic link") -> LandingSymlinkError:
        path = self.root / folder
        target = ""
        with contextlib.suppress(OSError):
            target = f" to {os.readlink(path)}"
        return LandingSymlinkError(
            f"{path} is {what}{target}: bulksync claims, archives and quarantines files only inside the landing "
            f"folder {self.root} and never follows a link out of it. Remove {folder} and create a real folder "
            f"in its place (mkdir {path}); if someone other than the operator created the link, check the drop "
            "account's permissions"
        )

    def _check_folder(self, folder: str) -> None:
        try:
            st = os.lstat(self._real / folder)
        except FileNotFoundError:
            return
        if statmod.S_ISLNK(st.st_mode):
            raise self._refuse(folder)
        if not statmod.S_ISDIR(st.st_mode):
            raise self._refuse(folder, "not a folder")

    @contextlib.contextmanager
    def _dir(self, folder: str, *, create: bool = False) -> Iterator[int | None]:
        """A descriptor of ``folder`` (relative to the root), walked without following links; ``None``
        when it does not exist (and ``create`` is false)."""
        fd = os.open(self._real, _DIR_FLAGS)
        walked: list[str] = []
        try:
            for part in [p for p in folder.split("/") if p]:
                walked.append(part)
                try:
                    nxt = os.open(part, _DIR_FLAGS, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        yield None
                        return
                    with contextlib.suppress(FileExistsError):
                        os.mkdir(part, dir_fd=fd)
                    try:
                        nxt = os.open(part, _DIR_FLAGS, dir_fd=fd)
                    except OSError as exc:
                        raise self._refuse_or(exc, "/".join(walked)) from None
                except OSError as exc:
                    raise self._refuse_or(exc, "/".join(walked)) from None
                os.close(fd)
                fd = nxt
            yield fd
        finally:
            os.close(fd)

    def _refuse_or(self, exc: OSError, folder: str) -> Exception:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
            try:
                st = os.lstat(self._real / folder)
            except OSError:
                return exc
            return self._refuse(folder, "a symbolic link" if statmod.S_ISLNK(st.st_mode) else "not a folder")
        return exc

    def _split(self, name: str) -> tuple[str, str]:
        problem = unsafe_name(name)
        if problem:
            raise ValueError(f"{name!r}: {problem}")
        folder, _, base = name.rpartition("/")
        return folder, base

    def _path(self, name: str) -> Path:
        self._split(name)
        return self.root / name

    def _entry(self, name: str, st: os.stat_result) -> Entry:
        if statmod.S_ISLNK(st.st_mode):
            target = Path(os.path.realpath(self._real / name))
            inside = target == self._real or self._real in target.parents
            return Entry(name, "symlink", 0, st.st_mtime, inside=inside)
        if statmod.S_ISREG(st.st_mode):
            return Entry(name, "file", st.st_size, st.st_mtime)
        if statmod.S_ISDIR(st.st_mode):
            return Entry(name, "dir", 0, st.st_mtime)
        return Entry(name, "other", 0, st.st_mtime)

    def _open_file(self, name: str) -> int:
        folder, base = self._split(name)
        with self._dir(folder) as fd:
            if fd is None:
                raise FileNotFoundError(f"{name} is not in {self.root}")
            try:
                return os.open(base, _FILE_FLAGS, dir_fd=fd)
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    raise FileRejectedError(
                        "symlink",
                        f"{name} is a symbolic link; bulksync reads only regular files and never follows a link. "
                        "Ask the client to upload the file itself",
                    ) from None
                raise

    # -- looking ---------------------------------------------------------------------------------------

    def list(self, folder: str = "") -> list[Entry]:
        if folder:
            self._split(folder)
        prefix = f"{folder}/" if folder else ""
        out = []
        with self._dir(folder) as fd:
            if fd is None:
                return []
            for name in os.listdir(fd):
                with contextlib.suppress(FileNotFoundError):
                    out.append(self._entry(prefix + name, os.stat(name, dir_fd=fd, follow_symlinks=False)))
        return sorted(out, key=lambda e: e.name)

    def stat(self, name: str) -> Entry | None:
        folder, base = self._split(name)
        with self._dir(folder) as fd:
            if fd is None:
                return None
            try:
                return self._entry(name, os.stat(base, dir_fd=fd, follow_symlinks=False))
            except FileNotFoundError:
                return None

    def exists(self, name: str) -> bool:
        return self.stat(name) is not None

    def open(self, name: str) -> IO[bytes]:
        return os.fdopen(self._open_file(name), "rb")

    def local_path(self, name: str) -> Path | None:
        return self._path(name)

    def read_text(self, name: str, encoding: str = "utf-8") -> str:
        with self.open(name) as f:
            return f.read().decode(encoding)

    # -- changing --------------------------------------------------------------------------------------

    def _rename(self, name: str, dest: str, *, exists_ok: bool) -> bool:
        sfolder, sbase = self._split(name)
        dfolder, dbase = self._split(dest)
        with self._dir(sfolder) as sfd, self._dir(dfolder, create=True) as dfd:
            if sfd is None:
                if exists_ok:
                    return False
                raise FileNotFoundError(f"{name} is not in {self.root}")
            try:
                os.stat(dbase, dir_fd=dfd, follow_symlinks=False)
            except FileNotFoundError:
                pass
            else:
                if exists_ok:
                    return False
                raise FileExistsError(f"{self.root / dest} already exists")
            try:
                # rename is atomic and never follows a link: of two claimers exactly one moves the file
                os.rename(sbase, dbase, src_dir_fd=sfd, dst_dir_fd=dfd)
            except FileNotFoundError:
                if exists_ok:
                    return False
                raise
        return True

    def claim(self, name: str, dest: str) -> bool:
        return self._rename(name, dest, exists_ok=True)

    def move(self, name: str, dest: str) -> None:
        self._rename(name, dest, exists_ok=False)

    def _write(self, dest: str, fill: Any, mtime: float | None = None) -> None:
        """Write ``dest`` through a fresh temporary file (never an existing name, never a link), renamed in."""
        folder, base = self._split(dest)
        with self._dir(folder, create=True) as fd:
            assert fd is not None
            tmp = f".{base}.{uuid.uuid4().hex[:8]}.tmp"
            out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644, dir_fd=fd)
            try:
                with os.fdopen(out, "wb") as f:
                    fill(f)
                    f.flush()
                    if mtime is not None:
                        os.utime(f.fileno(), (mtime, mtime))
                os.replace(tmp, base, src_dir_fd=fd, dst_dir_fd=fd)  # replaces a link itself, never its target
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp, dir_fd=fd)
                raise

    def copy(self, name: str, dest: str) -> None:
        src = self._open_file(name)
        with os.fdopen(src, "rb") as f:
            mtime = os.fstat(f.fileno()).st_mtime  # kept (stable-size rule)
            self._write(dest, lambda out: shutil.copyfileobj(f, out, 1 << 20), mtime)

    def write_text(self, name: str, text: str) -> None:
        data = text.encode("utf-8")
        self._write(name, lambda out: out.write(data))

    def delete(self, name: str) -> None:
        folder, base = self._split(name)
        with self._dir(folder) as fd:
            if fd is not None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(base, dir_fd=fd)

    def tidy(self, folder: str) -> None:
        parent, base = self._split(folder)
        with self._dir(parent) as fd, contextlib.suppress(OSError):  # not empty (or gone): leave it
            if fd is not None:
                os.rmdir(base, dir_fd=fd)


def open_store(landing: str, conn_id: str | None = None) -> LandingStore:
    """The landing store of an ``options.landing`` value: a local folder, or an Azure container prefix
    (``abfs://container/prefix``, authenticated by the ``wasb`` connection ``conn_id``).

    Raises:
        ConfigurationError: an Azure landing without ``conn_id``, or a missing local folder.
        StorageAccessError: the storage account refuses the credentials, or the container is missing.
    """
    from bulksync.storage.location import is_remote

    if is_remote(landing):
        if not conn_id:
            raise ConfigurationError(
                f"landing {landing} is a blob container: set source.conn_id to the Airflow connection (type wasb) "
                "of its storage account"
            )
        from bulksync.sources.file_drop.blob_store import BlobLandingStore

        return BlobLandingStore(landing, conn_id)
    from bulksync.settings import resolve_path

    return LocalLandingStore(resolve_path(landing))
