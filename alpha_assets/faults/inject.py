"""Injectors: turn a FaultPlan into timed soak hooks, hold each fault for its duration, undo it, and
log what the system shows (FaultInjected/Detected/Cleared/Recovered/Error) into the supervisor's timeline.

Detection is what the system itself noticed, never the injector's own state: the supervisor saw a
process exit (process faults, from its own Exit event), or a client counted an error in its
heartbeat or exporter (a reconnect, a read-watchdog timeout, SQLite busy retries, ENOSPC, a failed
push). A timed fault that moved none of these counters did not bite, and its fault fails with that
reason. Recovery is data flowing end to end again (``flow.FlowProbe``): a signal row for a trade sent
after the fault (after its injection; after its end for faults that last) durable in both sinks for
every symbol, plus the fault's own part working again (pushes succeed, the missed minute landed).
Wall-clock time throughout: this observes processes, it computes nothing.
"""

from __future__ import annotations

import functools
import math
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alpha_assets.faults import adapters
from alpha_assets.faults.flow import FlowProbe, sent_mark
from alpha_assets.faults.means import FullDisk, SqliteLocker
from alpha_assets.faults.plan import BURST_SPEED, PROCESS_FAULTS, FaultPlan, FaultSpec
from alpha_assets.layout import Layout

_POLL_S = 0.1
_SIGNALS = {"SIGTERM": signal.SIGTERM, "SIGKILL": signal.SIGKILL}
BURST_SEEN = 3.0  # the harvester's frame rate this many times its rate at injection: the burst reached it
SPOOL_FS_KB = 64 * 1024  # the spool's own tmpfs (spool_full): minutes of parts fit many times over
TRACE_GRACE_S = 3.0  # a counter reaches the heartbeat within a beat or two of the recovery
BITE_GRACE_S = 10.0  # a minute-close fault holds until it bit, at most this much past its duration
# Where each timed or network fault leaves its trace: (heartbeat, counter path).
TRACES: dict[str, tuple[str, tuple[str, ...]]] = {
    "feed_drop": ("harvest", ("reconnect_count",)),
    "feed_stall": ("harvest", ("watchdog_timeouts",)),
    "feed_burst": ("harvest", ("messages_per_s",)),  # a rate: BURST_SEEN × its value at injection
    "sqlite_locked": ("signal", ("sink", "sqlite", "retries")),
    "spool_full": ("signal", ("writer", "enospc_errors")),
    "landing_disk_full": ("lander", ("enospc_errors",)),
}


def fault_id(i: int, spec: FaultSpec) -> str:
    return f"f{i:03d}_{spec.kind}"


@dataclass
class _Watch:
    fid: str
    spec: FaultSpec
    target: str
    detect: Callable[[], bool]
    recovered: Callable[[], bool]  # the fault's own part works again (flow is checked besides)
    mark: dict[str, int]  # trades sent up to here do not count as flowing again
    clear_at: float | None = None  # monotonic time to undo a timed fault
    hold_s: float | None = None  # lasts this long from the moment it bit (then clear_at is a cap)
    undo: Callable[[], None] | None = None
    begin_at: float | None = None  # wall time a delayed fault (landing_disk_full) takes effect
    begin: Callable[[], None] | None = None
    cleared_at_wall: float | None = None
    detected: bool = False
    recovered_at: float | None = None
    state: dict[str, Any] = field(default_factory=dict)


def _counter(beat: dict[str, Any], path: tuple[str, ...]) -> int:
    node: Any = beat
    for key in path:
        node = node.get(key, {}) if isinstance(node, dict) else {}
    return int(node) if isinstance(node, int | float) else 0


def _rate(beat: dict[str, Any], path: tuple[str, ...]) -> float:
    node: Any = beat
    for key in path:
        node = node.get(key, {}) if isinstance(node, dict) else {}
    return float(node) if isinstance(node, int | float) else 0.0


class Injector:
    """Builds the soak hooks for ``plan`` and watches/undoes the faults while the soak runs."""

    def __init__(self, plan: FaultPlan, data_root: Path, gateway: adapters.ManagedGateway | None = None) -> None:
        self.plan, self.data_root, self.gateway = plan, Path(data_root), gateway
        self.ctx: adapters.SoakContext | None = None
        self.server: Any | None = None
        self.flow: FlowProbe | None = None
        self.errors: list[dict[str, Any]] = []
        self._watches: list[_Watch] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._undo_all: list[Callable[[], object]] = []
        self._spool_disk: FullDisk | None = None

    def prepare(self) -> Injector:
        """Before the soak starts: a plan with spool_full puts the JSONL spool on its own small file
        system now, so the fault fills the file system the open parts live on (a tmpfs mounted over
        the directory at the fault would leave them writing to the hidden one underneath)."""
        if any(f.kind == "spool_full" for f in self.plan.faults) and FullDisk.available():
            try:
                self._spool_disk = FullDisk(adapters.spool_dir(self.data_root), SPOOL_FS_KB).standing()
            except (OSError, subprocess.SubprocessError) as exc:  # the fault then fails, naming this
                self.errors.append({"fault_id": "", "kind": "spool_full", "reason": f"no file system for the spool: {exc}"})
        return self

    # ------------------------------------------------------------------ hooks
    def hooks(self) -> list[adapters.Hook]:
        out: list[adapters.Hook] = [(0.0, self._attach)]
        for i, spec in enumerate(self.plan.faults):
            out.append((spec.at_s, functools.partial(self._inject, fid=fault_id(i, spec), spec=spec)))
        return out

    def _attach(self, ctx: adapters.SoakContext) -> None:
        if self.ctx is None:
            self.ctx, self.server = ctx, ctx.server
            sinks = {"dual": ("jsonl", "sqlite"), "jsonl": ("jsonl",), "sqlite": ("sqlite",)}[ctx.cfg.sink]
            self.flow = FlowProbe(self.data_root, ctx.run_id, ctx.cfg.symbols, sinks)
            self._thread = threading.Thread(target=self._watch_loop, name="fault-watcher", daemon=True)
            self._thread.start()

    def _event(self, event: str, target: str, /, **detail: Any) -> None:
        if self.ctx is not None:
            self.ctx.supervisor.event(event, target, **detail)

    def _mark(self) -> dict[str, int]:
        if self.server is None or self.ctx is None:
            return {}
        return sent_mark(self.server, self.ctx.cfg.symbols)

    def _inject(self, ctx: adapters.SoakContext, fid: str, spec: FaultSpec) -> None:
        self._attach(ctx)
        try:
            if spec.kind in PROCESS_FAULTS:
                watch = self._process_fault(ctx, fid, spec)
            else:
                watch = getattr(self, f"_start_{spec.kind}")(ctx, fid, spec)
            ctx.injected.append({"fault_id": fid, "kind": spec.kind, "target": spec.target, "at_s": spec.at_s,
                                 "ts": time.time()})
            if watch is not None:
                with self._lock:
                    self._watches.append(watch)
        except Exception as exc:  # an injector that cannot act is a failed fault, not a crashed soak
            reason = f"{type(exc).__name__}: {exc}"
            self.errors.append({"fault_id": fid, "kind": spec.kind, "reason": reason})
            self._event("FaultError", spec.target, fault_id=fid, fault_kind=spec.kind, reason=reason)

    def _timed(self, fid: str, spec: FaultSpec, target: str, detect: Callable[[], bool],
               recovered: Callable[[], bool], undo: Callable[[], None], **state: Any) -> _Watch:
        w = _Watch(fid, spec, target, detect, recovered, self._mark(),
                   clear_at=time.monotonic() + float(spec.duration_s or 0), state=dict(state))

        def undo_and_mark() -> None:
            undo()
            w.mark = self._mark()  # the end of the fault: trades sent from here on must flow
        w.undo = undo_and_mark
        return w

    def _traced(self, kind: str) -> Callable[[], bool]:
        """The fault's counter moved above its value at injection."""
        name, path = TRACES[kind]
        base = _counter(adapters.heartbeat(self.data_root, name), path)
        return lambda: _counter(adapters.heartbeat(self.data_root, name), path) > base

    # ------------------------------------------------------------------ the faults
    def _process_fault(self, ctx: adapters.SoakContext, fid: str, spec: FaultSpec) -> _Watch | None:
        name, sig = PROCESS_FAULTS[spec.kind]
        mark = self._mark()
        self._event("FaultInjected", name, fault_id=fid, fault_kind=spec.kind, at_s=spec.at_s,
                    state=adapters.child_state(ctx, name))
        if adapters.kill_worker(ctx, name, _SIGNALS[sig], label=fid) is None:
            self._event("FaultSkipped", name, fault_id=fid, fault_kind=spec.kind,
                        reason=f"{name} not running (state={adapters.child_state(ctx, name)})")
            return None
        t0 = time.time()

        def back() -> bool:  # the process ready again and (a worker) beating: its own part works again
            if adapters.child_state(ctx, name) != "ready":
                return False
            return name == "redis" or float(adapters.heartbeat(self.data_root, name).get("ts", 0) or 0) > t0

        # detected by the supervisor (its Exit event); recovered when it is back and the data flows again
        return _Watch(fid, spec, name, lambda: True, back, mark, detected=True)

    def _start_feed_drop(self, ctx: adapters.SoakContext, fid: str, spec: FaultSpec) -> _Watch:
        if ctx.server is None:
            raise RuntimeError("feed_drop needs the loopback exchange server (feed=simulator or replay)")
        detect = self._traced(spec.kind)
        mark = self._mark()
        self._event("FaultInjected", "harvest", fault_id=fid, fault_kind=spec.kind, at_s=spec.at_s)
        ctx.server.drop_connections()
        return _Watch(fid, spec, "harvest", detect, lambda: True, mark)

    def _start_feed_stall(self, ctx: adapters.SoakContext, fid: str, spec: FaultSpec) -> _Watch:
        if ctx.server is None:
            raise RuntimeError("feed_stall needs the loopback exchange server (feed=simulator or replay)")
        detect = self._traced(spec.kind)
        self._event("FaultInjected", "harvest", fault_id=fid, fault_kind=spec.kind, at_s=spec.at_s,
                    duration_s=spec.duration_s)
        ctx.server.stall(float(spec.duration_s or 0))
        return self._timed(fid, spec, "harvest", detect, lambda: True, ctx.server.resume)

    def _start_feed_burst(self, ctx: adapters.SoakContext, fid: str, spec: FaultSpec) -> _Watch:
        """The exchange's market at BURST_SPEED× for duration_s: every trade and book that often, ids as
        ever. Seen when the harvester's own frame rate rises; recovered when trades sent after the
        burst are signalled in both sinks (the backlog worked off, any gap backfilled)."""
        if ctx.server is None:
            raise RuntimeError("feed_burst needs the loopback exchange server (feed=simulator or replay)")
        name, path = TRACES[spec.kind]
        base = max(1.0, float(_rate(adapters.heartbeat(self.data_root, name), path)))
        self._event("FaultInjected", "harvest", fault_id=fid, fault_kind=spec.kind, at_s=spec.at_s,
                    duration_s=spec.duration_s, speed=BURST_SPEED, messages_per_s_before=base)
        ctx.server.burst(BURST_SPEED, float(spec.duration_s or 0))
        seen = lambda: _rate(adapters.heartbeat(self.data_root, name), path) >= BURST_SEEN * base  # noqa: E731
        return self._timed(fid, spec, "harvest", seen, lambda: True, ctx.server.end_burst)

    def _start_pushgateway_outage(self, ctx: adapters.SoakContext, fid: str, spec: FaultSpec) -> _Watch:
        stats = ctx.exporter.stats
        base_err = stats.error_count
        st: dict[str, Any] = {}
        gw = self.gateway
        self._event("FaultInjected", "pushgateway", fault_id=fid, fault_kind=spec.kind, at_s=spec.at_s,
                    duration_s=spec.duration_s, managed=gw is not None)
        if gw is not None:  # a real outage: the gateway process is stopped
            gw.stop()
            self._undo_all.append(lambda: None if gw.alive() else gw.start())
            restore: Callable[[], object] = gw.start
        else:  # a gateway we do not own: pushes go to a port nothing listens on
            saved = ctx.exporter.url
            ctx.exporter.url = "http://127.0.0.1:9"
            restore = lambda: setattr(ctx.exporter, "url", saved)  # noqa: E731
            self._undo_all.append(restore)

        def undo() -> None:
            restore()
            st["exports_at_clear"] = stats.export_count

        return self._timed(fid, spec, "pushgateway", lambda: stats.error_count > base_err,
                           lambda: stats.export_count > st.get("exports_at_clear", 2**62), undo)

    def _start_sqlite_locked(self, ctx: adapters.SoakContext, fid: str, spec: FaultSpec) -> _Watch:
        if ctx.cfg.sink not in ("sqlite", "dual"):
            raise RuntimeError(f"sqlite_locked needs sink sqlite or dual, the soak runs sink={ctx.cfg.sink}")
        detect = self._traced(spec.kind)
        locker = SqliteLocker(adapters.signal_db(self.data_root))
        self._event("FaultInjected", "signal", fault_id=fid, fault_kind=spec.kind, at_s=spec.at_s,
                    duration_s=spec.duration_s)
        locker.acquire()
        self._undo_all.append(locker.release)
        return self._timed(fid, spec, "signal", detect, lambda: True, locker.release)

    def _full_disk(self, directory: Path, kind: str) -> FullDisk:
        if not FullDisk.available():
            raise RuntimeError(f"{kind} needs root and mount(8) for a tiny tmpfs; not available here")
        return FullDisk(directory)

    def _start_spool_full(self, ctx: adapters.SoakContext, fid: str, spec: FaultSpec) -> _Watch:
        """The spool's own file system (set up by ``prepare``) full from now on: the signal worker
        appends to its open parts at every flush, and those writes fail as a new part's would."""
        if ctx.cfg.sink not in ("jsonl", "dual"):
            raise RuntimeError(f"spool_full needs sink jsonl or dual, the soak runs sink={ctx.cfg.sink}")
        if self._spool_disk is None:
            raise RuntimeError("spool_full needs root and mount(8) for the spool's own tmpfs, set up before the "
                               "soak (Injector.prepare); not available here")
        return self._disk_fault(ctx, fid, spec, self._spool_disk, "signal", None, None)

    def _start_landing_disk_full(self, ctx: adapters.SoakContext, fid: str, spec: FaultSpec) -> _Watch:
        """The landing zone full across the next minute close (the lander writes once a minute, so a
        fault that misses a close cannot bite); recovered once that minute is landed after all."""
        lateness_s = ctx.cfg.lateness_ms / 1000

        def landed(due_ms: int) -> bool:
            return all((adapters.watermark(self.data_root, ctx.run_id, s) or 0) >= due_ms for s in ctx.cfg.symbols)

        disk = self._full_disk(Layout(self.data_root).landing_zone("raw"), spec.kind)
        return self._disk_fault(ctx, fid, spec, disk, "lander", lateness_s, landed)

    def _disk_fault(self, ctx: adapters.SoakContext, fid: str, spec: FaultSpec, disk: FullDisk, target: str,
                    offset_s: float | None, landed: Callable[[int], bool] | None) -> _Watch:
        """``disk`` full for duration_s: from now (``offset_s`` None), or armed now and filled 1 s before
        the next minute boundary + ``offset_s`` (so the fault spans the moment the worker writes there),
        then held until it bit plus duration_s (at most BITE_GRACE_S more)."""
        now = time.time()
        due = (math.floor(now / 60) + 1) * 60 + (offset_s or 0.0)
        if due - now < 1.5:
            due += 60
        due_minute_ms = int((due - (offset_s or 0.0)) * 1000)
        w = _Watch(fid, spec, target, lambda: False, lambda: True, {}, begin_at=now if offset_s is None else due - 1.0)

        def begin() -> None:
            w.detect = self._traced(spec.kind)
            self._event("FaultInjected", target, fault_id=fid, fault_kind=spec.kind, at_s=spec.at_s,
                        duration_s=spec.duration_s, dir=str(disk.dir),
                        minute_boundary=None if offset_s is None else due)
            disk.fill()
            self._undo_all.append(disk.undo)
            w.mark = self._mark()
            w.clear_at = time.monotonic() + float(spec.duration_s or 0)
            if offset_s is not None:  # the minute close may come late on a loaded machine: hold until it bit
                w.hold_s, w.clear_at = float(spec.duration_s or 0), w.clear_at + BITE_GRACE_S

        def undo() -> None:
            disk.undo()
            w.mark = self._mark()

        w.begin, w.undo = begin, undo
        if landed is not None:
            w.recovered = lambda: landed(due_minute_ms)
        return w

    # ------------------------------------------------------------------ the watcher
    def _watch_loop(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                watches = list(self._watches)
            for w in watches:
                self._step(w)
            self._stop.wait(_POLL_S)

    def _done(self, w: _Watch) -> None:
        with self._lock:
            if w in self._watches:
                self._watches.remove(w)

    def _step(self, w: _Watch) -> None:
        try:
            if w.begin is not None:
                if time.time() < (w.begin_at or 0):
                    return
                begin, w.begin = w.begin, None
                begin()
            if not w.detected and w.detect():
                w.detected = True
                if w.hold_s is not None and w.clear_at is not None:
                    w.clear_at = min(w.clear_at, time.monotonic() + w.hold_s)
                self._event("FaultDetected", w.target, fault_id=w.fid, fault_kind=w.spec.kind,
                            by=" ".join(TRACES.get(w.spec.kind, ("exporter", ("error_count",)))[1]))
            if w.clear_at is not None and w.cleared_at_wall is None and time.monotonic() >= w.clear_at:
                if w.undo is not None:
                    w.undo()
                w.cleared_at_wall = time.time()
                self._event("FaultCleared", w.target, fault_id=w.fid, fault_kind=w.spec.kind)
            if w.recovered_at is None and (w.clear_at is None or w.cleared_at_wall is not None) \
                    and w.recovered() and self.flow is not None and self.flow.flowing(w.mark):
                w.recovered_at = time.time()
                self._event("FaultRecovered", w.target, fault_id=w.fid, fault_kind=w.spec.kind, mark=w.mark)
            if w.recovered_at is not None and w.detected:
                self._done(w)
            elif w.recovered_at is not None and time.time() > w.recovered_at + TRACE_GRACE_S:
                self._event("FaultError", w.target, fault_id=w.fid, fault_kind=w.spec.kind,
                            reason=f"no trace: {w.spec.kind} moved none of the system's counters "
                            f"({' '.join(TRACES.get(w.spec.kind, ('exporter', ('error_count',)))[1])})")
                self._done(w)
        except Exception as exc:  # a failing probe ends that watch with a reason
            self._event("FaultError", w.target, fault_id=w.fid, fault_kind=w.spec.kind,
                        reason=f"watch failed: {type(exc).__name__}: {exc}")
            self._done(w)

    def close(self) -> None:
        """Stop watching and undo whatever is still in force (idempotent; run even on abort)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._lock:
            pending = list(self._watches)
            self._watches.clear()
        for w in pending:
            if w.begin is not None:
                self.errors.append({"fault_id": w.fid, "kind": w.spec.kind,
                                    "reason": "not reached: the run ended before the fault could take effect"})
                continue
            if w.cleared_at_wall is None and w.undo is not None:
                try:
                    w.undo()
                except Exception as exc:
                    self.errors.append({"fault_id": w.fid, "kind": w.spec.kind, "reason": f"undo failed: {exc}"})
        for fn in self._undo_all:
            try:
                fn()
            except Exception as exc:
                self.errors.append({"fault_id": "", "kind": "", "reason": f"undo failed: {exc}"})

    def teardown(self) -> None:
        """After the soak stopped its workers: the spool's own file system goes, its files back in place."""
        if self._spool_disk is not None:
            try:
                self._spool_disk.teardown()
            except Exception as exc:
                self.errors.append({"fault_id": "", "kind": "spool_full", "reason": f"teardown failed: {exc}"})
            self._spool_disk = None
