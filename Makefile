# Everyday commands. `make help` lists them.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
export AIRFLOW_HOME := $(CURDIR)

.DEFAULT_GOAL := help

.PHONY: help setup demo test test-unit lint bench airflow-list clean

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[1m%-14s\033[0m %s\n", $$1, $$2}'

setup: $(VENV)/.installed ## Create .venv and install the hub with its pinned dependencies (idempotent)

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "Python 3.11 is required (set PYTHON=/path/to/python3.11)")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

demo: setup ## Run the whole path on embedded defaults (broker, simulated source, Airflow DAG, DuckDB, Kafka)
	$(BIN)/hub demo

test: setup ## Run the test suite (unit and integration; needs the local PostgreSQL and MariaDB)
	$(BIN)/python -m pytest

test-unit: setup ## Run only the tests that need no server
	$(BIN)/python -m pytest --ignore=tests/integration

lint: setup ## ruff, mypy and the layer contract (import-linter)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy hub schemas connectors quality masking catalog dags
	$(BIN)/lint-imports --no-cache

bench: setup ## Benchmarks beside their baselines (needs the local PostgreSQL)
	$(BIN)/python bench/run.py

airflow-list: setup ## List the DAGs Airflow sees (and import errors)
	@mkdir -p .hub/airflow
	$(BIN)/airflow db migrate > .hub/airflow/migrate.log
	$(BIN)/airflow dags list
	$(BIN)/airflow dags list-import-errors

clean: ## Remove local state (.hub) but keep the venv; the keyring lives outside the repo
	rm -rf .hub
