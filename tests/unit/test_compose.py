"""The container deployment: docker-compose.yaml, Dockerfile and .dockerignore say what users rely on.

No Docker engine is needed: the compose file is read with PyYAML (anchors and merge keys resolved
as Compose resolves them) and, when the ``docker-compose`` binary exists, validated by it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from tests.conftest import ROOT, service_missing

COMPOSE = ROOT / "docker-compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
LOCK = ROOT / "uv.lock"

INFRA = {"postgres", "redis"}
SANDBOX = {"salesforce-sandbox", "azurite"}
WORKERS = {"airflow-worker-1", "airflow-worker-2"}
AIRFLOW = {
    "airflow-init",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    *WORKERS,
    "flower",
}
STAGING = "/data/staging"

_VAR = re.compile(r"\$\{(?P<name>\w+)(?::?-(?P<default>[^}]*))?\}")


# --- helpers ------------------------------------------------------------------------------------


@cache
def compose() -> dict[str, Any]:
    """The compose file with anchors and ``<<`` merges resolved."""
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


def services() -> dict[str, dict[str, Any]]:
    return compose()["services"]


def common() -> dict[str, Any]:
    return compose()["x-airflow-common"]


def interpolate(value: Any) -> str:
    """A value as Compose sees it with an empty shell environment: ``${X:-d}`` → ``d``, ``$$`` → ``$``."""
    text = str(value)
    return _VAR.sub(lambda m: m["default"] or "", text).replace("$$", "$")


def env(service: str) -> dict[str, str]:
    return {k: interpolate(v) for k, v in services()[service]["environment"].items()}


def argv(command: Any) -> list[str]:
    return shlex.split(command) if isinstance(command, str) else [str(c) for c in command]


def mounts(service: str) -> dict[str, str]:
    """Container path → source (bind path or volume name) of the service's short-syntax volumes."""
    result = {}
    for spec in services()[service].get("volumes", []):
        source, target, *_ = interpolate(spec).split(":")
        result[target] = source
    return result


def depends_on(service: str) -> dict[str, str]:
    return {name: cond["condition"] for name, cond in services()[service].get("depends_on", {}).items()}


@cache
def dockerfile() -> list[tuple[str, str]]:
    """The Dockerfile's instructions as (KEYWORD, arguments), continuation lines joined."""
    instructions, buf = [], ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        keyword, _, args = (buf + line).partition(" ")
        instructions.append((keyword.upper(), args.strip()))
        buf = ""
    return instructions


def dockerfile_env() -> dict[str, str]:
    result = {}
    for keyword, args in dockerfile():
        if keyword == "ENV":
            for item in shlex.split(args):
                key, _, value = item.partition("=")
                result[key] = value
    return result


def healthcheck(service: str) -> str:
    test = services()[service]["healthcheck"]["test"]
    return " ".join(argv(test))


# --- the compose stack --------------------------------------------------------------------------


def test_compose_has_exactly_the_documented_services() -> None:
    assert set(services()) == INFRA | AIRFLOW | SANDBOX
    assert "version" not in compose(), "the Compose spec has no `version:` key"


def test_flower_and_the_sandbox_services_are_the_only_optional_ones() -> None:
    profiles = {name: svc.get("profiles") for name, svc in services().items() if svc.get("profiles")}
    assert profiles == {"flower": ["flower"], "salesforce-sandbox": ["sandbox"], "azurite": ["sandbox"]}


def test_sandbox_services() -> None:
    sf = services()["salesforce-sandbox"]
    assert sf["image"] == common()["image"] and sf["build"] == common()["build"]
    assert argv(sf["entrypoint"])[-1] == "bulksync"
    assert argv(sf["command"]) == [
        "sandbox",
        "salesforce",
        "--host",
        "0.0.0.0",
        "--public-host",
        "salesforce-sandbox",
        "--port",
        "8443",
        "--workdir",
        "/opt/bulksync/sandbox",
    ]
    assert "sandbox-salesforce:/opt/bulksync/sandbox" in sf["volumes"]
    assert any(interpolate(p).endswith(":8443") for p in sf["ports"])
    az = services()["azurite"]
    assert az["image"] == "mcr.microsoft.com/azure-storage/azurite"
    cmd = argv(az["command"])
    assert cmd[0] == "azurite-blob" and "--disableTelemetry" in cmd, "Azurite must not phone home"
    assert cmd[cmd.index("--blobHost") + 1] == "0.0.0.0" and cmd[cmd.index("--blobPort") + 1] == "10000"
    assert any(interpolate(p).endswith(":10000") for p in az["ports"])
    assert mounts("azurite").get("/data") == "azurite-data"
    for name in SANDBOX:
        assert "healthcheck" in services()[name], name


def test_two_celery_workers() -> None:
    workers = {name for name, svc in services().items() if argv(svc.get("command", ""))[:2] == ["celery", "worker"]}
    assert workers == WORKERS


def test_airflow_services_share_one_image_and_one_environment() -> None:
    for name in AIRFLOW:
        svc = services()[name]
        assert svc["image"] == common()["image"], name
        assert svc["build"] == common()["build"], name
        assert svc["environment"] == common()["environment"], f"{name} must not diverge from x-airflow-common"
        assert svc["volumes"] == common()["volumes"], name
    assert common()["build"]["dockerfile"] == "Dockerfile"


def test_every_airflow_service_runs_the_celery_executor() -> None:
    for name in AIRFLOW:
        assert env(name)["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name


def test_metadata_db_is_the_postgres_service() -> None:
    e = env("airflow-scheduler")
    db = urlsplit(e["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    assert db.scheme == "postgresql+psycopg"
    assert db.hostname == "postgres" and db.path == "/airflow"
    assert services()["postgres"]["image"].startswith("postgres:16")
    assert services()["postgres"]["environment"]["POSTGRES_DB"] == "airflow"

    backend = urlsplit(e["AIRFLOW__CELERY__RESULT_BACKEND"])
    assert backend.scheme == "db+postgresql+psycopg"
    assert backend.hostname == "postgres"


def test_broker_is_the_redis_service() -> None:
    broker = urlsplit(env("airflow-scheduler")["AIRFLOW__CELERY__BROKER_URL"])
    assert (broker.scheme, broker.hostname, broker.port) == ("redis", "redis", 6379)
    assert services()["redis"]["image"].startswith("redis:7")


def test_tasks_reach_the_execution_api_of_the_apiserver() -> None:
    url = urlsplit(env("airflow-worker-1")["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"])
    assert url.hostname == "airflow-apiserver"
    assert url.path == "/execution/"
    api = argv(services()["airflow-apiserver"]["command"])
    assert api[0] == "api-server"
    port = api[api.index("--port") + 1] if "--port" in api else "8080"
    assert str(url.port) == port
    assert any(interpolate(p).endswith(f":{port}") for p in services()["airflow-apiserver"]["ports"])


def test_jwt_secret_is_shared_and_set_from_the_environment() -> None:
    raw = common()["environment"]["AIRFLOW__API_AUTH__JWT_SECRET"]
    m = _VAR.fullmatch(raw)
    assert m and m["name"] == "AIRFLOW_JWT_SECRET", "the JWT secret must come from ${AIRFLOW_JWT_SECRET:-...}"
    assert m["default"], "a placeholder default keeps `docker compose up` working out of the box"
    assert len({env(name)["AIRFLOW__API_AUTH__JWT_SECRET"] for name in AIRFLOW}) == 1


def test_staging_volume_is_shared_at_the_same_path_everywhere() -> None:
    assert "staging" in compose()["volumes"]
    for name in AIRFLOW:
        assert mounts(name).get(STAGING) == "staging", f"{name} must mount the `staging` volume at {STAGING}"
        assert env(name)["BULKSYNC_STAGING_ROOT"] == STAGING, name


def test_code_is_mounted_where_the_image_expects_it() -> None:
    image = dockerfile_env()
    home = image["BULKSYNC_HOME"]
    expected = {
        image["AIRFLOW__CORE__DAGS_FOLDER"]: "./dags",
        image["AIRFLOW__CORE__PLUGINS_FOLDER"]: "./plugins",
        f"{home}/include": "./include",
        f"{home}/expectations": "./expectations",
    }
    for name in AIRFLOW:
        m = mounts(name)
        for target, source in expected.items():
            assert m.get(target) == source, f"{name}: {source} must be mounted at {target}"
        e = env(name)
        assert e["AIRFLOW__CORE__DAGS_FOLDER"] == image["AIRFLOW__CORE__DAGS_FOLDER"]
        assert e["AIRFLOW__CORE__PLUGINS_FOLDER"] == image["AIRFLOW__CORE__PLUGINS_FOLDER"]
        assert e["BULKSYNC_HOME"] == home


def test_healthchecks() -> None:
    assert "pg_isready" in healthcheck("postgres")
    assert "redis-cli ping" in healthcheck("redis")
    assert "curl --fail http://localhost:8080/api/v2/version" in healthcheck("airflow-apiserver")
    long_running = AIRFLOW - {"airflow-init"}
    missing = sorted(name for name in long_running if "healthcheck" not in services()[name])
    assert not missing, f"services without a healthcheck: {missing}"


def test_init_migrates_the_db_and_completes_before_everything_else() -> None:
    assert argv(services()["airflow-init"]["command"]) == ["db", "migrate"]
    assert depends_on("airflow-init") == {
        "postgres": "service_healthy",
        "redis": "service_healthy",
    }
    for name in AIRFLOW - {"airflow-init"}:
        deps = depends_on(name)
        assert deps.get("airflow-init") == "service_completed_successfully", name
        assert deps.get("postgres") == deps.get("redis") == "service_healthy", name


def test_workers_start_once_the_apiserver_is_healthy() -> None:
    for name in WORKERS:
        assert depends_on(name).get("airflow-apiserver") == "service_healthy", name


def test_commands_exist_in_the_installed_airflow_cli(tmp_path: Path) -> None:
    """Every `airflow …` the stack runs (commands and healthchecks) parses with the installed CLI."""
    commands = {name: argv(services()[name]["command"]) for name in AIRFLOW}
    for name in AIRFLOW:
        test = argv(services()[name].get("healthcheck", {}).get("test", []))
        if test[:2] == ["CMD", "airflow"]:
            commands[f"{name} healthcheck"] = test[2:]
    if importlib.util.find_spec("airflow.providers.celery") is None:
        # test_image_lock_has_the_celery_provider reports that; check the rest here.
        commands = {k: v for k, v in commands.items() if v[0] != "celery"}
    script = (
        "import contextlib, io, json, sys\n"
        "from airflow.cli.cli_parser import get_parser\n"
        "parser, bad = get_parser(), {}\n"
        "for name, args in json.loads(sys.argv[1]).items():\n"
        "    err = io.StringIO()\n"
        "    try:\n"
        "        with contextlib.redirect_stderr(err):\n"
        "            parser.parse_args(args)\n"
        "    except SystemExit:\n"
        "        bad[name] = [args, err.getvalue().strip().splitlines()[-1:]]\n"
        "print(json.dumps(bad))\n"
    )
    environ = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path),
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    }
    proc = subprocess.run(
        [sys.executable, "-c", script, json.dumps(commands)],
        capture_output=True,
        text=True,
        env=environ,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {}


def test_compose_file_validates_with_docker_compose() -> None:
    """`docker-compose config -q` (Debian's docker-compose 1.29 needs no engine), all profiles included."""
    if shutil.which("docker-compose"):
        cmd = ["docker-compose"]
    elif (
        shutil.which("docker")
        and subprocess.run(["docker", "compose", "version"], capture_output=True, check=False).returncode == 0
    ):
        cmd = ["docker", "compose"]
    else:
        service_missing("docker-compose is not installed (apt-get install --no-install-recommends docker-compose)")
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("COMPOSE_", "DOCKER_"))}
    proc = subprocess.run(
        [*cmd, "-f", str(COMPOSE), "--profile", "flower", "--profile", "sandbox", "config", "-q"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=environ,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "WARNING" not in proc.stderr, proc.stderr


# --- the image ----------------------------------------------------------------------------------


def test_image_is_built_from_the_lock() -> None:
    runs = [args for keyword, args in dockerfile() if keyword == "RUN"]
    syncs = [args for args in runs if "uv sync" in args]
    assert syncs, "the image must install with `uv sync`"
    for args in syncs:
        flags = shlex.split(args)
        assert "--frozen" in flags, f"`{args}` must install exactly uv.lock (--frozen)"
        assert "--no-dev" in flags and "bench" in flags[flags.index("--no-group") + 1 :], args
    for args in runs:
        assert not re.search(
            r"\buv (lock|add|pip install)\b|pip install .*(-r|requirements|\.)\s*$",
            args,
        ), args

    copies = [(i, args) for i, (keyword, args) in enumerate(dockerfile()) if keyword == "COPY"]
    first_sync = next(i for i, (keyword, args) in enumerate(dockerfile()) if keyword == "RUN" and "uv sync" in args)
    assert any("uv.lock" in args and i < first_sync for i, args in copies), "uv.lock must be copied before `uv sync`"


def test_image_layout_and_user() -> None:
    instructions = dockerfile()
    assert instructions[0] == ("FROM", "python:3.11-slim")
    image = dockerfile_env()
    assert image["AIRFLOW_HOME"] == "/opt/airflow"
    assert image["AIRFLOW__CORE__DAGS_FOLDER"] == "/opt/bulksync/dags"
    assert image["AIRFLOW__CORE__PLUGINS_FOLDER"] == "/opt/bulksync/plugins"
    assert image["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"
    assert image["BULKSYNC_HOME"] == "/opt/bulksync"
    assert image["BULKSYNC_STAGING_ROOT"] == STAGING
    assert image["UV_PROJECT_ENVIRONMENT"] == "/opt/bulksync/.venv"
    assert image["PATH"].startswith("/opt/bulksync/.venv/bin:")

    copied = {src.rstrip("/") for keyword, args in instructions if keyword == "COPY" for src in shlex.split(args)[:-1]}
    assert {"dags", "plugins", "include", "expectations", "uv.lock"} <= copied

    assert any(k == "RUN" and "useradd --uid" in a and "airflow" in a for k, a in instructions)
    assert any(k == "ARG" and a == "AIRFLOW_UID=50000" for k, a in instructions)
    assert [a for k, a in instructions if k == "USER"][-1] == "airflow"
    entrypoint = json.loads([a for k, a in instructions if k == "ENTRYPOINT"][-1])
    assert entrypoint[-1] == "airflow"


def test_dockerignore_lets_in_exactly_what_the_image_copies() -> None:
    patterns = [
        line.strip() for line in DOCKERIGNORE.read_text().splitlines() if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "*", ".dockerignore must be an allow-list"
    allowed = {p[1:].rstrip("/") for p in patterns if p.startswith("!")}
    for keyword, args in dockerfile():
        if keyword == "COPY":
            for source in shlex.split(args)[:-1]:
                assert source.rstrip("/").split("/")[0] in allowed, (
                    f"COPY {source} is not in .dockerignore's allow-list"
                )
    assert ".venv" not in allowed and ".git" not in allowed


def test_image_lock_has_the_celery_provider() -> None:
    """The CeleryExecutor and `airflow celery worker` come from apache-airflow-providers-celery."""
    lock = tomllib.loads(LOCK.read_text())
    project = next(p for p in lock["package"] if p["name"] == "bulksync")
    runtime = {d["name"] for d in project.get("dependencies", [])}
    assert "psycopg" in runtime, "the metadata DB URL uses the psycopg (3) driver"
    assert "apache-airflow-providers-celery" in runtime, (
        "docker-compose.yaml runs the CeleryExecutor, but apache-airflow-providers-celery is not a runtime "
        "dependency in uv.lock: add it to [project].dependencies in pyproject.toml and run `uv lock`"
    )
