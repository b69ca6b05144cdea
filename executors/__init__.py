"""Executors: one contract (executors.contract) for a backtest, a paper broker and a live exchange
client. Plain Python, no dagster.

    from executors import BacktestExecutor, MockExecutor, ExchangeExecutor, ShadowExecutor

The executor classes load on first use (the exchange client brings httpx, the simulators numpy and
polars), so importing the contract stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from executors.contract import (
    CONTRACT_ID,
    AmendResult,
    CancelResult,
    ExecResult,
    IExecutor,
    OrderCtx,
    client_order_id,
)

if TYPE_CHECKING:
    from executors.backtest import BacktestExecutor
    from executors.exchange import ExchangeExecutor
    from executors.gated import GatedExecutor
    from executors.mock import MockExecutor
    from executors.shadow import ShadowExecutor

_LAZY = {"BacktestExecutor": "executors.backtest", "MockExecutor": "executors.mock",
         "ExchangeExecutor": "executors.exchange", "ShadowExecutor": "executors.shadow",
         "GatedExecutor": "executors.gated"}

__all__ = ["CONTRACT_ID", "AmendResult", "BacktestExecutor", "CancelResult", "ExchangeExecutor", "ExecResult",
           "GatedExecutor", "IExecutor", "MockExecutor", "OrderCtx", "ShadowExecutor", "client_order_id"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'executors' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
