"""Per-fault restart timelines from the supervisor's event list (pure: works on recorded events).

For fault i with injection at t0 the window runs to the next fault's injection (or the end of the
list). Inside it, for the fault's target process:
* process faults (kill/terminate): detected = Exit, restarted = Restart, ready = Ready,
  health_green = HealthGreen (the supervisor probes health at every poll after a restart);
* other faults: detected = FaultDetected, restarted/ready = a Restart/Ready of the target if it
  had to be restarted, health_green = FaultRecovered (data flowing / sink drained again).
restart_ms = restarted_at − injected_at; recovery_ms = health_green_at − injected_at.
heal_ms is what the recovery checks judge: the time the system needed once the fault's cause was
gone — recovery_ms for an instantaneous fault, health_green_at − cleared_at for a timed one (a 30 s
outage cannot be "recovered" 12 s after it began; what matters is how fast health returns after it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, computed_field

from alpha_assets.faults.plan import PROCESS_FAULTS

_NOISE = {"Health"}


class FaultTimeline(BaseModel):
    fault_id: str
    kind: str
    target: str
    at_s: float | None = None
    injected_at: int | None = None  # epoch ms (wall clock of the supervisor's event log)
    detected_at: int | None = None
    restarted_at: int | None = None
    ready_at: int | None = None
    health_green_at: int | None = None
    cleared_at: int | None = None
    restart_ms: int | None = None
    recovery_ms: int | None = None
    recovery_after_clear_ms: int | None = None  # timed faults: health_green_at − cleared_at
    skipped: str | None = None  # why the fault did not land (target not running)
    error: str | None = None  # why the injector could not act / the system never recovered
    degraded: bool = False
    events: list[dict[str, Any]]

    @property
    def recovered(self) -> bool:
        return self.recovery_ms is not None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def heal_ms(self) -> int | None:
        """recovery_after_clear_ms for timed faults, else recovery_ms (what the checks judge)."""
        return self.recovery_after_clear_ms if self.cleared_at is not None else self.recovery_ms


def _ms(e: dict[str, Any]) -> int:
    return int(round(float(e["ts"]) * 1000))


def fault_timelines(events: Sequence[dict[str, Any]]) -> list[FaultTimeline]:
    """One FaultTimeline per FaultInjected/FaultError event, in injection order."""
    evs = sorted((e for e in events if "ts" in e), key=lambda e: float(e["ts"]))
    starts = [i for i, e in enumerate(evs) if e.get("event") == "FaultInjected"
              or (e.get("event") == "FaultError" and not any(
                  x.get("event") == "FaultInjected" and x.get("fault_id") == e.get("fault_id") for x in evs))]
    out: list[FaultTimeline] = []
    for n, i in enumerate(starts):
        head = evs[i]
        fid, kind, target = str(head.get("fault_id", "")), str(head.get("fault_kind", "")), str(head.get("process", ""))
        end = starts[n + 1] if n + 1 < len(starts) else len(evs)
        window = [e for e in evs[i:end] if e.get("event") not in _NOISE
                  and (e.get("fault_id") == fid or e.get("label") == fid or e.get("process") == target
                       or e.get("event") in ("Stop", "RunEnd"))]
        tl = FaultTimeline(fault_id=fid, kind=kind, target=target, at_s=head.get("at_s"), events=window)
        if head.get("event") == "FaultError":
            tl.error = str(head.get("reason", "injector failed"))
            out.append(tl)
            continue
        tl.injected_at = _ms(head)
        stopped = False
        for e in window[1:]:
            ev, mine, proc = e.get("event"), e.get("fault_id") == fid, e.get("process") == target
            if ev == "Stop":
                stopped = True  # the run's shutdown: later events are not recovery
            if stopped:
                continue
            if ev == "FaultSkipped" and mine:
                tl.skipped = str(e.get("reason", "not running"))
            elif ev == "FaultError" and mine:
                tl.error = str(e.get("reason", "fault error"))
            elif ev == "FaultCleared" and mine:
                tl.cleared_at = _ms(e)
            elif ev == "FaultDetected" and mine and tl.detected_at is None:
                tl.detected_at = _ms(e)
            elif ev == "Exit" and proc and tl.detected_at is None and kind in PROCESS_FAULTS:
                tl.detected_at = _ms(e)
            elif ev == "Restart" and proc and tl.restarted_at is None:
                tl.restarted_at = _ms(e)
            elif ev == "Ready" and proc and tl.restarted_at is not None and tl.ready_at is None:
                tl.ready_at = _ms(e)
            elif ev == "Degraded" and proc:
                tl.degraded = True
            elif tl.health_green_at is None and (
                    (kind in PROCESS_FAULTS and ev == "HealthGreen" and proc and tl.restarted_at is not None)
                    or (kind not in PROCESS_FAULTS and ev == "FaultRecovered" and mine)):
                tl.health_green_at = _ms(e)
        if tl.restarted_at is not None:
            tl.restart_ms = tl.restarted_at - tl.injected_at
        if tl.health_green_at is not None:
            tl.recovery_ms = tl.health_green_at - tl.injected_at
            if tl.cleared_at is not None:
                tl.recovery_after_clear_ms = max(0, tl.health_green_at - tl.cleared_at)
        if tl.skipped is None and tl.error is None and tl.health_green_at is None:
            tl.error = (f"{target} degraded: restart budget exhausted, never healthy again" if tl.degraded
                        else f"{target} not healthy again before the next fault or the end of the run")
        out.append(tl)
    return out
