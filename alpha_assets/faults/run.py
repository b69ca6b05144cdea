"""``run_fault_injection``: a soak with a fault plan, then timelines, loss accounting and checks.

The soak runs the production restart policy (the soak's own ``RestartPolicy``: a worker that was
ready and died is restarted at once, a crash loop backs off 10 s, 30 s, then is degraded); only
how often it probes, pushes and reports is faster. The report names the policy it ran.

Every run ends: a watchdog stops the supervisor at ``deadline_s`` (the soak's own length plus
``grace_s``) and the caller stops waiting ``grace_s`` later whatever happens, killing the worker
processes it can still see. A fault the system cannot survive is a failed check with a reason.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any, NamedTuple

from pydantic import BaseModel

from alpha_assets.faults import adapters
from alpha_assets.faults.accounting import Accounting, account, write_feed_log
from alpha_assets.faults.inject import Injector
from alpha_assets.faults.plan import ALIGN_LEAD_S, ALIGNED_FAULTS, FaultPlan
from alpha_assets.faults.timeline import FaultTimeline, fault_timelines
from alpha_assets.layout import Layout
from alpha_assets.live.gateway import local_gateway
from alpha_assets.live.pushgateway import pushgateway_url
from alpha_assets.reports.atomic import write_json_atomic
from alpha_assets.signal_contract import parity_passed

DEFAULT_GRACE_S = 60.0


class Check(NamedTuple):
    name: str
    passed: bool
    value: Any
    threshold: Any
    reason: str
    gate: bool = True  # False: a target, reported but not failing the run


class FaultReport(BaseModel):
    run_id: str
    plan: FaultPlan
    soak_config: dict[str, Any]
    started_at: float
    ended_at: float
    duration_s: float
    deadline_s: float
    timed_out: bool
    aborted: str | None
    timelines: list[FaultTimeline]
    accounting: Accounting | None
    injector_errors: list[dict[str, Any]]
    soak_checks: dict[str, bool]
    soak_figures: dict[str, Any]
    restart_policy: str = ""
    start_delay_s: float = 0.0  # waited before the soak so its minute close falls where the plan wants it
    artifact: str = ""

    def checks(self) -> list[Check]:
        out: list[Check] = []
        limit_ms, target_ms = int(self.plan.recovery_limit_s * 1000), int(self.plan.recovery_target_s * 1000)
        out.append(Check("run_ended_within_deadline", not self.timed_out and self.aborted is None,
                         round(self.duration_s, 3), self.deadline_s,
                         "" if not self.timed_out and self.aborted is None
                         else (self.aborted or f"run still going after {self.deadline_s}s: stopped by the watchdog")))
        out.append(Check("injectors_acted", not self.injector_errors, len(self.injector_errors), 0,
                         "; ".join(f"{e['fault_id']} {e['kind']}: {e['reason']}" for e in self.injector_errors)))
        skipped = [t for t in self.timelines if t.skipped]
        out.append(Check("faults_landed", not skipped and len(self.timelines) == len(self.plan.faults),
                         len(self.timelines) - len(skipped), len(self.plan.faults),
                         "; ".join(f"{t.fault_id}: {t.skipped}" for t in skipped)
                         or ("" if len(self.timelines) == len(self.plan.faults)
                             else f"only {len(self.timelines)} of {len(self.plan.faults)} faults were reached")))
        for t in self.timelines:
            if t.skipped:
                continue
            ok = t.heal_ms is not None and t.heal_ms <= limit_ms and t.error is None
            since = "after the fault cleared" if t.cleared_at is not None else "after injection"
            reason = t.error or ("" if ok else f"data flowing again {t.heal_ms} ms {since} > {limit_ms} ms")
            out.append(Check(f"recovery_ms[{t.fault_id}]", ok, t.heal_ms, limit_ms, reason))
        rec = [t.heal_ms for t in self.timelines if t.heal_ms is not None]
        worst = max(rec) if rec else None
        out.append(Check("recovery_target_ms", worst is not None and worst <= target_ms, worst, target_ms,
                         "" if worst is not None and worst <= target_ms else "slowest recovery above the target",
                         gate=False))
        a = self.accounting
        if a is None:
            out.append(Check("accounting", False, None, None, self.aborted or "no accounting: the run did not finish"))
            return out
        produced = sum(s.expected_signals for s in a.symbols)
        out.append(Check("signals_produced", produced > 0, produced, "> 0",
                         "" if produced else "no signal was due: the run was too short to close a minute"))
        for name, val in (("trades_lost", a.trades_lost), ("trades_doubled", a.trades_doubled),
                          ("signals_lost", a.signals_lost), ("signals_doubled", a.signals_doubled),
                          ("signals_phantom", a.signals_phantom)):
            detail = {s.symbol: getattr(s, name) for s in a.symbols}
            out.append(Check(name, val == 0, val, 0, "" if val == 0 else f"per symbol: {detail}"))
        p = a.parity_max_rel_diff
        ok = p is not None and parity_passed(p, self.plan.parity_limit)
        out.append(Check("sink_parity", ok, p, self.plan.parity_limit, "" if ok
                         else (f"worst figure {a.parity.get('worst_figure')}" if a.parity else "; ".join(a.notes))))
        return out

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks() if c.gate)

    def figures(self) -> dict[str, Any]:
        """Flat figures for asset metadata."""
        rec = [t.recovery_ms for t in self.timelines if t.recovery_ms is not None]
        det = [t.detected_ms for t in self.timelines if t.detected_ms is not None]
        heal = [t.heal_ms for t in self.timelines if t.heal_ms is not None]
        rst = [t.restart_ms for t in self.timelines if t.restart_ms is not None]
        return {"faults": len(self.timelines), "recovered": len(rec), "recovery_ms_max": max(rec, default=None),
                "recovery_ms_median": sorted(rec)[len(rec) // 2] if rec else None,
                "heal_ms_max": max(heal, default=None), "heal_ms_median": sorted(heal)[len(heal) // 2] if heal else None,
                "restart_ms_max": max(rst, default=None), "detected_ms_max": max(det, default=None),
                "duration_s": round(self.duration_s, 3),
                "trades_lost": self.accounting.trades_lost if self.accounting else None,
                "signals_lost": self.accounting.signals_lost if self.accounting else None,
                "signals_doubled": self.accounting.signals_doubled if self.accounting else None,
                "signals_phantom": self.accounting.signals_phantom if self.accounting else None,
                "trades_doubled": self.accounting.trades_doubled if self.accounting else None,
                "parity_max_rel_diff": self.accounting.parity_max_rel_diff if self.accounting else None,
                "passed": self.passed}

    def table(self) -> str:
        """The recovery table: one line per fault (ms from the injection; heal from its end if timed)."""
        lines = [f"restart policy: {self.restart_policy}",
                 f"run: {self.soak_config.get('minutes', 0):g} min (start-up included), started after "
                 f"{self.start_delay_s:.1f} s to align its minute close",
                 f"{'fault':28s} {'detected_ms':>11s} {'restart_ms':>10s} {'recovery_ms':>11s} {'heal_ms':>8s}"]
        for t in self.timelines:
            lines.append(f"{t.fault_id:28s} {t.detected_ms!s:>11s} {t.restart_ms!s:>10s} {t.recovery_ms!s:>11s} "
                         f"{t.heal_ms!s:>8s}" + (f"  {t.error or t.skipped}" if t.error or t.skipped else ""))
        return "\n".join(lines)


_TAIL_S = 4.0  # the run goes on this long after the last fault's recovery limit


def default_soak(plan: FaultPlan, overrides: dict[str, Any]) -> adapters.SoakConfig:
    """Soak settings for a fault run (probes, pushes and reports every few seconds; the restart policy
    is the soak's own), then the caller's overrides (validated). The run lasts until the last fault's
    recovery limit has passed (an aligned fault takes effect ALIGN_LEAD_S after its at_s), at least a minute."""
    end = max(f.ends_at_s + (ALIGN_LEAD_S if f.kind in ALIGNED_FAULTS else 0.0) for f in plan.faults)
    base: dict[str, Any] = {
        "minutes": max(1.0, (end + plan.recovery_limit_s + _TAIL_S) / 60),
        "health_interval_s": 1.0, "export_interval_s": 1.0, "report_interval_s": 5.0, "stop_grace_s": 5.0,
    }
    return adapters.SoakConfig.model_validate(base | dict(overrides))


def align_wait_s(plan: FaultPlan, now: float) -> float:
    """How long to wait before starting the soak so that a minute close (when the lander writes) falls
    ALIGN_LEAD_S after the first minute-aligned fault's at_s: inside the run, whatever its length."""
    aligned = [f.at_s for f in plan.faults if f.kind in ALIGNED_FAULTS]
    return (-(now + aligned[0] + ALIGN_LEAD_S)) % 60 if aligned else 0.0


def run_fault_injection(plan: FaultPlan, data_root: Path, run_id: str,
                        soak_overrides: dict[str, Any] | None = None, *, grace_s: float = DEFAULT_GRACE_S,
                        on_progress: adapters.ProgressHook | None = None,
                        stop: threading.Event | None = None) -> FaultReport:
    """``on_progress`` and ``stop`` are passed to the soak (see ``run_soak``)."""
    data_root = Path(data_root).resolve()
    cfg = default_soak(plan, soak_overrides or {})
    layout = Layout(data_root)
    # without a gateway of its own the outage injector reports it; other faults do not need one
    url, gateway, _ = local_gateway(pushgateway_url(cfg.pushgateway_url), layout.pushgateway_log(run_id))
    cfg = cfg.model_copy(update={"pushgateway_url": url})
    injector = Injector(plan, data_root, gateway)
    deadline_s = cfg.minutes * 60 + grace_s
    box: dict[str, Any] = {}

    def delay(now: float) -> float:
        box["start_delay_s"] = wait = align_wait_s(plan, now)
        box["run_at"] = now + wait
        return wait

    def target() -> None:
        try:
            box["result"] = adapters.run_soak(cfg, data_root, run_id, extra_hooks=injector.hooks(),
                                              on_progress=on_progress, stop=stop, start_delay=delay)
        except BaseException as exc:  # reported as a failed check, never re-raised into the caller's thread
            box["error"] = f"{type(exc).__name__}: {exc}"

    thread = threading.Thread(target=target, name=f"fault-soak-{run_id}", daemon=True)
    injector.prepare()  # before any worker opens a file where a disk fault will strike
    started = time.time()
    thread.start()
    # the deadline counts from the run's start: once the feed serves (a simulator warms its day first,
    # for a minute on a loaded machine) and the wait that aligns the run is over
    while thread.is_alive() and time.time() - box.get("run_at", started) < deadline_s:
        thread.join(0.2)
    deadline_s += box.get("run_at", started) - started
    timed_out = thread.is_alive()
    if timed_out and injector.ctx is not None:
        injector.ctx.supervisor.event("Alert", "", reason="fault-injection deadline reached", deadline_s=deadline_s)
        injector.ctx.supervisor.stop_event.set()  # the soak shuts down in order
    if timed_out:
        thread.join(grace_s)
    aborted = box.get("error")
    if thread.is_alive():
        aborted = f"soak did not stop within {grace_s}s after the deadline; worker processes killed"
        _kill_children(injector)
    injector.close()
    injector.teardown()
    if gateway is not None:
        gateway.stop()
    ended = time.time()
    result = box.get("result")
    events = list(result.timeline) if result is not None else (
        list(injector.ctx.supervisor.timeline) if injector.ctx is not None else [])
    accounting = None
    if result is not None and injector.server is not None:
        feed_path = write_feed_log(injector.server, layout.fault_feed(run_id))
        sinks = {"dual": ("jsonl", "sqlite"), "jsonl": ("jsonl",), "sqlite": ("sqlite",)}[cfg.sink]
        from alpha_assets.faults.accounting import read_feed_log

        accounting = account(data_root, run_id, cfg.symbols, read_feed_log(feed_path), sinks)
    report = FaultReport(
        run_id=run_id, plan=plan, soak_config=cfg.model_dump(mode="json"), started_at=started, ended_at=ended,
        duration_s=ended - started, deadline_s=deadline_s, timed_out=timed_out, aborted=aborted,
        timelines=fault_timelines(events), accounting=accounting, injector_errors=injector.errors,
        soak_checks=dict(result.checks) if result is not None else {},
        soak_figures=result.figures() if result is not None else {}, restart_policy=cfg.restart_policy().describe(),
        start_delay_s=round(float(box.get("start_delay_s", 0.0)), 3))
    path = Layout(data_root).fault_report(run_id)
    report.artifact = str(path)
    body = report.model_dump(mode="json") | {"checks": [c._asdict() for c in report.checks()],
                                             "passed": report.passed, "figures": report.figures()}
    write_json_atomic(path, body)
    return report


def _kill_children(injector: Injector) -> None:
    if injector.ctx is None:
        return
    injector.ctx.supervisor.spares.drop_all()
    for child in injector.ctx.supervisor.children.values():
        if child.alive() and child.pid is not None:
            try:
                os.kill(child.pid, signal.SIGKILL)
            except OSError:
                pass


def main(argv: list[str] | None = None) -> int:
    """``python -m alpha_assets.faults.run --plan plan.json [--chaos-kills 20 --seed 7] --minutes 1.5``."""
    import argparse
    import json

    from alpha_assets.faults.plan import CHAOS_KINDS, chaos_plan
    from alpha_assets.paths import data_root as default_root

    ap = argparse.ArgumentParser(description="Run a soak with a fault plan and check recovery and loss.")
    ap.add_argument("--plan", default="", help="JSON file with a FaultPlan")
    ap.add_argument("--chaos-kills", type=int, default=0, help="instead of --plan: N SIGKILLs across workers and redis")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--minutes", type=float, default=0.0)
    ap.add_argument("--run-id", default="")
    ap.add_argument("--data-root", default="")
    args = ap.parse_args(argv)
    if args.plan:
        plan = FaultPlan.model_validate_json(Path(args.plan).read_text())
    elif args.chaos_kills:
        span = max(10.0, (args.minutes or 1.5) * 60 - 15)
        plan = chaos_plan(CHAOS_KINDS, args.chaos_kills, 4, span, seed=args.seed,
                          min_gap_s=min(2.5, (span - 4) / max(1, args.chaos_kills)))
    else:
        ap.error("give --plan or --chaos-kills")
    overrides: dict[str, Any] = {"minutes": args.minutes} if args.minutes else {}
    run_id = args.run_id or time.strftime("faults_%Y%m%d_%H%M%S", time.gmtime())
    rep = run_fault_injection(plan, Path(args.data_root) if args.data_root else default_root(), run_id, overrides)
    print(rep.table())
    print(json.dumps({"run_id": run_id, "passed": rep.passed, "artifact": rep.artifact, "figures": rep.figures(),
                      "failed": [c._asdict() for c in rep.checks() if c.gate and not c.passed]}, indent=2, default=str))
    return 0 if rep.passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
