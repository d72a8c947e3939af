"""Dead-holder detection shared by the file-drop lease and the lake locks, and the local lock's exclusion
between real processes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bulksync.storage.location import open_location
from bulksync.storage.lock import StorageLock, StorageLockHeldError, holder_gone, process_started

ROOT = Path(__file__).resolve().parents[2]


def test_a_dead_or_zombie_process_is_gone_a_live_one_is_not() -> None:
    me = os.getpid()
    assert process_started(me) and not holder_gone(socket.gethostname(), me, process_started(me))
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    while True:  # exited but not reaped yet: a zombie
        with open(f"/proc/{child.pid}/stat") as f:
            if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                break
        time.sleep(0.02)
    assert process_started(child.pid) is None and holder_gone(socket.gethostname(), child.pid, "1")
    child.wait()
    assert holder_gone(socket.gethostname(), me, "not-its-start-time")  # the pid was reused by another process
    assert not holder_gone("another-host", child.pid, None)  # elsewhere: only the expiry tells


def test_local_lock_excludes_another_process_until_released(tmp_path: Path) -> None:
    loc = open_location(str(tmp_path)).child("_locks", "x.lock")
    lock = StorageLock(loc, "x", wait_seconds=0)
    assert lock.acquire()
    probe = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "from bulksync.storage.location import open_location; from bulksync.storage.lock import StorageLock;"
        "print(StorageLock(open_location(sys.argv[2]).child('_locks', 'x.lock'), 'x').acquire(wait=False))"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / "include")}
    held = subprocess.run([sys.executable, "-c", probe, str(ROOT), str(tmp_path)], env=env, capture_output=True,
                          text=True, check=True)  # fmt: skip
    assert held.stdout.strip() == "False"
    with pytest.raises(StorageLockHeldError, match=r"another load holds x .*waited 0s and stops without writing"):
        StorageLock(loc, "x", wait_seconds=0).acquire()
    lock.release()
    free = subprocess.run([sys.executable, "-c", probe, str(ROOT), str(tmp_path)], env=env, capture_output=True,
                          text=True, check=True)  # fmt: skip
    assert free.stdout.strip() == "True"
