# gridgov: `make demo` runs the app on the demo city, `make test` runs the tests.
# Both set up everything first (Debian packages, virtual environment, npm assets).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_SIZE ?= demo
DEMO_SEED ?= 7
HOST ?= 127.0.0.1
PORT ?= 8000
# The base map the app serves; the demo's own is generated from its layers unless a city's own file is named.
GRIDGOV_BASEMAP ?= build/basemap/demo.mbtiles

.PHONY: setup system demo test lint bench soak serve clean

setup: system $(VENV)/.installed node_modules/.installed webmap/static/vendor/.installed

system:
	@bash scripts/system-deps.sh

$(VENV)/.installed: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	@touch $@

node_modules/.installed: package.json
	npm install --no-audit --no-fund --loglevel=error
	@touch $@

webmap/static/vendor/.installed: node_modules/.installed scripts/vendor-assets.sh
	@bash scripts/vendor-assets.sh
	@touch $@

demo: setup
	$(BIN)/gridgov db up
	$(BIN)/gridgov db upgrade
	$(BIN)/gridgov fixtures load $(DEMO_SIZE) --seed $(DEMO_SEED) --if-changed
	$(BIN)/gridgov model train --if-missing
	GRIDGOV_BASEMAP=$(GRIDGOV_BASEMAP) $(BIN)/gridgov basemap build --if-changed
	GRIDGOV_BASEMAP=$(GRIDGOV_BASEMAP) $(BIN)/gridgov serve --host $(HOST) --port $(PORT)

test: setup lint
	$(BIN)/python -m pytest -q

# ruff over the whole tree, with the rules in pyproject.toml
lint: setup
	$(BIN)/ruff check .

# GROWTH=1 adds the growth table from small to the province fixture (5,000,000 complaints; its first load is long)
bench: setup
	$(BIN)/python -m benchmarks.run_all $(if $(GROWTH),--province)

clean:
	-$(BIN)/gridgov db down
	rm -rf $(VENV) node_modules webmap/static/vendor

# The full hardening forms: fuzzing and properties with many examples, the fault tests, a bounded soak on the
# `city` fixture, and pip-audit of the installed dependencies (needs PyPI's JSON API; --strict fails when it is
# unreachable rather than reporting an unaudited set as clean).
soak: setup
	GRIDGOV_FUZZ=full $(BIN)/python -m pytest -q tests/fuzz tests/test_hardening_properties.py tests/test_hardening_faults.py tests/test_hardening_http.py tests/test_hardening_security.py tests/test_hardening_kill.py
	# The restart under load, 20 times over: any transport error (a reset keep-alive connection) fails the run.
	for run in $$(seq 1 20); do echo "restart under load, run $$run of 20"; $(BIN)/python -m pytest -q -p no:cacheprovider \
		'tests/test_hardening_faults.py::test_the_database_restarted_under_load' || exit 1; done
	$(BIN)/python -m benchmarks.soak --size city --duration 300 --max-requests 300000 --json build/soak.json
	$(BIN)/pip-audit --strict --progress-spinner off --skip-editable
	bash scripts/mutation.sh
