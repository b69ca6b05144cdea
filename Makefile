# The two commands of the README:
#   make demo   set up, then run the main job on the embedded default and print where results are
#   make test   set up (incl. the servers: Pushgateway, Prometheus, Alertmanager, redis-server), then run the suite
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
export DAGSTER_HOME := $(CURDIR)
export ALPHA_DATA_ROOT ?= $(CURDIR)/var

.PHONY: setup servers demo test lint bench ui check monitoring monitor clean

$(BIN)/dagster: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
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
