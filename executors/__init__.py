"""Executors: one contract (executors.contract) for a backtest, a paper broker and a live exchange
client. Plain Python, no dagster. Heavy modules are imported where used, not here."""

from executors.contract import (
    CONTRACT_ID,
    AmendResult,
    CancelResult,
    ExecResult,
    IExecutor,
    OrderCtx,
    client_order_id,
)

__all__ = ["CONTRACT_ID", "AmendResult", "CancelResult", "ExecResult", "IExecutor", "OrderCtx", "client_order_id"]
