"""Injectors: turn a FaultPlan into timed soak hooks, hold each fault for its duration, undo it, and
log what they see (FaultInjected/Detected/Cleared/Recovered/Error) into the supervisor's timeline.

Process faults go through the supervisor (its Fault/Exit/Restart/Ready/HealthGreen events tell the
story). For the others a watcher thread polls what the system exposes (heartbeats, the exporter's
counters, the exchange server) to see when the fault bit and when the data flows again.
Wall-clock time throughout: this observes processes, it computes nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alpha_assets.faults import adapters
from alpha_assets.faults.plan import PROCESS_FAULTS, FaultPlan, FaultSpec

_POLL_S = 0.05
_SIGNALS = {"SIGTERM": 15, "SIGKILL": 9}


def fault_id(i: int, spec: FaultSpec) -> str:
    return f"f{i:03d}_{spec.kind}"


@dataclass
class _Watch:
    fid: str
    spec: FaultSpec
    target: str
    detect: Callable[[], bool]
    recovered: Callable[[], bool]
    clear_at: float | None = None  # monotonic time to undo a timed fault
    undo: Callable[[], None] | None = None
    cleared_at_wall: float | None = None
    detected: bool = False
    state: dict[str, Any] = field(default_factory=dict)


class SqliteLocker:
    """Another process holding ``BEGIN EXCLUSIVE`` on the database until released (or ``hold_s``)."""

    _CODE = ("import sqlite3,sys,time\n"
             "c=sqlite3.connect(sys.argv[1],timeout=30,isolation_level=None)\n"
             "c.execute('BEGIN EXCLUSIVE')\nprint('LOCKED',flush=True)\n"
             "sys.stdin.readline()\nc.execute('COMMIT')\n")

    def __init__(self, db: Path) -> None:
        self.db = Path(db)
        self.proc: subprocess.Popen | None = None

    def acquire(self, timeout_s: float = 10.0) -> None:
        if not self.db.exists():
            raise FileNotFoundError(f"sqlite_locked: {self.db} does not exist (is the sink sqlite or dual?)")
        self.proc = subprocess.Popen([sys.executable, "-c", self._CODE, str(self.db)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        got: list[str] = []
        reader = threading.Thread(target=lambda: got.append(self.proc.stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout_s)
        if not got or got[0].strip() != "LOCKED":
            self.release()
            raise TimeoutError(f"sqlite_locked: could not take BEGIN EXCLUSIVE on {self.db} in {timeout_s}s")

    def release(self) -> None:
        if self.proc is None:
            return
        try:
            if self.proc.poll() is None:
                self.proc.stdin.write("\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        self.proc = None


class FullSpool:
    """The spool directory on a tiny tmpfs filled to the last byte: every write gets ENOSPC.

    A real full file system (not a read-only flag, which root ignores). On undo the few files the
    worker managed to create there are moved back under the real directory before unmounting, so
    the fault itself destroys nothing. Needs ``mount`` (root); ``FullSpool.available()`` says.
    """

    def __init__(self, directory: Path, size_kb: int = 16) -> None:
        self.dir, self.size_kb = Path(directory), size_kb
        self.mounted = False

    @staticmethod
    def available() -> bool:
        return os.geteuid() == 0 and shutil.which("mount") is not None

    def fill(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={self.size_kb}k,mode=0755", "tmpfs", str(self.dir)],
                       check=True, capture_output=True, timeout=10)
        self.mounted = True
        try:
            with open(self.dir / ".filler", "wb") as fh:
                while True:
                    fh.write(b"\0" * 4096)
                    fh.flush()
        except OSError:  # ENOSPC: the file system is full now, as intended
            pass

    def undo(self) -> list[str]:
        if not self.mounted:
            return []
        (self.dir / ".filler").unlink(missing_ok=True)
        stash = Path(f"{self.dir}.fault_stash")
        moved: list[str] = []
        if any(self.dir.iterdir()):
            shutil.copytree(self.dir, stash, dirs_exist_ok=True)
        for attempt in range(50):  # a worker may hold a file open for a moment
            r = subprocess.run(["umount", str(self.dir)], capture_output=True, timeout=10)
            if r.returncode == 0:
                break
            time.sleep(0.1 * (attempt + 1))
        else:
            subprocess.run(["umount", "-l", str(self.dir)], capture_output=True, timeout=10)
        self.mounted = False
        if stash.exists():
            for p in sorted(stash.rglob("*")):
                if p.is_file():
                    dest = self.dir / p.relative_to(stash)
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    if not dest.exists():  # never overwrite what the worker wrote underneath
                        shutil.move(str(p), dest)
                        moved.append(str(dest))
            shutil.rmtree(stash, ignore_errors=True)
        return moved


class Injector:
    """Builds the soak hooks for ``plan`` and watches/undoes the faults while the soak runs."""

    def __init__(self, plan: FaultPlan, data_root: Path, gateway: adapters.ManagedGateway | None = None) -> None:
        self.plan, self.data_root, self.gateway = plan, Path(data_root), gateway
        self.ctx: adapters.SoakContext | None = None
        self.server: Any | None = None
        self.errors: list[dict[str, Any]] = []
        self._watches: list[_Watch] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._undo_all: list[Callable[[], None]] = []

    # ------------------------------------------------------------------ hooks
    def hooks(self) -> list[adapters.Hook]:
        out: list[adapters.Hook] = [(0.0, self._attach)]
        for i, spec in enumerate(self.plan.faults):
            out.append((spec.at_s, lambda ctx, i=i, spec=spec: self._inject(ctx, fault_id(i, spec), spec)))
        return out

    def _attach(self, ctx: adapters.SoakContext) -> None:
        if self.ctx is None:
            self.ctx, self.server = ctx, ctx.server
            self._thread = threading.Thread(target=self._watch_loop, name="fault-watcher", daemon=True)
            self._thread.start()

    def _event(self, event: str, target: str, /, **detail: Any) -> None:
        if self.ctx is not None:
            self.ctx.supervisor.event(event, target, **detail)

    def _inject(self, ctx: adapters.SoakContext, fid: str, spec: FaultSpec) -> None:
        self._attach(ctx)
        target = spec.target
        try:
            if spec.kind in PROCESS_FAULTS:
                name, sig = PROCESS_FAULTS[spec.kind]
                state = adapters.child_state(ctx, name)
                self._event("FaultInjected", name, fault_id=fid, fault_kind=spec.kind, at_s=spec.at_s, state=state)
                pid = adapters.kill_worker(ctx, name, _SIGNALS[sig], label=fid)
                if pid is None:
                    self._event("FaultSkipped", name, fault_id=fid, fault_kind=spec.kind,
                                reason=f"{name} not running (state={adapters.child_state(ctx, name)})")
                return
            watch = getattr(self, f"_start_{spec.kind}")(ctx, fid, spec)
            with self._lock:
                self._watches.append(watch)
        except Exception as exc:  # an injector that cannot act is a failed fault, not a crashed soak
            reason = f"{type(exc).__name__}: {exc}"
            self.errors.append({"fault_id": fid, "kind": spec.kind, "reason": reason})
            self._event("FaultError", target, fault_id=fid, fault_kind=spec.kind, reason=reason)

    # ------------------------------------------------------------------ the non-process faults
    def _harvest(self) -> dict[str, Any]:
        return adapters.heartbeat(self.data_root, "harvest")

    def _start_feed_drop(self, ctx: adapters.SoakContext, fid: str, spec: FaultSpec) -> _Watch:
        if ctx.server is None:
            raise RuntimeError("feed_drop needs the loopback exchange server (feed=simulator or replay)")
        hb = self._harvest()
        base_rc, t0 = int(hb.get("reconnect_count", 0) or 0), time.time()
        st: dict[str, Any] = {}
        self._event("FaultInjected", "harvest", fault_id=fid, fault_kind=spec.kind, at_s=spec.at_s)
        ctx.server.drop_connections()

        def detect() -> bool:
            h = self._harvest()
            if int(h.get("reconnect_count", 0) or 0) > base_rc:
                st["msgs"] = int(h.get("messages", 0) or 0)
                return True
            return False

        def recovered() -> bool:
            h = self._harvest()
            return (ctx.server.connection_count() > 0 and float(h.get("ts", 0)) > t0
                    and int(h.get("messages", 0) or 0) > st.get("msgs", 2**62))

        return _Watch(fid, spec, "harvest", detect, recovered, state=st)

    def _start_feed_stall(self, ctx: adapters.SoakContext, fid: str, spec: FaultSpec) -> _Watch:
        if ctx.server is None:
            raise RuntimeError("feed_stall needs the loopback exchange server (feed=simulator or replay)")
        t0 = time.time()
        st: dict[str, Any] = {"msgs": int(self._harvest().get("messages", 0) or 0)}
        self._event("FaultInjected", "harvest", fault_id=fid, fault_kind=spec.kind, at_s=spec.at_s,
                    duration_s=spec.duration_s)
        ctx.server.stall(float(spec.duration_s or 0))

        def detect() -> bool:
            # two heartbeats after the stall began, a second apart, with the same message count
            h = self._harvest()
            ts, msgs = float(h.get("ts", 0)), int(h.get("messages", 0) or 0)
            if ts <= t0:
                return False
            if "first" not in st:
                st["first"] = (ts, msgs)
                return False
            return ts >= st["first"][0] + 0.9 and msgs == st["first"][1]

        def recovered() -> bool:
            h = self._harvest()
            return int(h.get("messages", 0) or 0) > st.get("at_clear", 2**62)

        w = _Watch(fid, spec, "harvest", detect, recovered, clear_at=time.monotonic() + float(spec.duration_s or 0),
                   state=st)
        w.undo = lambda: st.__setitem__("at_clear", int(self._harvest().get("messages", 0) or 0))
        return w

    def _start_pushgateway_outage(self, ctx: adapters.SoakContext, fid: str, spec: FaultSpec) -> _Watch:
        gw = self.gateway
        if gw is None:
            raise RuntimeError("pushgateway_outage needs a managed Pushgateway (run_fault_injection starts one)")
        stats = ctx.exporter.stats
        base_err = stats.error_count
        st: dict[str, Any] = {}
        self._event("FaultInjected", "pushgateway", fault_id=fid, fault_kind=spec.kind, at_s=spec.at_s,
                    duration_s=spec.duration_s, port=gw.port)
        gw.stop()
        self._undo_all.append(lambda: None if gw.alive() else gw.start())

        def undo() -> None:
            gw.start()
            st["exports_at_clear"] = stats.export_count

        return _Watch(fid, spec, "pushgateway", lambda: stats.error_count > base_err,
                      lambda: stats.export_count > st.get("exports_at_clear", 2**62),
                      clear_at=time.monotonic() + float(spec.duration_s or 0), undo=undo, state=st)

    def _signal_recovered(self, st: dict[str, Any], sink: str) -> Callable[[], bool]:
        """Signal worker back to normal after the fault cleared: ready, beating, nothing pending."""

        def ok() -> bool:
            if self.ctx is None or "cleared" not in st or adapters.child_state(self.ctx, "signal") != "ready":
                return False
            hb = adapters.heartbeat(self.data_root, "signal")
            if float(hb.get("ts", 0)) <= st["cleared"]:
                return False
            s = hb.get("sink", {}) or {}
            part = s.get(sink, s) if isinstance(s.get(sink), dict) else s
            return int(part.get("pending", 0) or 0) == 0
        return ok

    def _start_sqlite_locked(self, ctx: adapters.SoakContext, fid: str, spec: FaultSpec) -> _Watch:
        if ctx.cfg.sink not in ("sqlite", "dual"):
            raise RuntimeError(f"sqlite_locked needs sink sqlite or dual, the soak runs sink={ctx.cfg.sink}")
        locker = SqliteLocker(adapters.signal_db(self.data_root))
        self._event("FaultInjected", "signal", fault_id=fid, fault_kind=spec.kind, at_s=spec.at_s,
                    duration_s=spec.duration_s)
        locker.acquire()
        self._undo_all.append(locker.release)
        st: dict[str, Any] = {}

        def undo() -> None:
            locker.release()
            st["cleared"] = time.time()

        return _Watch(fid, spec, "signal", lambda: locker.proc is not None, self._signal_recovered(st, "sqlite"),
                      clear_at=time.monotonic() + float(spec.duration_s or 0), undo=undo, state=st)

    def _start_spool_full(self, ctx: adapters.SoakContext, fid: str, spec: FaultSpec) -> _Watch:
        if ctx.cfg.sink not in ("jsonl", "dual"):
            raise RuntimeError(f"spool_full needs sink jsonl or dual, the soak runs sink={ctx.cfg.sink}")
        if not FullSpool.available():
            raise RuntimeError("spool_full needs root and mount(8) for a tiny tmpfs; not available here")
        spool = FullSpool(adapters.spool_dir(self.data_root))
        self._event("FaultInjected", "signal", fault_id=fid, fault_kind=spec.kind, at_s=spec.at_s,
                    duration_s=spec.duration_s, dir=str(spool.dir))
        spool.fill()
        self._undo_all.append(spool.undo)
        st: dict[str, Any] = {}

        def undo() -> None:
            st["moved_back"] = spool.undo()
            st["cleared"] = time.time()

        return _Watch(fid, spec, "signal", lambda: spool.mounted, self._signal_recovered(st, "jsonl"),
                      clear_at=time.monotonic() + float(spec.duration_s or 0), undo=undo, state=st)

    # ------------------------------------------------------------------ the watcher
    def _watch_loop(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                watches = list(self._watches)
            for w in watches:
                self._step(w)
            self._stop.wait(_POLL_S)

    def _step(self, w: _Watch) -> None:
        try:
            if not w.detected and w.detect():
                w.detected = True
                self._event("FaultDetected", w.target, fault_id=w.fid, fault_kind=w.spec.kind)
            if w.clear_at is not None and w.cleared_at_wall is None and time.monotonic() >= w.clear_at:
                if w.undo is not None:
                    w.undo()
                w.cleared_at_wall = time.time()
                w.state.setdefault("cleared", w.cleared_at_wall)
                self._event("FaultCleared", w.target, fault_id=w.fid, fault_kind=w.spec.kind,
                            **{k: v for k, v in w.state.items() if k == "moved_back"})
            if (w.clear_at is None or w.cleared_at_wall is not None) and w.recovered():
                self._event("FaultRecovered", w.target, fault_id=w.fid, fault_kind=w.spec.kind)
                with self._lock:
                    self._watches.remove(w)
        except Exception as exc:  # a failing probe ends that watch with a reason
            self._event("FaultError", w.target, fault_id=w.fid, fault_kind=w.spec.kind,
                        reason=f"watch failed: {type(exc).__name__}: {exc}")
            with self._lock:
                self._watches.remove(w)

    def close(self) -> None:
        """Stop watching and undo whatever is still in force (idempotent; run even on abort)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._lock:
            pending = [w for w in self._watches if w.cleared_at_wall is None and w.undo is not None]
        for w in pending:
            try:
                w.undo()
            except Exception as exc:
                self.errors.append({"fault_id": w.fid, "kind": w.spec.kind, "reason": f"undo failed: {exc}"})
        for fn in self._undo_all:
            try:
                fn()
            except Exception as exc:
                self.errors.append({"fault_id": "", "kind": "", "reason": f"undo failed: {exc}"})
