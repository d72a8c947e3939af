"""Helpers of the Azure drop-zone tests: putting files into a container prefix and looking at what is there."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.azurite import CONN_ID, Azurite
from tests.file_drop_corpus import COLUMNS
from tests.helpers import pipeline

PREFIX = "drops"


def landing_url(container: str) -> str:
    """The ``abfs://`` landing of the tests."""
    return f"abfs://{container}/{PREFIX}"


def put(azurite: Azurite, container: str, name: str, data: str | bytes) -> None:
    """Upload one file into the landing prefix (real SDK)."""
    body = data.encode("utf-8") if isinstance(data, str) else data
    azurite.service_client().get_container_client(container).upload_blob(f"{PREFIX}/{name}", body, overwrite=True)


def put_folder(azurite: Azurite, container: str, folder: Path) -> list[str]:
    """Upload every regular file of a local folder (recursively) into the landing prefix; their names."""
    names = []
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.is_symlink():
            name = path.relative_to(folder).as_posix()
            put(azurite, container, name, path.read_bytes())
            names.append(name)
    return names


def blobs(azurite: Azurite, container: str, prefix: str = PREFIX) -> dict[str, bytes]:
    """Every blob under the landing prefix (name relative to it → content)."""
    client = azurite.service_client().get_container_client(container)
    return {
        b.name[len(prefix) + 1 :]: client.download_blob(b.name).readall()
        for b in client.list_blobs(name_starts_with=f"{prefix}/")
    }


def reason(azurite: Azurite, container: str, quarantined_as: str) -> dict[str, Any]:
    """The ``.reason.json`` beside a quarantined blob."""
    return dict(json.loads(blobs(azurite, container)[f"{quarantined_as}.reason.json"]))


def blob_drop_spec(container: str, target: dict[str, Any], **options: Any) -> Any:
    """A pipeline with one file_drop dataset on the container's ``drops/`` prefix."""
    opts = {
        "landing": landing_url(container),
        "pattern": "*.csv",
        "arrival": {"mode": "immediate"},
        "columns": COLUMNS,
        **options,
    }
    return pipeline(
        [{"name": "drops", "source": {"kind": "file_drop", "conn_id": CONN_ID, "options": opts}, "target": target}]
    )


SQLITE_TARGET = {"kind": "sqlite", "conn_id": "test_sqlite", "table": "drops", "mode": "append"}
PG_TARGET = {"kind": "postgres", "conn_id": "test_pg", "table": "drops", "mode": "append"}
