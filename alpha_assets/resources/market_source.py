"""Where a partition's market data comes from: simulator, real recordings, or the landing zone."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import dagster as dg
import polars as pl
from pydantic import Field

from alpha_assets.settings import settings

SourceKind = Literal["auto", "simulator", "replay", "landing"]


class MarketSource(dg.ConfigurableResource):
    """`auto` prefers the landing zone, then a real recording, then the seeded simulator."""

    kind: SourceKind = Field(default_factory=lambda: settings().market.source)
    seed: int = Field(default_factory=lambda: settings().market.seed, ge=0, le=2**31 - 1)
    # A lighter simulated day (tests, demos); None keeps the symbol's realistic rate.
    sim_trades_per_day: float | None = Field(None, gt=0, le=50_000_000)

    def resolve(self, date: str, symbol: str, data_root: Path) -> str:
        """The concrete source kind for this partition."""
        if self.kind != "auto":
            return self.kind
        from alpha_assets.market.landing import landing_partitions
        from alpha_assets.market.replay import has_replay

        if (date, symbol) in set(landing_partitions(data_root)):
            return "landing"
        if has_replay(date, symbol):
            return "replay"
        return "simulator"

    def load(self, date: str, symbol: str, data_root: Path) -> tuple[str, dict[str, pl.DataFrame]]:
        kind = self.resolve(date, symbol, data_root)
        if kind == "simulator":
            from alpha_assets.market.simulator import SimulatorConfig, simulate_day

            return kind, simulate_day(symbol, date, seed=self.seed, cache=False,  # a day is read once per step
                                      cfg=SimulatorConfig(trades_per_day=self.sim_trades_per_day))
        if kind == "replay":
            from alpha_assets.market.replay import load_replay

            return kind, load_replay(date, symbol)
        from alpha_assets.market.landing import load_landing

        return kind, load_landing(data_root, date, symbol)
