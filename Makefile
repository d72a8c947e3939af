# bulksync — every command a developer or CI needs. `make help` lists them.
SHELL := /bin/bash
ROOT := $(CURDIR)
LOCAL := $(ROOT)/.local
PYTHON ?= python3
UV ?= $(shell command -v uv 2>/dev/null || echo $(LOCAL)/tools/bin/uv)
VENV := $(ROOT)/.venv
BIN := $(VENV)/bin
# airflow standalone starts its components as `airflow ...` subprocesses: the venv must come first
export PATH := $(BIN):$(PATH)
DEMO_DATE ?= 2026-01-02T02:00:00+00:00

# Embedded Airflow: SQLite metadata and AIRFLOW_HOME under the git-ignored .local/
export AIRFLOW_HOME := $(LOCAL)/airflow
export AIRFLOW__CORE__DAGS_FOLDER := $(ROOT)/dags
export AIRFLOW__CORE__PLUGINS_FOLDER := $(ROOT)/plugins
export AIRFLOW__CORE__LOAD_EXAMPLES := False
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN := sqlite:///$(LOCAL)/airflow/airflow.db
export BULKSYNC_HOME := $(ROOT)
export BULKSYNC_STAGING_ROOT := $(LOCAL)/staging
export BULKSYNC_REPORTS_ROOT := $(LOCAL)/reports
# Demo connections and salt (local sample data only; real ones live in Airflow connections / a secrets backend)
export AIRFLOW_CONN_ACME_CRM := sqlite:///$(LOCAL)/demo/crm.db
export AIRFLOW_CONN_ACME_WAREHOUSE := sqlite:///$(LOCAL)/demo/warehouse.db
export AIRFLOW_CONN_ACME_AS400 := sqlite:///$(LOCAL)/demo/as400.db
export AIRFLOW_VAR_BULKSYNC_PII_SALT := demo-salt-for-local-sample-data-only

.PHONY: help venv demo airflow test test-unit lint typecheck bench validate clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 14

$(UV):
	$(PYTHON) -m pip install --quiet --target $(LOCAL)/tools/pylib uv
	mkdir -p $(LOCAL)/tools/bin && ln -sf $(LOCAL)/tools/pylib/bin/uv $(LOCAL)/tools/bin/uv

$(VENV)/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --python $(shell command -v $(PYTHON))
	touch $@

venv: $(VENV)/.synced  ## create .venv from uv.lock

$(AIRFLOW_HOME)/airflow.db: $(VENV)/.synced
	mkdir -p $(AIRFLOW_HOME)
	$(BIN)/airflow db migrate > $(AIRFLOW_HOME)/db-migrate.log 2>&1 || (tail -20 $(AIRFLOW_HOME)/db-migrate.log; exit 1)

demo: $(AIRFLOW_HOME)/airflow.db  ## build the demo sources and run the demo nightly DAG end to end
	$(BIN)/bulksync demo prepare --root $(LOCAL)/demo
	$(BIN)/bulksync validate
	@echo "running: airflow dags test acme__nightly $(DEMO_DATE)  (log: $(LOCAL)/demo-dags-test.log)"
	@$(BIN)/airflow dags test acme__nightly $(DEMO_DATE) > $(LOCAL)/demo-dags-test.log 2>&1 \
	  || (grep -E "ERROR|Error|error:|FAILED|failed" $(LOCAL)/demo-dags-test.log | tail -30; exit 1)
	@grep -o "DagRun Finished: dag_id=[^,]*, logical_date=[^,]*.*state=[a-z]*" $(LOCAL)/demo-dags-test.log \
	  | sed -E 's/, run_id=.*(state=[a-z]+).*/, \1/' | tail -1
	$(BIN)/bulksync summary acme__nightly
	@echo "data-quality report: $(BULKSYNC_REPORTS_ROOT)/acme/nightly/index.html (in the Airflow UI of make airflow: Data quality)"
	$(BIN)/bulksync sandbox ibmi --url sqlite:///$(LOCAL)/demo/as400.db --order-lines 20000
	@echo "running: airflow dags test acme__ibmi $(DEMO_DATE)  (log: $(LOCAL)/demo-ibmi-dags-test.log)"
	@$(BIN)/airflow dags test acme__ibmi $(DEMO_DATE) > $(LOCAL)/demo-ibmi-dags-test.log 2>&1 \
	  || (grep -E "ERROR|Error|error:|FAILED|failed" $(LOCAL)/demo-ibmi-dags-test.log | tail -30; exit 1)
	@grep -o "DagRun Finished: dag_id=[^,]*, logical_date=[^,]*.*state=[a-z]*" $(LOCAL)/demo-ibmi-dags-test.log \
	  | sed -E 's/, run_id=.*(state=[a-z]+).*/, \1/' | tail -1
	$(BIN)/bulksync summary acme__ibmi

airflow: $(AIRFLOW_HOME)/airflow.db  ## the full Airflow UI locally (airflow standalone) on http://localhost:8080
	$(BIN)/bulksync demo prepare --root $(LOCAL)/demo
	$(BIN)/bulksync sandbox ibmi --url sqlite:///$(LOCAL)/demo/as400.db --order-lines 20000
	@echo "Airflow UI: http://localhost:$${AIRFLOW__API__PORT:-8080}  (user admin; password printed below, kept in $(AIRFLOW_HOME)/simple_auth_manager_passwords.json.generated)"
	$(BIN)/airflow standalone

test: $(VENV)/.synced  ## the whole test suite (unit, integration, dags, e2e)
	$(BIN)/python -m pytest tests

test-unit: $(VENV)/.synced  ## fast tests, no services
	$(BIN)/python -m pytest tests/unit tests/dags -q

lint: $(VENV)/.synced  ## ruff
	$(BIN)/ruff check include dags plugins tests bench
	$(BIN)/ruff format --check include dags plugins

typecheck: $(VENV)/.synced  ## mypy
	$(BIN)/mypy include/bulksync

validate: $(VENV)/.synced  ## check every pipeline spec
	$(BIN)/bulksync validate

bench: $(VENV)/.synced  ## benchmarks (not part of make test): see bench/README.md
	$(BIN)/python bench/run.py
	$(BIN)/python bench/quality_bench.py
	$(BIN)/python bench/ibmi_bench.py

clean:  ## remove .local (Airflow home, staging, demo data)
	rm -rf $(LOCAL)/airflow $(LOCAL)/staging $(LOCAL)/demo
