"""promtool unit tests of the rules: for every alert, a series that fires it and a healthy one that
does not (``deploy/prometheus/tests/rules_test.yml``, run with ``promtool test rules``).

Series are written with the vocabulary's names; the expected annotations are the rule's own
templates filled with the expected labels, so a changed summary cannot drift from its test.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from alpha_assets.live import metric_names as mn
from alpha_assets.monitoring import rules as r
from alpha_assets.signal_contract import PARITY_LIMIT

SOAK = {"job": "alpha_soak", "run_id": "soak_1"}
_LABEL_REF = re.compile(r"\{\{\s*\$labels\.(\w+)\s*\}\}")


@dataclass(frozen=True)
class Case:
    alert: str
    title: str
    series: dict[str, str]  # series selector -> promtool value notation, one sample per interval
    eval_time: str
    fires: list[dict[str, str]] = field(default_factory=list)  # expected alerts' labels (severity included)
    interval: str = "1m"


def series(metric: mn.Metric | str, values: str, **labels: str) -> tuple[str, str]:
    name = metric if isinstance(metric, str) else metric.name
    body = ", ".join(f'{k}="{v}"' for k, v in labels.items())
    return f"{name}{{{body}}}", values


def soak(metric: mn.Metric | str, values: str, **labels: str) -> tuple[str, str]:
    return series(metric, values, **SOAK, **labels)


def active(values: str = "1x30") -> tuple[str, str]:
    return soak(mn.SOAK_ACTIVE, values)


def expected(severity: r.Severity, **labels: str) -> dict[str, str]:
    return {**labels, "severity": severity.name}


def _latency(le_counts: dict[str, int]) -> dict[str, str]:
    """A tick→signal histogram growing by ``le_counts`` (cumulative per bucket) each minute."""
    return dict(soak(mn.TICK_TO_SIGNAL.name + "_bucket", f"0+{n}x20", symbol="BTCUSDT", le=le)
                for le, n in le_counts.items())


def cases() -> list[Case]:
    P1, P2, S = r.P1, r.P2, SOAK
    return [
        Case("AlphaNoSignals", "fires when the signal count stays flat for 5 minutes during a soak",
             dict([soak(mn.SIGNALS_TOTAL, "0+10x5 50x15"), active()]), "12m", [expected(P1, **S)]),
        Case("AlphaNoSignals", "silent while signals grow",
             dict([soak(mn.SIGNALS_TOTAL, "0+10x20"), active()]), "12m"),
        Case("AlphaNoSignals", "silent during the first 5 minutes of a soak (warm-up)",
             dict([soak(mn.SIGNALS_TOTAL, "0x4"), active("1x4")]), "4m"),
        Case("AlphaExportErrors", "fires when error_count grew in the last 10 minutes",
             dict([soak(mn.ERROR_COUNT, "0 0 0 1x5")]), "5m", [expected(P2, **S)]),
        Case("AlphaExportErrors", "silent while every push succeeds",
             dict([soak(mn.ERROR_COUNT, "0x8"), soak(mn.EXPORT_COUNT, "1+1x8")]), "5m"),
        Case("AlphaSoakExportStalled", "fires when a running soak's last push is over 5 minutes old",
             dict([soak(mn.PUSH_TIME, "0+60x5 300x15"), active()]), "12m", [expected(P1, **S)]),
        Case("AlphaSoakExportStalled", "silent while pushes arrive every minute",
             dict([soak(mn.PUSH_TIME, "0+60x20"), active()]), "12m"),
        Case("AlphaPushgatewayDown", "fires when the gateway cannot be scraped for 2 minutes",
             dict([series(mn.SCRAPE_UP, "1 1 0x8", job=r.PUSHGATEWAY_SCRAPE_JOB, instance="127.0.0.1:9091")]),
             "5m", [expected(P1, job=r.PUSHGATEWAY_SCRAPE_JOB, instance="127.0.0.1:9091")]),
        Case("AlphaPushgatewayDown", "silent while scrapes succeed",
             dict([series(mn.SCRAPE_UP, "1x8", job=r.PUSHGATEWAY_SCRAPE_JOB, instance="127.0.0.1:9091")]), "5m"),
        Case("AlphaParityBreach", "fires at 0.25 % or worse for a minute",
             dict([soak(mn.PARITY_DIFF_RATIO, f"0 0 {PARITY_LIMIT:g}x10"), active()]), "5m", [expected(P1, **S)]),
        Case("AlphaParityBreach", "silent below the gate",
             dict([soak(mn.PARITY_DIFF_RATIO, "0 0 0.002x10"), active()]), "5m"),
        Case("AlphaWorkerDegraded", "fires at once for the degraded worker only",
             dict([soak(mn.DEGRADED, "0 0 1x5", key="signal"), soak(mn.DEGRADED, "0x7", key="harvest"),
                   active()]), "3m", [expected(P1, **S, key="signal")]),
        Case("AlphaWorkerDegraded", "silent when no worker is degraded",
             dict([soak(mn.DEGRADED, "0x7", key="signal"), active()]), "3m"),
        Case("AlphaWorkerDegraded", "silent once the soak has ended (its series stay on the gateway)",
             dict([soak(mn.DEGRADED, "0 1x6", key="signal"), active("1 1 0x5")]), "4m"),
        Case("AlphaWorkerRestarting", "fires after a restart",
             dict([soak(mn.RESTARTS, "0 0 1x8", key="signal"), active()]), "5m",
             [expected(P2, **S, key="signal")]),
        Case("AlphaWorkerRestarting", "silent without restarts",
             dict([soak(mn.RESTARTS, "0x10", key="signal"), active()]), "5m"),
        Case("AlphaWorkerUnhealthy", "fires after 2 minutes red",
             dict([soak(mn.HEALTHY, "1 1 0x8", key="broker"), active()]), "5m",
             [expected(P2, **S, key="broker")]),
        Case("AlphaWorkerUnhealthy", "silent on a single red tick",
             dict([soak(mn.HEALTHY, "1 1 0 1x7", key="broker"), active()]), "5m"),
        Case("AlphaConsumerLagHigh", "warns (P2) above 1 s for 2 minutes",
             dict([soak(mn.CONSUMER_LAG_SECONDS, "0.002 0.002 2x8", group="signal", stream="md.BTCUSDT"),
                   active()]), "5m", [expected(P2, **S, group="signal", stream="md.BTCUSDT")]),
        Case("AlphaConsumerLagHigh", "pages (P1) above 10 s, with the warning beside it",
             dict([soak(mn.CONSUMER_LAG_SECONDS, "0.002 15x8", group="broker", stream="sig.BTCUSDT"),
                   active()]), "5m",
             [expected(P1, **S, group="broker", stream="sig.BTCUSDT"),
              expected(P2, **S, group="broker", stream="sig.BTCUSDT")]),
        Case("AlphaConsumerLagHigh", "silent at milliseconds of lag",
             dict([soak(mn.CONSUMER_LAG_SECONDS, "0.002x10", group="signal", stream="md.BTCUSDT"), active()]),
             "5m"),
        Case("AlphaDeadLettersGrowing", "fires when dead letters were added",
             dict([soak(mn.DEADLETTER, "0 0 3x8")]), "4m", [expected(P2, **S)]),
        Case("AlphaDeadLettersGrowing", "silent without dead letters",
             dict([soak(mn.DEADLETTER, "0x10")]), "4m"),
        Case("AlphaQueueDropped", "fires when a queue dropped events",
             dict([soak(mn.QUEUE_DROPPED, "0 0 5x8")]), "4m", [expected(P1, **S)]),
        Case("AlphaQueueDropped", "silent without drops",
             dict([soak(mn.QUEUE_DROPPED, "0x10")]), "4m"),
        Case("AlphaFeedReconnects", "fires above the soak's reconnect limit",
             dict([soak(mn.RECONNECT_COUNT, "0 1 2 3 4x5"), active()]), "5m", [expected(P2, **S)]),
        Case("AlphaFeedReconnects", "silent at the limit",
             dict([soak(mn.RECONNECT_COUNT, "0 1 2 3x6"), active()]), "5m"),
        Case("AlphaWorkerMemoryHigh", "fires after 5 minutes at the RSS limit",
             dict([soak(mn.RSS_MB, "100 700x10", key="signal"), active()]), "7m",
             [expected(P2, **S, key="signal")]),
        Case("AlphaWorkerMemoryHigh", "silent below the limit",
             dict([soak(mn.RSS_MB, "100 500x10", key="signal"), active()]), "7m"),
        Case("AlphaWorkerOpenFilesHigh", "fires after 5 minutes at the open-file limit",
             dict([soak(mn.OPEN_FILES, "20 300x10", key="broker"), active()]), "7m",
             [expected(P2, **S, key="broker")]),
        Case("AlphaWorkerOpenFilesHigh", "silent below the limit",
             dict([soak(mn.OPEN_FILES, "20 40x10", key="broker"), active()]), "7m"),
        Case("AlphaTickToSignalSlow", "fires when 2 % of ticks take 105-150 ms (p99 ≈ 128 ms) for 5 minutes",
             _latency({"0.005": 98, "0.105": 98, "0.15": 100, "+Inf": 100}), "12m",
             [expected(P2, **S, symbol="BTCUSDT", quantile="0.99")]),
        Case("AlphaTickToSignalSlow", "silent when every tick takes under 5 ms",
             _latency({"0.005": 100, "0.105": 100, "0.15": 100, "+Inf": 100}), "12m"),
        Case("AlphaRunFailed", "fires when run_failure_alert pushed a failure in the last 15 minutes",
             dict([series(mn.RUN_FAILURES, "_x2 1x18", job="alpha_assets_alerts", failed_job="daily_pipeline",
                          run_id="6f1c"),
                   series(mn.PUSH_TIME, "_x2 120x18", job="alpha_assets_alerts", failed_job="daily_pipeline")]),
             "5m", [expected(P2, job="alpha_assets_alerts", failed_job="daily_pipeline", run_id="6f1c")]),
        Case("AlphaRunFailed", "silent 15 minutes after the last failure",
             dict([series(mn.RUN_FAILURES, "_x2 1x18", job="alpha_assets_alerts", failed_job="daily_pipeline",
                          run_id="6f1c"),
                   series(mn.PUSH_TIME, "_x2 120x18", job="alpha_assets_alerts", failed_job="daily_pipeline")]),
             "18m"),
    ]


@dataclass(frozen=True)
class ExprCase:
    """A recording rule's value on known series."""

    title: str
    series: dict[str, str]
    eval_time: str
    expr: str
    samples: list[tuple[dict[str, str], float]]


def _selector(name: str, labels: dict[str, str]) -> str:
    return series(name, "", **dict(sorted(labels.items())))[0]


def expr_cases() -> list[ExprCase]:
    tail = _latency({"0.005": 98, "0.105": 98, "0.15": 100, "+Inf": 100})
    lat = {**SOAK, "symbol": "BTCUSDT"}
    return [
        ExprCase("p99 interpolates in the slow bucket: 0.105 + 0.045 * (99 - 98) / 2", tail, "10m",
                 f'{r.quantile_record(mn.TICK_TO_SIGNAL)}{{quantile="0.99"}}', [({**lat, "quantile": "0.99"}, 0.1275)]),
        ExprCase("p50 of ticks all under 5 ms: half of the first bucket",
                 _latency({"0.005": 100, "0.105": 100, "0.15": 100, "+Inf": 100}), "10m",
                 f'{r.quantile_record(mn.TICK_TO_SIGNAL)}{{quantile="0.5"}}', [({**lat, "quantile": "0.5"}, 0.005 / 2)]),
        ExprCase("signals per minute from the cumulative count",
                 dict([soak(mn.SIGNALS_TOTAL, "0+120x20")]), "10m",
                 r.per_minute_record(mn.SIGNALS_TOTAL), [(SOAK, 120.0)]),
        ExprCase("consumer lag: the worst stream of each group",
                 dict([soak(mn.CONSUMER_LAG_SECONDS, "0.5x10", group="signal", stream="md.BTCUSDT"),
                       soak(mn.CONSUMER_LAG_SECONDS, "2x10", group="signal", stream="md.ETHUSDT"),
                       soak(mn.CONSUMER_LAG_SECONDS, "0.1x10", group="lander", stream="md.BTCUSDT")]), "5m",
                 r.CONSUMER_LAG_MAX, [({**SOAK, "group": "lander"}, 0.1), ({**SOAK, "group": "signal"}, 2.0)]),
        ExprCase("pending entries summed over a group's streams",
                 dict([soak(mn.CONSUMER_PENDING, "3x10", group="signal", stream="md.BTCUSDT"),
                       soak(mn.CONSUMER_PENDING, "4x10", group="signal", stream="md.ETHUSDT")]), "5m",
                 r.CONSUMER_PENDING_SUM, [({**SOAK, "group": "signal"}, 7.0)]),
        ExprCase("availability: one worker red 6 of 60 minutes gives 90 %",
                 dict([soak(mn.HEALTHY, "1x59", key="harvest"), soak(mn.HEALTHY, "1x53 0x6", key="signal"),
                       active("1x59")]), "59m", r.SOAK_AVAILABILITY, [(SOAK, 0.9)]),
    ]


def _render(template: str, labels: dict[str, str]) -> str:
    return _LABEL_REF.sub(lambda m: labels.get(m.group(1), ""), template)


def _annotations(alert: str, labels: dict[str, str]) -> dict[str, str]:
    rule = next(a for a in r.alert_rules() if a.name == alert and a.severity.name == labels["severity"])
    return {k: _render(v, labels) for k, v in rule.annotations().items()}


def promtool_tests(rule_files: list[str]) -> dict[str, Any]:
    """The promtool test file: one test per case, each with its own series."""
    return {
        "rule_files": rule_files,
        "evaluation_interval": "1m",
        "tests": [{
            "name": f"{c.alert}: {c.title}",
            "interval": c.interval,
            "input_series": [{"series": s, "values": v} for s, v in c.series.items()],
            "alert_rule_test": [{
                "eval_time": c.eval_time, "alertname": c.alert,
                "exp_alerts": [{"exp_labels": labels, "exp_annotations": _annotations(c.alert, labels)}
                               for labels in c.fires],
            }],
        } for c in cases()] + [{
            "name": f"recording: {c.title}",
            "interval": "1m",
            "input_series": [{"series": s, "values": v} for s, v in c.series.items()],
            "promql_expr_test": [{
                "expr": c.expr, "eval_time": c.eval_time,
                "exp_samples": [{"labels": _selector(c.expr.split("{")[0], labels), "value": value}
                                for labels, value in c.samples],
            }],
        } for c in expr_cases()],
    }
