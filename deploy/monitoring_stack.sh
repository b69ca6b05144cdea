#!/usr/bin/env bash
# The monitoring stack on this machine, in the foreground: Pushgateway :9091, Prometheus :9090
# (deploy/prometheus), Alertmanager :9093 (deploy/alertmanager) and the project's webhook
# receiver :9095 (alerts into $ALPHA_DATA_ROOT/artifacts/alerts.jsonl). Ctrl-C stops all four.
# Point soaks and run_failure_alert at it: TIMESERIES_TYPE=prometheus TIMESERIES_URL=http://127.0.0.1:9091
# (or pushgateway.url in alpha_assets.yaml).
set -euo pipefail
cd "$(dirname "$0")/.."
state="${ALPHA_DATA_ROOT:-$PWD/var}/monitoring"
mkdir -p "$state/prometheus" "$state/alertmanager"
pids=()
stop() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait; }
trap stop EXIT INT TERM

prometheus-pushgateway --web.listen-address=127.0.0.1:9091 >"$state/pushgateway.log" 2>&1 & pids+=($!)
prometheus --config.file=deploy/prometheus/prometheus.yml --storage.tsdb.path="$state/prometheus" \
  --web.listen-address=127.0.0.1:9090 >"$state/prometheus.log" 2>&1 & pids+=($!)
# an empty cluster address: no HA gossip port
prometheus-alertmanager --config.file=deploy/alertmanager/alertmanager.yml --storage.path="$state/alertmanager" \
  --web.listen-address=127.0.0.1:9093 --cluster.listen-address= >"$state/alertmanager.log" 2>&1 & pids+=($!)
.venv/bin/python -m alpha_assets.monitoring.webhook --port 9095 >"$state/webhook.log" 2>&1 & pids+=($!)

echo "Prometheus http://127.0.0.1:9090  Alertmanager http://127.0.0.1:9093  Pushgateway http://127.0.0.1:9091"
echo "alerts -> ${ALPHA_DATA_ROOT:-$PWD/var}/artifacts/alerts.jsonl; logs in $state; Ctrl-C to stop"
wait -n "${pids[@]}"  # one of them died: say which log to read, then stop the rest
echo "a monitoring server exited; see the logs in $state" >&2
exit 1
