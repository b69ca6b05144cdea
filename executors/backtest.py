"""BacktestExecutor: fills against recorded 5-level book snapshots, on event time only.

An order decided at ``ctx.ts_ms`` is sent then and reaches the book after a latency drawn from a
generator seeded by (seed, client_order_id) — so each order's draw does not depend on which other
orders ran, and two runs over the same inputs give bitwise-identical results. It is matched
against the last snapshot at or before its arrival:

* ``fixed_bps``: fills at the aligned intent price moved ``fixed_bps`` against us;
* ``taker_book``: walks the opposite side level by level (VWAP); quantity beyond level 5 is
  charged the level-5 price plus ``beyond_book_bps`` (the book shows no more depth);
* ``maker_queue``: rests at our own touch; filled when the opposite side crosses our price, or the
  best level is traded through, or the quantity at our level has fallen by the queue ahead of us
  (``queue_ahead_frac`` of the displayed quantity when we arrived) plus our own quantity; still
  resting after ``maker_horizon_ms`` -> ``accepted`` (unfilled).
"""

from __future__ import annotations

import random
from typing import Literal

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field, model_validator

from executors.base import SimExecutorBase, rejected
from executors.book import BookIndex, SymbolBook
from executors.contract import ExecResult, OrderCtx
from executors.metrics import ExecutorMetrics
from executors.rounding import align_order, slippage_bps


class BacktestConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seed: int = Field(7, ge=0)
    slippage: Literal["fixed_bps", "taker_book", "maker_queue"] = "taker_book"
    fixed_bps: float = Field(1.0, ge=0, le=1000)
    latency_ms_min: int = Field(5, ge=0, le=60_000)
    latency_ms_max: int = Field(25, ge=0, le=60_000)
    beyond_book_bps: float = Field(5.0, ge=0, le=1000)
    queue_ahead_frac: float = Field(1.0, ge=0, le=1)
    maker_horizon_ms: int = Field(60_000, gt=0, le=86_400_000)
    max_book_age_ms: int = Field(10_000, gt=0, description="older as-of snapshot -> rejected stale_book")

    @model_validator(mode="after")
    def _latency_range(self) -> BacktestConfig:
        if self.latency_ms_max < self.latency_ms_min:
            raise ValueError(f"latency_ms_max ({self.latency_ms_max}) must be >= latency_ms_min ({self.latency_ms_min})")
        return self


class BacktestExecutor(SimExecutorBase):
    name = "backtest"

    def __init__(self, book: pl.DataFrame | BookIndex | None, cfg: BacktestConfig | None = None,
                 metrics: ExecutorMetrics | None = None) -> None:
        super().__init__(metrics)
        self.cfg = cfg or BacktestConfig()
        self.book = book if isinstance(book, BookIndex) else BookIndex(book)

    def _latency(self, coid: str) -> int:
        c = self.cfg
        return random.Random(f"{c.seed}|{coid}").randint(c.latency_ms_min, c.latency_ms_max)

    def _execute(self, ctx: OrderCtx, coid: str) -> ExecResult:
        c = self.cfg
        sb = self.book.get(ctx.symbol)
        lat = self._latency(coid)
        sent, ack = ctx.ts_ms, ctx.ts_ms + lat
        if sb is None or (i := sb.asof(ack)) < 0:
            return rejected(ctx, coid, "no_book", sent_ts_ms=sent)
        if ack - int(sb.ts[i]) > c.max_book_age_ms:
            return rejected(ctx, coid, "stale_book", sent_ts_ms=sent)
        maker = c.slippage == "maker_queue"
        target = ctx.px_intent
        if maker:
            target = float(sb.bid_px[i, 0] if ctx.side == "BUY" else sb.ask_px[i, 0])
            if not target > 0:  # NaN or empty own side: nowhere to rest
                return rejected(ctx, coid, "empty_book", sent_ts_ms=sent)
        al = align_order(ctx.side, target, ctx.qty, ctx.tick_size, ctx.step_size, aggressive=not maker)
        if al.qty <= 0:
            return rejected(ctx, coid, "qty_below_step", sent_ts_ms=sent, rounding_applied=True)
        common = dict(client_order_id=coid, symbol=ctx.symbol, side=ctx.side, qty_sent=al.qty, px_sent=al.px,
                      rounding_applied=al.rounding_applied, rounding_diff=al.rounding_diff, sent_ts_ms=sent)
        fill: float | None
        if c.slippage == "fixed_bps":
            sign = 1.0 if ctx.side == "BUY" else -1.0
            fill = al.px * (1.0 + sign * c.fixed_bps / 1e4)
        elif c.slippage == "taker_book":
            fill = _walk(sb, i, ctx.side, al.qty, c.beyond_book_bps)
            if fill is None:
                return rejected(ctx, coid, "empty_book", **common)
        else:
            j = _maker_fill_index(sb, i, ctx.side, al.px, al.qty, c.queue_ahead_frac, ack + c.maker_horizon_ms)
            if j < 0:
                return ExecResult(status="accepted", reject_reason="unfilled_at_horizon", ack_ts_ms=ack,
                                  latency_ms=float(lat), slippage_bps=slippage_bps(ctx.side, ctx.px_intent, al.px),
                                  **common)
            ack = max(ack, int(sb.ts[j]))
            fill = al.px
        return ExecResult(status="filled", px_fill=fill, ack_ts_ms=ack, latency_ms=float(lat),
                          slippage_bps=slippage_bps(ctx.side, ctx.px_intent, fill), **common)


def _walk(sb: SymbolBook, i: int, side: str, qty: float, beyond_bps: float) -> float | None:
    pxs = sb.ask_px[i] if side == "BUY" else sb.bid_px[i]
    qtys = sb.ask_qty[i] if side == "BUY" else sb.bid_qty[i]
    left, cost, last = qty, 0.0, None
    for p, q in zip(pxs.tolist(), qtys.tolist(), strict=True):
        if not (p > 0 and q > 0):  # NaN or empty level
            continue
        take = min(left, q)
        cost += take * p
        left -= take
        last = p
        if left <= 1e-15:
            break
    if last is None:
        return None
    if left > 1e-15:
        sign = 1.0 if side == "BUY" else -1.0
        cost += left * last * (1.0 + sign * beyond_bps / 1e4)
    return cost / qty


def _maker_fill_index(sb: SymbolBook, i: int, side: str, px: float, qty: float, ahead_frac: float,
                      until_ms: int) -> int:
    """First snapshot index (>= i) at which a resting order at ``px`` is filled, -1 if none by until_ms."""
    end = int(np.searchsorted(sb.ts, until_ms, side="right"))
    if end <= i:
        return -1
    if side == "BUY":
        own_px, own_q, opp = sb.bid_px[i:end], sb.bid_qty[i:end], sb.ask_px[i:end, 0]
        crossed = (opp <= px) | (own_px[:, 0] < px)
    else:
        own_px, own_q, opp = sb.ask_px[i:end], sb.ask_qty[i:end], sb.bid_px[i:end, 0]
        crossed = (opp >= px) | (own_px[:, 0] > px)
    at_level = np.where(own_px == px, own_q, 0.0).sum(axis=1)  # displayed qty at our price
    at_touch = own_px[:, 0] == px
    dec = np.zeros_like(at_level)
    dec[1:] = np.where(at_touch[1:] & at_touch[:-1], np.maximum(at_level[:-1] - at_level[1:], 0.0), 0.0)
    need = ahead_frac * at_level[0] + qty
    hit = np.flatnonzero(crossed | (np.cumsum(dec) >= need))
    return i + int(hit[0]) if hit.size else -1
