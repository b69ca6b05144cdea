# The two commands of the README:
#   make demo   set up, then run the main job on the embedded default and print where results are
#   make test   set up (incl. the Pushgateway server), then run the whole test suite
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
export DAGSTER_HOME := $(CURDIR)
export ALPHA_DATA_ROOT ?= $(CURDIR)/var

.PHONY: setup servers demo test lint bench ui check clean

$(BIN)/dagster: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@

setup: $(BIN)/dagster

# Real servers the tests talk to (root can install them; others need them pre-installed).
servers:
	@if ! command -v prometheus-pushgateway >/dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus-pushgateway >/dev/null; \
	  else echo "prometheus-pushgateway missing: sudo apt-get install prometheus-pushgateway"; exit 1; fi; \
	fi

demo: setup servers
	$(BIN)/python -m alpha_assets.demo

test: setup servers
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -p no:cacheprovider

lint: setup
	$(BIN)/ruff check .

bench: setup
	for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b; done

# dg dev = webserver + daemon (sensors, declarative automation, the run queue), DAGSTER_HOME = here.
ui: setup
	$(BIN)/dg dev --host 127.0.0.1 --port 3000

check: setup
	$(BIN)/dg check defs

clean:
	rm -rf var
