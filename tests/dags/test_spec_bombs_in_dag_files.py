"""Hostile specs beside a good one: the DAG processor refuses each within its bounds, per file.

The dag-processor parses every DAG file of the folder again and again. A 1.3 KB YAML alias bomb
(billion laughs: 9**10 strings once its aliases are expanded), a spec past the size bound and one
nested thousands of levels deep must each become the import error of their own DAG file, naming
their own spec and the bound they broke, within seconds and a bounded amount of memory, while the
good spec's DAG and ``bulksync__migration`` keep loading (issue 14 item 1). ``bulksync validate``
reads specs through the same loader and refuses the same files (issue 12 item 9).

The DagBag runs in a child process limited to 2 GiB of address space, so a bound that stopped
holding fails this test (a timeout, a MemoryError, a crash) instead of taking the test run down.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

from bulksync.factory.dag_files import sync_dag_files
from bulksync.spec.loader import MAX_DEPTH, MAX_NODES, MAX_SPEC_BYTES
from tests.conftest import ROOT

ADDRESS_SPACE = 2 << 30  # RLIMIT_AS of the parsing child
PARSE_BOUND_S = 20.0  # filling the DagBag (imports excluded)
RSS_BOUND_KIB = 1 << 20  # peak resident memory of the parsing child: 1 GiB (about 230 MiB now)
CHILD_TIMEOUT_S = 60  # the whole child, imports included (about 5 s now)

GOOD = """\
tenant: acme
pipeline: {name}
description: Accounts from the CRM into the warehouse.
schedule: "0 4 * * *"
start_date: 2026-01-01
owner: integrations
datasets:
  - name: accounts
    source: {{kind: sql, conn_id: acme_crm, options: {{table: accounts}}}}
    target: {{kind: sqlite, conn_id: acme_warehouse, table: accounts_{name}, mode: append}}
"""


def alias_bomb() -> str:
    """A spec like any other, but the request body of its API source is a billion laughs."""
    levels = "abcdefghij"
    lines = ['lol: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 9) + "]" for prev, name in itertools.pairwise(levels)]
    body = "\n".join(" " * 12 + line for line in lines)
    return f"""\
# An API pull of items. Its search body holds ten anchors, each a list of nine aliases of the one
# before: a kilobyte of YAML that expands to 9**10 (3.5 billion) strings.
tenant: acme
pipeline: bomb
description: An API pull whose request body is a billion laughs.
schedule: "0 3 * * *"
start_date: 2026-01-01
datasets:
  - name: items
    source:
      kind: api
      conn_id: acme_items
      options:
        endpoint:
          method: POST
          path: /v1/items/search
          body:
{body}
        records:
          path: data
          columns: [{{name: id, type: int64, nullable: false}}, {{name: name}}]
        primary_key: [id]
    target: {{kind: sqlite, conn_id: acme_warehouse, table: items, mode: merge, keys: [id]}}
"""


def oversized() -> str:
    """A valid spec padded with comments past the size bound (without the bound it would be a DAG)."""
    padding = ("# " + "padding " * 12 + "\n") * (MAX_SPEC_BYTES // 98 + 100)
    return GOOD.format(name="huge") + padding


def deeply_nested() -> str:
    """A spec whose tags are a list nested 50,000 levels deep (libyaml's composer recurses on it)."""
    return GOOD.format(name="deep") + "tags: " + "[" * 50_000 + "x" + "]" * 50_000 + "\n"


# Fills a DagBag over the folder the way the dag-processor does, then runs `bulksync validate`
# over its specs; prints what came out as JSON. Limited to ADDRESS_SPACE bytes of address space.
PARSE = textwrap.dedent("""
    import json, resource, sys, time
    limit = int(sys.argv[2])
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    from airflow.dag_processing.dagbag import DagBag
    from typer.testing import CliRunner
    from bulksync.cli import app

    folder = sys.argv[1]
    started = time.monotonic()
    bag = DagBag(dag_folder=folder, safe_mode=False)
    parse_s = time.monotonic() - started
    migration = bag.dags.get("bulksync__migration")
    started = time.monotonic()
    validate = CliRunner().invoke(app, ["validate", "--specs", folder + "/pipelines"])
    print("RESULT " + json.dumps({
        "dag_ids": sorted(bag.dag_ids),
        "import_errors": bag.import_errors,
        "parse_s": parse_s,
        "validate_s": time.monotonic() - started,
        "validate_code": validate.exit_code,
        "validate_output": validate.output,
        "choices": migration.params.get_param("pipeline").schema["examples"] if migration else None,
        "migration_doc": migration.doc_md if migration else None,
        "max_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }))
""")


def parse_in_child(folder: Path) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k != "BULKSYNC_SPEC_MAX_BYTES"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (env.get("PYTHONPATH"), str(ROOT)) if p)
    env["COLUMNS"] = "1000"  # validate's messages on one line each
    started = time.monotonic()
    try:
        out = subprocess.run(
            [sys.executable, "-c", PARSE, str(folder), str(ADDRESS_SPACE)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=CHILD_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        raise AssertionError(
            f"parsing the DAG folder did not end in {CHILD_TIMEOUT_S} s (a bound does not hold)"
        ) from None
    assert out.returncode == 0, f"the parsing child died ({out.returncode}):\n{out.stdout[-3000:]}{out.stderr[-3000:]}"
    result = next(line for line in out.stdout.splitlines() if line.startswith("RESULT "))
    return {**json.loads(result.removeprefix("RESULT ")), "wall_s": time.monotonic() - started}


def test_bombs_are_import_errors_of_their_own_files_and_the_good_dag_loads(tmp_path: Path) -> None:
    folder = tmp_path / "dags"
    specs = folder / "pipelines"
    specs.mkdir(parents=True)
    shutil.copy(ROOT / "dags" / "migration.py", folder / "migration.py")
    (specs / "acme__good.yaml").write_text(GOOD.format(name="good"))
    bad = {"acme__bomb": alias_bomb(), "acme__huge": oversized(), "acme__deep": deeply_nested()}
    for name, text in bad.items():
        (specs / f"{name}.yaml").write_text(text)
    assert len(bad["acme__bomb"].encode()) < 1400
    assert len(bad["acme__huge"].encode()) > MAX_SPEC_BYTES
    # the DAG files as a deployment has them: one per spec, written by `bulksync dags sync`
    assert len(sync_dag_files(specs).written) == 4

    result = parse_in_child(folder)

    assert result["parse_s"] < PARSE_BOUND_S, result
    assert result["max_rss_kib"] < RSS_BOUND_KIB, result["max_rss_kib"]
    assert result["dag_ids"] == ["acme__good", "bulksync__migration"]
    errors = result["import_errors"]
    assert sorted(errors) == sorted(str(specs / f"{name}.py") for name in bad)
    bounds = {
        "acme__bomb": f"the document expands to more than {MAX_NODES:,} values once its aliases (*name) are expanded",
        "acme__huge": f"the file is larger than {MAX_SPEC_BYTES:,} bytes, the limit for a pipeline spec",
        "acme__deep": f"lists and mappings are nested more than {MAX_DEPTH} levels deep",
    }
    for name, bound in bounds.items():
        message = errors[str(specs / f"{name}.py")]
        assert f"{specs / name}.yaml: " in message and bound in message, message
        others = [other for other in bad if other != name]
        assert not any(f"{other}.yaml" in message for other in others), message
    # refused where the count passes the bound (the sixth anchor's line), not after walking the expansion
    sixth = next(i for i, line in enumerate(bad["acme__bomb"].splitlines(), 1) if "f: &f [" in line)
    assert f"{specs / 'acme__bomb'}.yaml: line {sixth}: " in errors[str(specs / "acme__bomb.py")]

    # the migration DAG offers the good pipeline only and lists the refused specs in its docs
    assert result["choices"] == ["acme__good"]
    for name in bad:
        assert f"`{name}.yaml`" in result["migration_doc"]

    # `bulksync validate` refuses the same files for the same reasons, and passes the good one
    assert result["validate_s"] < PARSE_BOUND_S, result
    assert result["validate_code"] == 1, result["validate_output"]
    lines = result["validate_output"].splitlines()
    for name, bound in bounds.items():
        assert any(f"✗ {specs / name}.yaml: " in line and bound in line for line in lines), result["validate_output"]
    assert any(line.startswith("✓ acme__good.yaml: acme__good, 1 datasets") for line in lines), lines
    assert "3 problem(s)" in result["validate_output"]
