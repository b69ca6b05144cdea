"""GatedExecutor: pre-trade and risk gates in front of any executor, so a live loop gets exactly
the gates the batch path applies. A denied order never reaches the inner executor (so it is never
sent, let alone retried); fills are booked into the risk manager after the inner answer."""

from __future__ import annotations

from collections.abc import Callable

from executors.base import rejected
from executors.contract import AmendResult, CancelResult, ExecResult, IExecutor, OrderCtx, client_order_id
from executors.metrics import ExecutorMetrics
from executors.pretrade import PreTrade, PreTradeConfig
from executors.risk import RiskConfig, RiskManager


class GatedExecutor:
    def __init__(self, inner: IExecutor, pretrade: PreTradeConfig | None = None, risk: RiskConfig | None = None,
                 metrics: ExecutorMetrics | None = None,
                 move_bps: Callable[[OrderCtx], float | None] | None = None) -> None:
        self.inner = inner
        self.name = f"gated_{inner.name}"
        self.metrics = metrics or getattr(inner, "metrics", None) or ExecutorMetrics(self.name)
        self.pretrade = PreTrade(pretrade, self.metrics)
        self.risk = RiskManager(risk, self.metrics)
        self.move_bps = move_bps  # market move over the risk window, when the caller measures it
        self._denied: dict[str, ExecResult] = {}  # client_order_id -> the gates' answer
        self._passed: set[str] = set()  # client_order_ids the gates let through

    def submit(self, ctx: OrderCtx) -> ExecResult:
        coid = client_order_id(ctx)
        denied = self._denied.get(coid)
        if denied is not None:
            return denied.model_copy(update={"duplicate": True})
        if coid in self._passed:
            # a replay of an intent that passed the gates: not gated again (a replay must neither
            # flip a filled order to a denial nor count a throttle twice); the inner executor
            # answers from its own state (cancels included) or reconciles an unanswered send
            res = self.inner.submit(ctx)
            if not res.duplicate:
                self.risk.on_fill(ctx, res)
            return res
        d = self.pretrade.check(ctx)
        if d.allowed:
            d = self.risk.check(ctx, self.move_bps(ctx) if self.move_bps else None)
        if not d.allowed:
            res = rejected(ctx, coid, d.reason)
            self._denied[coid] = res
            self.metrics.observe(res)
            return res
        self._passed.add(coid)
        res = self.inner.submit(ctx)
        if not res.duplicate:
            self.risk.on_fill(ctx, res)
        return res

    def cancel(self, symbol: str, client_order_id: str) -> CancelResult:
        return self.inner.cancel(symbol, client_order_id)

    def amend(self, symbol: str, client_order_id: str, px: float | None = None,
              qty: float | None = None) -> AmendResult:
        return self.inner.amend(symbol, client_order_id, px, qty)

    def flush(self) -> None:
        self.inner.flush()

    def close(self) -> None:
        self.inner.close()
