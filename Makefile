# SigmaSight Pipeline: the README's Quick start is `make demo` then `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
export SIGMASIGHT_HOME ?= $(CURDIR)/.sigmasight

.PHONY: install demo test dev check benchmark clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed

$(DAGSTER_HOME)/dagster.yaml: dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	cp dagster.yaml $@

## demo: import the demo books and materialize the demo window (2025-01-02..2025-06-30)
demo: install $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/sigmasight demo

## test: the whole test suite (PostgreSQL tests need 127.0.0.1:5432)
test: install
	$(BIN)/python -m pytest -q -n 2 sigmasight_pipeline_tests

## dev: the Dagster UI and daemon on http://127.0.0.1:3000
dev: install $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

## check: definitions load (dagster and dg)
check: install
	$(BIN)/dagster definitions validate -w workspace.yaml
	$(BIN)/dg check defs

benchmark: install
	$(BIN)/python benchmarks/engines.py

clean:
	rm -rf $(VENV) .sigmasight .dagster_home reports
