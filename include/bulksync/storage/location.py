"""A folder on a filesystem: local disk or an Azure container (fsspec), addressed the same way.

``open_location("abfs://container/prefix", "azure_conn")`` and ``open_location("/data/staging")``
give a :class:`Location` whose :meth:`child` builds sub-folders; reads and writes go through its
``fs`` (``fsspec.AbstractFileSystem``). URLs: ``abfs://`` / ``abfss://`` / ``az://container/prefix``
and ``wasb://container@account.blob.core.windows.net/prefix`` (``wasbs://`` too); anything else is
a local path.

Every stage's first access to an Azure location goes through one check of the connection and the
container (:func:`~bulksync.storage.azure.check_container_once`, in :func:`open_location`), and the
operations of :class:`Location` turn a refusal of the credentials later on (a key rotated while a
run is under way) into the same :class:`~bulksync.errors.StorageAccessError`, naming the storage
account, the container and the connection, never the secret.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from bulksync.errors import ConfigurationError

AZURE_SCHEMES = ("abfs", "abfss", "az", "wasb", "wasbs")


def is_remote(url: str) -> bool:
    """True when ``url`` names an object store (``scheme://``) rather than a local path."""
    return "://" in url and not url.startswith("file://")


def split_azure_url(url: str) -> tuple[str, str]:
    """``(container, prefix)`` of an Azure URL.

    Raises:
        ConfigurationError: not an Azure URL, or no container.
    """
    parsed = urlparse(url)
    if parsed.scheme not in AZURE_SCHEMES:
        raise ConfigurationError(
            f"{url!r} is not an Azure storage URL; use abfs://container/prefix or "
            "wasb://container@account.blob.core.windows.net/prefix"
        )
    container = parsed.netloc.split("@", 1)[0]
    if len(container) < 3:
        raise ConfigurationError(f"{url!r} names no container (at least 3 characters): use abfs://container/prefix")
    return container, parsed.path.strip("/")


@dataclass(frozen=True)
class Location:
    """A folder: ``fs`` and the folder's ``path`` on it; ``url`` is what messages show."""

    fs: Any
    path: str
    url: str
    conn_id: str | None = None

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        """Turn a refusal of an Azure connection's credentials into a :class:`StorageAccessError`."""
        if self.is_local or not self.conn_id:
            yield
            return
        try:
            yield
        except Exception as exc:
            from bulksync.storage.azure import access_error

            refused = access_error(exc, self.conn_id, self.path.split("/", 1)[0])
            if refused is None:
                raise
            raise refused from None

    @property
    def is_local(self) -> bool:
        """True on the local filesystem (where atomic folder renames and hard links exist)."""
        return not is_remote(self.url)

    @property
    def name(self) -> str:
        """The last path component."""
        return posixpath.basename(self.path.rstrip("/"))

    def child(self, *parts: str) -> Location:
        """A sub-folder or file of this location."""
        clean = [p.strip("/") for p in parts if p and p.strip("/")]
        if not clean:
            return self
        path = posixpath.normpath(posixpath.join(self.path, *clean))  # parts may hold ../ (linked files)
        if self.is_local:
            return Location(self.fs, path, path, self.conn_id)
        head, _, _ = self.url.partition("://")
        return Location(self.fs, path, f"{head}://{path}", self.conn_id)

    def exists(self) -> bool:
        """True when a file or a folder (a prefix holding blobs) exists here."""
        with self._errors():
            return bool(self.fs.exists(self.path))

    def read_text(self) -> str:
        """The file's text (UTF-8).

        Raises:
            FileNotFoundError: no such file.
        """
        with self._errors(), self.fs.open(self.path, "rb") as f:
            return bytes(f.read()).decode("utf-8")

    def write_text(self, text: str) -> None:
        """Write a small file in one piece: one blob upload on object stores, a temporary file
        renamed into place locally (so a reader sees the old or the new content, never a part)."""
        if not self.is_local:
            with self._errors():
                self.fs.pipe_file(self.path, text.encode("utf-8"))
            return
        parent = posixpath.dirname(self.path)
        os.makedirs(parent, exist_ok=True)
        tmp = f"{self.path}.tmp-{uuid.uuid4().hex[:8]}"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, self.path)

    def makedirs_parent(self) -> None:
        """Create the parent folder (local only; object stores have no folders)."""
        if self.is_local:
            os.makedirs(posixpath.dirname(self.path), exist_ok=True)

    def size(self) -> int:
        """Bytes of the file."""
        with self._errors():
            return int(self.fs.size(self.path))

    def remove(self) -> None:
        """Delete the file or folder (recursively); a missing one is fine."""
        with self._errors(), contextlib.suppress(FileNotFoundError):
            self.fs.rm(self.path, recursive=True)

    def refresh(self) -> None:
        """Forget cached listings under this location (another process may have written since)."""
        self.fs.invalidate_cache(self.path)

    def list_names(self) -> list[str]:
        """Names of the direct children (files and sub-folders); empty when the folder is missing."""
        self.refresh()
        try:
            with self._errors():
                entries = self.fs.ls(self.path, detail=False)
        except FileNotFoundError:
            return []
        return sorted({posixpath.basename(str(e).rstrip("/")) for e in entries})


def open_location(url: str, conn_id: str | None = None) -> Location:
    """The :class:`Location` of a local path or an Azure URL (authenticated by ``conn_id``).

    Raises:
        ConfigurationError: an Azure URL without a connection id, or an unsupported scheme.
    """
    if not is_remote(url):
        from fsspec.implementations.local import LocalFileSystem

        path = url.removeprefix("file://")
        return Location(LocalFileSystem(), path.rstrip("/") or "/", path)
    scheme = urlparse(url).scheme
    if scheme not in AZURE_SCHEMES:
        raise ConfigurationError(
            f"unsupported storage URL {url!r}: use a local path or abfs://container/prefix (Azure)"
        )
    if not conn_id:
        raise ConfigurationError(f"{url} needs conn_id: the Airflow connection (type wasb) of the storage account")
    from bulksync.storage.azure import azure_filesystem, check_container_once

    container, prefix = split_azure_url(url)
    check_container_once(conn_id, container)  # the first access of a stage: credentials and container checked
    path = f"{container}/{prefix}" if prefix else container
    return Location(azure_filesystem(conn_id), path, f"abfs://{path}", conn_id)
