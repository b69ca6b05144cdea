# The two commands of the README:
#   make demo   set up, then run the main job on the embedded default and print where results are
#   make test   set up (incl. the servers: Pushgateway, Prometheus, Alertmanager, redis-server), then run the suite
# Beyond one machine (README "Scaling out"):
#   make scale  the scale-out profile on this machine: Postgres, Redis, daemon, webserver, 2 Celery workers
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
export DAGSTER_HOME := $(CURDIR)
export ALPHA_DATA_ROOT ?= $(CURDIR)/var
# Optional dependency groups the venv gets (CI: dev,scale,k8s; see .ci/run).
EXTRAS ?= dev

.PHONY: setup servers demo test lint bench ui check monitoring monitor clean scale scale-setup scale-servers

$(BIN)/dagster: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[$(EXTRAS)]'
	@touch $@

setup: $(BIN)/dagster

# Real servers the tests talk to (root can install them; others need them pre-installed), as
# Debian package:command pairs: the Pushgateway, Prometheus with promtool, Alertmanager with amtool,
# and redis-server (the live path's event bus; a soak starts its own unless bus_url names one).
SERVER_PACKAGES := prometheus-pushgateway:prometheus-pushgateway prometheus:promtool prometheus-alertmanager:amtool \
	redis-server:redis-server
servers:
	@missing=""; for pc in $(SERVER_PACKAGES); do \
	  command -v $${pc#*:} >/dev/null || missing="$$missing $${pc%%:*}"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "missing:$$missing (sudo apt-get install$$missing)"; exit 1; fi; \
	fi

# The scale-out profile's extra and servers (tests/scale skips without them, except in CI).
scale-setup: setup
	@$(BIN)/python -c "import dagster_celery, dagster_postgres" 2>/dev/null || $(BIN)/pip install -q -e '.[dev,scale]'

# Debian's postgresql (its server binaries are in /usr/lib/postgresql/<version>/bin, off PATH) and redis-server.
scale-servers:
	@missing=""; ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing=" postgresql"; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "missing:$$missing (sudo apt-get install$$missing)"; exit 1; fi; \
	fi

scale: scale-setup scale-servers servers
	$(BIN)/python -m alpha_assets.scale up --workers 2 --port 3000

demo: setup servers
	$(BIN)/python -m alpha_assets.demo

test: setup servers
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -q -p no:cacheprovider -n 2 --dist loadfile

# ruff, then mypy over alpha_assets/ and executors/ ([tool.mypy] in pyproject.toml)
lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: setup
	for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b; done

# dg dev = webserver + daemon (sensors, declarative automation, the run queue), DAGSTER_HOME = here.
ui: setup
	$(BIN)/dg dev --host 127.0.0.1 --port 3000

check: setup
	$(BIN)/dg check defs

# Regenerate deploy/{prometheus,alertmanager,grafana} and docs/runbook.md, then check them with the real tools.
monitoring: setup servers
	$(BIN)/python -m alpha_assets.monitoring
	promtool check config deploy/prometheus/prometheus.yml
	promtool check rules deploy/prometheus/rules/*.yml
	promtool test rules deploy/prometheus/tests/rules_test.yml
	amtool check-config deploy/alertmanager/alertmanager.yml

# Pushgateway, Prometheus, Alertmanager and the alert webhook on their usual local ports (Ctrl-C stops them).
monitor: setup servers
	deploy/monitoring_stack.sh

clean:
	rm -rf var
