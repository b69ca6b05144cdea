"""MockExecutor: the paper broker. Every strong signal becomes an order; ordinary ones are sampled
1 in ``sample_every`` by a hash of (symbol, signal_seq) — the same rows on every run. A routed order
fills in full at the opposite touch of the last snapshot at or before ``ts_ms + latency_ms``."""

from __future__ import annotations

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from executors.base import SimExecutorBase, rejected
from executors.book import BookIndex
from executors.contract import ExecResult, OrderCtx
from executors.metrics import ExecutorMetrics, stable_bucket
from executors.rounding import align_order, slippage_bps


class MockConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    latency_ms: int = Field(50, ge=0, le=60_000)
    sample_every: int = Field(5, ge=1, le=1_000_000, description="ordinary signals routed: 1 in N")
    max_book_age_ms: int = Field(10_000, gt=0)


class MockExecutor(SimExecutorBase):
    name = "mock"

    def __init__(self, book: pl.DataFrame | BookIndex | None, cfg: MockConfig | None = None,
                 metrics: ExecutorMetrics | None = None) -> None:
        super().__init__(metrics)
        self.cfg = cfg or MockConfig()
        self.book = book if isinstance(book, BookIndex) else BookIndex(book)

    def routed(self, ctx: OrderCtx) -> bool:
        return ctx.strong or stable_bucket(f"paper|{ctx.symbol}|{ctx.signal_seq}", self.cfg.sample_every) == 0

    def _execute(self, ctx: OrderCtx, coid: str) -> ExecResult:
        if not self.routed(ctx):
            return rejected(ctx, coid, "paper_sampled_out")
        sent = ctx.ts_ms
        ack = sent + self.cfg.latency_ms
        sb = self.book.get(ctx.symbol)
        if sb is None or (i := sb.asof(ack)) < 0:
            return rejected(ctx, coid, "no_book", sent_ts_ms=sent)
        if ack - int(sb.ts[i]) > self.cfg.max_book_age_ms:
            return rejected(ctx, coid, "stale_book", sent_ts_ms=sent)
        al = align_order(ctx.side, ctx.px_intent, ctx.qty, ctx.tick_size, ctx.step_size, aggressive=True)
        if al.qty <= 0:
            return rejected(ctx, coid, "qty_below_step", sent_ts_ms=sent, rounding_applied=True)
        touch = float(sb.ask_px[i, 0] if ctx.side == "BUY" else sb.bid_px[i, 0])
        if not touch > 0:
            return rejected(ctx, coid, "empty_book", sent_ts_ms=sent)
        return ExecResult(status="filled", client_order_id=coid, symbol=ctx.symbol, side=ctx.side,
                          qty_sent=al.qty, px_sent=al.px, px_fill=touch, rounding_applied=al.rounding_applied,
                          rounding_diff=al.rounding_diff, slippage_bps=slippage_bps(ctx.side, ctx.px_intent, touch),
                          sent_ts_ms=sent, ack_ts_ms=ack, latency_ms=float(self.cfg.latency_ms))
