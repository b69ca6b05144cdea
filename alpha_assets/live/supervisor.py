"""Supervisor: start ProcessSpecs in order, wait for readiness in parallel, tick health, restart
by the policy (``RestartPolicy``: at once after a ready child died, backing off in a crash loop),
stop in reverse order. Every child dies with the thread that started it (``die_with_parent``).
A spec with a ``standby_cmd`` has a warm spare (``live/standby.py``) that a restart hands over to.

Events (Start, Ready, Health, Exit, Restart, Degraded, HealthGreen, Fault, Alert, Stop) go to
``<data_root>/logs/orchestrator/orchestrator.log`` as JSON lines and to ``timeline`` in memory;
each child's stdout/stderr is appended to ``<data_root>/logs/<name>/{stdout,stderr}.log``.
Wall-clock time is used throughout: this is process supervision, not computation.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import psutil

from alpha_assets.layout import Layout
from alpha_assets.live.child import Child
from alpha_assets.live.probes import ProbeContext
from alpha_assets.live.process import ProcessSpec, child_environment
from alpha_assets.live.recoveries import recoveries
from alpha_assets.live.standby import Spares
from alpha_assets.processes import spawn

__all__ = ["Child", "Supervisor", "recoveries"]

_POLL_S = 0.1


class Supervisor:
    def __init__(
        self,
        specs: Sequence[ProcessSpec],
        data_root: Path,
        *,
        health_interval_s: float = 10.0,
        stop_grace_s: float = 10.0,
        health_history_limit: int = 2000,
    ) -> None:
        names = [s.name for s in specs]
        if len(set(names)) != len(names):
            raise ValueError(f"process names must be unique, got {names}")
        if health_interval_s <= 0:
            raise ValueError(f"health_interval_s must be > 0, got {health_interval_s}")
        if stop_grace_s < 0:
            raise ValueError(f"stop_grace_s must be ≥ 0, got {stop_grace_s}")
        self.children = {s.name: Child(s) for s in specs}
        self.order = names
        self.data_root = Path(data_root)
        self.health_interval_s = health_interval_s
        self.stop_grace_s = stop_grace_s
        self.health_history_limit = health_history_limit
        self.timeline: list[dict[str, Any]] = []
        self.alerts: list[dict[str, Any]] = []
        self.shutdown_order: list[str] = []
        self.stop_event = threading.Event()
        self._t0 = time.monotonic()
        self._lock = threading.Lock()
        self.log_path = Layout(self.data_root).log_dir("orchestrator") / "orchestrator.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._next_health = 0.0
        self.spares = Spares()

    # ---------------------------------------------------------------- events
    def event(self, kind: str, name: str = "", **detail: Any) -> dict[str, Any]:
        rec = {"ts": time.time(), "t_rel_s": round(time.monotonic() - self._t0, 4), "event": kind,
               "process": name, **detail}
        with self._lock:
            self.timeline.append(rec)
            with open(self.log_path, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(rec, default=str, ensure_ascii=False) + "\n")
        return rec

    def alert(self, name: str, reason: str, **detail: Any) -> None:
        rec = self.event("Alert", name, reason=reason, **detail)
        self.alerts.append(rec)

    # ---------------------------------------------------------------- lifecycle
    def _logs(self, name: str) -> tuple[Path, Path]:
        log_dir = Layout(self.data_root).log_dir(name)
        log_dir.mkdir(parents=True, exist_ok=True)
        return log_dir / "stdout.log", log_dir / "stderr.log"

    def _spawn(self, child: Child) -> dict[str, Any]:
        """Start ``child``: its warm spare takes over when it has one, else a new process."""
        spec = child.spec
        out_path, err_path = self._logs(spec.name)
        offset = out_path.stat().st_size if out_path.exists() else 0
        taken = self.spares.take(spec.name) if spec.standby_cmd else None
        if taken is not None:
            child.proc = taken[0]
        else:
            with open(out_path, "ab") as out, open(err_path, "ab") as err:
                # Own session: a terminal Ctrl-C reaches the supervisor only, which stops children in
                # order; the parent-death signal takes them down if this process dies without stopping them.
                child.proc = spawn(spec.cmd, env=child_environment(spec.env), stdout=out, stderr=err,
                                   stdin=subprocess.DEVNULL, cwd=spec.cwd)
        child.spawn_count += 1
        child.cpu_done_s, child.cpu_s = child.cpu_done_s + child.cpu_s, 0.0
        child.ctx = ProbeContext(spec.name, out_path, offset, time.time())
        child.state = "starting"
        child.ready_deadline = time.monotonic() + spec.restart_policy.ready_timeout_s
        self._sample(child)
        return {"standby": True, "standby_age_s": round(taken[1], 3)} if taken is not None else {"standby": False}

    def start_all(self, only: Sequence[str] | None = None) -> None:
        """Start every spec (or those in ``only``) in the given order."""
        for name in self.order:
            if only is not None and name not in only:
                continue
            child = self.children[name]
            self._spawn(child)
            self.event("Start", name, pid=child.pid, cmd=" ".join(child.spec.cmd))

    def wait_ready(self, timeout_s: float | None = None) -> dict[str, bool]:
        """Poll every starting child's ready probe at once until all are ready (or degraded)."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while not self.stop_event.is_set():
            self.poll()
            if all(c.state in ("ready", "degraded", "pending") for c in self.children.values()):
                break
            if deadline is not None and time.monotonic() > deadline:
                break
            time.sleep(_POLL_S)
        return {n: c.state == "ready" for n, c in self.children.items()}

    def poll(self) -> None:
        """One supervision step: exits, readiness, scheduled restarts, resource samples."""
        now = time.monotonic()
        for name in self.order:
            child = self.children[name]
            if child.state in ("stopped", "degraded", "pending"):
                continue
            if child.state == "restarting":
                if child.restart_due is not None and now >= child.restart_due:
                    child.restart_due = None
                    child.restarts += 1
                    child.restarted_at = now
                    how = self._spawn(child)
                    child.awaiting_green = True
                    self.event("Restart", name, pid=child.pid, attempt=child.loop_step, total=child.restarts, **how)
                continue
            code = child.proc.poll() if child.proc is not None else None
            if code is not None:
                was_ready = child.state == "ready"
                child.exit_codes.append(code)
                self.event("Exit", name, pid=child.pid, returncode=code, was_ready=was_ready)
                if code == 0 and not child.spec.restart_policy.restart_on_clean_exit:
                    child.state = "stopped"
                    continue
                self._schedule_restart(child, f"exited with code {code}", was_ready)
                continue
            if child.state == "starting":
                ok, detail = self._probe(child, child.spec.ready_probe)
                if ok:
                    child.state = "ready"
                    since = time.time() - (child.ctx.started_at if child.ctx is not None else time.time())
                    self.event("Ready", name, pid=child.pid, detail=detail, ready_after_s=round(since, 3))
                elif child.ready_deadline is not None and now > child.ready_deadline:
                    self.alert(name, "ready timeout", detail=detail)
                    self._terminate(child)
                    self._schedule_restart(child, "not ready in time", was_ready=False)
            elif child.state == "ready" and child.awaiting_green:
                ok, detail = self._probe(child, child.spec.health_probe)
                if ok:
                    self._mark_green(child, detail)
        self._refill_spares()

    def _refill_spares(self) -> None:
        """A spare for every ready child that has none, while no child is recovering from a restart:
        a spare's start (its imports and warm-up) must not take the CPU from a restart."""
        kids = self.children.values()
        if self.stop_event.is_set() or any(c.state == "restarting" or c.awaiting_green for c in kids):
            return
        for child in kids:
            spec = child.spec
            if spec.standby_cmd and child.state == "ready" and self.spares.wanted(spec.name):
                pid = self.spares.spawn(spec.name, spec.standby_cmd, child_environment(spec.env),
                                        *self._logs(spec.name), cwd=spec.cwd)
                self.event("StandbyStart", spec.name, pid=pid)
                return  # one per poll: spares start one after another
    def _mark_green(self, child: Child, detail: str) -> None:
        """First green health after a (re)start: the process side of the recovery is complete."""
        child.awaiting_green = False
        self.event("HealthGreen", child.spec.name, pid=child.pid, detail=detail)

    def _schedule_restart(self, child: Child, reason: str, was_ready: bool) -> None:
        """Restart ``child`` when its policy says (``RestartPolicy.next_step``), or mark it degraded."""
        if self.stop_event.is_set():
            child.state = "stopped"
            return
        now = time.monotonic()
        since = None if child.restarted_at is None else now - child.restarted_at
        looping, step = child.spec.restart_policy.next_step(was_ready, since, child.loop_step)
        if step is None:
            child.state = "degraded"
            child.proc = None
            self.spares.drop(child.spec.name)
            self.alert(child.spec.name, "degraded", cause=reason, restarts=child.restarts)
            self.event("Degraded", child.spec.name, cause=reason)
            return
        child.loop_step, delay = step
        child.state = "restarting"
        child.restart_due = now + delay
        self.event("RestartScheduled", child.spec.name, cause=reason, backoff_s=delay, crash_loop=looping,
                   attempt=child.loop_step)

    def _probe(self, child: Child, probe: Any) -> tuple[bool, str]:
        if probe is None:
            return True, "no probe"
        try:
            return probe(child.ctx)
        except Exception as exc:  # a buggy probe is a failed check, not a supervisor crash
            return False, f"probe error: {type(exc).__name__}: {exc}"

    def _sample(self, child: Child) -> dict[str, int]:
        if not child.alive():
            return {}
        try:
            p = psutil.Process(child.pid)
            rss = p.memory_info().rss
            files = p.num_fds()
            cpu = p.cpu_times()
        except (psutil.Error, OSError):
            return {}
        child.cpu_s = cpu.user + cpu.system
        child.max_rss_bytes = max(child.max_rss_bytes, rss)
        child.max_open_files = max(child.max_open_files, files)
        return {"rss_bytes": rss, "open_files": files}

    def tick_health(self) -> dict[str, bool]:
        """Probe health of every ready child, sample RSS/open files, log a Health event each."""
        out: dict[str, bool] = {}
        for name in self.order:
            child = self.children[name]
            res = self._sample(child)
            rec: dict[str, Any]
            if child.state != "ready":
                rec = {"ts": time.time(), "state": child.state, "ok": False}
            else:
                ok, detail = self._probe(child, child.spec.health_probe)
                if child.healthy and not ok:
                    self.alert(name, "health failed", detail=detail)
                child.healthy = ok
                rec = {"ts": time.time(), "state": child.state, "ok": ok, "detail": detail, **res}
                if ok and child.awaiting_green:
                    self._mark_green(child, detail)
            out[name] = bool(rec["ok"])
            child.health_history.append(rec)
            del child.health_history[: -self.health_history_limit]
            self.event("Health", name, **{k: v for k, v in rec.items() if k != "ts"})
        return out

    def run(self, duration_s: float, hooks: Sequence[tuple[float, Callable[[Supervisor], None]]] = (),
            on_poll: Callable[[], None] | None = None) -> None:
        """Supervise for ``duration_s`` (or until stop_event). ``hooks`` = [(at_s, fn)] run once
        each at that offset from the start of this call (the fault plan); ``on_poll`` every poll."""
        start = time.monotonic()
        pending = sorted(hooks, key=lambda h: h[0])
        self._next_health = min(self._next_health, start) if self._next_health else start
        while not self.stop_event.is_set():
            now = time.monotonic()
            if now - start >= duration_s:
                break
            while pending and now - start >= pending[0][0]:
                at, fn = pending.pop(0)
                try:
                    fn(self)
                except Exception as exc:
                    self.alert("", "hook failed", at_s=at, error=f"{type(exc).__name__}: {exc}")
            self.poll()
            if on_poll is not None:
                on_poll()
            if now >= self._next_health:
                self.tick_health()
                self._next_health = now + self.health_interval_s
            self.stop_event.wait(_POLL_S)

    # ---------------------------------------------------------------- faults and stop
    def signal_child(self, name: str, sig: int = signal.SIGTERM, label: str = "fault") -> int | None:
        """Send ``sig`` to a child (fault injection); logs a Fault event first."""
        child = self.children[name]
        pid = child.pid
        if pid is None or not child.alive():
            return None
        self.event("Fault", name, pid=pid, signal=signal.Signals(sig).name, label=label)
        os.kill(pid, sig)
        return pid

    def _terminate(self, child: Child, grace_s: float | None = None) -> int | None:
        if child.proc is None:
            return None
        grace = self.stop_grace_s if grace_s is None else grace_s
        if child.proc.poll() is None:
            child.proc.send_signal(signal.SIGTERM)
            try:
                child.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.event("Kill", child.spec.name, pid=child.pid, after_s=grace)
                child.proc.kill()
                child.proc.wait()
        return child.proc.returncode

    def stop_child(self, name: str, grace_s: float | None = None) -> int | None:
        """Stop one child now (SIGTERM, SIGKILL after the grace: ``grace_s`` or the supervisor's);
        it is not restarted."""
        child = self.children[name]
        self.spares.drop(name)
        self._sample(child)
        code = self._terminate(child, grace_s)
        child.state = "stopped"
        self.shutdown_order.append(name)
        self.event("Stop", name, pid=child.pid, returncode=code)
        return code

    def await_finish(self, name: str, timeout_s: float) -> int | None:
        """Wait for a child told to finish by other means (the end-of-run drain) to exit by itself;
        returns its exit code, None when it is not running or did not finish in time (then killed)."""
        child = self.children[name]
        self.spares.drop(name)
        if not child.alive():
            return None
        deadline = time.monotonic() + timeout_s
        while child.alive() and time.monotonic() < deadline:
            self._sample(child)  # its CPU time up to the end
            time.sleep(0.05)
        try:
            code = child.proc.wait(timeout=max(0.0, deadline - time.monotonic()))  # type: ignore[union-attr]
        except subprocess.TimeoutExpired:
            self.alert(name, "drain timed out", timeout_s=timeout_s)
            self._terminate(child)
            code = None
        child.state = "stopped"
        self.shutdown_order.append(name)
        self.event("Stop", name, pid=child.pid, returncode=code, drained=code == 0)
        return code

    def graceful_shutdown(self) -> list[str]:
        """Stop every child in reverse start order: SIGTERM, wait, SIGKILL after the grace."""
        self.stop_event.set()
        self.spares.drop_all()
        for name in reversed(self.order):
            child = self.children[name]
            if child.state == "stopped" and not child.alive():
                continue
            self.stop_child(name)
        return self.shutdown_order

    def install_signal_handlers(self) -> bool:
        """SIGINT/SIGTERM set the stop event (main thread only); returns whether installed."""
        if threading.current_thread() is not threading.main_thread():
            return False

        def handler(signum: int, _frame: object) -> None:
            self.event("SignalReceived", "", signal=signal.Signals(signum).name)
            self.stop_event.set()

        self._saved_handlers = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
        return True

    def restore_signal_handlers(self) -> None:
        for sig, old in getattr(self, "_saved_handlers", {}).items():
            signal.signal(sig, old)
        self._saved_handlers = {}

    # ---------------------------------------------------------------- reporting
    def status(self) -> dict[str, dict[str, Any]]:
        return {
            name: {
                "state": c.state, "pid": c.pid, "restarts": c.restarts, "spawns": c.spawn_count,
                "exit_codes": list(c.exit_codes), "healthy": c.healthy,
                "max_rss_mb": round(c.max_rss_bytes / 2**20, 1), "max_open_files": c.max_open_files,
                "cpu_s": round(c.cpu_done_s + c.cpu_s, 3),
                "health_history": list(c.health_history),
            }
            for name, c in self.children.items()
        }

    def events(self, kind: str | None = None, name: str | None = None) -> list[dict[str, Any]]:
        return [e for e in self.timeline
                if (kind is None or e["event"] == kind) and (name is None or e["process"] == name)]
