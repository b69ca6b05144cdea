"""The Prometheus vocabulary of the live path: every series a soak pushes, its type and labels.

One owner for these names: the exporter, the workers, the alert rules, the recording rules and
the dashboard all import them from here (the rule files and dashboard are generated or checked
against ``METRICS``). Pushgateway grouping adds ``job`` and ``run_id`` to every series.

The short un-prefixed gauges keep the v13 ``TIMESERIES_*`` names users already chart; new series
carry the ``alpha_`` prefix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["gauge", "counter", "histogram"]


@dataclass(frozen=True)
class Metric:
    name: str
    kind: Kind
    help: str
    labels: tuple[str, ...] = ()


# -- latency, per event (histograms in seconds) ------------------------------------------------
TICK_TO_SIGNAL = Metric("alpha_tick_to_signal_seconds", "histogram",
                        "exchange send time of a trade to its signal row computed", ("symbol",))
TICK_TO_DURABLE = Metric("alpha_tick_to_durable_seconds", "histogram",
                         "exchange send time of a trade to its signal row committed in SQLite", ("symbol",))
TICK_TO_ORDER = Metric("alpha_tick_to_order_seconds", "histogram",
                       "exchange send time of a trade to the broker's order ack", ("symbol",))

# -- the bus -----------------------------------------------------------------------------------
CONSUMER_LAG_SECONDS = Metric("alpha_consumer_lag_seconds", "gauge",
                              "age of the oldest entry a consumer group has not yet taken in (0: caught up)",
                              ("group", "stream"))
CONSUMER_PENDING = Metric("alpha_consumer_pending_entries", "gauge",
                          "entries of the stream not yet acknowledged by the group (taken in or not)",
                          ("group", "stream"))

# -- run figures (v13 names) -------------------------------------------------------------------
SOAK_ACTIVE = Metric("alpha_soak_active", "gauge", "1 while a soak's workers run, 0 from its shutdown on")
SIGNALS_TOTAL = Metric("signals_total", "gauge", "signal rows written by the live signal worker")
TRADES_LANDED = Metric("trades_landed", "gauge", "trades in the landing zone")
ORDERS = Metric("orders", "gauge", "orders the broker sent to the executor")
EXPORT_COUNT = Metric("export_count", "gauge", "successful Pushgateway pushes in this run")
ERROR_COUNT = Metric("error_count", "gauge", "failed Pushgateway pushes in this run")
PARITY_DIFF_RATIO = Metric("parity_diff_ratio", "gauge",
                           "share of signal keys not identical in the JSONL and SQLite sinks")
QUEUE_DROPPED = Metric("queue_dropped", "gauge", "events dropped by a full in-memory queue")
RECONNECT_COUNT = Metric("reconnect_count", "gauge", "feed reconnects")
DEADLETTER = Metric("deadletter", "gauge", "dead-lettered market messages")
RESTARTS = Metric("restarts", "gauge", "restarts of a worker", ("key",))
RESTARTS_TOTAL = Metric("restarts_total", "gauge", "restarts of all workers")
DEGRADED = Metric("degraded", "gauge", "1 when the supervisor gave up restarting a worker", ("key",))
HEALTHY = Metric("healthy", "gauge", "1 when the worker runs and its last health probe passed", ("key",))
RSS_MB = Metric("rss_mb", "gauge", "largest resident set size of a worker, MB", ("key",))
OPEN_FILES = Metric("open_files", "gauge", "most open files of a worker", ("key",))

# -- Dagster -----------------------------------------------------------------------------------
RUN_FAILURES = Metric("alpha_run_failures_total", "gauge",
                      "failed Dagster runs of a job recorded by run_failure_alert; run_id is the latest",
                      ("failed_job", "run_id"))

METRICS: dict[str, Metric] = {m.name: m for m in (
    TICK_TO_SIGNAL, TICK_TO_DURABLE, TICK_TO_ORDER, CONSUMER_LAG_SECONDS, CONSUMER_PENDING, SOAK_ACTIVE,
    SIGNALS_TOTAL, TRADES_LANDED, ORDERS, EXPORT_COUNT, ERROR_COUNT, PARITY_DIFF_RATIO, QUEUE_DROPPED,
    RECONNECT_COUNT, DEADLETTER, RESTARTS, RESTARTS_TOTAL, DEGRADED, HEALTHY, RSS_MB, OPEN_FILES, RUN_FAILURES,
)}

# -- series the servers add (the project pushes none of these; the alert rules read them) -----
PUSH_TIME = Metric("push_time_seconds", "gauge",
                   "set by the Pushgateway per group: unix time of the last successful push")
SCRAPE_UP = Metric("up", "gauge", "set by Prometheus per target: 1 when its last scrape succeeded")

SERVER_METRICS: dict[str, Metric] = {m.name: m for m in (PUSH_TIME, SCRAPE_UP)}

# Buckets (seconds) of the latency histograms: fine below 10 ms where the arrival-mode targets
# live, coarse up to the minute hand-over that the event stream replaced.
LATENCY_BUCKETS_S: tuple[float, ...] = (
    0.0005, 0.001, 0.002, 0.003, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.105, 0.15, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0, 60.0,
)
