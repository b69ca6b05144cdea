"""daily_summary (per partition) and daily_summary_rollup (all symbols of a date)."""


import json
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import polars as pl

from alpha_assets.assets.orders import ROUTING_BOOK
from alpha_assets.markdown import markdown_table
from alpha_assets.partitions import DATE, daily_partitions, date_symbol_partitions, split_key
from alpha_assets.reports.hard_metrics import MetricResult, backtest_vs_paper, evaluate_hard_metrics
from alpha_assets.reports.pnl import mids_from_book
from alpha_assets.reports.render import write_report
from alpha_assets.reports.summary import build_summary, headline_figures
from alpha_assets.resources.data_root import DataRoot
from alpha_assets.resources.parquet_io import read_only
from alpha_assets.settings import settings
from executors.batch import route_signals

HARD_METRICS = ("sharpe", "max_drawdown", "reject_rate")
# Beta API: reading every symbol of a date is exactly what a roll-up needs.
PER_DATE = dg.MultiToSingleDimensionPartitionMapping(partition_dimension_name=DATE)


def _metric_spec(asset: str, name: str, partitions_def: dg.PartitionsDefinition) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(name=f"hard_metric_{name}", asset=asset, partitions_def=partitions_def,
                             description=f"{name} within the threshold of alpha_assets.yaml hard_metrics (WARN)")


def _metric_result(asset: str, metric: MetricResult) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        asset_key=asset, check_name=f"hard_metric_{metric.name}", passed=bool(metric.passed),
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"value": metric.value if metric.value is not None else float("nan"),
                  "threshold": metric.threshold, "description": metric.description},
    )


def _parity_dict(parity_diff: pl.DataFrame) -> dict:
    worst = float(parity_diff["rel_diff"].max() or 0.0) if parity_diff.height else 0.0
    return {"max_rel_diff": worst, "passed": worst < 0.0025,
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


def _summary_metadata(summary: dict, paths: object) -> dict:
    return {
        **{k: v for k, v in headline_figures(summary).items() if v is not None},
        "status": summary.get("status", ""),
        "attention": dg.MetadataValue.md("\n".join(f"- {a}" for a in summary.get("attention", [])) or "(nothing)"),
        "report_markdown": dg.MetadataValue.path(str(paths.markdown)),  # type: ignore[attr-defined]
        "report_json": dg.MetadataValue.path(str(paths.json)),  # type: ignore[attr-defined]
        "guard_reasons": dg.MetadataValue.json(summary.get("guard_reasons", {})),
        "last_5_min": dg.MetadataValue.md(markdown_table(pl.DataFrame(summary["last_5_min"]))
                                          if summary.get("last_5_min") else "(none)"),
    }


@dg.asset(
    partitions_def=date_symbol_partitions,
    group_name="reports",
    check_specs=[*(_metric_spec("daily_summary", m, date_symbol_partitions) for m in HARD_METRICS),
                 dg.AssetCheckSpec(name="backtest_vs_paper", asset="daily_summary",
                                   partitions_def=date_symbol_partitions,
                                   description="BacktestExecutor vs MockExecutor on the same signals: fills and "
                                   "PnL within 10 %, or insufficient_observation")],
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
    yield dg.MaterializeResult(metadata={**_summary_metadata(summary, paths), "backtest_vs_paper": paper.status,
                                         **cited})
    for metric in metrics:
        yield _metric_result("daily_summary", metric)
    yield dg.AssetCheckResult(
        asset_key="daily_summary", check_name="backtest_vs_paper",
        passed=paper.status != "fail", severity=dg.AssetCheckSeverity.WARN,
        metadata={"status": paper.status, "description": paper.description,
                  **{k: v for k, v in paper.as_dict().items() if isinstance(v, int | float) and v is not None}},
    )


@dg.asset(
    partitions_def=daily_partitions,
    group_name="reports",
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
    paths = write_report(summary, data_root.path, hard_metrics=evaluate_hard_metrics(summary, settings().hard_metrics))
    return dg.MaterializeResult(metadata=_summary_metadata(summary, paths))
