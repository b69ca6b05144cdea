"""The Prometheus and Alertmanager configurations, one function each.

The committed files under ``deploy/`` are these functions with their defaults (local servers on
their usual ports); the end-to-end test calls the same functions with its free ports, short
scrape/evaluation intervals and absolute rule-file paths, and nothing else changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from alpha_assets.monitoring.rules import P2, PUSHGATEWAY_SCRAPE_JOB, SEVERITIES, Severity

DEFAULT_PUSHGATEWAY = "127.0.0.1:9091"
DEFAULT_ALERTMANAGER = "127.0.0.1:9093"
# The project's own receiver (python -m alpha_assets.monitoring.webhook): it appends each alert to
# artifacts/alerts.jsonl. Point the receivers at a pager bridge instead where one exists.
DEFAULT_WEBHOOK = "http://127.0.0.1:9095"
RULE_FILES = ("rules/recording.yml", "rules/alerts.yml")
GROUP_BY = ["alertname", "job", "run_id"]


def receiver_name(severity: Severity) -> str:
    return f"alpha-{severity.name.lower()}"


def webhook_path(severity: Severity) -> str:
    return f"/alerts/{severity.name.lower()}"


def prometheus_config(*, pushgateway: str = DEFAULT_PUSHGATEWAY, alertmanager: str = DEFAULT_ALERTMANAGER,
                      scrape_interval: str = "15s", evaluation_interval: str = "15s",
                      rule_files: Sequence[str] = RULE_FILES) -> dict[str, Any]:
    return {
        "global": {"scrape_interval": scrape_interval, "evaluation_interval": evaluation_interval},
        "rule_files": list(rule_files),
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]},
        "scrape_configs": [{
            "job_name": PUSHGATEWAY_SCRAPE_JOB,
            # keep the job and run_id the soak pushed instead of the scrape's own
            "honor_labels": True,
            "static_configs": [{"targets": [pushgateway]}],
        }],
    }


def _route(severity: Severity) -> dict[str, Any]:
    return {"receiver": receiver_name(severity), "group_wait": severity.group_wait,
            "group_interval": severity.group_interval, "repeat_interval": severity.repeat_interval}


def alertmanager_config(*, webhook: str = DEFAULT_WEBHOOK) -> dict[str, Any]:
    """P1 and P2 each to their webhook receiver, repeated at the severity's interval."""
    return {
        "route": {
            # an alert without a known severity is treated as P2 rather than dropped
            **_route(P2), "group_by": GROUP_BY,
            "routes": [{"matchers": [f'severity="{s.name}"'], **_route(s)} for s in SEVERITIES],
        },
        "receivers": [{"name": receiver_name(s),
                       "webhook_configs": [{"url": webhook.rstrip("/") + webhook_path(s), "send_resolved": True}]}
                      for s in SEVERITIES],
        "inhibit_rules": [
            # a degraded worker is also restarting/unhealthy: page once, for the cause
            {"source_matchers": ['alertname="AlphaWorkerDegraded"'],
             "target_matchers": ['alertname=~"AlphaWorkerRestarting|AlphaWorkerUnhealthy"'],
             "equal": ["job", "run_id", "key"]},
            # the page-level lag alert silences the warning of the same group and stream
            {"source_matchers": ['alertname="AlphaConsumerLagHigh"', 'severity="P1"'],
             "target_matchers": ['alertname="AlphaConsumerLagHigh"', 'severity="P2"'],
             "equal": ["job", "run_id", "group", "stream"]},
            # a soak that stopped pushing shows frozen figures: only the stall itself is news
            {"source_matchers": ['alertname="AlphaSoakExportStalled"'],
             "target_matchers": ['alertname!="AlphaSoakExportStalled"'],
             "equal": ["job", "run_id"]},
        ],
    }
