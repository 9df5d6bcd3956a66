# The two commands: `make demo` and `make test`. Both build .venv from uv.lock when needed and first run
# scripts/system-deps.sh (as root it installs the missing Debian packages; otherwise it prints the one
# `sudo apt-get install` line). `make test` is the whole suite with its own throwaway PostgreSQL on 127.0.0.1;
# `make test-fast` is the inner loop (the same suite without the 1,000-simulation coverage tests, marked `simulation`).
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")
STAMP := $(VENV)/.synced-$(shell cat uv.lock pyproject.toml | sha256sum | cut -c1-12)-bc
# Compile every installed module to bytecode once, at install: the machines set PYTHONDONTWRITEBYTECODE=1, so
# without this each process (every command, test subprocess and Airflow task) compiles pandas, scipy and
# statsmodels from source again (seconds of start-up each time).
export UV_COMPILE_BYTECODE := 1

.PHONY: demo test test-fast lint bench airflow clean env

env: $(STAMP)

$(STAMP): pyproject.toml uv.lock
	@$(UV) --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	$(UV) sync --frozen --extra postgres --compile-bytecode
	@rm -f $(VENV)/.synced-*
	@touch $@

demo: $(STAMP)
	@scripts/system-deps.sh demo
	$(VENV)/bin/cjmonitor demo

# pytest-xdist: one worker per core, whole modules to a worker (module fixtures are built once); the shared
# demo home is built once for all workers (tests/conftest.py). TEST_WORKERS=0 runs in one process.
TEST_WORKERS ?= auto
XDIST = $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile)

test: $(STAMP)
	@scripts/system-deps.sh test
	scripts/with-postgres.sh $(PY) -m pytest $(XDIST) $(PYTEST_ARGS)

test-fast: $(STAMP)
	scripts/with-postgres.sh $(PY) -m pytest $(XDIST) -m "not simulation" $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .

bench: $(STAMP)
	@for b in benchmarks/*.py; do [ -e "$$b" ] || continue; echo "== $$b"; $(PY) $$b || exit 1; done

# A local Airflow (API server + UI, scheduler, DAG processor) on 127.0.0.1 with the project's DAGs, the
# LocalExecutor settings of config/airflow-local.env and simple-auth-manager logins (random passwords kept
# in var/airflow/passwords.json, printed at start). AIRFLOW_PORT=8080 make airflow to fix the port.
airflow: $(STAMP)
	scripts/airflow-local.sh

clean:
	rm -rf var out
