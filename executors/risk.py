"""Risk gates, all on event time: kill switch, daily loss ratio, consecutive losses per strategy,
abnormal-volatility circuit breaker.

* Kill switch: ``trip(reason, until_ms)``; active while ``ts_ms < until_ms`` (None = until reset).
* Daily loss ratio (per UTC day): ``-realised_net_pnl / gross_filled_notional``; at or above
  ``max_daily_loss_ratio`` (once ``min_gross_notional`` has traded) new orders are denied for the
  rest of that day. Realised PnL is a simple average-cost book per symbol with fees: enough for a
  gate; reporting PnL lives in alpha_assets.reports.pnl.
* Consecutive losses: per ``OrderCtx.scenario``; after ``max_consecutive_losses`` losing closes the
  scenario is paused for ``loss_pause_ms``, then its count starts again.
* Volatility breaker: per symbol, the move of observed prices over ``vol_window_ms`` in bps is
  compared with the symbol's threshold times the UTC hour-of-day multiplier; a breach denies and
  trips the kill switch for ``vol_kill_ms``.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from executors.contract import ExecResult, OrderCtx
from executors.metrics import ExecutorMetrics
from executors.pretrade import ALLOW, Decision

DAY_MS = 86_400_000
HOUR_MS = 3_600_000


class RiskConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_daily_loss_ratio: float = Field(0.02, gt=0, le=1, description="-net PnL / gross notional that stops the day")
    min_gross_notional: float = Field(10_000.0, ge=0, description="ratio applies only after this notional traded")
    fee_bps: float = Field(5.0, ge=0, le=100)
    max_consecutive_losses: int = Field(5, ge=1, le=1000)
    loss_pause_ms: int = Field(15 * 60_000, ge=0)
    vol_window_ms: int = Field(60_000, gt=0, le=DAY_MS)
    vol_threshold_bps: float = Field(150.0, gt=0, description="default move threshold over the window")
    vol_threshold_bps_by_symbol: dict[str, float] = Field(default_factory=dict)
    hour_multipliers: dict[int, float] = Field(default_factory=dict,
                                               description="UTC hour (0..23) -> threshold multiplier")
    vol_kill_ms: int = Field(5 * 60_000, ge=0, description="kill-switch duration after a volatility trip")
    vol_kill_scope: Literal["global", "symbol"] = Field(
        "global", description="a volatility trip stops every symbol (crypto moves together) or only its own")

    @field_validator("vol_threshold_bps_by_symbol")
    @classmethod
    def _pos_thresholds(cls, v: dict[str, float]) -> dict[str, float]:
        for sym, th in v.items():
            if not th > 0:
                raise ValueError(f"vol_threshold_bps_by_symbol[{sym}] must be > 0, got {th}")
        return v

    @field_validator("hour_multipliers")
    @classmethod
    def _hours(cls, v: dict[int, float]) -> dict[int, float]:
        for h, m in v.items():
            if not 0 <= h <= 23:
                raise ValueError(f"hour_multipliers key {h} must be an UTC hour in 0..23")
            if not m > 0:
                raise ValueError(f"hour_multipliers[{h}] must be > 0, got {m}")
        return v

    def vol_threshold(self, symbol: str, ts_ms: int) -> float:
        base = self.vol_threshold_bps_by_symbol.get(symbol, self.vol_threshold_bps)
        return base * self.hour_multipliers.get((ts_ms % DAY_MS) // HOUR_MS, 1.0)


@dataclass
class _Position:
    qty: float = 0.0
    avg_px: float = 0.0


@dataclass
class _Day:
    day: int = -1
    gross: float = 0.0
    net: float = 0.0


@dataclass
class _Streak:
    losses: int = 0
    paused_until: int = -1


@dataclass
class KillSwitch:
    reason: str = ""
    until_ms: int | None = None
    tripped: bool = False

    def trip(self, reason: str, until_ms: int | None = None) -> None:
        self.reason, self.until_ms, self.tripped = reason, until_ms, True

    def reset(self) -> None:
        self.reason, self.until_ms, self.tripped = "", None, False

    def active(self, ts_ms: int) -> bool:
        if self.tripped and self.until_ms is not None and ts_ms >= self.until_ms:
            self.reset()  # expired in event time
        return self.tripped


@dataclass
class RiskState:
    positions: dict[str, _Position] = field(default_factory=dict)
    day: _Day = field(default_factory=_Day)
    streaks: dict[str, _Streak] = field(default_factory=dict)
    prices: dict[str, deque[tuple[int, float]]] = field(default_factory=dict)


class RiskManager:
    def __init__(self, cfg: RiskConfig | None = None, metrics: ExecutorMetrics | None = None) -> None:
        self.cfg = cfg or RiskConfig()
        self.metrics = metrics
        self.kill = KillSwitch()  # global: manual trips, and volatility trips under scope "global"
        self.symbol_kill: dict[str, KillSwitch] = {}
        self.state = RiskState()

    # ---- inputs -------------------------------------------------------------------------------
    def on_price(self, symbol: str, ts_ms: int, px: float) -> None:
        q = self.state.prices.setdefault(symbol, deque())
        if q and ts_ms < q[-1][0]:
            return  # out of order: keep the window monotone
        q.append((ts_ms, px))
        lo = ts_ms - self.cfg.vol_window_ms
        while len(q) > 1 and q[0][0] < lo:
            q.popleft()

    def on_fill(self, ctx: OrderCtx, res: ExecResult) -> float:
        """Book a fill; returns the realised PnL (after fee) of the part that closed a position."""
        if res.status != "filled" or res.px_fill is None or not res.qty_sent:
            return 0.0
        qty, px = float(res.qty_sent), float(res.px_fill)
        self._roll_day(ctx.ts_ms)
        pos = self.state.positions.setdefault(ctx.symbol, _Position())
        signed = qty if ctx.side == "BUY" else -qty
        fee = qty * px * self.cfg.fee_bps / 1e4
        realised = -fee
        closing = pos.qty != 0 and (pos.qty > 0) != (signed > 0)
        if closing:
            closed = min(abs(signed), abs(pos.qty))
            realised += closed * (px - pos.avg_px) * (1 if pos.qty > 0 else -1)
        new_qty = pos.qty + signed
        if not closing or abs(signed) > abs(pos.qty):
            # opening or flipping: the open remainder is at this fill's price
            if pos.qty != 0 and not closing:
                pos.avg_px = (pos.avg_px * abs(pos.qty) + px * abs(signed)) / abs(new_qty)
            else:
                pos.avg_px = px
        pos.qty = 0.0 if abs(new_qty) < 1e-12 else new_qty
        d = self.state.day
        d.gross += qty * px
        d.net += realised
        if closing:
            st = self.state.streaks.setdefault(ctx.scenario, _Streak())
            if realised < 0:
                st.losses += 1
                if st.losses >= self.cfg.max_consecutive_losses:
                    st.paused_until = ctx.ts_ms + self.cfg.loss_pause_ms
            else:
                st.losses = 0
        return realised

    # ---- gate ---------------------------------------------------------------------------------
    def check(self, ctx: OrderCtx, move_bps: float | None = None) -> Decision:
        """Gate one order. ``move_bps``: the market's move over ``vol_window_ms`` up to ``ts_ms`` when
        the caller measured it (e.g. from book mids); else the prices seen via on_price/orders."""
        ts = ctx.ts_ms
        self.on_price(ctx.symbol, ctx.event_ts_ms, ctx.px_intent)
        if self.kill.active(ts):
            return self._deny(f"kill_switch:{self.kill.reason}", "kill_switch")
        sk = self.symbol_kill.get(ctx.symbol)
        if sk is not None and sk.active(ts):
            return self._deny(f"kill_switch:{sk.reason}", "kill_switch")
        move = self._move_bps(ctx.symbol) if move_bps is None else move_bps
        th = self.cfg.vol_threshold(ctx.symbol, ts)
        if move >= th:
            ks = self.kill if self.cfg.vol_kill_scope == "global" else self.symbol_kill.setdefault(ctx.symbol, KillSwitch())
            ks.trip(f"volatility_{ctx.symbol}", ts + self.cfg.vol_kill_ms)
            return self._deny(f"volatility:{ctx.symbol}:{move:.1f}bps>={th:.1f}bps", "volatility")
        self._roll_day(ts)
        d = self.state.day
        if d.gross >= max(self.cfg.min_gross_notional, 1e-12) and -d.net / d.gross >= self.cfg.max_daily_loss_ratio:
            return self._deny(f"daily_loss:{-d.net / d.gross:.4f}", "daily_loss")
        st = self.state.streaks.get(ctx.scenario)
        if st is not None and st.paused_until >= 0:
            if ts < st.paused_until:
                return self._deny(f"consecutive_losses:{ctx.scenario}:{st.losses}", "consecutive_losses")
            st.losses, st.paused_until = 0, -1
        return ALLOW

    @property
    def daily_loss_ratio(self) -> float:
        d = self.state.day
        return -d.net / d.gross if d.gross > 0 else 0.0

    def _move_bps(self, symbol: str) -> float:
        q = self.state.prices.get(symbol)
        if not q or len(q) < 2:
            return 0.0
        lo = min(p for _, p in q)
        hi = max(p for _, p in q)
        return abs(math.log(hi / lo)) * 1e4

    def _roll_day(self, ts_ms: int) -> None:
        day = ts_ms // DAY_MS
        if day != self.state.day.day:
            self.state.day = _Day(day=day)

    def _deny(self, reason: str, label: str) -> Decision:
        if self.metrics:
            self.metrics.pre_deny_total.labels(reason=label).inc()
        return Decision(False, f"risk:{reason}", label, "deny")
