"""What the supervisor runs: a ProcessSpec per worker and the restart policy it obeys."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from alpha_assets.live.probes import Probe

# Only these names reach a child (plus PATH/PYTHONPATH basics): no global pollution, no secrets.
CHILD_ENV_WHITELIST = (
    "V13_SINK", "V13_OUTPUT_DIR", "V13_INPUT_MODE", "PAPER_ENABLE", "RUN_ID",
    "ALPHA_DATA_ROOT", "ALPHA_SHARED_DIR", "ALPHA_CONFIG", "ALPHA_WORKER_CONFIG", "ALPHA_MEMTRACE",
)
_BASICS = ("PATH", "PYTHONPATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "NUMBA_CACHE_DIR",
           "VIRTUAL_ENV")


class RestartPolicy(BaseModel):
    """The one restart policy of soak and fault runs (v13 TASK-07 §8).

    A child that was ready and dies is restarted at once. A child that fails to become ready, or
    dies again within ``crash_loop_window_s`` of its restart, is in a crash loop: it waits
    ``backoff_s[0]``, then ``backoff_s[1]``, ... and after the last one it is marked degraded.
    Surviving ``crash_loop_window_s`` after a restart ends the loop (the next death is immediate again).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    backoff_s: tuple[float, ...] = Field((10.0, 30.0), description="crash loop: delay before each restart")
    crash_loop_window_s: float = Field(30.0, ge=0, le=24 * 3600,
                                       description="a death this soon after a restart is a crash loop")
    ready_timeout_s: float = Field(120.0, gt=0, le=3600)
    # A child that exits 0 during the run is also restarted unless it is allowed to finish.
    restart_on_clean_exit: bool = True

    @property
    def max_restarts(self) -> int:
        """Restarts of one crash loop before the child is degraded."""
        return len(self.backoff_s)

    def next_step(self, was_ready: bool, since_restart_s: float | None, loop_step: int
                  ) -> tuple[bool, tuple[int, float] | None]:
        """After a death: (crash loop?, (loop step after this restart, delay before it)); the step is
        None when the crash loop has used every back-off (the child is then degraded)."""
        looping = not was_ready or (since_restart_s is not None and since_restart_s < self.crash_loop_window_s)
        if not looping:
            return False, (0, 0.0)
        if loop_step >= self.max_restarts:
            return True, None
        return True, (loop_step + 1, self.backoff_s[loop_step])

    def describe(self) -> str:
        """The policy in one line (fault reports print it)."""
        steps = ", ".join(f"{b:g} s" for b in self.backoff_s)
        return (f"ready→died: restart at once; not ready within {self.ready_timeout_s:g} s or died again within "
                f"{self.crash_loop_window_s:g} s of a restart: back off {steps or 'never'}, then degraded")


@dataclass
class ProcessSpec:
    name: str
    cmd: Sequence[str]
    env: Mapping[str, str] = field(default_factory=dict)
    ready_probe: Probe | None = None
    health_probe: Probe | None = None
    restart_policy: RestartPolicy = field(default_factory=RestartPolicy)
    cwd: Path | None = None
    # a warm spare's command (live/standby.py): a restart hands over to it instead of starting cmd cold
    standby_cmd: Sequence[str] | None = None

    def __post_init__(self) -> None:
        if not self.name or not self.name.replace("_", "").isalnum():
            raise ValueError(f"ProcessSpec.name must be alphanumeric/underscore, got {self.name!r}")
        if not self.cmd:
            raise ValueError(f"ProcessSpec {self.name}: cmd must not be empty")
        bad = sorted(set(self.env) - set(CHILD_ENV_WHITELIST))
        if bad:
            raise ValueError(f"ProcessSpec {self.name}: env names {bad} are not whitelisted "
                             f"(allowed: {', '.join(CHILD_ENV_WHITELIST)})")


def child_environment(spec_env: Mapping[str, str], parent: Mapping[str, str] | None = None) -> dict[str, str]:
    """The whitelisted environment a child gets: basics from the parent plus the spec's names."""
    parent = os.environ if parent is None else parent
    env = {k: parent[k] for k in _BASICS if k in parent}
    env["PYTHONUNBUFFERED"] = "1"  # ready keywords must reach the log as printed
    env.update({k: str(v) for k, v in spec_env.items()})
    return env


def python_module_cmd(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]
