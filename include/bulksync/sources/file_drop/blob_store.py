"""A landing zone on an Azure container prefix: the :class:`LandingStore` of ``landing: abfs://container/prefix``.

The data path is the real ``azure-storage-blob`` SDK, authenticated by the Azure provider's
``WasbHook`` (the ``wasb`` connection of ``source.conn_id``). Names are relative to the prefix and
use ``/`` as on a local landing folder; ``processing/``, ``archive/`` and ``quarantine/`` are
prefixes under it.

**Claiming is race-safe.** Every listing remembers each blob's ETag. :meth:`BlobLandingStore.claim`
first takes a 60-second lease on the blob *on condition that its ETag is still the listed one*
(``If-Match``): of two runs only one gets the lease (the other gets ``409 LeaseAlreadyPresent``),
and a blob rewritten or deleted since the listing is not claimed (``412`` / ``404``) but left for
the next run, which lists it afresh. Holding the lease, the claimer copies the blob server-side to
``processing/…`` (the copy guarded by the source ETag and by ``If-None-Match: *`` on the
destination) and deletes the original with the lease id. A blob is therefore moved exactly once.

**Reads are streams pinned to an ETag.** :meth:`BlobLandingStore.open` returns a seekable stream
that fetches 4 MiB ranges, each with ``If-Match`` on the ETag the store last saw for the name: a
blob changed or deleted while it is being read raises :class:`~bulksync.errors.LandingFileChangedError`
(transient) before any of its rows is passed on; the file stays in ``processing/`` and the retry
of the interval reads it again.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import time
from collections.abc import Callable
from typing import IO, Any, TypeVar

from bulksync.errors import LandingFileChangedError
from bulksync.sources.file_drop.store import Entry, unsafe_name
from bulksync.storage.azure import access_error, check_container
from bulksync.storage.location import split_azure_url

log = logging.getLogger(__name__)

_F = TypeVar("_F", bound=Callable[..., Any])

LEASE_SECONDS = 60
RANGE_BYTES = 4 << 20
COPY_TIMEOUT_SECONDS = 3600


class BlobStream(io.RawIOBase):
    """A blob's bytes as a seekable raw stream of ranged reads, each conditional on one ETag.

    Args:
        blob: the SDK's ``BlobClient``.
        name: the name in the landing zone (for messages).
        size: the blob's size.
        etag: the ETag every range request must match.
        where: the landing zone (for messages).
    """

    def __init__(self, blob: Any, name: str, size: int, etag: str, where: str) -> None:
        super().__init__()
        self._blob, self._name, self._size, self._etag, self._where = blob, name, size, etag, where
        self._pos = 0
        self._buf = b""
        self._buf_start = 0
        self.refusal: Callable[[BaseException], Exception | None] | None = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, b: Any) -> int:
        if self._pos >= self._size:
            return 0
        if not (self._buf_start <= self._pos < self._buf_start + len(self._buf)):
            self._buf = self._fetch(self._pos, min(RANGE_BYTES, self._size - self._pos))
            self._buf_start = self._pos
            if not self._buf:
                return 0
        start = self._pos - self._buf_start
        n = min(len(b), len(self._buf) - start)
        b[:n] = self._buf[start : start + n]
        self._pos += n
        return n

    def _fetch(self, offset: int, length: int) -> bytes:
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError

        try:
            data = self._blob.download_blob(
                offset=offset, length=length, etag=self._etag, match_condition=MatchConditions.IfNotModified
            ).readall()
        except ResourceModifiedError:
            raise changed(self._name, self._where, "was modified") from None
        except ResourceNotFoundError:
            raise changed(self._name, self._where, "was deleted") from None
        except Exception as exc:
            refused = self.refusal(exc) if self.refusal else None
            if refused is None:
                raise
            raise refused from None
        return bytes(data)


def _refusals(method: _F) -> _F:
    """Turn a refusal of the connection's credentials during an operation into a ``StorageAccessError``."""

    @functools.wraps(method)
    def wrapper(self: BlobLandingStore, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except Exception as exc:
            refused = access_error(exc, self.conn_id, self.container)
            if refused is None:
                raise
            raise refused from None

    return wrapper  # type: ignore[return-value]


def _etag(value: Any) -> str:
    """An ETag in its quoted HTTP form (listings and responses differ in quoting)."""
    return '"' + str(value).strip('"') + '"'


def changed(name: str, where: str, what: str) -> LandingFileChangedError:
    """The error of a blob that changed under a reader."""
    return LandingFileChangedError(
        f"{name} in {where} {what} while bulksync was reading it (its ETag no longer matches); nothing of it was "
        "passed on. The interval's retry reads the file again; if the client re-uploads files in place, ask it "
        "to upload under a temporary name and rename, or to use trigger files"
    )


class BlobLandingStore:
    """A landing zone on an Azure Blob Storage / ADLS Gen2 container prefix.

    Args:
        url: ``abfs://container/prefix`` (or ``wasb://container@account…/prefix``).
        conn_id: the Airflow connection (type ``wasb``) of the storage account.

    Raises:
        StorageAccessError: the credentials are refused (names account and connection id) or the
            container does not exist (names it).
    """

    def __init__(self, url: str, conn_id: str) -> None:
        from airflow.providers.microsoft.azure.hooks.wasb import WasbHook

        self.container, self.prefix = split_azure_url(url)
        self.conn_id = conn_id
        check_container(conn_id, self.container)
        self.client = WasbHook(wasb_conn_id=conn_id).get_conn().get_container_client(self.container)
        self._etags: dict[str, str] = {}
        self.owner: str | None = None
        """The run claiming blobs (recorded in the claimed copies' metadata)."""

    def describe(self) -> str:
        return f"abfs://{self.container}/{self.prefix}".rstrip("/")

    # -- names ----------------------------------------------------------------------------------------

    def _blob_name(self, name: str) -> str:
        problem = unsafe_name(name)
        if problem:
            raise ValueError(f"{name!r}: {problem}")
        return f"{self.prefix}/{name}" if self.prefix else name

    def _blob(self, name: str) -> Any:
        return self.client.get_blob_client(self._blob_name(name))

    def _relative(self, blob_name: str) -> str:
        return blob_name[len(self.prefix) + 1 :] if self.prefix else blob_name

    def _file_entry(self, name: str, props: Any, fresh: bool = False) -> Entry:
        # a listing of the landing root is the view claims decide on; every other sighting keeps the
        # ETag seen first (claim, write, first stat), so a blob changed later is noticed, not read
        if fresh:
            self._etags[name] = _etag(props.etag)
        else:
            self._etags.setdefault(name, _etag(props.etag))
        return Entry(name, "file", int(props.size), props.last_modified.timestamp(), etag=_etag(props.etag))

    def etag(self, name: str) -> str | None:
        """The ETag the store last saw for a name (listing, stat, claim or write)."""
        return self._etags.get(name)

    # -- looking ---------------------------------------------------------------------------------------

    @_refusals
    def list(self, folder: str = "") -> list[Entry]:
        from azure.storage.blob import BlobProperties

        base = (self._blob_name(folder) + "/") if folder else (f"{self.prefix}/" if self.prefix else "")
        out: dict[str, Entry] = {}
        for item in self.client.walk_blobs(name_starts_with=base or None, delimiter="/"):
            rel = self._relative(str(item.name).rstrip("/"))
            if not rel or (folder and rel == folder):
                continue
            if not isinstance(item, BlobProperties):  # a BlobPrefix: blobs under name/, a "folder"
                out[rel] = Entry(rel, "dir", 0, 0.0)
            elif rel not in out:  # on ADLS Gen2 a directory is also listed as an empty blob: the folder wins
                out[rel] = self._file_entry(rel, item, fresh=not folder)
        return sorted(out.values(), key=lambda e: e.name)

    @_refusals
    def stat(self, name: str) -> Entry | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return self._file_entry(name, self._blob(name).get_blob_properties())
        except ResourceNotFoundError:
            pass
        if self._has_children(name):
            return Entry(name, "dir", 0, 0.0)
        return None

    def _has_children(self, name: str) -> bool:
        return (
            next(iter(self.client.list_blobs(name_starts_with=self._blob_name(name) + "/", results_per_page=1)), None)
            is not None
        )

    @_refusals
    def exists(self, name: str) -> bool:
        # one listing request answers both "a blob of that name" and "blobs under name/"
        blob = self._blob_name(name)
        return any(
            str(item.name) in (blob, blob + "/")
            for item in self.client.walk_blobs(name_starts_with=blob, delimiter="/")
        )

    def local_path(self, name: str) -> None:
        return None

    # -- reading ---------------------------------------------------------------------------------------

    @_refusals
    def open(self, name: str) -> IO[bytes]:
        """A buffered, seekable stream of the blob, pinned to the ETag last seen for it.

        Raises:
            FileNotFoundError: no such blob.
            LandingFileChangedError: the blob changed since it was listed (now or while read).
        """
        from azure.core.exceptions import ResourceNotFoundError

        blob = self._blob(name)
        try:
            props = blob.get_blob_properties()
        except ResourceNotFoundError:
            if name in self._etags:
                raise changed(name, self.describe(), "was deleted") from None
            raise FileNotFoundError(f"{name} is not in {self.describe()}") from None
        seen = self._etags.setdefault(name, _etag(props.etag))
        if seen != _etag(props.etag):
            raise changed(name, self.describe(), "was modified")
        raw = BlobStream(blob, name, int(props.size), seen, self.describe())
        raw.refusal = lambda exc: access_error(exc, self.conn_id, self.container)
        return io.BufferedReader(raw, 1 << 20)

    @_refusals
    def read_text(self, name: str, encoding: str = "utf-8") -> str:
        with self.open(name) as f:
            return f.read().decode(encoding)

    # -- changing --------------------------------------------------------------------------------------

    @_refusals
    def claim(self, name: str, dest: str) -> bool:
        """Move ``name`` to ``dest`` unless another run holds it, or it changed since it was listed.

        Returns:
            ``True`` for exactly one of any number of concurrent claimers of the same listed blob.
        """
        from azure.core import MatchConditions
        from azure.core.exceptions import HttpResponseError, ResourceModifiedError, ResourceNotFoundError

        src = self._blob(name)
        etag = self._etags.get(name)
        condition: dict[str, Any] = {"etag": etag, "match_condition": MatchConditions.IfNotModified} if etag else {}
        try:
            lease = src.acquire_lease(lease_duration=LEASE_SECONDS, **condition)
        except ResourceNotFoundError:
            log.info("%s is gone from %s (claimed by another run or deleted since listed)", name, self.describe())
            return False
        except ResourceModifiedError:
            log.warning("%s changed in %s since it was listed (ETag); left for the next run", name, self.describe())
            return False
        except HttpResponseError as exc:
            if exc.status_code == 409:  # LeaseAlreadyPresent: another run is claiming it right now
                log.info("%s is being claimed by another run", name)
                return False
            raise
        copied = False
        try:
            if not self._copy(src, name, dest, lease=lease, metadata=self._claim_metadata()):
                return False
            copied = True
            src.delete_blob(lease=lease)
        except BaseException:
            if copied:  # the original stays (its lease expires): undo the copy, the next run claims it
                self._delete_blob(dest)
            with contextlib.suppress(Exception):  # best effort: the lease expires anyway
                lease.release()
            raise
        self._etags.pop(name, None)
        return True

    def _claim_metadata(self) -> dict[str, str] | None:
        return {"bulksync_claimed_by": self.owner} if self.owner else None

    def _copy(
        self,
        src: Any,
        name: str,
        dest: str,
        *,
        lease: Any = None,
        overwrite: bool = False,
        metadata: dict[str, str] | None = None,
    ) -> bool:
        """Server-side copy of ``src`` (as listed) to ``dest``; ``False`` when ``dest`` exists (no overwrite)."""
        from azure.core import MatchConditions
        from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceModifiedError

        dst = self._blob(dest)
        kwargs: dict[str, Any] = {} if overwrite else {"match_condition": MatchConditions.IfMissing}
        if metadata:
            kwargs["metadata"] = metadata
        etag = self._etags.get(name)
        if etag:
            kwargs |= {"source_etag": etag, "source_match_condition": MatchConditions.IfNotModified}
        try:
            result = dst.start_copy_from_url(src.url, **kwargs)
        except (ResourceExistsError, ResourceModifiedError) as exc:
            if getattr(exc, "status_code", None) == 412 and "source" in str(getattr(exc, "error_code", "")).lower():
                raise changed(name, self.describe(), "was modified") from None
            if lease is not None:
                with contextlib.suppress(Exception):  # best effort: the lease expires anyway
                    lease.release()
            log.info("%s already exists in %s; %s is left where it is", dest, self.describe(), name)
            return False
        except HttpResponseError as exc:
            if exc.status_code == 409 and lease is not None:
                with contextlib.suppress(Exception):  # best effort: the lease expires anyway
                    lease.release()
                return False
            raise
        status, new_etag = result.get("copy_status"), _etag(result.get("etag"))
        deadline = time.monotonic() + COPY_TIMEOUT_SECONDS
        renewed = time.monotonic()
        while status == "pending":  # large blobs across accounts; same-account copies are synchronous
            if time.monotonic() > deadline:
                dst.abort_copy(result.get("copy_id"))
                raise LandingFileChangedError(f"copying {name} to {dest} in {self.describe()} did not finish in time")
            time.sleep(1)
            if lease is not None and time.monotonic() - renewed > LEASE_SECONDS / 3:
                lease.renew()
                renewed = time.monotonic()
            props = dst.get_blob_properties()
            status, new_etag = props.copy.status, _etag(props.etag)
        if status != "success":
            raise LandingFileChangedError(f"copying {name} to {dest} in {self.describe()} ended {status}")
        self._etags[dest] = new_etag
        return True

    @_refusals
    def move(self, name: str, dest: str) -> None:
        entry = self.stat(name)
        if entry is not None and entry.kind == "dir":
            for blob in list(self.client.list_blobs(name_starts_with=self._blob_name(name) + "/")):
                rel = self._relative(str(blob.name))
                self.move(rel, dest + rel[len(name) :])
            return
        if not self._copy(self._blob(name), name, dest):
            raise FileExistsError(f"{dest} already exists in {self.describe()}")
        self._delete_blob(name)

    @_refusals
    def copy(self, name: str, dest: str) -> None:
        self._copy(self._blob(name), name, dest, overwrite=True)

    @_refusals
    def write_text(self, name: str, text: str) -> None:
        result = self._blob(name).upload_blob(text.encode("utf-8"), overwrite=True)  # one request: atomic
        self._etags[name] = _etag(result.get("etag"))

    @_refusals
    def delete(self, name: str) -> None:
        self._delete_blob(name)

    def _delete_blob(self, name: str) -> None:
        from azure.core.exceptions import ResourceNotFoundError

        self._etags.pop(name, None)
        with contextlib.suppress(ResourceNotFoundError):
            self._blob(name).delete_blob()

    @_refusals
    def tidy(self, folder: str) -> None:
        """Remove an empty folder: nothing on flat blob storage (a prefix without blobs does not exist), the
        directory entry on ADLS Gen2 (hierarchical namespace)."""
        if not self._has_children(folder):
            self._delete_blob(folder)
