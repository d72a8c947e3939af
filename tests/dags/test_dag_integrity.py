"""DAG integrity: every spec becomes one importable DAG with sane defaults, and parsing touches nothing."""

from __future__ import annotations

import itertools
import shutil
import socket
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT

DAGS = ROOT / "dags"


def _dagbag(folder: Path) -> Any:
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(folder), safe_mode=False)


@pytest.fixture(scope="module")
def dagbag() -> Any:
    return _dagbag(DAGS)


def test_no_import_errors(dagbag: Any) -> None:
    assert dagbag.import_errors == {}


def test_one_dag_per_spec(dagbag: Any) -> None:
    from bulksync.spec.loader import load_specs

    specs = load_specs(DAGS / "pipelines")
    assert {s.dag_id for s in specs} <= set(dagbag.dag_ids)
    # each spec's DAG comes from its own DAG file beside it (pipelines/<name>.py)
    by_file = {Path(d.fileloc).name: d.dag_id for d in dagbag.dags.values() if "pipelines" in d.fileloc}
    assert by_file == {f"{s.dag_id}.py": s.dag_id for s in specs}


def test_every_spec_has_its_dag_file_up_to_date() -> None:
    from bulksync.factory.dag_files import sync_dag_files

    result = sync_dag_files(DAGS / "pipelines", check=True)
    assert (result.written, result.removed, result.foreign) == ([], [], []), "run `bulksync dags sync`"


def test_each_dataset_is_a_group_extract_validate_transform_load_reconcile(dagbag: Any) -> None:
    from bulksync.spec.loader import load_specs
    from bulksync.spec.sources import is_chunked

    for spec in load_specs(DAGS / "pipelines"):
        dag = dagbag.dags[spec.dag_id]
        for ds in spec.datasets:
            extract = ["plan_extract", "extract", "commit_extract"] if is_chunked(ds.source) else ["extract"]
            chain = [*extract, *(["validate"] if ds.quality else []), "transform", "load", "reconcile"]
            for up, down in itertools.pairwise(chain):
                assert dag.get_task(f"{ds.name}.{up}").downstream_task_ids == {f"{ds.name}.{down}"}
        expected = {
            f"{ds.name}.{stage}"
            for ds in spec.datasets
            for stage in (
                "extract",
                "transform",
                "load",
                "reconcile",
                *(["validate"] if ds.quality else []),
                *(["plan_extract", "commit_extract"] if is_chunked(ds.source) else []),
            )
        }
        assert set(dag.task_ids) == expected
    assert "accounts.validate" in dagbag.dags["acme__nightly"].task_ids


@pytest.mark.parametrize("attr", ["owner", "tags", "retries"])
def test_defaults_owner_tags_retries(dagbag: Any, attr: str) -> None:
    for dag in dagbag.dags.values():
        assert "bulksync" in dag.tags
        migration = dag.dag_id == "bulksync__migration"
        assert migration or any(t.startswith("tenant:") for t in dag.tags)
        for task in dag.tasks:
            assert task.owner and task.owner != "airflow"
            # bad migration Params fail at once: check_params has no retries
            assert task.retries == 0 if migration and task.task_id == "check_params" else task.retries >= 2
            assert task.execution_timeout is not None


def test_windows_are_data_intervals(dagbag: Any) -> None:
    """Cron schedules get a data-interval timetable (Airflow 3's default would give empty windows).

    The e2e test checks the resulting window end to end (the partition key of a run).
    """
    tt = dagbag.dags["acme__nightly"].timetable
    assert type(tt).__name__ == "CronDataIntervalTimetable"
    assert tt.expression == "0 2 * * *"


def test_parsing_touches_no_network_or_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Parse with sockets and SQLAlchemy engines forbidden and the connections undefined."""
    import sqlalchemy

    for var in ("AIRFLOW_CONN_ACME_CRM", "AIRFLOW_CONN_ACME_WAREHOUSE"):
        monkeypatch.delenv(var, raising=False)

    def forbidden(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("DAG parsing tried to open a connection")

    monkeypatch.setattr(socket.socket, "connect", forbidden)
    monkeypatch.setattr(sqlalchemy, "create_engine", forbidden)
    from bulksync.factory import build_dags

    dags = build_dags(DAGS / "pipelines")
    assert "acme__nightly" in dags


def test_invalid_spec_is_an_import_error_of_its_own_file_only(tmp_path: Path) -> None:
    """One broken spec: the import error names its DAG file, spec file and field; every other DAG loads."""
    folder = tmp_path / "dags"
    shutil.copytree(DAGS, folder)
    bad = (folder / "pipelines" / "acme__nightly.yaml").read_text().replace("mode: merge", "mode: upsert", 1)
    (folder / "pipelines" / "acme__nightly.yaml").write_text(bad)
    bag = _dagbag(folder)
    assert list(bag.import_errors) == [str(folder / "pipelines" / "acme__nightly.py")]
    errors = "\n".join(bag.import_errors.values())
    assert "acme__nightly.yaml" in errors
    assert "datasets[0].target.mode (dataset 'accounts')" in errors
    assert "Input should be 'append', 'merge', 'replace' or 'interval'" in errors
    assert sorted(bag.dag_ids) == [
        "acme__api",
        "acme__drops",
        "acme__ibmi",
        "acme__salesforce",
        "acme__writeback",
        "bulksync__migration",
    ]
    # the migration DAG offers the valid pipelines and lists the left-out one in its docs
    migration = bag.dags["bulksync__migration"]
    assert "acme__nightly" not in migration.params.get_param("pipeline").schema["examples"]
    assert "acme__ibmi" in migration.params.get_param("pipeline").schema["examples"]
    assert "`acme__nightly.yaml`: datasets[0].target.mode" in migration.doc_md


def test_a_spec_without_its_dag_file_is_reported_and_synced(tmp_path: Path) -> None:
    from bulksync.factory.dag_files import missing_dag_files, sync_dag_files

    folder = tmp_path / "pipelines"
    shutil.copytree(DAGS / "pipelines", folder)
    (folder / "acme__drops.py").unlink()
    (folder / "acme__gone.py").write_text((folder / "acme__ibmi.py").read_text())  # ours, spec removed
    (folder / "helper.py").write_text("x = 1\n")  # not ours: left alone
    assert missing_dag_files(folder) == [folder / "acme__drops.yaml"]
    result = sync_dag_files(folder)
    assert (result.written, result.removed) == ([folder / "acme__drops.py"], [folder / "acme__gone.py"])
    assert (folder / "helper.py").exists() and not (folder / "acme__gone.py").exists()
    assert missing_dag_files(folder) == []
    assert sync_dag_files(folder, check=True).written == []


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{not json", "not valid JSON"),
        (
            '{"name": "orders", "expectations": [{"type": "expect_column_values_to_be_purple", "kwargs": {}}]}',
            "expectations[0].type",
        ),
        (None, "no suite 'orders': looked for"),
    ],
    ids=["invalid-json", "unknown-expectation", "missing-suite"],
)
def test_broken_suite_is_an_import_error_naming_the_suite_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: str | None, expected: str
) -> None:
    folder = tmp_path / "dags"
    shutil.copytree(DAGS, folder)
    suites = tmp_path / "expectations"
    shutil.copytree(ROOT / "expectations", suites)
    if content is None:
        (suites / "orders.json").unlink()
    else:
        (suites / "orders.json").write_text(content)
    monkeypatch.setenv("BULKSYNC_EXPECTATIONS_DIR", str(suites))
    errors = "\n".join(_dagbag(folder).import_errors.values())
    assert str(suites / "orders.json") in errors
    assert expected in errors


def test_a_dag_file_whose_spec_is_gone_is_an_import_error_saying_what_to_do(tmp_path: Path) -> None:
    folder = tmp_path / "dags"
    shutil.copytree(DAGS, folder)
    (folder / "pipelines" / "acme__drops.yaml").unlink()
    bag = _dagbag(folder)
    assert list(bag.import_errors) == [str(folder / "pipelines" / "acme__drops.py")]
    message = bag.import_errors[str(folder / "pipelines" / "acme__drops.py")]
    assert "no pipeline spec beside the DAG file acme__drops.py" in message
    assert "`bulksync dags sync` removes the DAG files it wrote for specs that are gone" in message
    assert "acme__nightly" in bag.dag_ids


def test_parsing_a_dag_file_loads_no_engine() -> None:
    """The dag-processor parses every DAG file over and over and every task parses its own first:
    pyarrow, pandas and Great Expectations load only in the tasks that use them."""
    import subprocess
    import sys

    code = (
        "import runpy, sys\n"
        f"runpy.run_path({str(DAGS / 'pipelines' / 'acme__nightly.py')!r})\n"
        "print(sorted(m for m in ('pyarrow', 'pandas', 'numpy', 'great_expectations') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"
