"""The fault plan: which faults hit a soak, when, and for how long (validated at construction)."""

from __future__ import annotations

import random
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

FaultKind = Literal[
    "terminate_signal", "kill_signal", "kill_harvest", "feed_drop", "feed_stall",
    "pushgateway_outage", "sqlite_locked", "spool_full",
]
# Faults that act on a worker process; the rest act on something the workers depend on.
PROCESS_FAULTS: dict[str, tuple[str, str]] = {
    "terminate_signal": ("signal", "SIGTERM"),
    "kill_signal": ("signal", "SIGKILL"),
    "kill_harvest": ("harvest", "SIGKILL"),
}
# Faults that last a while: duration_s is required (> 0).
TIMED_FAULTS = frozenset({"feed_stall", "pushgateway_outage", "sqlite_locked", "spool_full"})
# The process whose health says the system recovered from a non-process fault.
AFFECTED: dict[str, str] = {
    "feed_drop": "harvest", "feed_stall": "harvest", "pushgateway_outage": "pushgateway",
    "sqlite_locked": "signal", "spool_full": "signal",
}


class FaultSpec(BaseModel):
    """One fault ``kind`` at ``at_s`` seconds after the soak started, lasting ``duration_s``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: FaultKind
    at_s: float = Field(ge=0, le=24 * 3600)
    duration_s: float | None = Field(None, gt=0, le=3600)

    @model_validator(mode="after")
    def _duration(self) -> FaultSpec:
        if self.kind in TIMED_FAULTS and self.duration_s is None:
            raise ValueError(f"duration_s is required for kind={self.kind} (a number in (0, 3600])")
        if self.kind not in TIMED_FAULTS and self.duration_s is not None:
            raise ValueError(f"duration_s is not allowed for kind={self.kind} (instantaneous fault)")
        return self

    @property
    def target(self) -> str:
        return PROCESS_FAULTS[self.kind][0] if self.kind in PROCESS_FAULTS else AFFECTED[self.kind]

    @property
    def ends_at_s(self) -> float:
        return self.at_s + (self.duration_s or 0.0)


class FaultPlan(BaseModel):
    """Faults in time order. ``recovery_limit_s``/``recovery_target_s`` are the acceptance bounds."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    faults: list[FaultSpec] = Field(min_length=1, max_length=1000)
    recovery_limit_s: float = Field(12.0, gt=0, le=600)
    recovery_target_s: float = Field(2.0, gt=0, le=600)
    parity_limit: float = Field(0.0025, ge=0, le=1)
    # A fault is given this long to recover before the next one (or the run end) counts against it.
    min_gap_s: float = Field(0.0, ge=0, le=600)

    @model_validator(mode="after")
    def _order(self) -> FaultPlan:
        times = [f.at_s for f in self.faults]
        if times != sorted(times):
            raise ValueError(f"faults must be sorted by at_s, got at_s={times}")
        for a, b in zip(self.faults, self.faults[1:], strict=False):
            if b.at_s - a.ends_at_s < self.min_gap_s:
                raise ValueError(f"faults at_s={a.at_s} and at_s={b.at_s} are closer than min_gap_s={self.min_gap_s}")
        if self.recovery_target_s > self.recovery_limit_s:
            raise ValueError(f"recovery_target_s={self.recovery_target_s} exceeds recovery_limit_s={self.recovery_limit_s}")
        return self

    @property
    def last_end_s(self) -> float:
        return max(f.ends_at_s for f in self.faults)


def every_kind_plan() -> FaultPlan:
    """Each fault kind once in an 80 s soak, the timed ones for 2 s: the short form CI runs."""
    return FaultPlan(faults=[
        FaultSpec(kind="terminate_signal", at_s=8), FaultSpec(kind="kill_signal", at_s=14),
        FaultSpec(kind="kill_harvest", at_s=20), FaultSpec(kind="feed_drop", at_s=27),
        FaultSpec(kind="feed_stall", at_s=33, duration_s=2), FaultSpec(kind="pushgateway_outage", at_s=40, duration_s=2),
        FaultSpec(kind="sqlite_locked", at_s=46, duration_s=2), FaultSpec(kind="spool_full", at_s=52, duration_s=2)])


# Soak overrides of those short runs: lateness 0.5 s, so a minute closes (and is signalled) inside
# the 78 s run wherever it starts.
SHORT_RUN = {"minutes": 1.3, "lateness_ms": 500}


def chaos_plan(kind: FaultKind, n: int, start_s: float, end_s: float, seed: int, min_gap_s: float = 0.0,
               **bounds: float) -> FaultPlan:
    """``n`` faults of one instantaneous ``kind`` at seeded random moments in [start_s, end_s]."""
    if kind in TIMED_FAULTS:
        raise ValueError(f"chaos_plan: kind={kind} needs a duration; use an instantaneous kind")
    if not 0 <= start_s < end_s:
        raise ValueError(f"chaos_plan: need 0 ≤ start_s < end_s, got start_s={start_s}, end_s={end_s}")
    if (n - 1) * min_gap_s > end_s - start_s:
        raise ValueError(f"chaos_plan: n={n} faults with min_gap_s={min_gap_s} do not fit in [{start_s}, {end_s}]")
    rng = random.Random(seed)
    # Spread the free time at random between n gaps: sorted uniforms with the minimum gap added back.
    free = end_s - start_s - (n - 1) * min_gap_s
    points = sorted(rng.uniform(0, free) for _ in range(n))
    times = [round(start_s + p + i * min_gap_s, 3) for i, p in enumerate(points)]
    return FaultPlan(faults=[FaultSpec(kind=kind, at_s=t) for t in times], min_gap_s=min_gap_s, **bounds)
