"""The project's own tooling on a fresh clone (issue 14 item 16): `make bench`'s folders, the Azure
demo's skip message, and links in the docs that point at files the repository has."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT


def test_bench_harness_creates_its_folders_on_a_fresh_clone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    import benchcfg
    import harness

    data = tmp_path / ".data"  # what a fresh clone has: no bench/.data at all
    for name in ("STAGING_ROOT", "OUTPUT_DIR", "LOG_DIR", "RESULTS_DIR", "AIRFLOW_HOME", "DLT_DIR"):
        monkeypatch.setattr(benchcfg, name, data / getattr(benchcfg, name).name)
    monkeypatch.setattr(harness, "LOG_DIR", benchcfg.LOG_DIR)
    code, _, _ = harness._run_monitored([sys.executable, "-c", "print('case ran')"], benchcfg.LOG_DIR / "case.log")
    assert code == 0
    assert (benchcfg.LOG_DIR / "case.log").read_text().strip() == "case ran"


@pytest.mark.skipif(
    not any((Path(p) / "node").exists() for p in os.environ["PATH"].split(os.pathsep)), reason="no node"
)
def test_azure_demo_says_azurite_is_missing_not_node(tmp_path: Path) -> None:
    """Node.js is there, Azurite is not and npm cannot install it: the message names Azurite."""
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "npm").write_text("#!/bin/sh\necho 'npm ERR! network' >&2\nexit 1\n")
    (fake / "npm").chmod(0o755)
    env = {**os.environ, "PATH": f"{fake}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run(
        [
            "make",
            "-C",
            str(ROOT),
            "-o",
            str(ROOT / ".venv/.synced"),
            "--no-print-directory",
            "demo-azure",
            f"LOCAL={tmp_path / '.local'}",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "npm could not install azurite" in proc.stdout  # make demo tried to install it, as make test does
    assert f"Azure demo skipped: Azurite is not installed in {tmp_path / '.local/tools'}" in proc.stdout
    assert "Node.js" not in proc.stdout


def test_docs_cite_only_files_the_repository_has() -> None:
    docs = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "bench").glob("*.md"))]
    broken = []
    for doc in docs:
        text = doc.read_text(encoding="utf-8")
        targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)  # [text](path#anchor)
        targets += re.findall(r"\(([A-Z][A-Za-z_-]*\.md)\)", text)  # "(DESIGN.md)" as a bare citation
        for target in targets:
            if "://" in target or target.startswith("mailto:"):
                continue
            if not (doc.parent / target).exists():
                broken.append(f"{doc.relative_to(ROOT)}: {target}")
    assert broken == []
