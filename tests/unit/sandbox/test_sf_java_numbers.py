"""The sandbox writes Bulk CSV numbers as Java's ``Double.toString`` does — checked against a real JVM.

Salesforce's Bulk API prints double, currency and percent values the Java way (``100.0`` for a
percent(3,0), ``1.2345678E7``); the sandbox must too, or the client's parsing of them is never tested.
"""

from __future__ import annotations

import random
import shutil
import subprocess
from pathlib import Path

import pyarrow as pa
import pytest

from bulksync.sandbox.salesforce.engine import java_double, java_number_text
from tests.conftest import service_missing
from tests.helpers import java_double_text

JAVA = """
public class Show {
    public static void main(String[] args) throws Exception {
        java.io.BufferedReader in = new java.io.BufferedReader(new java.io.InputStreamReader(System.in));
        String line;
        while ((line = in.readLine()) != null) System.out.println(Double.toString(Double.parseDouble(line)));
    }
}
"""


def values() -> list[float]:
    rng = random.Random(20260101)
    fixed = [100.0, 1234.5, 12345678.0, 1e7, 9999999.0, 0.001, 0.0009, 1e-4, 5e9, -2.5e7, 0.1, 2395146966.0,
             7847778.16, 30330.6, 1e21, 123456789.12, -0.5, 3.0]  # fmt: skip
    drawn = [round(rng.uniform(-1e10, 1e10), rng.randint(0, 4)) for _ in range(300)]
    small = [rng.uniform(-0.01, 0.01) for _ in range(50)]
    return fixed + drawn + small


def test_java_double_matches_the_jvm(tmp_path: Path) -> None:
    if shutil.which("java") is None:
        service_missing("java is not installed (apt-get install default-jre-headless)")
    source = tmp_path / "Show.java"
    source.write_text(JAVA)
    numbers = values()
    out = subprocess.run(
        ["java", str(source)], input="\n".join(repr(v) for v in numbers), capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    jvm = out.stdout.split()
    assert [java_double(v) for v in numbers] == jvm
    assert java_number_text(pa.array(numbers)).to_pylist() == jvm
    assert [java_double_text(v) for v in numbers] == jvm  # the tests' own oracle agrees with the JVM too


@pytest.mark.parametrize(("value", "text"), [(100.0, "100.0"), (1.2345678e7, "1.2345678E7"), (0.0, "0.0")])
def test_documented_shapes(value: float, text: str) -> None:
    assert java_double(value) == text
