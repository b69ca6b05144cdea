"""Prometheus recording and alert rules of the soak, built from the metric vocabulary.

Every series name comes from ``alpha_assets.live.metric_names``; every threshold from the module
that owns it (the parity gate, the soak's resource limits) or from a named constant below. Alerts
carry ``severity`` P1 (page now) or P2 (look today); ``alertmanager.py`` routes on it.

Soak series are grouped by the Pushgateway as ``job`` + ``run_id`` and stay there after the run,
so every soak-state alert is gated on ``alpha_soak_active == 1``: a finished soak pages no one.
Annotations use ``$labels`` only (never ``$value``) so the promtool tests can state them exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from alpha_assets.live import metric_names as mn
from alpha_assets.live.soak import OPEN_FILES_LIMIT, RECONNECT_LIMIT, RSS_LIMIT_MB
from alpha_assets.signal_contract import PARITY_LIMIT

PUSHGATEWAY_SCRAPE_JOB = "pushgateway"  # the scrape job of prometheus.yml (honor_labels keeps pushed job)
RUN = "job, run_id"  # the Pushgateway grouping labels of a soak's series
RUNBOOK_DOC = "docs/runbook.md"

# Thresholds owned here (the others are imported above).
NO_SIGNALS_WINDOW = "5m"  # a soak whose signal count has not moved this long produces nothing
EXPORT_STALE_S = 300  # five default export intervals without a successful push
CONSUMER_LAG_WARN_S = 1.0  # a signal one second late has lost a tenth of its 10 s edge
CONSUMER_LAG_PAGE_S = 10.0  # older than the edge itself: the signals are worthless
# The event-time book join's target (issue 12); the arrival mode's 1 ms is stricter, so paging on
# 105 ms holds in both modes. 0.105 is a bucket bound of LATENCY_BUCKETS_S, so the p99 is exact there.
TICK_TO_SIGNAL_P99_SLO_S = 0.105
AVAILABILITY_SLO = 0.99  # share of the last hour with every worker green (dashboard threshold)
RUN_FAILURE_WINDOW_S = 900  # a failed run pages for 15 minutes after run_failure_alert pushed it
QUANTILES = (0.5, 0.95, 0.99)
RATE_WINDOW = "5m"


@dataclass(frozen=True)
class Severity:
    name: str
    meaning: str
    group_wait: str
    group_interval: str
    repeat_interval: str


P1 = Severity("P1", "page now: the soak is losing data, producing nothing or unwatched", "10s", "1m", "5m")
P2 = Severity("P2", "look today: the soak runs but something degrades", "30s", "5m", "15m")
SEVERITIES = (P1, P2)


@dataclass(frozen=True)
class AlertRule:
    name: str
    severity: Severity
    expr: str
    for_: str
    summary: str  # one line; may use {{ $labels.<name> }}
    meaning: str
    runbook: str

    @property
    def runbook_url(self) -> str:
        return f"{RUNBOOK_DOC}#{self.name.lower()}"

    def annotations(self) -> dict[str, str]:
        return {"summary": self.summary, "description": self.meaning, "runbook": self.runbook,
                "runbook_url": self.runbook_url}

    def to_rule(self) -> dict[str, Any]:
        return {"alert": self.name, "expr": self.expr, "for": self.for_,
                "labels": {"severity": self.severity.name}, "annotations": self.annotations()}


@dataclass(frozen=True)
class RecordingRule:
    record: str
    expr: str
    labels: dict[str, str] = field(default_factory=dict)

    def to_rule(self) -> dict[str, Any]:
        rule: dict[str, Any] = {"record": self.record, "expr": self.expr}
        if self.labels:
            rule["labels"] = dict(self.labels)
        return rule


def during_soak(expr: str) -> str:
    """``expr`` only for runs whose soak is still running."""
    return f"({expr}) and on({RUN}) ({mn.SOAK_ACTIVE.name} == 1)"


def quantile_record(metric: mn.Metric) -> str:
    return f"alpha:{metric.name}:quantile_{RATE_WINDOW}"


def per_minute_record(metric: mn.Metric) -> str:
    return f"alpha:{metric.name}:per_minute_{RATE_WINDOW}"


SOAK_ALL_GREEN = "alpha:soak_workers_green:min"
SOAK_AVAILABILITY = "alpha:soak_availability:ratio_1h"
CONSUMER_LAG_MAX = f"alpha:{mn.CONSUMER_LAG_SECONDS.name}:max"
CONSUMER_PENDING_SUM = f"alpha:{mn.CONSUMER_PENDING.name}:sum"
LATENCIES = (mn.TICK_TO_SIGNAL, mn.TICK_TO_DURABLE, mn.TICK_TO_ORDER)
THROUGHPUTS = (mn.SIGNALS_TOTAL, mn.TRADES_LANDED, mn.ORDERS)


def recording_rules() -> list[RecordingRule]:
    rules = [
        RecordingRule(quantile_record(m), f"histogram_quantile({q}, sum by ({RUN}, symbol, le) "
                                          f"(rate({m.name}_bucket[{RATE_WINDOW}])))", {"quantile": str(q)})
        for m in LATENCIES for q in QUANTILES
    ]
    # the run figures are cumulative gauges within a run; rate() treats a worker restart as a reset
    rules += [RecordingRule(per_minute_record(m), f"sum by ({RUN}) (rate({m.name}[{RATE_WINDOW}])) * 60")
              for m in THROUGHPUTS]
    rules += [
        RecordingRule(CONSUMER_LAG_MAX, f"max by ({RUN}, group) ({mn.CONSUMER_LAG_SECONDS.name})"),
        RecordingRule(CONSUMER_PENDING_SUM, f"sum by ({RUN}, group) ({mn.CONSUMER_PENDING.name})"),
        RecordingRule(SOAK_ALL_GREEN, during_soak(f"min by ({RUN}) ({mn.HEALTHY.name})")),
        RecordingRule(SOAK_AVAILABILITY, f"avg_over_time({SOAK_ALL_GREEN}[1h])"),
    ]
    return rules


def _lag_alert(severity: Severity, limit_s: float, for_: str) -> AlertRule:
    lag = mn.CONSUMER_LAG_SECONDS.name
    return AlertRule(
        "AlphaConsumerLagHigh", severity, during_soak(f"{lag} > {limit_s:g}"), for_,
        f"{severity.name}: consumer group {{{{ $labels.group }}}} on {{{{ $labels.stream }}}} lags more than "
        f"{limit_s:g} s (run {{{{ $labels.run_id }}}})",
        f"The oldest entry the group has not taken in yet is older than {limit_s:g} s for {for_}: "
        "signals or orders arrive late" + (" and are worth nothing (the edge lives at 10 s)."
                                           if limit_s >= 10 else "."),
        "Check the consumer's worker (healthy, restarts, CPU); look at pending entries per group on the "
        "dashboard; a burst drains by itself, a steady climb means the worker is too slow or stuck.")


def alert_rules() -> list[AlertRule]:
    S, R = mn.SIGNALS_TOTAL.name, mn.RESTARTS.name
    return [
        AlertRule(
            "AlphaNoSignals", P1,
            f"(changes({S}[{NO_SIGNALS_WINDOW}]) == 0) and on({RUN}) ({mn.SOAK_ACTIVE.name} == 1) "
            f"and on({RUN}) ({mn.SOAK_ACTIVE.name} offset {NO_SIGNALS_WINDOW} == 1)", "1m",
            f"P1: no signals for {NO_SIGNALS_WINDOW} in soak {{{{ $labels.run_id }}}}",
            f"The signal worker's row count has not moved for {NO_SIGNALS_WINDOW} while the soak runs "
            "(a soak younger than that is not judged).",
            "Check the feed (reconnects, trades landed per minute), then the signal worker (healthy, "
            "degraded, logs/signal/); a stalled exchange shows as flat trades landed too."),
        AlertRule(
            "AlphaExportErrors", P2, f"increase({mn.ERROR_COUNT.name}[10m]) > 0", "0m",
            "P2: Pushgateway pushes failed in run {{ $labels.run_id }}",
            "The soak failed to push its metrics at least once in the last 10 minutes; the run goes on, "
            "but the figures here lag until a push succeeds.",
            "Check the Pushgateway (up, disk, logs) and the soak's run manifest (export.errors lists the "
            "first causes)."),
        AlertRule(
            "AlphaSoakExportStalled", P1,
            during_soak(f"time() - {mn.PUSH_TIME.name} > {EXPORT_STALE_S}"), "0m",
            "P1: soak {{ $labels.run_id }} has pushed nothing for " + f"{EXPORT_STALE_S // 60} minutes",
            f"A running soak's last successful push is older than {EXPORT_STALE_S} s: the soak process "
            "died without its final push, or cannot reach the Pushgateway. Nothing else here can be trusted "
            "for that run.",
            "Look for the soak process (dagster run, supervisor); if it is gone, its workers must be too. "
            "Once handled, delete the group: curl -X DELETE <pushgateway>/metrics/job/<job>/run_id/<run_id>."),
        AlertRule(
            "AlphaPushgatewayDown", P1, f'{mn.SCRAPE_UP.name}{{job="{PUSHGATEWAY_SCRAPE_JOB}"}} == 0', "2m",
            "P1: Prometheus cannot scrape the Pushgateway {{ $labels.instance }}",
            "Every soak alert is blind while the Pushgateway cannot be scraped.",
            "Start or fix prometheus-pushgateway at the address of prometheus.yml; soaks keep running and "
            "count failed pushes in error_count."),
        AlertRule(
            "AlphaParityBreach", P1, during_soak(f"{mn.PARITY_DIFF_RATIO.name} >= {PARITY_LIMIT:g}"), "1m",
            "P1: JSONL and SQLite sinks disagree in soak {{ $labels.run_id }}",
            f"The two signal sinks differ by {PARITY_LIMIT:.2%} or more of their keys, the share at which "
            "CI blocks a merge.",
            "Materialise parity_diff for the soak's partition and read artifacts/parity_diff_*.json; check "
            "the SQLite sink (locked, disk full) and the JSONL spool."),
        AlertRule(
            "AlphaWorkerDegraded", P1, during_soak(f"{mn.DEGRADED.name} == 1"), "0m",
            "P1: worker {{ $labels.key }} is degraded in soak {{ $labels.run_id }}",
            "The supervisor used the worker's whole restart budget and stopped restarting it; the rest of "
            "the soak carries on without it. The budget's back-off is the debounce, so this pages at once.",
            "Read logs/<worker>/ and the orchestrator log for the exits; fix the cause and start a new soak."),
        AlertRule(
            "AlphaWorkerRestarting", P2, during_soak(f"increase({R}[15m]) > 0"), "0m",
            "P2: worker {{ $labels.key }} restarted in soak {{ $labels.run_id }}",
            "The supervisor restarted the worker in the last 15 minutes (it recovered or is recovering).",
            "Read the worker's log for the exit; repeated restarts end in AlphaWorkerDegraded."),
        AlertRule(
            "AlphaWorkerUnhealthy", P2, during_soak(f"{mn.HEALTHY.name} == 0"), "2m",
            "P2: worker {{ $labels.key }} unhealthy for 2 minutes in soak {{ $labels.run_id }}",
            "The worker is not running or its health probe (heartbeat, files landed) has failed for 2 minutes.",
            "Check its heartbeat under runtime/health/ and its log; a stuck worker is restarted only when it "
            "exits."),
        _lag_alert(P2, CONSUMER_LAG_WARN_S, "2m"),
        _lag_alert(P1, CONSUMER_LAG_PAGE_S, "1m"),
        AlertRule(
            "AlphaDeadLettersGrowing", P2, f"increase({mn.DEADLETTER.name}[10m]) > 0", "0m",
            "P2: market messages dead-lettered in run {{ $labels.run_id }}",
            "The harvester rejected messages from the feed in the last 10 minutes (kept in the dead-letter "
            "records, not lost).",
            "Read landing/deadletter/ for the rejected messages and their reasons; a new exchange format or a "
            "broken feed shows here first."),
        AlertRule(
            "AlphaQueueDropped", P1, f"increase({mn.QUEUE_DROPPED.name}[10m]) > 0", "0m",
            "P1: events dropped by a full queue in run {{ $labels.run_id }}",
            "A worker's in-memory queue overflowed in the last 10 minutes: market events were lost.",
            "Check CPU and the slow consumer downstream of the queue; the soak's queue_dropped_zero check "
            "fails for this run."),
        AlertRule(
            "AlphaFeedReconnects", P2, during_soak(f"{mn.RECONNECT_COUNT.name} > {RECONNECT_LIMIT}"), "0m",
            "P2: the feed reconnected more than " + f"{RECONNECT_LIMIT} times in soak " + "{{ $labels.run_id }}",
            f"More reconnects than the soak's limit ({RECONNECT_LIMIT}); each one is backfilled, but the "
            "connection is unstable.",
            "Check the exchange endpoint and the network; the harvester log names each disconnect."),
        AlertRule(
            "AlphaWorkerMemoryHigh", P2, during_soak(f"{mn.RSS_MB.name} >= {RSS_LIMIT_MB}"), "5m",
            "P2: worker {{ $labels.key }} above " + f"{RSS_LIMIT_MB} MB in soak " + "{{ $labels.run_id }}",
            f"The worker's resident memory reached the soak's limit ({RSS_LIMIT_MB} MB): a leak or a backlog.",
            "Compare with the consumer lag and pending entries; restart the soak if it keeps growing."),
        AlertRule(
            "AlphaWorkerOpenFilesHigh", P2, during_soak(f"{mn.OPEN_FILES.name} >= {OPEN_FILES_LIMIT}"), "5m",
            "P2: worker {{ $labels.key }} holds too many files in soak {{ $labels.run_id }}",
            f"The worker reached the soak's open-file limit ({OPEN_FILES_LIMIT}): a descriptor leak.",
            "List its descriptors (ls /proc/<pid>/fd) and look for files opened per minute and never closed."),
        AlertRule(
            "AlphaTickToSignalSlow", P2,
            f'{quantile_record(mn.TICK_TO_SIGNAL)}{{quantile="0.99"}} > {TICK_TO_SIGNAL_P99_SLO_S:g}', "5m",
            "P2: tick→signal p99 above " + f"{TICK_TO_SIGNAL_P99_SLO_S * 1000:g} ms for "
            + "{{ $labels.symbol }} in run {{ $labels.run_id }}",
            f"The 99th percentile of exchange send → signal row over {RATE_WINDOW} exceeds the SLO "
            f"({TICK_TO_SIGNAL_P99_SLO_S * 1000:g} ms) for 5 minutes.",
            "Check consumer lag and CPU per worker; bench/live.py measures the same hop on a quiet machine."),
        AlertRule(
            "AlphaRunFailed", P2,
            f"{mn.RUN_FAILURES.name} and on(job, failed_job) "
            f"(time() - {mn.PUSH_TIME.name} < {RUN_FAILURE_WINDOW_S})", "0m",
            "P2: Dagster job {{ $labels.failed_job }} failed (run {{ $labels.run_id }})",
            "run_failure_alert recorded a failed run of the job in the last "
            f"{RUN_FAILURE_WINDOW_S // 60} minutes (also in artifacts/alerts.jsonl).",
            "Open the run in the Dagster UI (Runs, filter by the run id) and read the failed step's error."),
    ]


def rule_groups() -> dict[str, Any]:
    """The two rule files' content: ``{"recording": {...}, "alerts": {...}}``."""
    return {
        "recording": {"groups": [{"name": "alpha_assets_recording",
                                  "rules": [r.to_rule() for r in recording_rules()]}]},
        "alerts": {"groups": [{"name": "alpha_assets_alerts", "rules": [a.to_rule() for a in alert_rules()]}]},
    }
