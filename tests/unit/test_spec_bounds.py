"""Spec files that would choke the DAG processor, and YAML 1.1 surprises: issue 12 items 9, 11 and 13.

Every spec is read by ``bulksync validate`` and by the DAG file through the same loader
(:func:`bulksync.spec.loader.load_spec`), so what is refused here is refused in both places.
"""

from __future__ import annotations

import resource
import time
from pathlib import Path

import pytest

from bulksync.errors import SpecError
from bulksync.spec.loader import MAX_DEPTH, MAX_NODES, load_spec, load_specs, parse_yaml

HEAD = """\
tenant: acme
pipeline: nightly
start_date: 2024-01-01
"""
DATASET = """\
datasets:
  - name: accounts
    source: {kind: sql, conn_id: crm_db, options: {table: dbo.accounts}}
{transforms}    target: {kind: postgres, conn_id: dwh, table: accounts}
"""


def spec_text(transforms: str = "", head: str = HEAD, extra: str = "") -> str:
    return head + extra + DATASET.replace("{transforms}", transforms)


def alias_bomb(levels: int) -> str:
    """A "billion laughs" spec: each anchor is a list of nine aliases of the previous one (9**levels values)."""
    opts = ['            a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    opts += [f"            a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, levels)]
    steps = "    transforms:\n      - python:\n          name: explode\n          options:\n" + "\n".join(opts) + "\n"
    return spec_text(steps)


def problem(path: Path) -> str:
    with pytest.raises(SpecError) as info:
        load_spec(path)
    [(file, field, msg)] = info.value.problems
    assert (file, field) == (str(path), "")
    return msg


def test_a_kilobyte_alias_bomb_is_refused_at_once(tmp_path: Path) -> None:
    path = tmp_path / "nightly.yaml"
    path.write_text(alias_bomb(9), encoding="utf-8")  # 9**9 = 387 million values
    assert path.stat().st_size < 1400
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.process_time()

    msg = problem(path)

    assert time.process_time() - started < 2
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before < 50_000  # KiB
    assert msg.startswith(f"line 16: the document expands to more than {MAX_NODES:,} values once its aliases")
    assert "write the values out or reuse anchors less" in msg
    # the folder-level loader the DAG file uses refuses it the same way
    with pytest.raises(SpecError, match="expands to more than"):
        load_specs(tmp_path)


def test_anchors_reused_within_the_bound_still_load(tmp_path: Path) -> None:
    path = tmp_path / "nightly.yaml"
    path.write_text(alias_bomb(5), encoding="utf-8")  # 9**5 = 59,049 values
    spec = load_spec(path)
    assert len(spec.datasets[0].transforms[0].python.options["a4"]) == 9  # type: ignore[union-attr]


def test_merge_keys_and_ordinary_anchors_work(tmp_path: Path) -> None:
    text = spec_text(extra="tasks: &defaults {retries: 2, retry_delay_minutes: 1}\n").replace(
        "{kind: postgres, conn_id: dwh, table: accounts}", "{<<: &t {kind: postgres, conn_id: dwh}, table: accounts}"
    )
    path = tmp_path / "nightly.yaml"
    path.write_text(text, encoding="utf-8")
    spec = load_spec(path)
    assert spec.tasks.retries == 2 and spec.datasets[0].target.conn_id == "dwh"


def test_a_recursive_alias_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "nightly.yaml"
    path.write_text(spec_text(extra="tags: &loop [a, *loop]\n"), encoding="utf-8")
    msg = problem(path)
    assert msg.startswith("line 4: alias *loop refers to a list or mapping that contains it (a recursive structure)")


def test_deep_nesting_is_refused_without_crashing_the_process(tmp_path: Path) -> None:
    path = tmp_path / "nightly.yaml"
    deep = 200_000  # pure-Python PyYAML: RecursionError; libyaml's composer: SIGSEGV of the DAG processor
    path.write_text(spec_text(extra="tags: " + "[" * deep + "]" * deep + "\n"), encoding="utf-8")
    msg = problem(path)
    assert msg == (
        f"line 4: lists and mappings are nested more than {MAX_DEPTH} levels deep; a pipeline spec needs far "
        "fewer, flatten the structure"
    )


def test_an_oversized_spec_is_refused_before_it_is_parsed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "nightly.yaml"
    path.write_text(spec_text() + "# " + "x" * (1 << 20) + "\n", encoding="utf-8")
    started = time.process_time()
    msg = problem(path)
    assert time.process_time() - started < 0.5
    assert msg == (
        "the file is larger than 1,048,576 bytes, the limit for a pipeline spec; split it into one spec per "
        "pipeline, or raise BULKSYNC_SPEC_MAX_BYTES if it really must be this big"
    )
    monkeypatch.setenv("BULKSYNC_SPEC_MAX_BYTES", str(2 << 20))
    assert load_spec(path).dag_id == "acme__nightly"


def test_a_spec_that_is_not_utf8_names_the_byte(tmp_path: Path) -> None:
    path = tmp_path / "nightly.yaml"
    path.write_bytes(spec_text().encode() + b"# caf\xe9\n")
    assert problem(path).startswith("not UTF-8 text (byte ")


def test_alerts_on_as_documented_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "nightly.yaml"
    path.write_text(spec_text(extra="alerts: {webhooks: [ops_slack], on: [failed, warn]}\n"), encoding="utf-8")
    spec = load_spec(path)
    assert spec.alerts.on == ["failed", "warn"]
    block = "alerts:\n  webhooks: [ops_slack]\n  on:\n    - quarantined\n"
    path.write_text(spec_text(extra=block), encoding="utf-8")
    assert load_spec(path).alerts.on == ["quarantined"]


def test_yaml_11_words_are_strings_but_boolean_fields_still_take_them(tmp_path: Path) -> None:
    assert parse_yaml("a: [on, off, yes, no, NO, y, true, False, TRUE]", "f.yaml") == {
        "a": ["on", "off", "yes", "no", "NO", "y", True, False, True]
    }
    mapping = "    transforms:\n      - map: {column: country, values: {NO: Norway, SE: Sweden, on: Ontario}}\n"
    path = tmp_path / "nightly.yaml"
    path.write_text(spec_text(mapping, extra="catchup: yes\n"), encoding="utf-8")
    spec = load_spec(path)
    assert spec.catchup is True
    assert spec.datasets[0].transforms[0].map.values == {"NO": "Norway", "SE": "Sweden", "on": "Ontario"}  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("field", "yaml_value"),
    [
        ("tenant", '"acme\\n"'),
        ("pipeline", '"nightly\\n"'),
        ("dataset", '"accounts\\n"'),
        ("table", '"accounts\\n"'),
        ("column", '"id\\n"'),
    ],
)
def test_a_trailing_newline_in_a_name_is_refused(tmp_path: Path, field: str, yaml_value: str) -> None:
    text = spec_text("    transforms:\n      - select: [id]\n")
    if field == "tenant":
        text = text.replace("tenant: acme", f"tenant: {yaml_value}")
    elif field == "pipeline":
        text = text.replace("pipeline: nightly", f"pipeline: {yaml_value}")
    elif field == "dataset":
        text = text.replace("name: accounts", f"name: {yaml_value}")
    elif field == "table":
        text = text.replace("table: accounts}", f"table: {yaml_value}}}")
    else:
        text = text.replace("select: [id]", f"select: [{yaml_value}]")
    path = tmp_path / "nightly.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert any("\\n'" in msg and "is not a valid" in msg for _, _, msg in info.value.problems), info.value.problems


def test_bulksync_validate_refuses_the_bombs_the_dag_file_would_choke_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``bulksync validate`` reads specs through the DAG file's loader: it fails, naming each file, in seconds."""
    from typer.testing import CliRunner

    from bulksync.cli import app

    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "nightly.yaml").write_text(alias_bomb(9), encoding="utf-8")
    sums = "    transforms:\n      - derive: {total: '" + "+".join(["id"] * 100_000) + "'}\n"
    (specs / "sums.yaml").write_text(spec_text(sums).replace("pipeline: nightly", "pipeline: sums"), encoding="utf-8")
    nots = "    transforms:\n      - filter: '" + " not" * 5000 + " id'\n"
    (specs / "nots.yaml").write_text(spec_text(nots).replace("pipeline: nightly", "pipeline: nots"), encoding="utf-8")
    monkeypatch.setenv("BULKSYNC_HOME", str(tmp_path))
    monkeypatch.setenv("BULKSYNC_SPECS_DIR", str(specs))
    started = time.monotonic()
    res = CliRunner().invoke(app, ["validate"])
    assert time.monotonic() - started < 20
    out = "".join(res.output.split())  # rich wraps long lines anywhere: compare without whitespace

    def has(text: str) -> bool:
        return "".join(text.split()) in out

    assert res.exit_code == 1, res.output
    assert has("nightly.yaml: line 16: the document expands to more than 200,000 values")
    assert has("sums.yaml") and has("is longer than the limit of 10,000; split it into several derive/filter steps")
    assert has("nots.yaml")
    assert not has("RecursionError") and not has("MemoryError") and not has("Traceback")
