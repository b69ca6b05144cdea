"""The supervisor's record of one child: its spec, state, current process and what was measured of it
across its incarnations (restarts, exit codes, health, peak RSS and open files, CPU time)."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from typing import Any, Literal

from alpha_assets.live.probes import ProbeContext
from alpha_assets.live.process import ProcessSpec

State = Literal["pending", "starting", "ready", "restarting", "degraded", "stopped"]


@dataclass
class Child:
    spec: ProcessSpec
    state: State = "pending"
    proc: subprocess.Popen | None = None
    ctx: ProbeContext | None = None
    restarts: int = 0  # every restart of the run (the figure reported)
    loop_step: int = 0  # back-offs taken in the current crash loop
    restarted_at: float | None = None  # monotonic time of the last restart
    spawn_count: int = 0
    restart_due: float | None = None  # monotonic time of a scheduled restart
    ready_deadline: float | None = None
    awaiting_green: bool = False  # after a restart: probe health every poll until green once
    healthy: bool | None = None
    health_history: list[dict[str, Any]] = field(default_factory=list)
    max_rss_bytes: int = 0
    max_open_files: int = 0
    cpu_done_s: float = 0.0  # CPU time of earlier incarnations
    cpu_s: float = 0.0  # CPU time of the current one, as last sampled
    exit_codes: list[int] = field(default_factory=list)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None
