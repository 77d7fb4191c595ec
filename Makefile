# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: demo test install install-test bench schemas clean

# the runtime only: what `journey` needs to run (no test oracles such as PM4Py, chdb, pandas)
$(VENV)/.runtime: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $@

# the runtime and the test extras (oracles, the Kafka broker, import-linter)
$(VENV)/.test: $(VENV)/.runtime
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.runtime

install-test: $(VENV)/.test

demo: install
	$(BIN)/journey demo

test: install-test
	$(BIN)/python -m pytest -q -n auto

bench: install-test
	$(BIN)/python bench/aggregate_design.py
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/projection.py
	$(BIN)/python bench/kafka_ingest.py
	$(BIN)/python bench/maps.py

schemas: install
	$(BIN)/journey schemas

clean:
	rm -rf .journey
