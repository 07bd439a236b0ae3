# Two commands for a newcomer: `make run` and `make test`. Both create .venv and install
# what is missing first; nothing but Python >= 3.11 needs to be on the machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: install run test bench lint format schemas docs clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "aduan needs Python >= 3.11 (set PYTHON=python3.11)")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,embedded-broker]'
	@touch $(STAMP)

install: $(STAMP)

## run: the whole pipeline on an embedded broker (or KAFKA_BOOTSTRAP_SERVERS) with demo traffic
run: install
	@sh deploy/scripts/ensure-tools.sh postgresql
	$(BIN)/python -m services.demo

## test: the suite, including broker tests (embedded Tansu unless KAFKA_BOOTSTRAP_SERVERS / Docker)
test: install
	@sh deploy/scripts/ensure-tools.sh promtool postgresql chromium
	$(BIN)/python -m pytest

## bench: throughput and latency against a bare aiokafka ceiling, median of several runs
bench: install
	$(BIN)/python -m bench

lint: install
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy common schemas services

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## schemas / docs: regenerate the generated files (tests fail when they drift)
schemas: install
	$(BIN)/python -m schemas.generate

docs: install
	$(BIN)/python -m common.topics > docs/topics.md
	$(BIN)/python -m common.metrics > docs/metrics.md
	$(BIN)/python -m services.desk.openapi > docs/desk-openapi.json

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache bench/results
