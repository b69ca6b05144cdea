"""Which executor the mock_orders asset routes signals through."""

from __future__ import annotations

from typing import Literal

import dagster as dg


class SignalExecutor(dg.ConfigurableResource):
    """`backtest` (default: simulated fills against the recorded book) or `mock` (the soak's paper broker)."""

    kind: Literal["backtest", "mock"] = "backtest"
