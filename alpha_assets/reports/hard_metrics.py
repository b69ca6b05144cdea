"""Hard metrics: thresholds a day must meet, and backtest-vs-paper agreement.

``evaluate_hard_metrics(summary, cfg)`` checks the summary's Sharpe, max drawdown (as a
fraction of capital) and execution reject rate. A figure that cannot be measured (no fills,
no orders) fails, with the reason: a day that never traded has not shown it meets the bar.

``backtest_vs_paper`` routes the same signals through the backtest executor and the mock
(paper) executor and compares fills and PnL: it passes when both differ by at most
``tolerance`` (10 %), and reports ``insufficient_observation`` when either side has fewer
than ``min_fills`` (30) fills, because relative differences of a handful of trades say nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from alpha_assets.reports.pnl import PnLConfig, mids_from_book, pnl_from_orders


class HardMetricsConfigError(ValueError):
    """Invalid thresholds; the message names each failing field and its allowed range."""


class HardMetricsConfig(BaseModel):
    """Thresholds of the daily gate."""

    model_config = ConfigDict(extra="forbid")
    min_sharpe: float = Field(0.0, allow_inf_nan=False, description="annualised Sharpe must be >= this")
    max_drawdown: float = Field(0.10, gt=0, le=1, description="max drawdown / capital must be <= this")
    max_reject_rate: float = Field(0.05, ge=0, le=1, description="rejected / orders must be <= this")

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any] | None) -> HardMetricsConfig:
        """Build from a config mapping; errors name the field, e.g. ``hard_metrics.max_drawdown``."""
        try:
            return cls.model_validate(dict(raw or {}))
        except ValidationError as exc:
            lines = []
            for err in exc.errors():
                where = ".".join(str(p) for p in err["loc"]) or "<root>"
                lines.append(f"hard_metrics.{where}: {err['msg']}{_range_hint(where)}")
            raise HardMetricsConfigError("\n".join(lines)) from exc


def _range_hint(field: str) -> str:
    info = HardMetricsConfig.model_fields.get(field)
    if info is None:
        return f" (allowed fields: {', '.join(HardMetricsConfig.model_fields)})"
    bounds = [repr(m) for m in info.metadata]
    return f" (allowed: {', '.join(bounds)})" if bounds else ""


@dataclass(frozen=True)
class MetricResult:
    name: str
    value: float | None
    threshold: float
    passed: bool
    description: str
    comparator: str = ">="

    @property
    def measured(self) -> bool:
        return self.value is not None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def evaluate_hard_metrics(summary: Mapping[str, Any], cfg: HardMetricsConfig | None = None) -> list[MetricResult]:
    """One result per threshold: sharpe >= min_sharpe, max_drawdown_frac <= max_drawdown,
    reject_rate <= max_reject_rate."""
    cfg = cfg or HardMetricsConfig()
    return [
        _check("sharpe", summary.get("sharpe"), cfg.min_sharpe, ">=",
               "annualised Sharpe of per-minute PnL", "no PnL variation to measure (fewer than 2 minutes or no fills)"),
        _check("max_drawdown", summary.get("max_drawdown_frac"), cfg.max_drawdown, "<=",
               "max drawdown as a fraction of capital", "no capital deployed (no fills)"),
        _check("reject_rate", summary.get("reject_rate"), cfg.max_reject_rate, "<=",
               "rejected orders / orders", "no orders"),
    ]


def _check(name: str, value: float | None, threshold: float, op: str, what: str, unmeasurable: str) -> MetricResult:
    if value is None:
        return MetricResult(name, None, threshold, False, f"{what}: not measurable — {unmeasurable}", op)
    passed = value >= threshold if op == ">=" else value <= threshold
    verdict = "meets" if passed else "breaches"
    return MetricResult(name, float(value), threshold, passed,
                        f"{what} = {value:.4g} {verdict} the threshold {op} {threshold:.4g}", op)


# --- backtest vs paper ----------------------------------------------------------------------

Status = Literal["pass", "fail", "insufficient_observation"]
Router = Callable[..., pl.DataFrame]
MIN_FILLS = 30
TOLERANCE = 0.10


@dataclass(frozen=True)
class PaperComparison:
    status: Status
    fills_backtest: int
    fills_paper: int
    fills_rel_diff: float | None
    pnl_backtest: float
    pnl_paper: float
    pnl_rel_diff: float | None
    tolerance: float
    min_fills: int
    description: str

    @property
    def passed(self) -> bool:
        return self.status == "pass"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def rel_diff(a: float, b: float, floor: float = 0.0) -> float:
    """``|a - b| / max(|a|, |b|, floor)``; 0 when both are 0 (and floor is 0)."""
    den = max(abs(a), abs(b), floor)
    return abs(a - b) / den if den > 0 else 0.0


def compare_backtest_paper(
    backtest_orders: pl.DataFrame,
    paper_orders: pl.DataFrame,
    mids: pl.DataFrame,
    *,
    tolerance: float = TOLERANCE,
    min_fills: int = MIN_FILLS,
    pnl_cfg: PnLConfig | None = None,
) -> PaperComparison:
    """Compare two order tables of the same signals on fills and mark-to-mid PnL.

    PnL relative difference uses ``max(|pnl_bt|, |pnl_paper|, 1 bp of mean turnover)`` as the
    denominator, so two near-zero PnLs do not turn a rounding difference into a failure.
    """
    if not 0 < tolerance < 1:
        raise ValueError(f"tolerance must be in (0, 1), got {tolerance}")
    if min_fills < 1:
        raise ValueError(f"min_fills must be >= 1, got {min_fills}")
    bt = pnl_from_orders(backtest_orders, mids, pnl_cfg)
    pp = pnl_from_orders(paper_orders, mids, pnl_cfg)
    fb, fp = int(bt.figures["n_fills"]), int(pp.figures["n_fills"])
    pb, ppnl = float(bt.figures["net_pnl"]), float(pp.figures["net_pnl"])
    if min(fb, fp) < min_fills:
        return PaperComparison("insufficient_observation", fb, fp, None, pb, ppnl, None, tolerance, min_fills,
                               f"insufficient observation: {min_fills} fills needed on each side to compare, "
                               f"had {fb} (backtest) and {fp} (paper)")
    floor = 1e-4 * (bt.figures["turnover"] + pp.figures["turnover"]) / 2
    dfills, dpnl = rel_diff(fb, fp), rel_diff(pb, ppnl, floor)
    passed = dfills <= tolerance and dpnl <= tolerance
    desc = (f"fills {fb} vs {fp} (diff {dfills:.1%}), PnL {pb:.4g} vs {ppnl:.4g} (diff {dpnl:.1%}); "
            f"tolerance {tolerance:.0%}")
    return PaperComparison("pass" if passed else "fail", fb, fp, dfills, pb, ppnl, dpnl, tolerance, min_fills, desc)


def backtest_vs_paper(
    signals: pl.DataFrame,
    book: pl.DataFrame,
    *,
    route: Router | None = None,
    backtest_executor: Any = None,
    paper_executor: Any = None,
    tolerance: float = TOLERANCE,
    min_fills: int = MIN_FILLS,
    pnl_cfg: PnLConfig | None = None,
) -> PaperComparison:
    """Route ``signals`` through the backtest and the mock executor against ``book`` and compare.

    Defaults: ``route = executors.batch.route_signals`` called as
    ``route(signals, book, executor=...)`` with the executor kinds ``"backtest"`` and ``"mock"``.
    Pass them explicitly to compare other executors.
    """
    if route is None:
        from executors.batch import route_signals

        route = route_signals
    backtest_executor = "backtest" if backtest_executor is None else backtest_executor
    paper_executor = "mock" if paper_executor is None else paper_executor
    bt_orders = route(signals, book, executor=backtest_executor)
    paper_orders = route(signals, book, executor=paper_executor)
    return compare_backtest_paper(bt_orders, paper_orders, mids_from_book(book), tolerance=tolerance,
                                  min_fills=min_fills, pnl_cfg=pnl_cfg)
