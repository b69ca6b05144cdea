"""Mark-to-market PnL of the filled orders, per-minute returns, Sharpe and max drawdown.

Conventions (what the daily summary reports):

* Only orders with ``status == "filled"`` and a ``px_fill`` move the book. A BUY adds ``qty``
  to the position, a SELL removes it; cash moves by ``-signed_qty * px_fill`` and pays a fee of
  ``qty * px_fill * fee_bps / 1e4`` (taker fee on the filled notional).
* A fill is booked at its ``ts_ms`` (the event time of the signal that produced it): the
  executors run on event time, and their latency is far below the 1-second marking grid.
* Equity on a 1-second grid from the first fill to the last mark:
  ``equity(t) = cash(t) + position(t) * mark(t)``, where ``mark(t)`` is the last mid price at
  or before the end of that second (the last fill price before the first mid is known).
  Equity is 0 before the first fill, so ``equity`` is the net PnL after fees.
* Per-minute returns: ``r_m = (E_m - E_{m-1}) / capital`` with ``E_m`` the equity at the end of
  minute ``m`` and ``E_{-1} = 0``. ``capital`` defaults to the largest gross notional exposure
  held on the grid (``max_t sum_symbols |position| * mark``), i.e. returns on the capital the
  strategy actually deployed; set ``PnLConfig.capital`` to use a fixed book size instead.
* Sharpe (annualised, risk-free rate 0, crypto trades 24/7):
  ``sharpe = mean(r) / std(r, ddof=1) * sqrt(525_600)`` over every minute from the first fill
  to the last mark, flat minutes included. It does not depend on ``capital`` (a scale).
  ``None`` when there are fewer than ``min_sharpe_minutes`` (10) minutes or the returns do not
  vary. ``sharpe_stderr`` is its standard error under iid returns (Lo 2002):
  ``sqrt((1 + sr_m**2 / 2) / n) * sqrt(525_600)`` with ``sr_m`` the per-minute Sharpe — a day
  of minutes still carries about ±19 of annualised noise, a 30-minute soak about ±130.
* Max drawdown: ``max_t (peak(t) - equity(t))`` with ``peak(t) = max(0, max_{s<=t} equity(s))``
  on the 1-second grid, in quote currency; ``max_drawdown_frac`` divides it by ``capital``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from alpha_assets.figures import num

MINUTES_PER_YEAR = 365 * 24 * 60
SECOND_MS = 1_000
MINUTE_MS = 60_000


class PnLConfig(BaseModel):
    """How fills are charged and returns are scaled."""

    model_config = ConfigDict(extra="forbid")
    fee_bps: float = Field(5.0, ge=0, le=100, description="fee on filled notional, bps (Binance USD-M taker 0.05 %)")
    capital: float | None = Field(None, gt=0, description="fixed capital for returns; None = max gross exposure")
    time_col: str = Field("ts_ms", description="order column that dates a fill")
    min_sharpe_minutes: int = Field(10, ge=2, le=100_000, description="fewer minutes: Sharpe is None")


@dataclass
class PnLResult:
    """The PnL of one set of orders: figures plus the curves behind them."""

    figures: dict[str, Any]
    curve: pl.DataFrame  # 1-second grid: ts_ms, gross_exposure, fees, equity (all symbols)
    minutes: pl.DataFrame  # ts_ms (minute start), equity, pnl, ret
    by_symbol: dict[str, dict[str, Any]] = field(default_factory=dict)


def mids_from_book(book: pl.DataFrame) -> pl.DataFrame:
    """1-second mids from book snapshots (``bid_px_1``/``ask_px_1``): the last mid of each second."""
    return (
        book.select(
            "symbol",
            ((pl.col("event_time_ms") // SECOND_MS) * SECOND_MS).alias("ts_ms"),
            ((pl.col("bid_px_1") + pl.col("ask_px_1")) / 2).alias("mid"),
        )
        .drop_nulls("mid")
        .group_by("symbol", "ts_ms", maintain_order=True)
        .last()
        .sort("symbol", "ts_ms")
    )


def mids_from_preview(preview: pl.DataFrame) -> pl.DataFrame:
    """1-second mids from preview bars: best bid/ask when the bars carry them, else ``close``."""
    for bid, ask in (("best_bid", "best_ask"), ("bid_px", "ask_px"), ("bid_px_1", "ask_px_1")):
        if bid in preview.columns and ask in preview.columns:
            mid = (pl.col(bid) + pl.col(ask)) / 2
            break
    else:
        mid = pl.col("close")
    return preview.select("symbol", "ts_ms", mid.alias("mid")).drop_nulls("mid").sort("symbol", "ts_ms")


def mids_from_signals(signals: pl.DataFrame) -> pl.DataFrame:
    """Fallback marks when no mids are given: the last trade price (``price``) of each second."""
    return (
        signals.select(
            "symbol", ((pl.col("ts_ms") // SECOND_MS) * SECOND_MS).alias("ts_ms"), pl.col("price").alias("mid")
        )
        .drop_nulls("mid")
        .sort("symbol", "ts_ms", maintain_order=True)
        .group_by("symbol", "ts_ms", maintain_order=True)
        .last()
    )


def pnl_from_orders(orders: pl.DataFrame, mids: pl.DataFrame, cfg: PnLConfig | None = None) -> PnLResult:
    """Mark-to-mid PnL of ``orders`` (Orders columns) against ``mids`` (``symbol, ts_ms, mid``)."""
    cfg = cfg or PnLConfig()
    fills = _fills(orders, cfg)
    if fills.is_empty():
        return _empty_result(cfg)
    marks = mids.select("symbol", pl.col("ts_ms").cast(pl.Int64), pl.col("mid").cast(pl.Float64)).drop_nulls()
    marks = marks.filter(pl.col("mid").is_finite() & (pl.col("mid") > 0))
    symbols = sorted(fills["symbol"].unique().to_list())
    start = (int(fills["t"].min()) // SECOND_MS) * SECOND_MS  # type: ignore[arg-type]
    last_mark = marks.filter(pl.col("symbol").is_in(symbols))["ts_ms"].max()
    end = max(int(fills["t"].max()), int(last_mark) if last_mark is not None else 0)  # type: ignore[arg-type]
    end = (end // SECOND_MS) * SECOND_MS
    seconds = pl.DataFrame({"ts_ms": pl.int_ranges(start, end + SECOND_MS, SECOND_MS, eager=True).explode()})
    # State at the end of each second: everything with time <= ts_ms + 999.
    grid = (
        pl.DataFrame({"symbol": symbols})
        .join(seconds, how="cross")
        .with_columns((pl.col("ts_ms") + SECOND_MS - 1).alias("t_end"))
        .sort("t_end")
    )
    book = (
        fills.sort("t", "client_order_id")
        .with_columns(
            pl.col("signed").cum_sum().over("symbol").alias("position"),
            pl.col("cash").cum_sum().over("symbol").alias("cash_cum"),
            pl.col("fee").cum_sum().over("symbol").alias("fees_cum"),
            pl.col("px_fill").alias("last_fill_px"),
        )
        .select("symbol", pl.col("t").alias("t_end"), "position", "cash_cum", "fees_cum", "last_fill_px")
        .group_by("symbol", "t_end", maintain_order=True)
        .last()
        .sort("t_end")
    )
    marks_sorted = marks.rename({"ts_ms": "t_end"}).sort("t_end")
    per_symbol = (
        grid.join_asof(book, on="t_end", by="symbol", strategy="backward", check_sortedness=False)
        .join_asof(marks_sorted, on="t_end", by="symbol", strategy="backward", check_sortedness=False)
        .with_columns(
            pl.col("position").fill_null(0.0),
            pl.col("cash_cum").fill_null(0.0),
            pl.col("fees_cum").fill_null(0.0),
            pl.coalesce("mid", "last_fill_px").alias("mark"),
        )
        .with_columns(
            (pl.col("cash_cum") + pl.col("position") * pl.col("mark").fill_null(0.0)).alias("equity"),
            (pl.col("position").abs() * pl.col("mark").fill_null(0.0)).alias("exposure"),
        )
        .sort("symbol", "ts_ms")
    )
    curve = (
        per_symbol.group_by("ts_ms")
        .agg(pl.col("exposure").sum().alias("gross_exposure"), pl.col("fees_cum").sum().alias("fees"),
             pl.col("equity").sum())
        .sort("ts_ms")
    )
    capital = cfg.capital if cfg.capital is not None else float(curve["gross_exposure"].max() or 0.0)  # type: ignore[arg-type]
    figures = curve_figures(curve.select("ts_ms", "equity"), capital if capital > 0 else None,
                            cfg.min_sharpe_minutes)
    figures.update(
        n_fills=fills.height,
        fees=float(fills["fee"].sum()),
        turnover=float(fills["notional"].sum()),
        gross_pnl=figures["net_pnl"] + float(fills["fee"].sum()),
        fee_bps=cfg.fee_bps,
    )
    by_symbol: dict[str, dict[str, Any]] = {}
    for sym in symbols:
        one = per_symbol.filter(pl.col("symbol") == sym)
        sym_fills = fills.filter(pl.col("symbol") == sym)
        by_symbol[sym] = {
            "net_pnl": float(one["equity"][-1]),
            "fees": float(sym_fills["fee"].sum()),
            "n_fills": sym_fills.height,
            "final_position": float(one["position"][-1]),
        }
    return PnLResult(figures=figures, curve=curve, minutes=minute_returns(curve, figures["capital"]),
                     by_symbol=by_symbol)


def curve_figures(curve: pl.DataFrame, capital: float | None, min_minutes: int = 10) -> dict[str, Any]:
    """Net PnL, Sharpe and max drawdown of an equity curve (``ts_ms, equity``, sorted)."""
    if curve.is_empty():
        return {"net_pnl": 0.0, "sharpe": None, "sharpe_stderr": None, "max_drawdown": 0.0,
                "max_drawdown_frac": None, "capital": capital, "minutes": 0, "min_sharpe_minutes": min_minutes}
    equity = curve["equity"]
    peak = equity.cum_max().clip(lower_bound=0.0)
    max_dd = float((peak - equity).max())  # type: ignore[arg-type]
    minutes = minute_returns(curve, capital)
    return {
        "net_pnl": float(equity[-1]),
        "sharpe": (sr := sharpe(minutes["pnl"], min_minutes)),
        "sharpe_stderr": sharpe_stderr(sr, minutes.height),
        "max_drawdown": max_dd,
        "max_drawdown_frac": max_dd / capital if capital else None,
        "capital": capital,
        "minutes": minutes.height,
        "min_sharpe_minutes": min_minutes,
    }


def minute_returns(curve: pl.DataFrame, capital: float | None) -> pl.DataFrame:
    """Equity at the end of each minute, its change (``pnl``) and return on ``capital``."""
    out = (
        curve.select("ts_ms", "equity")
        .with_columns(((pl.col("ts_ms") // MINUTE_MS) * MINUTE_MS).alias("ts_ms"))
        .group_by("ts_ms", maintain_order=True)
        .last()
        .sort("ts_ms")
        .with_columns(pl.col("equity").diff().fill_null(pl.col("equity")).alias("pnl"))
    )
    return out.with_columns((pl.col("pnl") / capital if capital else pl.lit(None, pl.Float64)).alias("ret"))


def sharpe(minute_pnl: pl.Series, min_minutes: int = 10) -> float | None:
    """Annualised Sharpe of per-minute PnL (scale-free, so the same as on returns)."""
    if minute_pnl.len() < max(2, min_minutes):
        return None
    raw_std = minute_pnl.std(ddof=1)
    if raw_std is None:
        return None
    std = num(raw_std)
    if not math.isfinite(std) or std <= 1e-12 * max(1.0, abs(num(minute_pnl.abs().max()))):
        return None
    return num(minute_pnl.mean()) / std * math.sqrt(MINUTES_PER_YEAR)


def sharpe_stderr(annual_sharpe: float | None, n_minutes: int) -> float | None:
    """Standard error of the annualised Sharpe under iid per-minute returns (Lo 2002)."""
    if annual_sharpe is None or n_minutes < 2:
        return None
    per_minute = annual_sharpe / math.sqrt(MINUTES_PER_YEAR)
    return math.sqrt((1 + per_minute**2 / 2) / n_minutes) * math.sqrt(MINUTES_PER_YEAR)


def fine_curve(curve: pl.DataFrame, max_points: int = 1500) -> pl.DataFrame:
    """The 1-second equity curve thinned for a chart: the last equity of each bucket of
    ``ceil(seconds / max_points)`` seconds, dated at the bucket's end (``t_end_ms``)."""
    if curve.is_empty():
        return pl.DataFrame(schema={"t_end_ms": pl.Int64, "equity": pl.Float64})
    step = max(1, math.ceil(curve.height / max_points)) * SECOND_MS
    start = int(curve["ts_ms"][0])
    return (
        curve.select("ts_ms", "equity")
        .with_columns((start + (pl.col("ts_ms") - start) // step * step + step).alias("t_end_ms"))
        .group_by("t_end_ms", maintain_order=True)
        .last()
        .select("t_end_ms", "equity")
    )


def _fills(orders: pl.DataFrame, cfg: PnLConfig) -> pl.DataFrame:
    if orders.is_empty():
        return pl.DataFrame(schema={"symbol": pl.Utf8, "t": pl.Int64, "client_order_id": pl.Utf8})
    filled = orders.filter((pl.col("status") == "filled") & pl.col("px_fill").is_not_null())
    _check_fills(filled, cfg.time_col)
    sign = pl.when(pl.col("side") == "BUY").then(1.0).otherwise(-1.0)
    notional = pl.col("qty") * pl.col("px_fill")
    return filled.select(
        "symbol",
        "client_order_id",
        pl.col(cfg.time_col).cast(pl.Int64).alias("t"),
        "px_fill",
        (sign * pl.col("qty")).alias("signed"),
        notional.alias("notional"),
        (notional * cfg.fee_bps / 1e4).alias("fee"),
    ).with_columns((-pl.col("signed") * pl.col("px_fill") - pl.col("fee")).alias("cash"))


def _check_fills(filled: pl.DataFrame, time_col: str) -> None:
    """A fill that cannot be booked is an error that names the orders, never a silent skip."""
    bad = filled.filter(
        pl.col(time_col).is_null()
        | ~pl.col("side").is_in(["BUY", "SELL"])
        | pl.col("qty").is_null() | ~(pl.col("qty") > 0) | ~pl.col("qty").is_finite()
        | ~(pl.col("px_fill") > 0) | ~pl.col("px_fill").is_finite()
    )
    if bad.height:
        ids = bad["client_order_id"].head(5).to_list() if "client_order_id" in bad.columns else []
        raise ValueError(f"{bad.height} filled order(s) cannot be booked (need {time_col} set, side BUY|SELL, "
                         f"qty > 0 and px_fill > 0, finite); first client_order_id(s): {ids}")


def _empty_result(cfg: PnLConfig) -> PnLResult:
    figures = curve_figures(pl.DataFrame(schema={"ts_ms": pl.Int64, "equity": pl.Float64}), cfg.capital)
    figures.update(n_fills=0, fees=0.0, turnover=0.0, gross_pnl=0.0, fee_bps=cfg.fee_bps)
    empty_curve = pl.DataFrame(schema={"ts_ms": pl.Int64, "gross_exposure": pl.Float64, "fees": pl.Float64,
                                       "equity": pl.Float64})
    return PnLResult(figures=figures, curve=empty_curve, minutes=minute_returns(empty_curve, cfg.capital))
