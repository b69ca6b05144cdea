"""run_failure_alert: every failed run becomes an alert line and a Pushgateway counter."""


import json
from pathlib import Path

import dagster as dg

from alpha_assets.layout import Layout
from alpha_assets.live.pushgateway import pushgateway_url
from alpha_assets.resources.data_root import DataRoot

ALERTS_JOB = "alpha_assets_alerts"  # the Pushgateway job of run_failure_alert's series


def record_alert(root: Path, alert: dict[str, object]) -> Path:
    path = Layout(root).alerts_file
    path.parent.mkdir(parents=True, exist_ok=True)
    # One small append per alert; O_APPEND keeps concurrent writers' lines whole.
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(alert, sort_keys=True) + "\n")
    return path


def push_failure_metric(url: str, job_name: str, failures: int, run_id: str = "") -> None:
    from prometheus_client import CollectorRegistry, Gauge, push_to_gateway

    from alpha_assets.live.metric_names import RUN_FAILURES

    registry = CollectorRegistry()
    gauge = Gauge(RUN_FAILURES.name, RUN_FAILURES.help, list(RUN_FAILURES.labels), registry=registry)
    gauge.labels(failed_job=job_name, run_id=run_id).set(failures)
    # One group per failed job: a push replaces its group, so without the key one job's failure
    # would erase another's series.
    push_to_gateway(url.removeprefix("http://"), job=ALERTS_JOB, registry=registry,
                    grouping_key={"failed_job": job_name}, timeout=3)


@dg.run_failure_sensor(
    description="Records each failed run in artifacts/alerts.jsonl and as alpha_run_failures_total on the Pushgateway.",
    monitor_all_code_locations=False,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def run_failure_alert(context: dg.RunFailureSensorContext, data_root: DataRoot) -> None:
    run = context.dagster_run
    alert: dict[str, object] = {
        "kind": "run_failure",
        "run_id": run.run_id,
        "job": run.job_name,
        "message": (context.failure_event.message or "")[:2000],
        "tags": {k: v for k, v in run.tags.items() if k.startswith(("alpha/", "dagster/partition"))},
    }
    path = record_alert(data_root.path, alert)
    url = pushgateway_url()
    if url:
        failures = sum(1 for line in path.read_text().splitlines() if f'"job": "{run.job_name}"' in line)
        try:
            push_failure_metric(url, run.job_name, failures, run.run_id)
        except OSError as exc:  # the alert is already on disk; a dead gateway must not lose it
            context.log.warning(f"pushgateway {url} unreachable: {exc}")
