"""daily_summary (per partition) and daily_summary_rollup (all symbols of a date)."""


import base64
import json
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import polars as pl

from alpha_assets.assets.common import OWNERS, ROW_COUNT, tags
from alpha_assets.assets.orders import ROUTING_BOOK
from alpha_assets.contracts import SummaryFigures, column_schema
from alpha_assets.figures import num, rounded
from alpha_assets.markdown import markdown_table
from alpha_assets.partitions import (
    daily_partitions,
    date_symbol_partitions,
    partition_check,
    per_date_mapping,
    split_key,
)
from alpha_assets.reports.hard_metrics import MetricResult, backtest_vs_paper, evaluate_hard_metrics
from alpha_assets.reports.pnl import mids_from_book
from alpha_assets.reports.render import write_report
from alpha_assets.reports.summary import build_summary, headline_figures
from alpha_assets.resources.data_root import DataRoot
from alpha_assets.resources.parquet_io import read_only
from alpha_assets.settings import settings
from alpha_assets.signal_contract import parity_passed
from alpha_assets.version import source_version
from executors.batch import route_signals

HARD_METRICS = ("sharpe", "max_drawdown", "reject_rate")
# The figures a hard metric reads, by metric: always in the metadata, NaN when not measurable.
METRIC_FIGURES = {"sharpe": "sharpe", "max_drawdown": "max_drawdown_frac", "reject_rate": "reject_rate"}
REPORT_KWARGS: dict = {
    "kinds": {"polars", "json", "markdown"},
    "owners": OWNERS,
    "tags": tags("batch", "reports"),
    "code_version": source_version("alpha_assets.assets.reports", "alpha_assets.reports", "executors"),
    "metadata": column_schema(SummaryFigures),
}
# Follow upstream: a date's roll-up runs once every symbol's summary of that date is there and
# whenever one of them changes; no hand-written sensor logic.
FOLLOW_UPSTREAM = (
    dg.AutomationCondition.any_deps_updated().since_last_handled()
    & ~dg.AutomationCondition.any_deps_missing()
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
).with_label("follow upstream")
PER_DATE = per_date_mapping()


def _metric_spec(asset: str, name: str, partitions_def: dg.PartitionsDefinition) -> dg.AssetCheckSpec:
    return partition_check(f"hard_metric_{name}", asset, partitions_def,
                           description=f"{name} within the threshold of alpha_assets.yaml hard_metrics (WARN)")


def metric_result(asset: str, metric: MetricResult) -> dg.AssetCheckResult:
    """A hard metric as a WARN check; one that could not be measured fails and says why."""
    return dg.AssetCheckResult(
        asset_key=asset, check_name=f"hard_metric_{metric.name}", passed=metric.measured and metric.passed,
        severity=dg.AssetCheckSeverity.WARN,
        description=metric.description,
        metadata={"value": round(metric.value, 4) if metric.value is not None else float("nan"),
                  "measured": metric.measured, "threshold": metric.threshold, "reason": metric.description},
    )


def paper_result(asset: str, paper: object) -> dg.AssetCheckResult:
    """backtest vs paper as a WARN check: only "pass" passes; too few fills is a failure saying how many."""
    status = paper.status  # type: ignore[attr-defined]
    figures = {k: v for k, v in paper.as_dict().items()  # type: ignore[attr-defined]
               if isinstance(v, int | float) and not isinstance(v, bool) and v is not None}
    return dg.AssetCheckResult(
        asset_key=asset, check_name="backtest_vs_paper", passed=status == "pass",
        severity=dg.AssetCheckSeverity.WARN, description=paper.description,  # type: ignore[attr-defined]
        metadata={"status": status, "reason": paper.description, **rounded(figures)},  # type: ignore[attr-defined]
    )


def _parity_dict(parity_diff: pl.DataFrame) -> dict:
    worst = num(parity_diff["rel_diff"].max() or 0.0) if parity_diff.height else 0.0
    return {"max_rel_diff": worst, "passed": parity_passed(worst),
            "figures": parity_diff.to_dicts()}


def latest_fault_injection(artifacts: Path) -> dict | None:
    """The newest fault-injection report (its artifact path, pass/fail and worst recovery), to cite."""
    reports = sorted(artifacts.glob("fault_injection_*.json"), key=lambda p: p.stat().st_mtime)
    if not reports:
        return None
    body = json.loads(reports[-1].read_text())
    figures = body.get("figures", {})
    return {"path": str(reports[-1]), "run_id": body.get("run_id"), "passed": body.get("passed"),
            "recovery_ms_max": figures.get("recovery_ms_max"), "signals_lost": figures.get("signals_lost")}


def _chart_markdown(charts: dict[str, Path]) -> str:
    """The report's charts inline (the UI renders markdown images), each with its file beside it."""
    parts = []
    for name, path in charts.items():
        if path.exists():
            data = base64.b64encode(path.read_bytes()).decode()
            parts.append(f"**{name}** — `{path}`\n\n![{name}](data:image/png;base64,{data})")
    return "\n\n".join(parts) or "(no charts)"


def _summary_metadata(summary: dict, paths: object, metrics: list[MetricResult]) -> dict:
    figures = rounded(headline_figures(summary))
    for metric in metrics:  # Sharpe, max drawdown, reject rate: always numbers (NaN = not measurable)
        key = METRIC_FIGURES[metric.name]
        figures[key] = figures.get(key, float("nan"))
        if not metric.measured:
            figures[f"{key}_note"] = metric.description
    charts: dict[str, Path] = paths.charts  # type: ignore[attr-defined]
    return {
        **figures,
        "status": summary.get("status", ""),
        "charts": dg.MetadataValue.md(_chart_markdown(charts)),
        **{f"chart_{name}": dg.MetadataValue.path(str(path)) for name, path in charts.items()},
        "attention": dg.MetadataValue.md("\n".join(f"- {a}" for a in summary.get("attention", [])) or "(nothing)"),
        "report_markdown": dg.MetadataValue.path(str(paths.markdown)),  # type: ignore[attr-defined]
        "report_json": dg.MetadataValue.path(str(paths.json)),  # type: ignore[attr-defined]
        "guard_reasons": dg.MetadataValue.json(summary.get("guard_reasons", {})),
        "last_5_min": dg.MetadataValue.md(markdown_table(pl.DataFrame(summary["last_5_min"]))
                                          if summary.get("last_5_min") else "(none)"),
        ROW_COUNT: 1,  # one summary record (SummaryFigures) per partition
    }


@dg.asset(
    partitions_def=date_symbol_partitions,
    group_name="reports",
    **REPORT_KWARGS,
    check_specs=[*(_metric_spec("daily_summary", m, date_symbol_partitions) for m in HARD_METRICS),
                 partition_check("backtest_vs_paper", "daily_summary", date_symbol_partitions,
                                 description="BacktestExecutor vs MockExecutor on the same signals: fills and "
                                 "PnL within 10 % (WARN); fewer than 30 fills a side fails as insufficient_observation")],
    ins={"harvest_raw": dg.AssetIn(metadata=read_only(tables={"book": ROUTING_BOOK, "deadletters": None}))},
    description="The morning read: signal counts and ratios, rhythm, guards, orders, fills, PnL, Sharpe, "
    "max drawdown, reject rate, parity — JSON + Markdown + charts under logs/report/.",
)
def daily_summary(
    context: dg.AssetExecutionContext, signals: pl.DataFrame, mock_orders: pl.DataFrame,
    parity_diff: pl.DataFrame, harvest_raw: dict[str, pl.DataFrame], data_root: DataRoot,
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    date, symbol = split_key(context)
    book = harvest_raw["book"]
    dead = harvest_raw.get("deadletters")
    warnings = [f"{dead.height} dead-letter rows in harvest_raw"] if dead is not None and dead.height else []
    faults = latest_fault_injection(data_root.artifacts)
    if faults is not None and not faults["passed"]:
        warnings.append(f"latest fault-injection run {faults['run_id']} failed its checks: {faults['path']}")
    summary = build_summary(
        signals, mock_orders, mids=mids_from_book(book), parity=_parity_dict(parity_diff), data_mode="raw",
        dropped=dead.height if dead is not None else 0, warnings=warnings, date=date, symbol=symbol,
    )
    metrics = evaluate_hard_metrics(summary, settings().hard_metrics)
    paths = write_report(summary, data_root.path, hard_metrics=metrics)
    # The same signals through the backtest and the paper broker (route_signals takes executor kinds).
    paper = backtest_vs_paper(signals, book, route=route_signals, backtest_executor="backtest",
                              paper_executor="mock")
    cited = {"fault_injection": dg.MetadataValue.json(faults)} if faults else {}
    yield dg.MaterializeResult(metadata={**_summary_metadata(summary, paths, metrics),
                                         "backtest_vs_paper": paper.status, **cited})
    for metric in metrics:
        yield metric_result("daily_summary", metric)
    yield paper_result("daily_summary", paper)


@dg.asset(
    partitions_def=daily_partitions,
    group_name="reports",
    **REPORT_KWARGS,
    automation_condition=FOLLOW_UPSTREAM,
    ins={
        "signals": dg.AssetIn(partition_mapping=PER_DATE),
        "mock_orders": dg.AssetIn(partition_mapping=PER_DATE),
        "harvest_raw": dg.AssetIn(partition_mapping=PER_DATE,
                                  metadata=read_only(tables={"book": ROUTING_BOOK, "deadletters": None})),
    },
    deps=["daily_summary"],
    description="All symbols of a date in one report (recomputed from the concatenated tables).",
)
def daily_summary_rollup(
    context: dg.AssetExecutionContext, signals: pl.DataFrame, mock_orders: pl.DataFrame,
    harvest_raw: dict[str, pl.DataFrame], data_root: DataRoot,
) -> dg.MaterializeResult:
    summary = build_summary(
        signals, mock_orders, mids=mids_from_book(harvest_raw["book"]), parity=None, data_mode="raw",
        dropped=harvest_raw["deadletters"].height if "deadletters" in harvest_raw else 0, warnings=[],
        date=context.partition_key, symbol=None,
    )
    metrics = evaluate_hard_metrics(summary, settings().hard_metrics)
    paths = write_report(summary, data_root.path, hard_metrics=metrics)
    return dg.MaterializeResult(metadata=_summary_metadata(summary, paths, metrics))
