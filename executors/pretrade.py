"""Pre-trade gates: what the signal row itself says about whether to trade.

* warm-up or an active engine guard -> deny (``executor_pre_deny_total{reason}``);
* consistency below ``min_consistency`` -> deterministic throttle: keep ``low_consistency_keep``
  of such orders, chosen by a hash of signal_seq, so a rerun throttles exactly the same orders
  (``executor_throttle_total{reason="low_consistency"}``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from executors.contract import OrderCtx
from executors.metrics import ExecutorMetrics, stable_bucket

_NUM_SUFFIX = re.compile(r"_[0-9][0-9.e+-]*(bps|s)?$")


class PreTradeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    deny_warmup: bool = True
    deny_active_guard: bool = True
    ignored_guards: list[str] = Field(default_factory=list,
                                      description="guard labels that do not deny (e.g. weak_signal_throttle)")
    min_consistency: float = Field(0.3, ge=0, le=1)
    low_consistency_keep: float = Field(0.2, ge=0, le=1, description="share of low-consistency orders kept")


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str = ""  # full reason text (goes to reject_reason)
    label: str = ""  # bounded label for metrics
    kind: str = ""  # deny | throttle | ""


ALLOW = Decision(True)


def guard_label(guard_reason: str) -> str:
    """``spread_too_high_12.3bps`` -> ``spread_too_high``: metric labels must stay low-cardinality."""
    return _NUM_SUFFIX.sub("", guard_reason.strip())


class PreTrade:
    def __init__(self, cfg: PreTradeConfig | None = None, metrics: ExecutorMetrics | None = None) -> None:
        self.cfg = cfg or PreTradeConfig()
        self.metrics = metrics

    def check(self, ctx: OrderCtx) -> Decision:
        c = self.cfg
        if c.deny_warmup and ctx.warmup:
            return self._deny("warmup", "warmup")
        g = guard_label(ctx.guard_reason)
        if c.deny_active_guard and g and g not in c.ignored_guards:
            return self._deny(f"guard:{ctx.guard_reason}", f"guard_{g}")
        if ctx.consistency < c.min_consistency:
            keep = stable_bucket(f"cons|{ctx.symbol}|{ctx.signal_seq}", 10_000) < round(c.low_consistency_keep * 10_000)
            if not keep:
                if self.metrics:
                    self.metrics.throttle_total.labels(reason="low_consistency").inc()
                return Decision(False, "throttle:low_consistency", "low_consistency", "throttle")
        return ALLOW

    def _deny(self, reason: str, label: str) -> Decision:
        if self.metrics:
            self.metrics.pre_deny_total.labels(reason=label).inc()
        return Decision(False, f"pre_deny:{reason}", label, "deny")
