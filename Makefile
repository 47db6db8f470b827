# Quick start: `make demo` (install, load the Đà Nẵng demo city, serve it on :1026)
#              `make test` (install what tests need and run the whole suite)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 1026

.PHONY: demo test install install-test bench lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[test]'
	# ngsildclient pins an old rich; its own deps minus that pin are installed beside it.
	$(BIN)/pip install --quiet --no-deps 'ngsildclient==0.5.2'
	$(BIN)/pip install --quiet 'aiofiles<0.9' 'geojson<3' 'isodate<0.7' 'multipledispatch<0.7' 'networkx<3' 'python-dateutil<3' requests scalpl
	touch $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

demo: install
	rm -f dothi-demo.db dothi-demo.db-wal dothi-demo.db-shm
	$(BIN)/dothi demo --db dothi-demo.db --port $(PORT)

test: install-test
	$(BIN)/pytest -q

lint: install-test
	$(BIN)/pip install --quiet mypy
	$(BIN)/mypy dothi

bench: install-test
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) dothi-demo.db* .pytest_cache
