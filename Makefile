# Consentry: the README's two commands live here.
#   make run    create .venv, install, migrate, seed a demo, serve on http://127.0.0.1:8000 (SQLite)
#   make test   install what the tests need, lint, type-check, run the suite on SQLite and on a throwaway PostgreSQL
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PG_BIN ?= /usr/lib/postgresql/15/bin
# The distributions of this repository (one pyproject.toml each): the server (.), the auditor, the brand
# SDK and the example brand app; installed editable, so the server finds the auditor it depends on here.
PROJECTS := clients/auditor/pyproject.toml clients/brand/pyproject.toml clients/examples/grocery/pyproject.toml
EDITABLE := -e clients/auditor -e clients/brand -e clients/examples/grocery
# Re-install whenever a pyproject.toml or the version changes.
DEPS_HASH := $(shell cat pyproject.toml $(PROJECTS) VERSION | sha1sum | cut -c1-12)
RUN_STAMP := $(VENV)/.run-$(DEPS_HASH)
TEST_STAMP := $(VENV)/.test-$(DEPS_HASH)
# The suite runs on two workers (pytest-xdist): every test has its own database, server and port.
PYTEST_WORKERS ?= 2
PYTEST_ARGS ?=
BENCH_ARGS ?=

NODE_DIR := tests/clients/node
NODE_STAMP := $(NODE_DIR)/node_modules/.installed

.PHONY: help run demo-brand test fresh-dists dists lint bench openapi system-deps node-deps test-sqlite test-postgres clean

help:
	@echo "make run      serve a demo broker on http://127.0.0.1:8000 (SQLite under ./var)"
	@echo "make demo-brand  then, in another terminal: the example brand app on http://127.0.0.1:8001"
	@echo "make test     lint, type-check, and run the suite on SQLite and PostgreSQL"
	@echo "make lint     ruff, mypy and the import-linter layer contracts (lint-imports)"
	@echo "make bench    run the benchmarks under bench/ (SQLite and PostgreSQL): one table, bench/RESULTS.md"
	@echo "make openapi  regenerate openapi/openapi.json from the app"

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(RUN_STAMP): pyproject.toml $(PROJECTS) VERSION | $(PY)
	$(PY) -m pip install -q $(EDITABLE) -e .
	touch $@

$(TEST_STAMP): pyproject.toml $(PROJECTS) VERSION | $(PY)
	$(PY) -m pip install -q $(EDITABLE) -e '.[test]'
	touch $@ $(RUN_STAMP)

run: $(RUN_STAMP)
	$(VENV)/bin/consentry migrate
	mkdir -p var
	umask 077; $(VENV)/bin/consentry demo | tee var/demo.json
	$(VENV)/bin/consentry serve --host 127.0.0.1 --port 8000

# The example brand (clients/examples/grocery) as the demo brand `consentry demo` seeds, with the
# credentials `make run` saved in var/demo.json. Start it after `make run`: each `consentry demo` gives
# the demo brand a fresh secret, so restart it when `make run` restarts.
demo-brand: $(RUN_STAMP)
	@[ -f var/demo.json ] || { umask 077; $(VENV)/bin/consentry migrate && mkdir -p var && $(VENV)/bin/consentry demo > var/demo.json; }
	$(PY) -m clients.examples.grocery --credentials var/demo.json --broker-url http://127.0.0.1:8000 --port 8001

# Debian packages the suite needs (PostgreSQL, and Chromium for the browser tests); installed only
# when missing, with one `apt-get update` first.
system-deps:
	@missing=""; \
	[ -x "$(PG_BIN)/initdb" ] || missing="$$missing postgresql"; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] && echo "" || echo sudo ); \
		$$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q $$missing; \
	fi

# The JavaScript relying party the suite drives (openid-client, pinned in package-lock.json), with the
# Node 20 the machine has; reinstalled whenever the lock file changes.
node-deps: $(NODE_STAMP)

$(NODE_STAMP): $(NODE_DIR)/package-lock.json
	@command -v node >/dev/null || { echo "Node.js 20 or later is needed for the relying-party tests"; exit 1; }
	cd $(NODE_DIR) && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
	touch $@

lint: $(TEST_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

test-sqlite: $(TEST_STAMP) system-deps node-deps
	@echo "=== test suite on SQLite ==="
	$(PY) -m pytest -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

test-postgres: $(TEST_STAMP) system-deps node-deps
	@echo "=== test suite on PostgreSQL 15 ==="
	PG_BIN=$(PG_BIN) .ci/with-postgres $(PY) -m pytest -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

# tests/dists needs the distributions' wheels and each client installed alone in a fresh environment:
# built once per `make test` (in .dists, emptied first) while the linters run (mypy leaves a core
# idle), then used by the SQLite and the PostgreSQL run alike.
test: export CONSENTRY_DISTS_DIR := $(CURDIR)/.dists
test: fresh-dists
	$(MAKE) --no-print-directory -j2 lint dists
	$(MAKE) --no-print-directory test-sqlite test-postgres

fresh-dists:
	rm -rf .dists

dists: $(TEST_STAMP)
	$(PY) tests/support/dists.py $${CONSENTRY_DISTS_DIR:-.dists}

# Every bench/*.py on SQLite and on a throwaway PostgreSQL; one table, also written to bench/RESULTS.md.
bench: $(TEST_STAMP) system-deps
	PG_BIN=$(PG_BIN) $(PY) bench/run.py $(BENCH_ARGS)

openapi: $(RUN_STAMP)
	$(PY) -m broker.openapi > openapi/openapi.json

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis .dists $(NODE_DIR)/node_modules
