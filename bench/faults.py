"""Fault recovery figures under the production restart policy: detected, restart, recovery and heal
times per fault, and the loss accounting (trades/signals lost, doubled; sink parity).

    .venv/bin/python bench/faults.py all                 # every fault kind once in 1.5 min (the CI test's plan)
    .venv/bin/python bench/faults.py all --hogs 4        # the same while 4 CPU-bound processes run
    .venv/bin/python bench/faults.py all --hogs 4 --minutes 1 --minutes 2 --minutes 5   # at several run lengths
    .venv/bin/python bench/faults.py chaos --kills 20    # 20 seeded SIGKILLs across workers and redis-server
    .venv/bin/python bench/faults.py restarts [--cold]   # one SIGKILL per worker kind and redis-server; --cold:
                                                         # without the warm standby (every restart a new interpreter)

Needs `prometheus-pushgateway` on PATH (the outage fault stops and restarts a local one) and root for
the disk-full faults (a tiny tmpfs). recovery_ms counts from the injection to the first new signal
row durable in both sinks for every symbol; heal_ms, which the checks judge, from the fault's end
for faults that last. The every-kind plan is fitted to each run length (1 minute at the least,
start-up included; a run under 80 s holds every kind but terminate_signal, as the second hit on
the signal process must come after the crash-loop window); a run length shorter than another plan
needs is raised to the plan's minimum. A plan with landing_disk_full waits (up to a minute, once the
feed is up) before the run starts, so that a minute close, when the lander writes, falls inside it.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without install

from alpha_assets.faults.plan import (  # noqa: E402
    CHAOS_KINDS,
    EVERY_KIND_RUN_S,
    SHORT_RUN,
    SHORTEST_RUN_S,
    FaultPlan,
    FaultSpec,
    chaos_plan,
    every_kind_plan,
)
from alpha_assets.faults.run import default_soak, run_fault_injection  # noqa: E402


def hog(stop: mp.Event) -> None:  # type: ignore[valid-type]
    x = 0
    while not stop.is_set():  # type: ignore[attr-defined]
        for _ in range(200_000):
            x = (x * 1_103_515_245 + 12_345) & 0xFFFFFFFF


def one_run(plan_name: str, kills: int, seed: int, minutes: float | None, cold: bool) -> bool:
    if plan_name == "all":
        plan = every_kind_plan(max(SHORTEST_RUN_S, minutes * 60) if minutes else EVERY_KIND_RUN_S)
    elif plan_name == "restarts":  # 8 s apart: each restart on its own, each spare warm again
        plan = FaultPlan(faults=[FaultSpec(kind=k, at_s=12.0 + 8 * i) for i, k in enumerate(
            ("kill_signal", "kill_harvest", "kill_lander", "kill_broker", "kill_report", "kill_redis"))])
    else:
        span = max(60.0, kills * 12.0)  # ≥ 6 s between kills, ≥ 33 s between kills of one process
        plan = chaos_plan(CHAOS_KINDS, kills, 5, 5 + span, seed=seed, min_gap_s=6, target_gap_s=33)
    overrides: dict[str, object] = dict(SHORT_RUN)
    if cold:
        overrides["warm_standby"] = False
    need = default_soak(plan, overrides).minutes
    if minutes:
        overrides["minutes"] = max(minutes, need)
    root = Path(tempfile.mkdtemp(prefix="bench_faults_"))
    try:
        rep = run_fault_injection(plan, root / "var", f"bench_{plan_name}", overrides)
        print(f"\n== {plan_name}: {len(plan.faults)} faults, {rep.soak_config['minutes']:.2f} min run, "
              f"warm standby {'off' if cold else 'on'}")
        print(rep.table())
        a = rep.accounting
        if a is not None:
            print(f"trades: feed {sum(s.feed_trades for s in a.symbols)}, landed {sum(s.landed_trades for s in a.symbols)}, "
                  f"lost {a.trades_lost}, doubled {a.trades_doubled}; signals: expected "
                  f"{sum(s.expected_signals for s in a.symbols)}, lost {a.signals_lost}, doubled {a.signals_doubled}, "
                  f"phantom {a.signals_phantom}; parity max_rel_diff {a.parity_max_rel_diff}")
        for c in rep.checks():
            if not c.passed:
                print(f"check {c.name} {'FAILED' if c.gate else 'missed (target)'}: {c.value} vs {c.threshold} {c.reason}")
        print(f"passed: {rep.passed}")
        return rep.passed
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("plan", nargs="?", default="all", choices=["all", "chaos", "restarts"])
    ap.add_argument("--kills", type=int, default=20, help="chaos: number of SIGKILLs")
    ap.add_argument("--seed", type=int, default=2026, help="chaos: seed of the kill moments and targets")
    ap.add_argument("--hogs", type=int, default=0, help="CPU-bound processes running alongside")
    ap.add_argument("--minutes", type=float, action="append", default=[], help="run length (repeatable)")
    ap.add_argument("--cold", action="store_true", help="no warm standby: every restart starts a new interpreter")
    args = ap.parse_args()
    stop = mp.Event()
    hogs = [mp.Process(target=hog, args=(stop,), daemon=True) for _ in range(args.hogs)]
    for h in hogs:
        h.start()
    print(f"{args.hogs} CPU-bound processes alongside (measured under load: the machine is shared)")
    try:
        ok = [one_run(args.plan, args.kills, args.seed, m, args.cold) for m in (args.minutes or [None])]
    finally:
        stop.set()
        for h in hogs:
            h.join(5)
            if h.is_alive():
                h.kill()
    sys.exit(0 if all(ok) else 1)


if __name__ == "__main__":
    main()
