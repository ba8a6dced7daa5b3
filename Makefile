# SigmaSight Pipeline: the README's Quick start is `make demo` then `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
export SIGMASIGHT_HOME ?= $(CURDIR)/.sigmasight
# Dagster writes a ranged step's events (planned, materialized: two per asset and partition) in batches where the
# storage supports it (dagster-postgres); a demo backfill on a PostgreSQL instance takes 127 s instead of 222 s.
export DAGSTER_EVENT_BATCH_SIZE ?= 1000

.PHONY: install instance demo test dev api check benchmark benchmark-backfill benchmark-api clean up down compose-config

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed

# The instance config copied into $(DAGSTER_HOME): SQLite under DAGSTER_HOME by default; DAGSTER_INSTANCE=dagster.yaml
# for PostgreSQL (the DAGSTER_PG_* variables must then be set; README, "PostgreSQL deployment").
DAGSTER_INSTANCE ?= deploy/dagster-local.yaml

instance:
	mkdir -p $(DAGSTER_HOME)
	cp $(DAGSTER_INSTANCE) $(DAGSTER_HOME)/dagster.yaml

# The demo's data is the sample source's first half of 2025: its date partitions end there, so the UI's partition
# grids show the demo window complete instead of mostly "missing" up to today. Unset it for live data:
# `make dev SIGMASIGHT_PARTITION_END=`.
DEMO_END := 2025-06-30
demo dev check: export SIGMASIGHT_PARTITION_END ?= $(DEMO_END)

## demo: import the demo books and materialize the demo window (2025-01-02..2025-06-30)
demo: install instance
	$(BIN)/sigmasight demo

## test: the whole test suite (PostgreSQL tests need 127.0.0.1:5432)
test: install
	$(BIN)/python -m pytest -q -n 2 --dist loadfile sigmasight_pipeline_tests

## dev: the Dagster UI and daemon on http://127.0.0.1:3000
# `dg dev` (`dagster dev` is superseded and says so), started from $(DAGSTER_HOME): Dagster warns when the working
# directory holds a dagster.yaml other than DAGSTER_HOME's, and the top-level one is the PostgreSQL deployment's.
dev: install instance
	cd $(DAGSTER_HOME) && $(CURDIR)/$(BIN)/dg dev -w $(CURDIR)/workspace.yaml --host 127.0.0.1 --port 3000

## api: the HTTP API on http://127.0.0.1:8000/api/v1 (docs at /api/v1/docs) over the demo warehouse; keys:
## `.venv/bin/sigmasight api-key create --owner EMAIL` (README, "The API")
API_PORT ?= 8000
api: install instance
	$(BIN)/sigmasight serve --port $(API_PORT)

## check: the definitions load and validate (`dg check defs`; `dagster definitions validate` is superseded by it)
check: install instance
	$(BIN)/dg check defs

## up / down: the PostgreSQL deployment in Docker (PostgreSQL, code location, webserver, daemon); UI on :3000
up:
	docker compose up --build -d

down:
	docker compose down

## compose-config: validate docker-compose.yml (no Docker engine needed)
compose-config:
	docker compose config --quiet

## benchmark: engine speed figures (factor regression vs statsmodels, Greeks vs mibian)
benchmark: install
	$(BIN)/python benchmarks/engines.py

## benchmark-backfill: the demo window for the demo books through Dagster (SQLite warehouse and instance)
benchmark-backfill: install
	$(BIN)/python benchmarks/backfill.py --scenario demo --dialect sqlite

## benchmark-api: a bounded load test of the API on the loopback (p50 / p95 / p99 at 20 clients), after `make demo`
benchmark-api: install
	$(BIN)/python benchmarks/api.py

clean:
	rm -rf $(VENV) .sigmasight .dagster_home .dagster_home_pg reports
