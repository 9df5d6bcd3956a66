# The two commands: `make demo` and `make test`. Both build .venv from uv.lock when needed.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")
STAMP := $(VENV)/.synced-$(shell cat uv.lock pyproject.toml | sha256sum | cut -c1-12)
AIRFLOW_PORT ?= 18080

.PHONY: demo test lint bench airflow clean env

env: $(STAMP)

$(STAMP): pyproject.toml uv.lock
	@$(UV) --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	$(UV) sync --frozen --extra postgres
	@rm -f $(VENV)/.synced-*
	@touch $@

demo: $(STAMP)
	$(VENV)/bin/cjmonitor demo

test: $(STAMP)
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check .

bench: $(STAMP)
	@for b in benchmarks/*.py; do [ -e "$$b" ] || continue; echo "== $$b"; $(PY) $$b || exit 1; done

# A local Airflow (scheduler, DAG processor, UI) on 127.0.0.1 with the project's DAGs.
# Every visitor is admin: for a laptop only, never for a shared machine.
airflow: $(STAMP)
	mkdir -p var/airflow
	AIRFLOW_HOME=$(CURDIR)/var/airflow AIRFLOW__CORE__DAGS_FOLDER=$(CURDIR)/dags AIRFLOW__CORE__LOAD_EXAMPLES=False \
	AIRFLOW__API__HOST=127.0.0.1 AIRFLOW__API__PORT=$(AIRFLOW_PORT) AIRFLOW__API__BASE_URL=http://127.0.0.1:$(AIRFLOW_PORT) \
	AIRFLOW__CORE__EXECUTION_API_SERVER_URL=http://127.0.0.1:$(AIRFLOW_PORT)/execution/ \
	AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS=True AIRFLOW__CORE__PARALLELISM=4 \
	CJMONITOR_HOME=$(CURDIR) $(VENV)/bin/airflow standalone

clean:
	rm -rf var out
