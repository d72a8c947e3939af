"""Symbolic links never lead bulksync out of a local landing folder (real file system, real PostgreSQL ledger).

A client with write access to an SFTP drop folder can create links. Symlinked folders bulksync writes into
(``processing/``, ``archive/``, ``quarantine/``, a folder below them) are refused with an error naming
them, before anything moves; symlinked files are quarantined as links, never opened; a pre-planted link
where bulksync writes a file (``.reason.json``) is replaced, its target untouched.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

import pytest

from bulksync import stages
from bulksync.errors import FileRejectedError
from bulksync.sources.file_drop.store import LandingSymlinkError, LocalLandingStore
from bulksync.sources.file_drop.wait import check
from tests.file_drop_corpus import csv_text, write
from tests.file_drop_runs import STAGES, drop, drop_spec, expected, ledger, table
from tests.helpers import DAY

A = [(1, "Anna", "10.50"), (2, "Bob", "-3.00")]
SECRET = [(666, "secret", "6.66")]


@pytest.fixture
def landing(env: pytest.MonkeyPatch, tmp_path: Path, pg_url: str) -> Path:
    path = tmp_path / "landing"
    path.mkdir()
    return path


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder outside the landing zone the client would like bulksync to write into (or read from)."""
    path = tmp_path / "outside"
    path.mkdir()
    write(path / "orders_secret.csv", csv_text(SECRET))
    return path


def run_all(spec: Any, run_id: str = "run-1") -> dict[str, Any]:
    ds = spec.datasets[0]
    ctx = stages.RunContext(run_id=run_id, window=DAY, try_number=1)
    for stage in STAGES[:-1]:
        getattr(stages, stage)(spec, ds, ctx)
    return stages.reconcile(spec, ds, ctx)


def untouched(outside: Path) -> bool:
    return sorted(p.name for p in outside.rglob("*")) == ["orders_secret.csv"]


@pytest.mark.parametrize("folder", ["processing", "archive", "quarantine"])
def test_a_symlinked_reserved_folder_is_refused_before_anything_moves(
    landing: Path, outside: Path, pg_url: str, folder: str
) -> None:
    spec = drop_spec(str(landing))
    drop(landing, "orders_a.csv", A)
    (landing / folder).symlink_to(outside, target_is_directory=True)

    with pytest.raises(LandingSymlinkError) as info:
        stages.extract(spec, spec.datasets[0], stages.RunContext(run_id="run-1", window=DAY, try_number=1))

    message = str(info.value)
    assert f"{landing / folder} is a symbolic link to {outside}" in message
    assert f"Remove {folder} and create a real folder in its place (mkdir {landing / folder})" in message
    assert untouched(outside) and (landing / "orders_a.csv").is_file()
    assert ledger(pg_url) == []
    with pytest.raises(LandingSymlinkError):  # the sensor says the same
        check(spec.datasets[0].source.options, dt.datetime.now(dt.UTC) + dt.timedelta(hours=1))

    (landing / folder).unlink()  # the operator removes the link: the next run loads the file
    run_all(spec)
    assert table(pg_url) == expected(A) and untouched(outside)


def test_a_symlinked_folder_below_archive_is_refused_and_the_retry_loads_once_fixed(
    landing: Path, outside: Path, pg_url: str
) -> None:
    """``archive/YYYY`` planted as a link: the extract stops before marking anything staged or moving it."""
    spec = drop_spec(str(landing))
    drop(landing, "orders_a.csv", A)
    (landing / "archive").mkdir()
    year = landing / "archive" / f"{dt.datetime.now(dt.UTC):%Y}"
    year.symlink_to(outside, target_is_directory=True)

    with pytest.raises(LandingSymlinkError, match=f"{year} is a symbolic link to {outside}"):
        stages.extract(spec, spec.datasets[0], stages.RunContext(run_id="run-1", window=DAY, try_number=1))
    assert [r[:2] for r in ledger(pg_url)] == [("orders_a.csv", "pending")]
    assert (landing / "processing" / DAY.key / "orders_a.csv").is_file() and untouched(outside)

    year.unlink()
    run_all(spec)
    assert table(pg_url) == expected(A) and [r[:2] for r in ledger(pg_url)] == [("orders_a.csv", "loaded")]
    assert untouched(outside)


def test_a_symlinked_interval_folder_in_processing_is_refused(landing: Path, outside: Path, pg_url: str) -> None:
    spec = drop_spec(str(landing))
    drop(landing, "orders_a.csv", A)
    (landing / "processing").mkdir()
    (landing / "processing" / DAY.key).symlink_to(outside, target_is_directory=True)

    with pytest.raises(LandingSymlinkError, match=f"processing/{DAY.key} is a symbolic link to {outside}"):
        stages.extract(spec, spec.datasets[0], stages.RunContext(run_id="run-1", window=DAY, try_number=1))
    assert untouched(outside) and (landing / "orders_a.csv").is_file() and ledger(pg_url) == []


def test_symlinked_files_are_quarantined_as_links_never_read(landing: Path, outside: Path, pg_url: str) -> None:
    """In the landing root, as a checksum sidecar, and planted in processing/ for the interval."""
    spec = drop_spec(str(landing))
    drop(landing, "orders_a.csv", A)
    (landing / "orders_link.csv").symlink_to(outside / "orders_secret.csv")
    write(landing / "orders_link.csv.done", "")
    drop(landing, "orders_b.csv", [(3, "Chloé", "0.01")])
    (landing / "orders_b.csv.sha256").symlink_to(outside / "orders_secret.csv")  # a sidecar pointing out
    (landing / "processing" / DAY.key).mkdir(parents=True)
    (landing / "processing" / DAY.key / "orders_planted.csv").symlink_to(outside / "orders_secret.csv")

    out = run_all(spec)

    assert out["status"] == "success" and table(pg_url) == expected(A)  # nothing of the secret file
    got = {r[0]: (r[1], r[4]) for r in ledger(pg_url)}
    assert got == {
        "orders_a.csv": ("loaded", None),
        "orders_b.csv": ("quarantined", "symlink"),
        "orders_link.csv": ("quarantined", "symlink_outside_landing"),
        "orders_planted.csv": ("quarantined", "symlink"),
    }
    q = landing / "quarantine"
    for name in ("orders_link.csv", "orders_planted.csv", "orders_b.csv.sha256"):
        assert (q / name).is_symlink()  # moved as the link it is
    assert (q / "orders_b.csv").is_file() and not (q / "orders_b.csv").is_symlink()
    assert untouched(outside) and (outside / "orders_secret.csv").read_text() == csv_text(SECRET)


def test_an_archived_file_replaced_by_a_link_is_not_followed_on_rerun(
    landing: Path, outside: Path, pg_url: str
) -> None:
    spec = drop_spec(str(landing))
    drop(landing, "orders_a.csv", A)
    run_all(spec)
    archived = next(landing.glob("archive/*/*/*/orders_a.csv"))
    archived.unlink()
    archived.symlink_to(outside / "orders_secret.csv")

    run_all(spec, "run-rerun")  # replays the interval from the archive

    assert table(pg_url) == expected(A)  # the secret rows never loaded
    assert [(*r[:2], r[4]) for r in ledger(pg_url)] == [("orders_a.csv", "quarantined", "symlink")]
    assert untouched(outside)


def test_a_planted_reason_file_link_is_replaced_not_followed(landing: Path, outside: Path, pg_url: str) -> None:
    spec = drop_spec(str(landing))
    write(landing / "orders_bad.csv", "id,name,amount\nx,y,1\n")
    write(landing / "orders_bad.csv.done", "")
    (landing / "quarantine").mkdir()
    victim = outside / "orders_secret.csv"
    (landing / "quarantine" / "orders_bad.csv.reason.json").symlink_to(victim)
    (landing / "quarantine" / ".orders_bad.csv.reason.json.tmp").symlink_to(victim)  # the old temp name

    run_all(spec)

    reason = landing / "quarantine" / "orders_bad.csv.reason.json"
    assert not reason.is_symlink() and '"reason": "bad_value"' in reason.read_text()
    assert victim.read_text() == csv_text(SECRET)


def test_store_operations_refuse_symlinked_folders_and_files(tmp_path: Path, outside: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    store = LocalLandingStore(root)
    (root / "sub").symlink_to(outside, target_is_directory=True)
    write(root / "a.csv", "x")
    for op in (
        lambda: store.list("sub"),
        lambda: store.stat("sub/orders_secret.csv"),
        lambda: store.open("sub/orders_secret.csv"),
        lambda: store.move("a.csv", "sub/a.csv"),
        lambda: store.copy("a.csv", "sub/deep/a.csv"),
        lambda: store.write_text("sub/x.reason.json", "{}"),
        lambda: store.delete("sub/orders_secret.csv"),
    ):
        with pytest.raises(LandingSymlinkError, match="sub is a symbolic link"):
            op()
    (root / "link.csv").symlink_to(outside / "orders_secret.csv")
    with pytest.raises(FileRejectedError, match=r"link\.csv is a symbolic link; bulksync reads only regular files"):
        store.read_text("link.csv")
    assert store.claim("link.csv", "processing/k/link.csv") and (root / "processing/k/link.csv").is_symlink()
    assert untouched(outside) and os.path.realpath(root / "processing/k/link.csv") == str(outside / "orders_secret.csv")
