"""End to end on 127.0.0.1: soaks and a failed Dagster run push to a real Pushgateway, a real
Prometheus scrapes it with the committed rules, a real Alertmanager routes what fires to the
project's webhook receiver.

The soaks: one whose signal worker is SIGKILLed with no restart budget (it goes degraded: P1),
one healthy, both running at once. Nothing may fire for the healthy one.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from alpha_assets.live import metric_names as mn
from alpha_assets.live.soak import FaultSpec, SoakConfig, SoakContext, SoakResult, run_soak
from alpha_assets.resources.data_root import DataRoot
from alpha_assets.sensors import alerts
from alpha_assets.sensors.alerts import run_failure_alert
from tests.monitoring.conftest import Stack
from tests.monitoring.test_dashboard import board, panel_queries, promql, with_sources
from tests.monitoring.test_rule_files import known, metric_names

FAULTY, HEALTHY = "e2e_degraded_signal", "e2e_healthy"
GATEWAY_ADDED = {"push_time_seconds", "push_failure_time_seconds"}  # the Pushgateway's own per group
DELIVERY_DEADLINE_S = 180  # generous: soak start-up on a loaded machine + 10 s P1 group wait


@dg.op
def explode() -> None:
    raise RuntimeError("feed exploded")


@dg.job
def failing_job() -> None:
    explode()


@dg.job
def other_failing_job() -> None:
    explode()


def record_failure(job: dg.JobDefinition, instance: dg.DagsterInstance) -> str:
    result = job.execute_in_process(instance=instance, raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.RUN_FAILURE)
    context = dg.build_run_status_sensor_context(
        sensor_name="run_failure_alert", dagster_event=failure, dagster_instance=instance,
        dagster_run=result.dagster_run, resources={"data_root": DataRoot.from_environment()}).for_run_failure()
    run_failure_alert(context)
    return result.run_id


def gateway_samples(stack: Stack) -> list[Any]:
    text = httpx.get(stack.pushgateway.url + "/metrics", timeout=5).text
    return [(fam.name, s) for fam in text_string_to_metric_families(text) for s in fam.samples]


def test_failed_run_is_pushed_to_the_gateway_and_fires(stack: Stack, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALPHA_DATA_ROOT", str(tmp_path))
    monkeypatch.setenv("TIMESERIES_TYPE", "prometheus")  # the v13 names, as users set them
    monkeypatch.setenv("TIMESERIES_URL", stack.pushgateway.url)
    assert alerts.pushgateway_url() == stack.pushgateway.url
    with dg.instance_for_test() as instance:
        first = record_failure(failing_job, instance)
        other = record_failure(other_failing_job, instance)
        second = record_failure(failing_job, instance)
    # the real gateway holds one group per failed job, each naming its latest failed run
    pushed = {(s.labels["failed_job"], s.labels["run_id"]): s.value for name, s in gateway_samples(stack)
              if name == mn.RUN_FAILURES.name}
    assert pushed == {("failing_job", second): 2.0, ("other_failing_job", other): 1.0}, (pushed, first)

    def firing() -> dict[tuple[str, str], dict[str, str]]:
        return {(a["labels"]["failed_job"], a["labels"]["run_id"]): a["labels"] for a in stack.prometheus_alerts()
                if a["labels"]["alertname"] == "AlphaRunFailed" and a["state"] == "firing"}

    # each job's latest failed run fires (Prometheus may also have caught the first run's series
    # before the second push replaced it: that one pages too, then resolves)
    latest = {("failing_job", second), ("other_failing_job", other)}
    fired = stack.wait("AlphaRunFailed firing in Prometheus for each job's latest failed run",
                       lambda: latest <= set(f := firing()) and f, timeout_s=60)
    assert all(fired[k]["severity"] == "P2" for k in latest)
    held = stack.wait("AlphaRunFailed received by Alertmanager", lambda: [
        a for a in stack.alertmanager_alerts()
        if a["labels"]["alertname"] == "AlphaRunFailed" and a["labels"]["run_id"] == second], timeout_s=60)
    assert held[0]["labels"]["severity"] == "P2" and held[0]["status"]["state"] == "active"
    assert held[0]["receivers"][0]["name"] == "alpha-p2"


@dataclass
class Soaks:
    results: dict[str, SoakResult]
    degraded_alert: dict[str, Any] | None
    fault_ts: float | None
    errors: dict[str, BaseException] = field(default_factory=dict)


@pytest.fixture(scope="module")
def soaks(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Soaks:
    root = tmp_path_factory.mktemp("soaks")
    common = {"symbols": ["BTCUSDT"], "export_interval_s": 1, "health_interval_s": 1, "report_interval_s": 5,
              "stop_grace_s": 5, "pushgateway_url": stack.pushgateway.url}
    # no crash-loop back-off: the first death is restarted at once, a second one 3 s later is a crash
    # loop, and with no back-off step left the signal worker is degraded (at 40 s: after the workers
    # are ready even on a busy machine, so the two kills hit two processes)
    faulty = SoakConfig(minutes=3, restart_backoff_s=(), fault_plan=[FaultSpec(kind="kill_signal", at_s=40),
                                                                     FaultSpec(kind="kill_signal", at_s=43)],
                        **common)
    healthy = SoakConfig(minutes=0.5, **common)
    contexts: dict[str, SoakContext] = {}
    results: dict[str, SoakResult] = {}
    errors: dict[str, BaseException] = {}

    def run(run_id: str, cfg: SoakConfig) -> None:
        def keep(ctx: SoakContext) -> None:
            contexts[run_id] = ctx
        try:
            results[run_id] = run_soak(cfg, root / run_id, run_id, extra_hooks=[(0.0, keep)])
        except BaseException as exc:  # reported by the tests, not lost in the thread
            errors[run_id] = exc

    threads = [threading.Thread(target=run, args=a, daemon=True) for a in ((FAULTY, faulty), (HEALTHY, healthy))]
    for t in threads:
        t.start()
    alert = stack.receiver.wait_for(
        lambda a: a["run_id"] == FAULTY and a["alertname"] == "AlphaWorkerDegraded" and a["status"] == "firing",
        timeout_s=DELIVERY_DEADLINE_S)
    if FAULTY in contexts:  # paged: the faulty soak has shown what it had to
        contexts[FAULTY].supervisor.stop_event.set()
    for t in threads:
        t.join(timeout=300)
    fault_ts = next((f["ts"] for f in contexts[FAULTY].injected), None) if FAULTY in contexts else None
    return Soaks(results, alert, fault_ts, errors)


@pytest.mark.slow
def test_a_degraded_signal_worker_pages_p1_with_its_run_id(stack: Stack, soaks: Soaks) -> None:
    assert not soaks.errors, soaks.errors
    alert = soaks.degraded_alert
    assert alert is not None, (f"no AlphaWorkerDegraded delivered within {DELIVERY_DEADLINE_S} s",
                               stack.receiver.received, stack.prometheus_alerts())
    assert (alert["alertname"], alert["severity"], alert["run_id"]) == ("AlphaWorkerDegraded", "P1", FAULTY)
    assert alert["labels"]["key"] == "signal" and alert["path"] == "/alerts/p1" and alert["receiver"] == "alpha-p1"
    assert alert["annotations"]["runbook_url"].endswith("#alphaworkerdegraded")
    # the fault is in the soak's own record, and the page came after it
    assert soaks.results[FAULTY].figures()["degraded"] == 1
    assert soaks.fault_ts is not None and alert["received_at"] > soaks.fault_ts
    print(f"\nSIGKILL of the signal worker -> P1 page at the webhook: "
          f"{alert['received_at'] - soaks.fault_ts:.1f} s (measured under load)")


@pytest.mark.slow
def test_a_healthy_soak_raises_no_alert_at_all(stack: Stack, soaks: Soaks) -> None:
    assert not soaks.errors, soaks.errors
    res = soaks.results[HEALTHY]
    assert res.figures()["restarts_total"] == 0 and res.figures()["degraded"] == 0
    # Prometheus did watch it: every worker was scraped green, the soak was active
    green = stack.query(f'max_over_time({mn.HEALTHY.name}{{run_id="{HEALTHY}"}}[15m])')
    assert sorted(s["metric"]["key"] for s in green) == ["broker", "harvest", "lander", "redis", "report", "signal"]
    assert all(float(s["value"][1]) == 1 for s in green)
    assert stack.query(f'max_over_time({mn.SOAK_ACTIVE.name}{{run_id="{HEALTHY}"}}[15m]) == 1')
    # ...and no rule ever fired for it, so nothing could be routed or delivered (a rule may go
    # pending on a red health tick under load; its for: duration is what keeps that from paging)
    assert stack.query(f'count_over_time(ALERTS{{run_id="{HEALTHY}", alertstate="firing"}}[15m])') == []
    assert not [a for a in stack.alertmanager_alerts() if a["labels"].get("run_id") == HEALTHY]
    assert not [a for a in stack.receiver.received if a["run_id"] == HEALTHY]
    # while the faulty soak's page did go through the same stack
    assert stack.query(f'count_over_time(ALERTS{{run_id="{FAULTY}", alertname="AlphaWorkerDegraded"}}[15m])')


@pytest.mark.slow
def test_what_the_soak_pushed_is_the_vocabulary_and_the_dashboard_reads_it(stack: Stack, soaks: Soaks) -> None:
    assert not soaks.errors, soaks.errors
    pushed = {name for name, s in gateway_samples(stack) if s.labels.get("run_id") in (FAULTY, HEALTHY)}
    assert pushed - GATEWAY_ADDED <= set(mn.METRICS), pushed - GATEWAY_ADDED - set(mn.METRICS)
    assert {mn.SOAK_ACTIVE.name, mn.DEGRADED.name, mn.HEALTHY.name, mn.SIGNALS_TOTAL.name} <= pushed
    # every panel query runs on the real Prometheus; those over series this soak pushes return data
    for expr in panel_queries(board()):
        query = promql(expr).replace("$run_id", FAULTY)
        result = stack.query(query)
        sources = {n for n in with_sources(metric_names(query)) if ":" not in n}  # recording rules expanded
        assert all(known(n) for n in sources)
        if sources <= pushed | {mn.SCRAPE_UP.name} and mn.RUN_FAILURES.name not in sources:
            assert result, f"no data for {query}"
