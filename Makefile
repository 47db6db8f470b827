# Quick start: `make demo` (install, load the Đà Nẵng demo city, serve it on :1026)
#              `make test` (install what tests need and run the whole suite)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 1026
WEB := dothi/web

.PHONY: demo test install install-test bench lint clean screenshots

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml $(WEB)/node_modules/.package-lock.json
	$(BIN)/pip install --quiet -e .
	touch $@

# The dashboard's map library (MapLibre GL) comes from npm, pinned by package-lock.json.
# Without npm the platform still runs; the dashboard then says the map is missing.
$(WEB)/node_modules/.package-lock.json: $(WEB)/package.json $(WEB)/package-lock.json
	@if command -v npm >/dev/null; then npm ci --prefix $(WEB) --no-audit --no-fund --silent; \
	else echo "npm not found: the dashboard will have no map (apt-get install npm)"; \
	mkdir -p $(WEB)/node_modules; touch $@; fi

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

screenshots: install-test
	$(BIN)/dothi screenshots --out docs/screenshots

lint: install-test
	$(BIN)/pip install --quiet mypy
	$(BIN)/mypy dothi

bench: install-test
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) dothi-demo.db* .pytest_cache $(WEB)/node_modules
