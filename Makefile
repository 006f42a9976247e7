# Catalog Explorer — the two commands are `make run` and `make test`; the rest are their steps.
#
#   make run     venv + migrate + collectstatic + demo content, then web server and Celery worker
#   make test    the whole pytest suite (SQLite; set DATABASE_URL=postgres://… for PostgreSQL)
#
# Variables: PORT (8000), HOST (127.0.0.1), PYTHON (python3.11, else python3), VENV (.venv),
# TEST_WORKERS (2; 0 runs the suite in one process), PYTEST_ARGS (extra pytest arguments),
# MLFLOW_OLDEST (3.0.0: the oldest MLflow 3.x client the e2e tests also run).

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
PORT ?= 8000
HOST ?= 127.0.0.1
TEST_WORKERS ?= 2
PYTEST_ARGS ?=
export PORT HOST

MLFLOW_OLDEST ?= 3.0.0
MLFLOW_OLDEST_VENV ?= var/mlflow-$(MLFLOW_OLDEST)

.PHONY: help venv mlflow-oldest migrate static demo run web worker test check clean bench bench-pages

help:
	@echo "make run     set up (venv, migrate, static, demo content) and start web + worker on http://$(HOST):$(PORT)"
	@echo "make test    run the test suite (SQLite; DATABASE_URL=postgres://... for PostgreSQL)"
	@echo "make venv | mlflow-oldest | migrate | static | demo | web | worker | check | clean"
	@echo "make bench | bench-pages   benchmarks against mlflow server / of the HTML pages (README: Benchmarks)"

# The stamp is older than pyproject.toml whenever someone adds a dependency: reinstall then.
$(PY):
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(PY)
	$(PY) -m pip install --disable-pip-version-check --progress-bar off -q -e '.[test]'
	@touch $@

venv: $(VENV)/.installed

# The oldest MLflow 3.x client in a venv of its own (it cannot share .venv with the current one):
# tests/test_mlflow_e2e.py runs it against the live server (marked e2e_oldest). Pinned, so the
# pair keeps installing as it did; pip's cache makes a re-creation quick.
$(MLFLOW_OLDEST_VENV)/.installed:
	rm -rf '$(MLFLOW_OLDEST_VENV)'
	$(PYTHON) -m venv '$(MLFLOW_OLDEST_VENV)'
	'$(MLFLOW_OLDEST_VENV)/bin/python' -m pip install --disable-pip-version-check --progress-bar off -q \
		'mlflow==$(MLFLOW_OLDEST)' 'scikit-learn==1.9.1' 'pandas<3'
	@touch '$@'

mlflow-oldest: $(MLFLOW_OLDEST_VENV)/.installed

migrate: venv
	$(PY) manage.py migrate --noinput

static: venv
	$(PY) manage.py collectstatic --noinput -v 0

demo: migrate
	$(PY) manage.py seed_demo

run: migrate static demo
	$(PY) manage.py serve --host '$(HOST)' --port '$(PORT)'

web: migrate static
	$(PY) manage.py serve --host '$(HOST)' --port '$(PORT)' --no-worker

worker: migrate
	$(BIN)/celery -A catalog_explorer worker -l info

# xdist only when workers are asked for, so TEST_WORKERS=0 gives plain tracebacks.
# Each run gets a VAR_DIR of its own (test database file, stored artifacts, broker folder), so
# two runs in one checkout never share or delete each other's files; set VAR_DIR to keep one.
test: venv mlflow-oldest
	@tmp=$$(mktemp -d "$${TMPDIR:-/tmp}/catalog-explorer-test.XXXXXX"); trap 'rm -rf "$$tmp"' EXIT; \
	export VAR_DIR="$${VAR_DIR:-$$tmp}"; mkdir -p "$$VAR_DIR/staticfiles"; \
	export MLFLOW_OLDEST_PYTHON="$(abspath $(MLFLOW_OLDEST_VENV))/bin/python"; \
	echo "$(PY) -m pytest $(if $(filter-out 0,$(TEST_WORKERS)),-n $(TEST_WORKERS)) $(PYTEST_ARGS)   (VAR_DIR=$$VAR_DIR)"; \
	$(PY) -m pytest $(if $(filter-out 0,$(TEST_WORKERS)),-n $(TEST_WORKERS)) $(PYTEST_ARGS)

check: venv
	$(PY) manage.py check
	$(PY) manage.py makemigrations --check --dry-run

# Benchmarks (README "Benchmarks"): need PostgreSQL and Redis on 127.0.0.1; they create and drop
# their own database (catalog_bench, catalog_bench_pages) and use Redis DB 5.
BENCH_ARGS ?=
bench: venv
	$(PY) benchmarks/bench_api.py $(BENCH_ARGS)

bench-pages: venv
	$(PY) benchmarks/bench_pages.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var/staticfiles var/mlflow-*
