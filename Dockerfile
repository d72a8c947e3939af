# bulksync: Apache Airflow 3.3 + the bulksync package, in one image for every Airflow component
# (api-server, scheduler, dag-processor, triggerer, celery workers). See docs/deployment.md.
#
# The Python environment is built from uv.lock only (`uv sync --frozen`): the image runs exactly
# the versions CI tested. Changing a dependency means `uv lock` on a workstation, then a rebuild.
FROM python:3.11-slim

# Pin uv so that the lock file format is always understood the same way.
ARG UV_VERSION=0.13.9
ARG AIRFLOW_UID=50000

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_NO_CACHE=1 \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=python3.11 \
    UV_PROJECT_ENVIRONMENT=/opt/bulksync/.venv

# curl: container healthchecks; tini: PID 1 that forwards SIGTERM (celery warm shutdown) and
# reaps zombies left by task subprocesses. libmariadb-dev, pkg-config, gcc: mysqlclient (the MySQL
# provider's driver) builds from source.
RUN apt-get update \
    && apt-get install -y --no-install-recommends curl tini libmariadb-dev pkg-config gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*

RUN pip install "uv==${UV_VERSION}"

WORKDIR /opt/bulksync

# 1) Third-party dependencies only, from the lock. This layer is rebuilt only when pyproject.toml
#    or uv.lock change, not on every code edit. Dev and bench groups stay out of the image.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-group bench --no-install-project

# 2) The bulksync package itself (installed editable, so the compose stack can bind-mount
#    include/ over it during development).
COPY include/ ./include/
RUN uv sync --frozen --no-dev --no-group bench

# 3) What Airflow reads at run time: DAG files and specs, plugins, Great Expectations suites.
COPY dags/ ./dags/
COPY plugins/ ./plugins/
COPY expectations/ ./expectations/

# Non-root runtime user, uid 50000 / gid 0 like the official Airflow image. Directories that
# become named volumes in docker-compose.yaml (logs, staging) are created here so that Docker
# copies this ownership into a fresh volume.
RUN useradd --uid "${AIRFLOW_UID}" --gid 0 --home-dir /opt/airflow --create-home \
        --shell /bin/bash airflow \
    && mkdir -p /opt/airflow/logs /data/staging /data/reports \
    && chown -R "${AIRFLOW_UID}:0" /opt/airflow /data/staging /data/reports \
    && chmod -R g+rwX /opt/airflow /data/staging /data/reports

ENV AIRFLOW_HOME=/opt/airflow \
    AIRFLOW__CORE__DAGS_FOLDER=/opt/bulksync/dags \
    AIRFLOW__CORE__PLUGINS_FOLDER=/opt/bulksync/plugins \
    AIRFLOW__CORE__LOAD_EXAMPLES=False \
    BULKSYNC_HOME=/opt/bulksync \
    BULKSYNC_STAGING_ROOT=/data/staging \
    BULKSYNC_REPORTS_ROOT=/data/reports \
    VIRTUAL_ENV=/opt/bulksync/.venv \
    PATH=/opt/bulksync/.venv/bin:$PATH

USER airflow

# `docker run IMAGE scheduler` runs `airflow scheduler`; compose passes the sub-command.
ENTRYPOINT ["/usr/bin/tini", "--", "airflow"]
CMD ["version"]
