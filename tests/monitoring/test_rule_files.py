"""The generated Prometheus and Alertmanager files: up to date, valid for the real tools, every alert
unit-tested both ways, every expression parsed and naming only the project's metrics."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import promql_parser
import pytest
import yaml

from alpha_assets.live import metric_names as mn
from alpha_assets.monitoring import rules, servers
from alpha_assets.monitoring.files import ALERTMANAGER_FILE, PROMETHEUS_DIR, RULE_TEST_FILE, stale_files
from tests.monitoring.servers import binary

REPO = Path(__file__).resolve().parents[2]
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def metric_names(expr: str) -> set[str]:
    """Every series name an expression selects (parsed, not pattern-matched)."""
    names: set[str] = set()

    def visit(node: object) -> None:
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            names.add(node.name)

    promql_parser.walk(promql_parser.parse(expr), visit)
    return names


def known(name: str) -> bool:
    """In the vocabulary (a histogram's series included), a server-added series, or a recording rule."""
    if name in mn.METRICS or name in mn.SERVER_METRICS:
        return True
    base = next((name.removesuffix(s) for s in HISTOGRAM_SUFFIXES if name.endswith(s)), "")
    if base in mn.METRICS and mn.METRICS[base].kind == "histogram":
        return True
    return name in {r.record for r in rules.recording_rules()}


def run(cmd: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120, check=False)


def test_generated_files_are_up_to_date() -> None:
    assert stale_files(REPO) == [], "run: python -m alpha_assets.monitoring"


def test_promtool_accepts_config_and_rules() -> None:
    promtool = binary(["promtool"], "prometheus")
    done = run([promtool, "check", "config", str(PROMETHEUS_DIR / "prometheus.yml")])
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 rule files found" in done.stdout + done.stderr
    done = run([promtool, "check", "rules", *(str(PROMETHEUS_DIR / f) for f in servers.RULE_FILES)])
    assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_unit_tests_pass() -> None:
    done = run([binary(["promtool"], "prometheus"), "test", "rules", str(RULE_TEST_FILE)])
    assert done.returncode == 0 and "SUCCESS" in done.stdout, done.stdout + done.stderr


def test_promtool_unit_tests_catch_a_broken_rule(tmp_path: Path) -> None:
    """The unit tests can fail: a rule with a loosened threshold and one with a dropped gate fail them."""
    rules_dir, tests_dir = tmp_path / "rules", tmp_path / "tests"
    rules_dir.mkdir()
    tests_dir.mkdir()
    for f in servers.RULE_FILES:
        (tmp_path / f).write_text((REPO / PROMETHEUS_DIR / f).read_text())
    (tests_dir / RULE_TEST_FILE.name).write_text((REPO / RULE_TEST_FILE).read_text())
    alerts = tmp_path / servers.RULE_FILES[1]
    body = yaml.safe_load(alerts.read_text())
    changed = 0
    for rule in body["groups"][0]["rules"]:
        if rule["alert"] == "AlphaParityBreach":  # a looser threshold
            rule["expr"] = f"{mn.PARITY_DIFF_RATIO.name} >= 0.001"
            changed += 1
        elif rule["alert"] == "AlphaWorkerDegraded":  # the soak-active gate dropped
            rule["expr"] = f"{mn.DEGRADED.name} == 1"
            changed += 1
    assert changed == 2
    alerts.write_text(yaml.safe_dump(body))
    done = run([binary(["promtool"], "prometheus"), "test", "rules", str(tests_dir / RULE_TEST_FILE.name)])
    assert done.returncode != 0
    assert "AlphaParityBreach: silent below the gate" in done.stdout + done.stderr
    assert "AlphaWorkerDegraded: silent once the soak has ended" in done.stdout + done.stderr


def test_every_alert_has_a_firing_and_a_silent_unit_test() -> None:
    body = yaml.safe_load((REPO / RULE_TEST_FILE).read_text())
    fires: dict[tuple[str, str], int] = {}
    silent: dict[str, int] = {}
    for test in body["tests"]:
        for case in test.get("alert_rule_test", []):
            if case["exp_alerts"]:
                for exp in case["exp_alerts"]:
                    key = (case["alertname"], exp["exp_labels"]["severity"])
                    fires[key] = fires.get(key, 0) + 1
            else:
                silent[case["alertname"]] = silent.get(case["alertname"], 0) + 1
    for alert in rules.alert_rules():
        assert fires.get((alert.name, alert.severity.name)), f"no firing test for {alert.name} {alert.severity.name}"
        assert silent.get(alert.name), f"no healthy-series test for {alert.name}"


def test_rules_carry_severity_runbook_and_known_metrics() -> None:
    groups = yaml.safe_load((REPO / PROMETHEUS_DIR / servers.RULE_FILES[1]).read_text())["groups"]
    alerts = [r for g in groups for r in g["rules"]]
    assert len(alerts) == len(rules.alert_rules()) >= 16
    names = {a["alert"] for a in alerts}
    # the list: no signals, export errors, parity, restarting/degraded, lag, dead letters, p99, failed run
    assert {"AlphaNoSignals", "AlphaExportErrors", "AlphaParityBreach", "AlphaWorkerRestarting",
            "AlphaWorkerDegraded", "AlphaConsumerLagHigh", "AlphaDeadLettersGrowing", "AlphaTickToSignalSlow",
            "AlphaRunFailed"} <= names
    runbook = (REPO / rules.RUNBOOK_DOC).read_text()
    for a in alerts:
        assert a["labels"]["severity"] in {"P1", "P2"}
        assert a["annotations"]["runbook"] and a["annotations"]["summary"]
        anchor = a["annotations"]["runbook_url"].split("#")[1]
        assert f"## {a['alert']}" in runbook and anchor == a["alert"].lower()
        assert "$value" not in str(a["annotations"])
    readme = (REPO / "README.md").read_text()
    assert all(name in readme for name in names), "README's Monitoring section lists every alert"


def test_every_expression_parses_and_names_only_project_metrics() -> None:
    exprs = [r["expr"] for f in servers.RULE_FILES
             for g in yaml.safe_load((REPO / PROMETHEUS_DIR / f).read_text())["groups"] for r in g["rules"]]
    assert len(exprs) == len(rules.alert_rules()) + len(rules.recording_rules())
    used: set[str] = set()
    for expr in exprs:
        names = metric_names(expr)
        assert names, expr
        assert all(known(n) for n in names), (expr, [n for n in names if not known(n)])
        used |= names
    # the rules read the soak's series and the latency histograms of the event stream
    assert {mn.SOAK_ACTIVE.name, mn.SIGNALS_TOTAL.name, mn.DEGRADED.name, mn.RUN_FAILURES.name,
            mn.TICK_TO_SIGNAL.name + "_bucket", mn.CONSUMER_LAG_SECONDS.name} <= used


def test_metric_check_rejects_an_unknown_name() -> None:
    assert metric_names('rate(signals_totl{run_id="x"}[5m]) > 0') == {"signals_totl"}
    assert not known("signals_totl") and not known("restarts_bucket")
    assert known("alpha_tick_to_order_seconds_bucket") and known(rules.SOAK_AVAILABILITY)
    with pytest.raises(ValueError):
        promql_parser.parse("rate(signals_total[5m]")


def test_alertmanager_config_routes_p1_and_p2_with_their_repeat_intervals() -> None:
    amtool = binary(["amtool"], "prometheus-alertmanager")
    done = run([amtool, "check-config", str(ALERTMANAGER_FILE)])
    assert done.returncode == 0, done.stdout + done.stderr
    for labels, receiver in ((["severity=P1", "alertname=AlphaWorkerDegraded"], "alpha-p1"),
                             (["severity=P2", "alertname=AlphaRunFailed"], "alpha-p2"),
                             (["alertname=Unlabelled"], "alpha-p2")):
        done = run([amtool, "config", "routes", "test", f"--config.file={ALERTMANAGER_FILE}", *labels])
        assert done.returncode == 0 and done.stdout.strip() == receiver, (labels, done.stdout, done.stderr)
    body = yaml.safe_load((REPO / ALERTMANAGER_FILE).read_text())
    routes = {rt["receiver"]: rt for rt in body["route"]["routes"]}
    assert routes["alpha-p1"]["repeat_interval"] == "5m" and routes["alpha-p2"]["repeat_interval"] == "15m"
    hooks = {rc["name"]: rc["webhook_configs"][0]["url"] for rc in body["receivers"]}
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/alerts/p1", hooks["alpha-p1"])
    assert hooks["alpha-p2"].endswith("/alerts/p2")


def test_prometheus_scrapes_the_pushgateway_with_honor_labels() -> None:
    body = yaml.safe_load((REPO / PROMETHEUS_DIR / "prometheus.yml").read_text())
    (job,) = body["scrape_configs"]
    assert job["honor_labels"] is True and job["job_name"] == rules.PUSHGATEWAY_SCRAPE_JOB
    assert body["rule_files"] == list(servers.RULE_FILES)
