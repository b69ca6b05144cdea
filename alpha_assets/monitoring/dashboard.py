"""The soak dashboard, built with grafana-foundation-sdk from the metric vocabulary and the rules.

Panels are declared as data (``ROWS``): a title, queries and a unit. Queries name series only
through ``alpha_assets.live.metric_names`` and the recording rules of ``rules.py``, so a renamed
metric breaks the generator, not the dashboard. ``$run_id`` selects soaks (all by default).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import prometheus as pb
from grafana_foundation_sdk.builders import stat, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm

from alpha_assets.live import metric_names as mn
from alpha_assets.live.soak import OPEN_FILES_LIMIT, RECONNECT_LIMIT, RSS_LIMIT_MB
from alpha_assets.monitoring import rules as r
from alpha_assets.monitoring.servers import DEFAULT_PUSHGATEWAY
from alpha_assets.signal_contract import PARITY_LIMIT

UID = "alpha-assets-soak"
DATASOURCE_UID = "alpha-prometheus"
DATASOURCE = dm.DataSourceRef(type_val="prometheus", uid="${datasource}")
RUN = 'run_id=~"$run_id"'
RATE = "$__rate_interval"

# Vocabulary series the dashboard leaves out on purpose, with the reason (none today).
NOT_CHARTED: dict[str, str] = {}


def q(metric: mn.Metric | str, extra: str = "") -> str:
    """``metric{run_id=~"$run_id"<, extra>}``."""
    name = metric if isinstance(metric, str) else metric.name
    return f"{name}{{{RUN}{', ' + extra if extra else ''}}}"


@dataclass(frozen=True)
class PanelSpec:
    title: str
    queries: tuple[tuple[str, str], ...]  # (PromQL, legend)
    unit: str = "short"
    kind: Literal["timeseries", "stat"] = "timeseries"
    description: str = ""
    limits: tuple[float, ...] = ()  # threshold lines (red above)
    width: int = 12
    extra: dict[str, Any] = field(default_factory=dict)


def _latency_queries(metric: mn.Metric) -> tuple[tuple[str, str], ...]:
    return tuple((q(r.quantile_record(metric), f'quantile="{qt}"'), f"{{{{symbol}}}} p{round(qt * 100)}")
                 for qt in r.QUANTILES)


ROWS: list[tuple[str, list[PanelSpec]]] = [
    ("Overview", [
        PanelSpec("Soaks running", ((f"sum({q(mn.SOAK_ACTIVE)})", "running"),), kind="stat", width=4),
        PanelSpec("Signals written", ((f"sum by (run_id) ({q(mn.SIGNALS_TOTAL)})", "{{run_id}}"),),
                  kind="stat", width=4),
        PanelSpec("Worker restarts", ((f"sum by (run_id) ({q(mn.RESTARTS_TOTAL)})", "{{run_id}}"),),
                  kind="stat", width=4, limits=(1,)),
        PanelSpec("Degraded workers", ((f"sum by (run_id) ({q(mn.DEGRADED)})", "{{run_id}}"),),
                  kind="stat", width=4, limits=(1,)),
        PanelSpec("Availability (1 h)", ((q(r.SOAK_AVAILABILITY), "{{run_id}}"),), unit="percentunit",
                  kind="stat", width=4, limits=(r.AVAILABILITY_SLO,),
                  description=f"Share of the last hour with every worker green; SLO {r.AVAILABILITY_SLO:.0%}."),
        PanelSpec("Dagster run failures", ((f"sum by (failed_job) ({mn.RUN_FAILURES.name})", "{{failed_job}}"),),
                  kind="stat", width=4, limits=(1,), description="Failed runs per job (run_failure_alert)."),
    ]),
    ("Throughput", [
        PanelSpec("Signals, trades landed and orders per minute",
                  tuple((q(r.per_minute_record(m)), f"{m.name} {{{{run_id}}}}") for m in r.THROUGHPUTS),
                  unit="short", width=24),
    ]),
    ("Latency", [
        PanelSpec("Tick → signal", _latency_queries(mn.TICK_TO_SIGNAL), unit="s", width=8,
                  limits=(r.TICK_TO_SIGNAL_P99_SLO_S,), description="p50/p95/p99 over 5 m; line: the p99 SLO."),
        PanelSpec("Tick → durable (SQLite)", _latency_queries(mn.TICK_TO_DURABLE), unit="s", width=8),
        PanelSpec("Tick → order ack", _latency_queries(mn.TICK_TO_ORDER), unit="s", width=8),
    ]),
    ("Bus lag", [
        PanelSpec("Consumer lag per group", ((q(r.CONSUMER_LAG_MAX), "{{group}} {{run_id}}"),), unit="s",
                  limits=(r.CONSUMER_LAG_WARN_S, r.CONSUMER_LAG_PAGE_S)),
        PanelSpec("Pending entries per group", ((q(r.CONSUMER_PENDING_SUM), "{{group}} {{run_id}}"),)),
    ]),
    ("Workers", [
        PanelSpec("Restarts", ((q(mn.RESTARTS), "{{key}} {{run_id}}"),), width=8),
        PanelSpec("Healthy (1 = green)", ((q(mn.HEALTHY), "{{key}} {{run_id}}"),), width=8),
        PanelSpec("Degraded (1 = given up)", ((q(mn.DEGRADED), "{{key}} {{run_id}}"),), width=8),
        PanelSpec("Resident memory (max)", ((q(mn.RSS_MB), "{{key}} {{run_id}}"),), unit="decmbytes",
                  limits=(RSS_LIMIT_MB,)),
        PanelSpec("Open files (max)", ((q(mn.OPEN_FILES), "{{key}} {{run_id}}"),), limits=(OPEN_FILES_LIMIT,)),
    ]),
    ("Sinks and input", [
        PanelSpec("Sink parity (JSONL vs SQLite)", ((q(mn.PARITY_DIFF_RATIO), "{{run_id}}"),), unit="percentunit",
                  width=8, limits=(PARITY_LIMIT,), description="Share of keys not identical; CI gate 0.25 %."),
        PanelSpec("Dead letters and dropped events",
                  ((q(mn.DEADLETTER), "dead letters {{run_id}}"), (q(mn.QUEUE_DROPPED), "dropped {{run_id}}")),
                  width=8),
        PanelSpec("Feed reconnects", ((q(mn.RECONNECT_COUNT), "{{run_id}}"),), width=8,
                  limits=(RECONNECT_LIMIT,)),
    ]),
    ("Exports", [
        PanelSpec("Pushgateway pushes", ((q(mn.EXPORT_COUNT), "ok {{run_id}}"), (q(mn.ERROR_COUNT), "failed {{run_id}}")),
                  width=8),
        PanelSpec("Seconds since the last push", ((f"time() - {q(mn.PUSH_TIME)}", "{{run_id}}"),), unit="s",
                  width=8, limits=(r.EXPORT_STALE_S,)),
        PanelSpec("Pushgateway scrape", ((f'{mn.SCRAPE_UP.name}{{job="{r.PUSHGATEWAY_SCRAPE_JOB}"}}', "{{instance}}"),),
                  width=8, description=f"1 when Prometheus scrapes the gateway (default {DEFAULT_PUSHGATEWAY})."),
    ]),
]


def _thresholds(limits: tuple[float, ...]) -> db.ThresholdsConfig:
    # green below the first limit, red from the last, orange between (warn/page pairs)
    colours = ["orange"] * (len(limits) - 1) + ["red"]
    steps = [dm.Threshold(value=None, color="green")]
    steps += [dm.Threshold(value=v, color=c) for v, c in zip(limits, colours, strict=True)]
    return db.ThresholdsConfig().mode(dm.ThresholdsMode.ABSOLUTE).steps(steps)


def _panel(spec: PanelSpec) -> Any:
    panel: Any = timeseries.Panel() if spec.kind == "timeseries" else stat.Panel()
    panel = panel.title(spec.title).datasource(DATASOURCE).unit(spec.unit).span(spec.width).height(8)
    if spec.description:
        panel = panel.description(spec.description)
    for i, (expr, legend) in enumerate(spec.queries):
        panel = panel.with_target(pb.Dataquery().expr(expr).legend_format(legend).ref_id(chr(ord("A") + i)))
    if spec.limits:
        panel = panel.thresholds(_thresholds(spec.limits))
    if spec.kind == "timeseries":
        panel = (panel.legend(cb.VizLegendOptions().display_mode(cm.LegendDisplayMode.LIST)
                              .placement(cm.LegendPlacement.BOTTOM).show_legend(True))
                 .line_width(1).fill_opacity(10))
        if spec.limits:
            panel = panel.thresholds_style(cb.GraphThresholdsStyleConfig().mode(cm.GraphThresholdsStyleMode.DASHED))
    else:
        panel = panel.graph_mode(cm.BigValueGraphMode.AREA).reduce_options(
            cb.ReduceDataOptions().calcs(["lastNotNull"]))
    return panel


def build() -> dm.Dashboard:
    board = (db.Dashboard("alpha-assets: soak")
             .uid(UID).tags(["alpha-assets", "soak"]).time("now-1h", "now").refresh("30s").timezone("utc")
             .tooltip(dm.DashboardCursorSync.CROSSHAIR).editable()
             .description("Live soak runs: throughput, latency, bus lag, workers, sinks, exports. "
                          "Generated by python -m alpha_assets.monitoring.")
             .with_variable(db.DatasourceVariable("datasource").label("Prometheus").type("prometheus"))
             .with_variable(db.QueryVariable("run_id").label("Soak run").datasource(DATASOURCE)
                            .query(f"label_values({mn.SOAK_ACTIVE.name}, run_id)")
                            .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED).sort(dm.VariableSort.ALPHABETICAL_DESC)
                            .multi(True).include_all(True).all_value(".*")))
    ids = iter(range(1, 1000))
    for title, panels in ROWS:
        board = board.with_row(db.Row(title).id(next(ids)))
        for spec in panels:
            board = board.with_panel(_panel(spec).id(next(ids)))
    return board.build()


def dashboard_json() -> dict[str, Any]:
    import json

    return json.loads(json.dumps(build(), cls=JSONEncoder))


def provisioning() -> dict[str, Any]:
    """Grafana provisioning: the Prometheus datasource the dashboard defaults to, and the folder."""
    return {
        "datasources": {"apiVersion": 1, "datasources": [{
            "name": "Prometheus (alpha-assets)", "uid": DATASOURCE_UID, "type": "prometheus", "access": "proxy",
            "url": "http://127.0.0.1:9090", "isDefault": True}]},
        "dashboards": {"apiVersion": 1, "providers": [{
            "name": "alpha-assets", "folder": "alpha-assets", "type": "file", "disableDeletion": False,
            "options": {"path": "/etc/grafana/dashboards/alpha-assets"}}]},
    }
