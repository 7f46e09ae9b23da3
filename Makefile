# Two commands do everything: `make run` and `make test`. Both create .venv on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
SOCKETIO_JS := realtime/static/vendor/socket.io.min.js
SOCKETIO_CLIENT_VERSION := 4.8.1

.PHONY: run test lint bench install browser clean mutate

install: $(INSTALLED) $(SOCKETIO_JS)

# Reinstall only when the project's metadata changes: a second run installs nothing.
$(INSTALLED): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $@

# The browser's socket.io client comes from the npm registry at set-up, never from the repo.
$(SOCKETIO_JS):
	@mkdir -p build/npm realtime/static/vendor
	npm install --silent --no-audit --no-fund --prefix build/npm socket.io-client@$(SOCKETIO_CLIENT_VERSION)
	cp build/npm/node_modules/socket.io-client/dist/socket.io.min.js $@

# Debian's Chromium for the browser test; installed only when missing.
browser:
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium missing: install Debian's chromium package for the browser test"; fi; }

run: install
	$(VENV)/bin/boxoffice serve

# Two workers, each with its own Ray runtime and PostgreSQL; the whole-system tests run one
# after another on one of them (tests/conftest.py). TEST_WORKERS=0 runs the suite serially.
TEST_WORKERS ?= 2

test: install browser
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadgroup --durations=15

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

# Three runs, each on a fresh system: the table shows each figure's median and range.
BENCH_ARGS ?= --runs 3

bench: install
	$(PY) -m pip install --quiet -e '.[bench]'
	$(VENV)/bin/boxoffice bench $(BENCH_ARGS)

# Mutation testing (mutmut, configured in pyproject.toml), outside `make test`: slow, as each
# mutant runs its tests in a fresh session (tools/mutate.py). Results are kept in mutants/, so a
# run cut short by MUTATE_SECONDS goes on where it stopped; MUTANTS="sales.identity*" picks some.
MUTATED := $(VENV)/.mutate-installed
MUTATE_SECONDS ?= 2400
MUTATE_CHILDREN ?= 2
MUTANTS ?=

$(MUTATED): pyproject.toml
	$(PY) -m pip install --quiet -e '.[dev,mutate]'
	@touch $@

mutate: install $(MUTATED)
	$(PY) tools/mutate.py --timeout $(MUTATE_SECONDS) --children $(MUTATE_CHILDREN) $(MUTANTS)

clean:
	rm -rf $(VENV) build realtime/static/vendor mutants
