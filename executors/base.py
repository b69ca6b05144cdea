"""Shared behaviour of the simulated executors: idempotent submit, grid alignment, metrics, and
the resting-order book that cancel/amend work on."""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod

from executors.contract import AmendResult, CancelResult, ExecResult, OrderCtx, client_order_id
from executors.metrics import ExecutorMetrics, SampledLogger
from executors.rounding import align

log = logging.getLogger("executors")


class SimExecutorBase(ABC):
    name = "sim"

    def __init__(self, metrics: ExecutorMetrics | None = None) -> None:
        self.metrics = metrics or ExecutorMetrics(self.name)
        self.slog = SampledLogger(log)
        self.orders: dict[str, ExecResult] = {}
        self._ctx: dict[str, OrderCtx] = {}
        self.closed = False

    def submit(self, ctx: OrderCtx) -> ExecResult:
        if self.closed:
            raise RuntimeError(f"{self.name} executor is closed")
        coid = client_order_id(ctx)
        prev = self.orders.get(coid)
        if prev is not None:
            return prev.model_copy(update={"duplicate": True})  # same intent twice: one order
        res = self._execute(ctx, coid)
        self.orders[coid] = res
        self._ctx[coid] = ctx
        self.metrics.observe(res)
        self.slog.log(res)
        return res

    @abstractmethod
    def _execute(self, ctx: OrderCtx, coid: str) -> ExecResult: ...

    def cancel(self, symbol: str, client_order_id: str) -> CancelResult:
        res = self.orders.get(client_order_id)
        if res is None or res.symbol != symbol:
            return CancelResult(client_order_id=client_order_id, status="not_found", reason="unknown_order")
        if res.status != "accepted":
            return CancelResult(client_order_id=client_order_id, status="rejected", reason=f"order_{res.status}")
        self.orders[client_order_id] = res.model_copy(update={"status": "rejected", "reject_reason": "canceled"})
        return CancelResult(client_order_id=client_order_id, status="canceled")

    def amend(self, symbol: str, client_order_id: str, px: float | None = None,
              qty: float | None = None) -> AmendResult:
        res = self.orders.get(client_order_id)
        if res is None or res.symbol != symbol:
            return AmendResult(client_order_id=client_order_id, status="not_found", reason="unknown_order")
        if res.status != "accepted":
            return AmendResult(client_order_id=client_order_id, status="rejected", reason=f"order_{res.status}")
        ctx = self._ctx[client_order_id]
        new_px = align(px, ctx.tick_size, "nearest") if px is not None else res.px_sent
        new_qty = align(qty, ctx.step_size, "floor") if qty is not None else res.qty_sent
        if not new_qty or new_qty <= 0:
            return AmendResult(client_order_id=client_order_id, status="rejected", reason="qty_below_step")
        self.orders[client_order_id] = res.model_copy(update={"px_sent": new_px, "qty_sent": new_qty})
        return AmendResult(client_order_id=client_order_id, status="amended", px_sent=new_px, qty_sent=new_qty)

    def flush(self) -> None:
        return None

    def close(self) -> None:
        self.closed = True


def rejected(ctx: OrderCtx, coid: str, reason: str, **kw: object) -> ExecResult:
    return ExecResult(status="rejected", reject_reason=reason, client_order_id=coid, symbol=ctx.symbol,
                      side=ctx.side, **kw)
