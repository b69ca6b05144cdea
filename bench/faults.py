"""Fault recovery figures: detection, restart, recovery and heal times per fault, and the loss accounting.

    .venv/bin/python bench/faults.py all     # one ~80 s soak with every fault kind (the CI test's plan)
    .venv/bin/python bench/faults.py chaos   # one ~80 s soak with 20 seeded SIGKILLs of the signal worker

Needs `prometheus-pushgateway` on PATH (the outage fault stops and restarts a local one). recovery_ms is
counted from the injection; heal_ms, which the checks judge, from the fault's end for faults that last.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without install

from alpha_assets.faults.plan import SHORT_RUN, chaos_plan, every_kind_plan  # noqa: E402
from alpha_assets.faults.run import run_fault_injection  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("plan", nargs="?", default="all", choices=["all", "chaos"])
    ap.add_argument("--seed", type=int, default=2026, help="chaos: seed of the kill moments")
    args = ap.parse_args()
    plan = every_kind_plan() if args.plan == "all" else chaos_plan("kill_signal", 20, 4, 66, seed=args.seed, min_gap_s=2.5)
    root = Path(tempfile.mkdtemp(prefix="bench_faults_"))
    try:
        rep = run_fault_injection(plan, root / "var", f"bench_{args.plan}", SHORT_RUN)
        print(f"{'fault':18s} {'detect_ms':>9s} {'restart_ms':>10s} {'recovery_ms':>11s} {'heal_ms':>8s}")
        for t in rep.timelines:
            detect = None if t.detected_at is None or t.injected_at is None else t.detected_at - t.injected_at
            print(f"{t.kind:18s} {detect!s:>9s} {t.restart_ms!s:>10s} {t.recovery_ms!s:>11s} {t.heal_ms!s:>8s}"
                  + (f"  {t.error}" if t.error else ""))
        for name, value in rep.figures().items():
            print(f"{name}: {value}")
        for c in rep.checks():
            if not c.passed:
                print(f"check {c.name} {'FAILED' if c.gate else 'missed (target)'}: {c.value} vs {c.threshold} {c.reason}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
