# bulksync — every command a developer or CI needs. `make help` lists them.
SHELL := /bin/bash
ROOT := $(CURDIR)
# LOCAL, DAGS and BULKSYNC_HOME can be set on the command line (make airflow LOCAL=/tmp/x/.local …), as the
# end-to-end test of `make airflow` does
LOCAL := $(ROOT)/.local
DAGS := $(ROOT)/dags
PYTHON ?= python3
UV ?= $(shell command -v uv 2>/dev/null || echo $(LOCAL)/tools/bin/uv)
VENV := $(ROOT)/.venv
BIN := $(VENV)/bin
# airflow standalone starts its components as `airflow ...` subprocesses: the venv must come first
export PATH := $(BIN):$(PATH)
DEMO_DATE ?= 2026-01-02T02:00:00+00:00

# Embedded Airflow: SQLite metadata and AIRFLOW_HOME under the git-ignored .local/
export AIRFLOW_HOME := $(LOCAL)/airflow
export AIRFLOW__CORE__DAGS_FOLDER := $(DAGS)
export AIRFLOW__CORE__PLUGINS_FOLDER := $(ROOT)/plugins
export AIRFLOW__CORE__LOAD_EXAMPLES := False
# every Airflow process (task supervisors writing task logs included) masks the encoded forms of secrets too
export AIRFLOW__LOGGING__SECRET_MASK_ADAPTER := bulksync.scrub.adaptations
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN := sqlite:///$(LOCAL)/airflow/airflow.db
export BULKSYNC_HOME := $(ROOT)
export BULKSYNC_STAGING_ROOT := $(LOCAL)/staging
export BULKSYNC_REPORTS_ROOT := $(LOCAL)/reports
# Demo connections and salt (local sample data only; real ones live in Airflow connections / a secrets backend)
export AIRFLOW_CONN_ACME_CRM := sqlite:///$(LOCAL)/demo/crm.db
export AIRFLOW_CONN_ACME_WAREHOUSE := sqlite:///$(LOCAL)/demo/warehouse.db
export AIRFLOW_CONN_ACME_AS400 := sqlite:///$(LOCAL)/demo/as400.db
export AIRFLOW_VAR_BULKSYNC_PII_SALT := demo-salt-for-local-sample-data-only

.PHONY: help venv demo demo-salesforce demo-azure demo-api airflow test test-unit lint typecheck bench validate clean azurite

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
	@$(MAKE) --no-print-directory demo-salesforce
	@$(MAKE) --no-print-directory demo-api
	@$(MAKE) --no-print-directory demo-azure

SF_DEMO := $(LOCAL)/sandbox/salesforce
demo-salesforce: $(AIRFLOW_HOME)/airflow.db  ## Salesforce demo: sandbox in the background, acme__salesforce DAG, sandbox stopped
	@mkdir -p $(SF_DEMO) $(LOCAL)/demo && rm -f $(SF_DEMO)/conn.env
	@set -e; \
	$(BIN)/bulksync sandbox salesforce --port 0 --records-per-object 2000 --conn-id acme_salesforce \
	  --workdir $(SF_DEMO) --env-file $(SF_DEMO)/conn.env > $(SF_DEMO)/sandbox.log 2>&1 & pid=$$!; \
	trap 'kill $$pid 2>/dev/null; wait $$pid 2>/dev/null || true' EXIT; \
	for i in $$(seq 120); do [ -f $(SF_DEMO)/conn.env ] || ! kill -0 $$pid 2>/dev/null && break; sleep 0.5; done; \
	[ -f $(SF_DEMO)/conn.env ] || { echo "the Salesforce sandbox did not start:"; tail -20 $(SF_DEMO)/sandbox.log; exit 1; }; \
	. $(SF_DEMO)/conn.env; echo "Salesforce sandbox running at $$SF_SANDBOX_INSTANCE_URL (log: $(SF_DEMO)/sandbox.log)"; \
	$(BIN)/airflow pools set salesforce__acme_salesforce 4 "ACME Salesforce org: concurrent Bulk query jobs" > /dev/null; \
	echo "running: airflow dags test acme__salesforce $(DEMO_DATE)  (log: $(LOCAL)/demo-salesforce.log)"; \
	$(BIN)/airflow dags test acme__salesforce $(DEMO_DATE) > $(LOCAL)/demo-salesforce.log 2>&1 \
	  || { grep -E "ERROR|Error|error:|FAILED|failed" $(LOCAL)/demo-salesforce.log | tail -30; exit 1; }; \
	grep -o "DagRun Finished: dag_id=[^,]*, logical_date=[^,]*.*state=[a-z]*" $(LOCAL)/demo-salesforce.log \
	  | sed -E 's/, run_id=.*(state=[a-z]+).*/, \1/' | tail -1
	$(BIN)/bulksync summary acme__salesforce

API_DEMO := $(LOCAL)/sandbox/api
demo-api: $(AIRFLOW_HOME)/airflow.db  ## API demo: HubSpot, Graph and Stripe stand-ins in the background, acme__api DAG
	@mkdir -p $(API_DEMO) $(LOCAL)/demo && rm -f $(API_DEMO)/conn.env
	@set -e; \
	$(BIN)/bulksync sandbox api hubspot msgraph stripe --conn-prefix acme_ --records 2000 --count hubspot.contacts=3000 \
	  --workdir $(API_DEMO) --env-file $(API_DEMO)/conn.env > $(API_DEMO)/sandbox.log 2>&1 & pid=$$!; \
	trap 'kill $$pid 2>/dev/null; wait $$pid 2>/dev/null || true' EXIT; \
	for i in $$(seq 120); do [ -f $(API_DEMO)/conn.env ] || ! kill -0 $$pid 2>/dev/null && break; sleep 0.5; done; \
	[ -f $(API_DEMO)/conn.env ] || { echo "the API stand-ins did not start:"; tail -20 $(API_DEMO)/sandbox.log; exit 1; }; \
	. $(API_DEMO)/conn.env; echo "HubSpot, Graph and Stripe stand-ins running (log: $(API_DEMO)/sandbox.log)"; \
	for c in hubspot msgraph stripe; do $(BIN)/airflow pools set api__acme_$$c 4 "ACME $$c API" > /dev/null; done; \
	echo "running: airflow dags test acme__api $(DEMO_DATE)  (log: $(LOCAL)/demo-api.log)"; \
	$(BIN)/airflow dags test acme__api $(DEMO_DATE) > $(LOCAL)/demo-api.log 2>&1 \
	  || { grep -E "ERROR|Error|error:|FAILED|failed" $(LOCAL)/demo-api.log | tail -30; exit 1; }; \
	grep -o "DagRun Finished: dag_id=[^,]*, logical_date=[^,]*.*state=[a-z]*" $(LOCAL)/demo-api.log \
	  | sed -E 's/, run_id=.*(state=[a-z]+).*/, \1/' | tail -1
	$(BIN)/bulksync summary acme__api

AZURITE_KEY := Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==
demo-azure: $(VENV)/.synced azurite  ## Azure demo: Azurite in the background, drop zone → staging → SQLite and a Parquet lake
	@if ! command -v node >/dev/null 2>&1; then \
	  echo "Azure demo skipped: Node.js is not installed (no node on PATH). Install Node.js and npm, then run: make demo-azure"; \
	  exit 0; fi; \
	if [ ! -x $(AZURITE) ]; then \
	  echo "Azure demo skipped: Azurite is not installed in $(LOCAL)/tools (npm install azurite failed, see above). Run: make azurite demo-azure"; \
	  exit 0; fi; \
	set -e; mkdir -p $(LOCAL)/demo; data=$$(mktemp -d); \
	port=$$($(BIN)/python -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])"); \
	$(AZURITE) --blobHost 127.0.0.1 --blobPort $$port --location $$data --disableTelemetry --skipApiVersionCheck \
	  --silent > $(LOCAL)/demo-azurite.log 2>&1 & pid=$$!; \
	trap 'kill $$pid 2>/dev/null; wait $$pid 2>/dev/null || true; rm -rf $$data' EXIT; \
	$(BIN)/python -c "import socket, sys, time; t = time.time() + 30; \
	  exec('while time.time() < t:\n try:\n  socket.create_connection((\'127.0.0.1\', $$port), 1).close(); sys.exit(0)\n except OSError:\n  time.sleep(0.2)'); sys.exit(1)" \
	  || { echo "Azurite did not start:"; tail -20 $(LOCAL)/demo-azurite.log; exit 1; }; \
	export AIRFLOW_CONN_DEMO_AZURE='{"conn_type": "wasb", "extra": {"connection_string": "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=$(AZURITE_KEY);BlobEndpoint=http://127.0.0.1:'$$port'/devstoreaccount1;"}}'; \
	echo "Azurite running on 127.0.0.1:$$port; running the Azure demo (log: $(LOCAL)/demo-azure.log)"; \
	$(BIN)/bulksync demo azure --warehouse $(LOCAL)/demo/azure_warehouse.db > $(LOCAL)/demo-azure.log 2>&1 \
	  || { grep -E "ERROR|Error|error" $(LOCAL)/demo-azure.log | tail -30; exit 1; }; \
	sed -n '/drop zone abfs/,$$p' $(LOCAL)/demo-azure.log

# Another port (AIRFLOW__API__PORT=8090 make airflow): the workers reach the execution API of the api-server on that
# port too (Airflow's default is http://localhost:8080/execution/, where tasks fail with "connection refused")
AIRFLOW_PORT = $(or $(AIRFLOW__API__PORT),8080)
airflow: export AIRFLOW__API__PORT ?= 8080
airflow: export AIRFLOW__API__BASE_URL ?= http://localhost:$(AIRFLOW_PORT)
airflow: export AIRFLOW__CORE__EXECUTION_API_SERVER_URL ?= http://localhost:$(AIRFLOW_PORT)/execution/
airflow: $(AIRFLOW_HOME)/airflow.db  ## the full Airflow UI locally (airflow standalone) on http://localhost:8080
	$(BIN)/bulksync demo prepare --root $(LOCAL)/demo
	$(BIN)/bulksync sandbox ibmi --url sqlite:///$(LOCAL)/demo/as400.db --order-lines 20000
	@$(BIN)/airflow pools set salesforce__acme_salesforce 4 "ACME Salesforce org: concurrent Bulk query jobs" > /dev/null
	@echo "Airflow UI: $$AIRFLOW__API__BASE_URL  (execution API $$AIRFLOW__CORE__EXECUTION_API_SERVER_URL; user admin; password printed below, kept in $(AIRFLOW_HOME)/simple_auth_manager_passwords.json.generated)"
	$(BIN)/airflow standalone

AZURITE := $(LOCAL)/tools/node_modules/.bin/azurite-blob
$(AZURITE):
	@if command -v npm >/dev/null 2>&1; then \
	  npm install --silent --no-audit --no-fund --prefix $(LOCAL)/tools azurite@3 \
	  || echo "npm could not install azurite into $(LOCAL)/tools (network, registry or permissions): Azure tests and demo skip"; \
	else echo "npm not found: Azure tests will skip (install Node.js and npm, then make azurite)"; fi

azurite: $(AZURITE)  ## install Azurite (Azure Storage emulator, npm) into .local/tools for the Azure tests

test: $(VENV)/.synced azurite  ## the whole test suite (unit, integration, dags, e2e)
	$(BIN)/python -m pytest tests

test-unit: $(VENV)/.synced  ## fast tests, no services
	$(BIN)/python -m pytest tests/unit tests/dags -q

lint: $(VENV)/.synced  ## ruff
	$(BIN)/ruff check include dags plugins tests bench
	$(BIN)/ruff format --check include dags plugins

typecheck: $(VENV)/.synced  ## mypy
	$(BIN)/mypy include/bulksync

validate: $(VENV)/.synced  ## check every pipeline spec and that each has its DAG file (bulksync dags sync)
	$(BIN)/bulksync validate
	$(BIN)/bulksync dags sync --check

bench: $(VENV)/.synced  ## benchmarks (not part of make test): see bench/README.md
	$(BIN)/python bench/run.py
	$(BIN)/python bench/reliability_bench.py
	$(BIN)/python bench/quality_bench.py
	$(BIN)/python bench/azure_bench.py
	$(BIN)/python bench/filedrop_bench.py
	$(BIN)/python bench/ebcdic_bench.py
	$(BIN)/python bench/ibmi_bench.py
	$(BIN)/python bench/sql_source_bench.py
	$(BIN)/python bench/salesforce_bench.py
	$(BIN)/python bench/task_overhead_bench.py
	$(BIN)/python bench/api_bench.py

clean:  ## remove .local (Airflow home, staging, demo data)
	rm -rf $(LOCAL)/airflow $(LOCAL)/staging $(LOCAL)/demo
