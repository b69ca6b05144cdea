"""Recovery of each process fault, read from the supervisor's timeline."""

from __future__ import annotations

from typing import Any


def recoveries(timeline: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per Fault on a process: injected → detected (Exit) → restarted → ready → health green,
    with restart_ms (fault → respawn) and recovery_ms (fault → health green); None when not reached."""
    out: list[dict[str, Any]] = []
    for i, ev in enumerate(timeline):
        if ev["event"] != "Fault" or ev["process"] in ("", "feed", "pushgateway"):
            continue
        name, times = ev["process"], {"injected": ev["ts"]}
        for later in timeline[i + 1:]:
            if later["process"] != name:
                continue
            key = {"Exit": "detected", "Restart": "restarted", "Ready": "ready", "HealthGreen": "health_green",
                   "Degraded": "degraded"}.get(later["event"])
            if key and key not in times:
                times[key] = later["ts"]
            if later["event"] in ("HealthGreen", "Degraded", "Fault"):
                break
        out.append({"process": name, "signal": ev.get("signal"), **times,
                    "detect_ms": _since(times, "detected"), "restart_ms": _since(times, "restarted"),
                    "ready_ms": _since(times, "ready"), "recovery_ms": _since(times, "health_green")})
    return out


def _since(times: dict[str, float], key: str) -> float | None:
    return round((times[key] - times["injected"]) * 1000, 1) if key in times else None
