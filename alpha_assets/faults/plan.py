
"""The fault vocabulary and the fault plan: which faults hit a soak, when, and for how long.

One vocabulary for every run: ``SoakConfig.fault_plan`` (and so ``soak_60m``'s run config), the
``fault_injection`` job and the benchmarks all name faults by these kinds, validated at construction.
"""

from __future__ import annotations

import random
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from alpha_assets.signal_contract import PARITY_LIMIT

FaultKind = Literal[
    "terminate_signal", "kill_signal", "kill_harvest", "kill_lander", "kill_broker", "kill_report", "kill_redis",
    "feed_drop", "feed_stall", "feed_burst", "pushgateway_outage", "sqlite_locked", "spool_full", "landing_disk_full",
]
# Faults that act on a supervised process (the soak's redis-server is one); the rest act on
# something the workers depend on.
PROCESS_FAULTS: dict[str, tuple[str, str]] = {
    "terminate_signal": ("signal", "SIGTERM"),
    **{f"kill_{name}": (name, "SIGKILL") for name in ("signal", "harvest", "lander", "broker", "report", "redis")},
}
# Faults that last a while: duration_s is required (> 0).
TIMED_FAULTS = frozenset({"feed_stall", "feed_burst", "pushgateway_outage", "sqlite_locked", "spool_full",
                          "landing_disk_full"})
# feed_burst: the exchange's market runs this many times as fast for duration_s (every event 10× as often)
BURST_SPEED = 10.0
# Faults that take effect at the next minute close after at_s: the lander writes once a minute, when
# a minute closes, so a full landing disk can only bite then. (spool_full fills the spool's own file
# system, which the signal worker writes at every flush: it bites whenever it starts.)
ALIGNED_FAULTS = frozenset({"landing_disk_full"})
# A fault run whose plan holds an aligned fault starts at a moment chosen so that a minute close falls
# this long after that fault's at_s (faults.run): room for a slow start-up, and the fault inside the run.
ALIGN_LEAD_S = 9.0
# The part of the system a non-process fault hits (whose counters must show it).
AFFECTED: dict[str, str] = {
    "feed_drop": "harvest", "feed_stall": "harvest", "feed_burst": "harvest", "pushgateway_outage": "pushgateway",
    "sqlite_locked": "signal", "spool_full": "signal", "landing_disk_full": "lander",
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
    parity_limit: float = Field(PARITY_LIMIT, ge=0, le=1)
    # A fault is given this long to recover before the next one (or the run end) counts against it.
    min_gap_s: float = Field(0.0, ge=0, le=600)

    @model_validator(mode="after")
    def _order(self) -> FaultPlan:
        times = [f.at_s for f in self.faults]
        if times != sorted(times):
            raise ValueError(f"faults must be sorted by at_s, got at_s={times}")
        for a, b in zip(self.faults, self.faults[1:], strict=False):  # 0: faults may overlap
            if self.min_gap_s > 0 and b.at_s - a.ends_at_s < self.min_gap_s:
                raise ValueError(f"faults at_s={a.at_s} and at_s={b.at_s} are closer than min_gap_s={self.min_gap_s}")
        if self.recovery_target_s > self.recovery_limit_s:
            raise ValueError(f"recovery_target_s={self.recovery_target_s} exceeds recovery_limit_s={self.recovery_limit_s}")
        return self

    @property
    def last_end_s(self) -> float:
        return max(f.ends_at_s for f in self.faults)


# The timed faults of the every-kind plan last this long: longer than the sinks' flush interval and the
# exporter's push interval of the fault soak, so each overlaps live writes and pushes.
TIMED_S = 4.0
BURST_S = 10.0  # the exchange burst of issue 13: 10× for 10 s


SHORTEST_RUN_S = 60.0  # the every-kind plan fits a run this long (start-up included)
EVERY_KIND_RUN_S = 90.0  # ... and holds every kind (terminate_signal too) from this long: CI's and the job's default
_FIRST_S = 15.0  # the first faults: the workers are up by then (start-up takes 5-14 s on a loaded machine)
_TAIL_S = 4.0  # after the last fault's recovery limit: the run's end
_SECOND_HIT_S = 45.0  # the signal process is hit a second time only this long after the first
# The every-kind plan of the shortest run: (offset from _FIRST_S, kind). Faults on different parts run
# side by side; those on one part (the signal worker's, the feed's, the lander's) follow each other at
# least 4 s apart, so each restart or recovery is attributed to its own fault. kill_broker comes when no
# fault holds the flow its recovery waits for (a stalled or dropped feed, a full spool). landing_disk_full is
# armed at its offset and bites at the minute close the run is aligned to (ALIGN_LEAD_S later, not
# stretched), after kill_lander and after the feed stall (a stalled feed closes no minute), at any stretch. terminate_signal, last, hits
# the signal process a second time: only in a run long enough to put it _SECOND_HIT_S after
# kill_signal, beyond the crash-loop window (30 s) and a slow restart, so both hits meet a ready
# worker (restarted at once) as in production.
_EVERY_KIND: tuple[tuple[float, FaultKind], ...] = (
    (0.0, "kill_signal"), (0.0, "kill_lander"), (1.0, "feed_stall"),
    (2.0, "landing_disk_full"), (6.0, "spool_full"), (6.0, "pushgateway_outage"), (7.0, "feed_drop"),
    (11.0, "kill_broker"), (14.0, "kill_redis"), (16.0, "kill_harvest"), (17.0, "sqlite_locked"), (19.0, "feed_burst"),
    (29.0, "terminate_signal"),
)


def every_kind_plan(run_s: float = SHORTEST_RUN_S, skip: tuple[FaultKind, ...] = ()) -> FaultPlan:
    """Each fault kind once, fitted into a run of ``run_s`` seconds (at least SHORTEST_RUN_S): the plan
    CI runs under the production restart policy, and the benchmark at every run length.

    At the shortest run the faults come as dense as ``_EVERY_KIND`` lays them out; a longer run spreads
    the same sequence over its length (the gaps between starts grow in proportion, durations stay), so
    the last fault still leaves its recovery limit before the end. A run too short for a second hit on
    the signal process (under about 80 s) holds every kind but terminate_signal. Timed faults last
    TIMED_S (the burst BURST_S), longer than the sinks' flush and the exporter's push interval of the
    fault soak, so each overlaps live writes and pushes."""
    if run_s < SHORTEST_RUN_S:
        raise ValueError(f"every_kind_plan: run_s={run_s} is below the shortest run the plan fits, {SHORTEST_RUN_S} s")
    limit = FaultPlan.model_fields["recovery_limit_s"].default
    span = max(off + (BURST_S if k == "feed_burst" else 0.0) for off, k in _EVERY_KIND)
    stretch = (run_s - _FIRST_S - limit - _TAIL_S) / span
    first = {k: off for off, k in _EVERY_KIND}
    if (first["terminate_signal"] - first["kill_signal"]) * stretch < _SECOND_HIT_S:
        skip = (*skip, "terminate_signal")
    faults = []
    for off, kind in _EVERY_KIND:
        if kind not in skip:
            duration = BURST_S if kind == "feed_burst" else TIMED_S if kind in TIMED_FAULTS else None
            faults.append(FaultSpec(kind=kind, at_s=round(_FIRST_S + off * stretch, 3), duration_s=duration))
    return FaultPlan(faults=faults)


# Soak overrides of those short runs: lateness 0.5 s, so a minute closes (and is signalled) inside
# the run wherever it starts; the harvester's read watchdog at 2 s, so a 4 s stall trips it; exports
# every second, so an outage meets pushes. The restart policy is the soak's own (not overridden).
SHORT_RUN = {"lateness_ms": 500, "read_timeout_s": 2.0, "export_interval_s": 1.0}
CHAOS_KINDS: tuple[FaultKind, ...] = ("kill_harvest", "kill_lander", "kill_signal", "kill_broker", "kill_redis")


def chaos_plan(kind: FaultKind | tuple[FaultKind, ...], n: int, start_s: float, end_s: float, seed: int,
               min_gap_s: float = 0.0, target_gap_s: float = 0.0, **bounds: float) -> FaultPlan:
    """``n`` instantaneous faults at seeded random moments in [start_s, end_s]; with several kinds, each
    fault's kind is drawn (seeded) among those whose target was not hit in the last ``target_gap_s``
    (so, with the crash-loop window there, every kill meets a worker that was ready)."""
    kinds = (kind,) if isinstance(kind, str) else tuple(kind)
    if not kinds or any(k in TIMED_FAULTS for k in kinds):
        raise ValueError(f"chaos_plan: kind={kind} needs a duration; use instantaneous kinds")
    if not 0 <= start_s < end_s:
        raise ValueError(f"chaos_plan: need 0 ≤ start_s < end_s, got start_s={start_s}, end_s={end_s}")
    if (n - 1) * min_gap_s > end_s - start_s:
        raise ValueError(f"chaos_plan: n={n} faults with min_gap_s={min_gap_s} do not fit in [{start_s}, {end_s}]")
    rng = random.Random(seed)
    # Spread the free time at random between n gaps: sorted uniforms with the minimum gap added back.
    free = end_s - start_s - (n - 1) * min_gap_s
    points = sorted(rng.uniform(0, free) for _ in range(n))
    times = [round(start_s + p + i * min_gap_s, 3) for i, p in enumerate(points)]
    last: dict[str, float] = {}
    faults: list[FaultSpec] = []
    for t in times:
        free_kinds = [k for k in kinds if t - last.get(k, -1e9) >= target_gap_s]
        if not free_kinds:
            raise ValueError(f"chaos_plan: at {t}s every target was hit within target_gap_s={target_gap_s}; "
                             "fewer faults, a longer window or more kinds")
        k = rng.choice(free_kinds)
        last[k] = t
        faults.append(FaultSpec(kind=k, at_s=t))
    return FaultPlan(faults=faults, min_gap_s=min_gap_s, **bounds)
