"""The Grafana dashboard: valid for the SDK's model, every query parsed, its metrics = the project's."""

from __future__ import annotations

import json
import re
from pathlib import Path

from grafana_foundation_sdk.cog import runtime as cogruntime
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.models import dashboard as dm
from grafana_foundation_sdk.models import prometheus as pm

from alpha_assets.live import metric_names as mn
from alpha_assets.monitoring import dashboard, rules
from alpha_assets.monitoring.files import DASHBOARD_FILE
from tests.monitoring.test_rule_files import known, metric_names

REPO = Path(__file__).resolve().parents[2]
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "1m", "$__range": "1h"}


def board() -> dict:
    return json.loads((REPO / DASHBOARD_FILE).read_text())


def panel_queries(body: dict) -> list[str]:
    return [t["expr"] for p in body["panels"] if p["type"] != "row" for t in p["targets"]]


def promql(expr: str) -> str:
    """A panel query as Prometheus sees it once Grafana has filled in its own variables."""
    for name, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(name, value)
    return expr


def with_sources(names: set[str]) -> set[str]:
    """``names`` plus, for each recording rule among them, the series it is computed from."""
    records = {r.record: r.expr for r in rules.recording_rules()}
    todo, used = list(names), set()
    while todo:
        name = todo.pop()
        if name not in used:
            used.add(name)
            todo += metric_names(records[name]) if name in records else []
    return used


def series_used(body: dict) -> set[str]:
    """Series the dashboard reads (queries and variables), recording rules with their sources."""
    names = {n for e in panel_queries(body) for n in metric_names(promql(e))}
    names |= {re.fullmatch(r"label_values\((\w+), *\w+\)", v["query"]).group(1)
              for v in body["templating"]["list"] if v["type"] == "query"}
    return with_sources(names)


def test_dashboard_round_trips_through_the_sdk_model() -> None:
    body = board()
    register_default_plugins()
    model = dm.Dashboard.from_json(body)
    again = json.loads(json.dumps(model, cls=JSONEncoder))
    assert again == body  # no field outside the model, none lost
    panels = [p for p in model.panels if not isinstance(p, dm.RowPanel)]
    assert len(panels) >= 20 and all(p.type_val in {"timeseries", "stat"} for p in panels)
    for p in panels:  # typed: Prometheus queries and the panel plugin's own options, not raw dicts
        assert p.targets and all(isinstance(t, pm.Dataquery) for t in p.targets), p.title
        assert not isinstance(p.options, dict) and cogruntime.panelcfg_config(p.type_val) is not None
    ids = [p.id_val for p in model.panels]
    assert len(set(ids)) == len(ids)


def test_dashboard_has_the_required_panels_and_a_run_id_variable() -> None:
    body = board()
    variables = {v["name"]: v for v in body["templating"]["list"]}
    assert variables["run_id"]["query"] == f"label_values({mn.SOAK_ACTIVE.name}, run_id)"
    assert variables["run_id"]["includeAll"] and variables["run_id"]["multi"]
    rows = [p["title"] for p in body["panels"] if p["type"] == "row"]
    assert {"Throughput", "Latency", "Bus lag", "Workers", "Sinks and input", "Exports"} <= set(rows)
    used = series_used(body)
    for needed in (mn.SIGNALS_TOTAL, mn.TICK_TO_SIGNAL, mn.TICK_TO_ORDER, mn.CONSUMER_LAG_SECONDS, mn.RESTARTS,
                   mn.PARITY_DIFF_RATIO, mn.DEADLETTER, mn.EXPORT_COUNT, mn.ERROR_COUNT):
        suffix = "_bucket" if needed.kind == "histogram" else ""
        assert needed.name + suffix in used, needed.name
    soak_queries = [e for e in panel_queries(body) if mn.RUN_FAILURES.name not in e and "up{" not in e]
    assert all('run_id=~"$run_id"' in e for e in soak_queries)


def test_every_panel_query_parses() -> None:
    queries = panel_queries(board())
    assert len(queries) >= 30
    for expr in queries:
        assert metric_names(promql(expr)), expr


def test_dashboard_metrics_are_the_projects_both_ways() -> None:
    used = series_used(board())
    unknown = sorted(n for n in used if not known(n))
    assert unknown == [], f"the dashboard names series the project does not export: {unknown}"
    charted = {n.removesuffix("_bucket") for n in used}
    missing = sorted(set(mn.METRICS) - charted - set(dashboard.NOT_CHARTED))
    assert missing == [], f"exported but neither charted nor listed in dashboard.NOT_CHARTED: {missing}"
    assert set(dashboard.NOT_CHARTED) <= set(mn.METRICS)
