# The two commands of the README:
#   make demo   set up, then run the main job on the embedded default and print where results are
#   make test   set up (incl. the Pushgateway server), then run the whole test suite
# Beyond one machine (README "Scaling out"):
#   make scale  the scale-out profile on this machine: Postgres, Redis, daemon, webserver, 2 Celery workers
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
export DAGSTER_HOME := $(CURDIR)
export ALPHA_DATA_ROOT ?= $(CURDIR)/var

.PHONY: setup servers demo test lint bench ui clean scale scale-setup scale-servers

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

# The scale-out profile's extra and servers (tests/scale skips without them, except in CI).
scale-setup: setup
	@$(BIN)/python -c "import dagster_celery, dagster_postgres" 2>/dev/null || $(BIN)/pip install -q -e '.[dev,scale]'

scale-servers:
	@if ! command -v redis-server >/dev/null || ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql redis-server >/dev/null; \
	  else echo "postgresql or redis-server missing: sudo apt-get install postgresql redis-server"; exit 1; fi; \
	fi

scale: scale-setup scale-servers servers
	$(BIN)/python -m alpha_assets.scale up --workers 2 --port 3000

demo: setup servers
	$(BIN)/python -m alpha_assets.demo

test: setup servers
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -p no:cacheprovider

lint: setup
	$(BIN)/ruff check .

bench: setup
	for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b; done

ui: setup
	$(BIN)/dagster dev -h 127.0.0.1 -p 3000

clean:
	rm -rf var
