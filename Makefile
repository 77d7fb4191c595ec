# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: demo test install bench schemas clean

$(BIN)/journey: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(BIN)/journey

install: $(BIN)/journey

demo: install
	$(BIN)/journey demo

test: install
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/python bench/aggregate_design.py
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/projection.py
	$(BIN)/python bench/kafka_ingest.py
	$(BIN)/python bench/maps.py

schemas: install
	$(BIN)/journey schemas

clean:
	rm -rf .journey
