"""Batch routing of a Signals frame through pre-trade, risk and an executor: what the
``mock_orders`` asset calls. Output: the Orders frame of docs/interfaces.md (+ signal_type, regime).

Non-neutral signals with a score, in event-time order ``(ts_ms, symbol, seq)``, become OrderCtx:
BUY for buy/strong_buy, SELL for sell/strong_sell; ``px_intent`` is the touch we would take (ask
for a BUY, bid for a SELL) of the last book snapshot at or before ``ts_ms``; quantity from
:class:`SizingConfig`. Pre-trade and risk gates decide, then the executor fills against the book.
Signals without a book are rejected ``no_book`` (px_intent falls back to the trade price).
Every routed row gives exactly one Orders row, including denials and throttles.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from alpha_assets.signal_contract import ORDER_SIDE, SIGNAL_TYPES
from executors.backtest import BacktestConfig, BacktestExecutor
from executors.base import rejected
from executors.book import BookIndex
from executors.contract import ExecResult, IExecutor, OrderCtx, client_order_id
from executors.gated import GatedExecutor
from executors.metrics import ExecutorMetrics
from executors.mock import MockConfig, MockExecutor
from executors.outbox import Outbox
from executors.pretrade import PreTradeConfig
from executors.risk import RiskConfig

log = logging.getLogger("executors.batch")

# PnL lives in alpha_assets/reports/pnl.py (one place for it).
__all__ = ["ORDERS_SCHEMA", "RouteConfig", "Router", "SizingConfig", "make_executor", "route_signals"]

SIDES = ORDER_SIDE
KNOWN_TYPES = frozenset(SIGNAL_TYPES)

ORDERS_SCHEMA: dict[str, pl.DataType] = {
    "run_id": pl.Utf8(), "symbol": pl.Utf8(), "signal_seq": pl.Int64(), "ts_ms": pl.Int64(),
    "client_order_id": pl.Utf8(), "side": pl.Utf8(), "qty": pl.Float64(), "px_intent": pl.Float64(),
    "px_sent": pl.Float64(), "px_fill": pl.Float64(), "rounding_applied": pl.Boolean(),
    "rounding_diff": pl.Float64(), "slippage_bps": pl.Float64(), "status": pl.Utf8(), "reason": pl.Utf8(),
    "exchange_order_id": pl.Utf8(), "sent_ts_ms": pl.Int64(), "ack_ts_ms": pl.Int64(),
    "latency_ms": pl.Float64(), "regime": pl.Utf8(), "signal_type": pl.Utf8(),
}

DEFAULT_TICKS = {"BTCUSDT": 0.1, "ETHUSDT": 0.01, "BNBUSDT": 0.01, "SOLUSDT": 0.01, "XRPUSDT": 0.0001}
DEFAULT_STEPS = {"BTCUSDT": 0.001, "ETHUSDT": 0.001, "BNBUSDT": 0.01, "SOLUSDT": 1.0, "XRPUSDT": 0.1}


class SizingConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    notional_usd: float = Field(1_000.0, gt=0, le=1e9, description="quote notional of an ordinary signal")
    strong_mult: float = Field(2.0, gt=0, le=100, description="strong signals trade this many times more")
    qty_by_symbol: dict[str, float] = Field(default_factory=dict, description="fixed base qty per symbol")
    tick_size: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_TICKS))
    step_size: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_STEPS))
    default_tick: float = Field(0.01, gt=0)
    default_step: float = Field(0.001, gt=0)

    @field_validator("qty_by_symbol", "tick_size", "step_size")
    @classmethod
    def _positive(cls, v: dict[str, float]) -> dict[str, float]:
        for k, x in v.items():
            if not x > 0:
                raise ValueError(f"value for {k} must be > 0, got {x}")
        return v

    def qty(self, symbol: str, px: float, strong: bool) -> float:
        base = self.qty_by_symbol.get(symbol)
        q = base if base is not None else self.notional_usd / px
        return q * (self.strong_mult if strong else 1.0)


class RouteConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sizing: SizingConfig = Field(default_factory=SizingConfig)
    pretrade: PreTradeConfig = Field(default_factory=PreTradeConfig)
    risk: RiskConfig = Field(default_factory=RiskConfig)
    backtest: BacktestConfig = Field(default_factory=BacktestConfig)
    mock: MockConfig = Field(default_factory=MockConfig)
    costs_bps: float = Field(0.0, ge=0, le=1000)
    scenario: str = "default"


def make_executor(kind: str, book: BookIndex, cfg: RouteConfig, metrics: ExecutorMetrics | None = None) -> IExecutor:
    if kind == "backtest":
        return BacktestExecutor(book, cfg.backtest, metrics)
    if kind == "mock":
        return MockExecutor(book, cfg.mock, metrics)
    raise ValueError(f"executor: {kind!r} is not one of backtest|mock (pass an IExecutor instance for others)")


def _market_view(signals: pl.DataFrame, book: pl.DataFrame, window_ms: int) -> pl.DataFrame:
    """Per signal: the as-of touch and the mid's range over the risk window (for the vol breaker)."""
    keys = signals.select(pl.col("symbol"), pl.col("ts_ms"), pl.col("seq")).with_row_index("_i")
    if book.height == 0:
        return keys.with_columns(*(pl.lit(None, pl.Float64).alias(c) for c in ("bid", "ask", "mid_hi", "mid_lo")),
                                 pl.lit(None, pl.Int64).alias("book_ts"))
    b = (book.select("symbol", "event_time_ms", pl.col("bid_px_1").alias("bid"), pl.col("ask_px_1").alias("ask"))
         .sort("symbol", "event_time_ms")
         .with_columns(((pl.col("bid") + pl.col("ask")) / 2).alias("mid")))
    b = b.with_columns(
        pl.col("mid").rolling_max_by("event_time_ms", window_size=f"{window_ms}i").over("symbol").alias("mid_hi"),
        pl.col("mid").rolling_min_by("event_time_ms", window_size=f"{window_ms}i").over("symbol").alias("mid_lo"),
        pl.col("event_time_ms").alias("book_ts"),
    )
    out = keys.sort("symbol", "ts_ms").join_asof(
        b.drop("mid"), left_on="ts_ms", right_on="event_time_ms", by="symbol", strategy="backward",
        check_sortedness=False)
    return out.sort("_i")


def route_signals(signals: pl.DataFrame, book: pl.DataFrame, executor: str | IExecutor = "backtest",
                  cfg: RouteConfig | None = None, run_id: str = "", *, outbox: Outbox | None = None,
                  metrics: ExecutorMetrics | None = None) -> pl.DataFrame:
    """One batch: a fresh :class:`Router` over all of ``signals``. Callers that route a stream in
    pieces (the live broker) keep one Router instead, so gates and idempotency carry over."""
    return Router(executor, cfg, run_id, outbox=outbox, metrics=metrics).route(signals, book)


class Router:
    """Stateful routing: one executor and one set of pre-trade/risk gates across ``route`` calls.

    Kill switch, daily loss, consecutive-loss pauses and the executor's idempotency memory live here,
    so routing a day minute by minute gives the same Orders as routing it at once (given each
    call's ``book`` covers the risk window before its first signal)."""

    def __init__(self, executor: str | IExecutor = "backtest", cfg: RouteConfig | None = None, run_id: str = "",
                 *, outbox: Outbox | None = None, metrics: ExecutorMetrics | None = None) -> None:
        self.cfg = cfg or RouteConfig()
        self.run_id = run_id
        self.outbox = outbox
        self.metrics = metrics or getattr(executor, "metrics", None) or ExecutorMetrics(
            executor if isinstance(executor, str) else getattr(executor, "name", "executor"))
        # an executor built here reads the book of each call; a caller's instance keeps its own
        self._owns_book = isinstance(executor, str)
        self.ex = make_executor(executor, BookIndex(None), self.cfg, self.metrics) if isinstance(executor, str) \
            else executor
        self._moves: dict[tuple[str, int], float] = {}
        self.gated = GatedExecutor(self.ex, self.cfg.pretrade, self.cfg.risk, self.metrics,
                                   move_bps=lambda c: self._moves.pop((c.symbol, c.signal_seq), None))

    def route(self, signals: pl.DataFrame, book: pl.DataFrame) -> pl.DataFrame:
        need = ("symbol", "seq", "ts_ms", "signal_type")
        missing = [c for c in need if c not in signals.columns]
        if missing:
            raise ValueError(f"signals frame lacks columns {missing}")
        sig = signals
        unknown = sig.filter(~pl.col("signal_type").is_in(list(KNOWN_TYPES)) & pl.col("signal_type").is_not_null())
        if unknown.height:
            log.warning("route_signals: %d rows with unknown signal_type skipped (e.g. %r)",
                        unknown.height, unknown["signal_type"][0])
        sig = sig.filter(pl.col("signal_type").is_in(list(SIDES)))
        if "score" in sig.columns:
            nulls = sig.filter(pl.col("score").is_null()).height
            if nulls:
                log.warning("route_signals: %d non-neutral rows with null score skipped", nulls)
            sig = sig.filter(pl.col("score").is_not_null())
        sig = sig.sort("ts_ms", "symbol", "seq")
        if sig.height == 0:
            return pl.DataFrame(schema=ORDERS_SCHEMA)

        if self._owns_book:
            self.ex.book = BookIndex(book)  # type: ignore[attr-defined]
        view = _market_view(sig, book, self.cfg.risk.vol_window_ms)
        views = list(zip(*(view[c].to_list() for c in ("bid", "ask", "mid_hi", "mid_lo", "book_ts")), strict=True))
        rows = self.route_rows(sig.to_dicts(), views)
        return pl.DataFrame(rows, schema=ORDERS_SCHEMA, orient="row") if rows else pl.DataFrame(schema=ORDERS_SCHEMA)

    def route_rows(self, signals: list[dict[str, Any]],
                   views: list[tuple[float | None, float | None, float | None, float | None, int | None]]
                   ) -> list[dict[str, Any]]:
        """The per-signal part of ``route`` on rows already filtered and ordered as ``route`` does
        (non-neutral, with a score, by ts_ms/symbol/seq), each with its market view (bid, ask, the
        mid's high and low over the risk window, the book row's time): Orders rows as dicts. The
        live broker calls it with views from the book it follows, without a frame on the way."""
        cfg, metrics, outbox, ex, gated = self.cfg, self.metrics, self.outbox, self.ex, self.gated
        moves = self._moves
        run_id = self.run_id
        cols = {n: [r.get(n, d) for r in signals] for n, d in (
            ("consistency", 1.0), ("guard_reason", ""), ("regime", "unknown"), ("warmup", False), ("price", None))}
        run_ids = [r.get("run_id") or run_id for r in signals]
        rows: list[dict[str, Any]] = []
        for k, (r, (bid, ask, hi, lo, bts)) in enumerate(zip(signals, views, strict=True)):
            sym, seq, ts, st = r["symbol"], r["seq"], r["ts_ms"], r["signal_type"]
            side = SIDES[st]
            touch = ask if side == "BUY" else bid
            has_book = touch is not None and touch > 0
            px = touch if has_book else cols["price"][k]
            rid = run_ids[k] or run_id
            regime = cols["regime"][k] or "unknown"
            if px is None or not px > 0:
                rows.append(_row_no_ctx(rid, sym, seq, ts, side, regime, st, "no_book_no_price"))
                continue
            cons = cols["consistency"][k]
            try:
                ctx = OrderCtx(
                    ts_ms=ts, event_ts_ms=bts if bts is not None else ts, symbol=sym, side=side,
                    qty=cfg.sizing.qty(sym, px, st.startswith("strong")), px_intent=px, regime=regime,
                    scenario=cfg.scenario, tick_size=cfg.sizing.tick_size.get(sym, cfg.sizing.default_tick),
                    step_size=cfg.sizing.step_size.get(sym, cfg.sizing.default_step),
                    guard_reason=cols["guard_reason"][k] or "", warmup=bool(cols["warmup"][k]),
                    consistency=min(1.0, max(0.0, cons)) if cons is not None and cons == cons else 0.0,
                    costs_bps=cfg.costs_bps, signal_seq=seq, signal_type=st,
                )
            except ValidationError as e:
                # a malformed signal row becomes a rejected Orders row naming the field, never a crash
                fields = ",".join(str(err["loc"][0]) for err in e.errors())
                log.warning("route_signals: bad signal row %s/%s: %s", sym, seq, fields)
                rows.append(_row_no_ctx(rid, sym, seq, ts, side, regime, st, f"bad_signal:{fields}"))
                metrics.submit_total.labels(result="rejected", reason="bad_signal").inc()
                continue
            coid = client_order_id(ctx)
            if not has_book:
                res = rejected(ctx, coid, "no_book")
                metrics.observe(res)
            else:
                if hi is not None and lo is not None and lo > 0:
                    moves[(sym, seq)] = abs(math.log(hi / lo)) * 1e4
                try:
                    res = gated.submit(ctx)
                except Exception as e:  # one broken order must not lose the batch
                    log.exception("route_signals: executor %s failed on %s", getattr(ex, "name", "?"), coid)
                    res = rejected(ctx, coid, f"executor_error:{type(e).__name__}")
                    metrics.observe(res)
            if outbox is not None:
                outbox.record(ctx, res, rid)
            rows.append(_row(rid, ctx, res))
        if outbox is not None:
            outbox.flush()
        ex.flush()
        return rows


def _row(run_id: str, ctx: OrderCtx, r: ExecResult) -> dict[str, Any]:
    return {
        "run_id": run_id, "symbol": ctx.symbol, "signal_seq": ctx.signal_seq, "ts_ms": ctx.ts_ms,
        "client_order_id": r.client_order_id, "side": ctx.side, "qty": r.qty_sent if r.qty_sent else ctx.qty,
        "px_intent": ctx.px_intent, "px_sent": r.px_sent, "px_fill": r.px_fill,
        "rounding_applied": r.rounding_applied, "rounding_diff": r.rounding_diff, "slippage_bps": r.slippage_bps,
        "status": r.status, "reason": r.reject_reason, "exchange_order_id": r.exchange_order_id,
        "sent_ts_ms": r.sent_ts_ms, "ack_ts_ms": r.ack_ts_ms, "latency_ms": r.latency_ms,
        "regime": ctx.regime, "signal_type": ctx.signal_type,
    }


def _row_no_ctx(run_id: str, sym: str, seq: int, ts: int, side: str, regime: str, st: str,
                reason: str) -> dict[str, Any]:
    return {
        "run_id": run_id, "symbol": sym, "signal_seq": seq, "ts_ms": ts, "client_order_id": f"none-{sym}-{seq}",
        "side": side, "qty": None, "px_intent": None, "px_sent": None, "px_fill": None, "rounding_applied": False,
        "rounding_diff": 0.0, "slippage_bps": None, "status": "rejected", "reason": reason,
        "exchange_order_id": "", "sent_ts_ms": None, "ack_ts_ms": None, "latency_ms": None,
        "regime": regime, "signal_type": st,
    }
