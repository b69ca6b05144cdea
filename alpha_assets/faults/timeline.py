"""Per-fault restart timelines from the supervisor's event list (pure: works on recorded events).

For fault i with injection at t0, the events tagged with its fault id anywhere after t0, and the
events of its target process up to the next fault's injection:
* detected = the supervisor's Exit of the process (process faults) or FaultDetected (a counter of the
  system moved: reconnects, watchdog timeouts, busy retries, ENOSPC, failed pushes);
* restarted/ready/health_green = Restart/Ready/HealthGreen of the target (process faults);
* recovered = FaultRecovered: a signal row of a trade sent after the fault durable in both sinks for
  every symbol (data flowing end to end), and the fault's own part working again.
detected_ms, restart_ms and recovery_ms count from the injection. heal_ms is what the recovery checks
judge: the time the system needed once the fault's cause was gone — recovery_ms for an instantaneous
fault, recovered_at − cleared_at for a timed one (a 30 s outage cannot be "recovered" 12 s after it
began; what matters is how fast data flows again after it).
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
    recovered_at: int | None = None
    detected_ms: int | None = None
    restart_ms: int | None = None
    recovery_ms: int | None = None
    recovery_after_clear_ms: int | None = None  # timed faults: recovered_at − cleared_at
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
        mine = [e for e in evs[i + 1:] if e.get("fault_id") == fid or e.get("label") == fid]
        stop_at = next((_ms(e) for e in evs[i:] if e.get("event") == "Stop"), None)  # the run's shutdown
        for e in mine:
            ev = e.get("event")
            if ev == "FaultSkipped":
                tl.skipped = str(e.get("reason", "not running"))
            elif ev == "FaultError" and tl.error is None:
                tl.error = str(e.get("reason", "fault error"))
            elif ev == "FaultCleared":
                tl.cleared_at = _ms(e)
            elif ev == "FaultDetected" and tl.detected_at is None:
                tl.detected_at = _ms(e)
            elif ev == "FaultRecovered" and tl.recovered_at is None and (stop_at is None or _ms(e) < stop_at):
                tl.recovered_at = _ms(e)
        # the target's own events run until it is hit again (a restart under load may be ready only
        # after the next fault of the plan was injected), or the run's shutdown
        nxt = next((k for k in starts[n + 1:] if evs[k].get("process") == target), len(evs))
        own = [e for e in evs[i + 1:nxt] if e.get("process") == target or e.get("event") in ("Stop", "RunEnd")]
        for e in own:
            ev, proc = e.get("event"), e.get("process") == target
            if ev == "Stop":
                break  # later events are the shutdown, not recovery
            if not proc or kind not in PROCESS_FAULTS:
                continue
            if ev == "Exit" and tl.detected_at is None:
                tl.detected_at = _ms(e)
            elif ev == "Restart" and tl.restarted_at is None:
                tl.restarted_at = _ms(e)
            elif ev == "Ready" and tl.restarted_at is not None and tl.ready_at is None:
                tl.ready_at = _ms(e)
            elif ev == "HealthGreen" and tl.restarted_at is not None and tl.health_green_at is None:
                tl.health_green_at = _ms(e)
            elif ev == "Degraded":
                tl.degraded = True
        if tl.detected_at is not None:
            tl.detected_ms = tl.detected_at - tl.injected_at
        if tl.restarted_at is not None:
            tl.restart_ms = tl.restarted_at - tl.injected_at
        if tl.recovered_at is not None:
            tl.recovery_ms = tl.recovered_at - tl.injected_at
            if tl.cleared_at is not None:
                tl.recovery_after_clear_ms = max(0, tl.recovered_at - tl.cleared_at)
        if tl.skipped is None and tl.error is None and tl.recovered_at is None:
            tl.error = (f"{target} degraded: the restart policy gave up, data never flowed again" if tl.degraded
                        else f"{kind}: data not flowing end to end again before the end of the run")
        if tl.skipped is None and tl.error is None and tl.detected_at is None:
            tl.error = f"{kind}: the system noticed nothing (no exit, no counter moved)"
        out.append(tl)
    return out
