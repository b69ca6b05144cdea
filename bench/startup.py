"""Where a worker's cold start goes, per worker: the interpreter start and the imports (what a warm
spare has done before a restart needs it, ``alpha_assets/live/standby.py``) and, for the signal worker,
the warm-up (the engine's first-call kernel loads from numba's on-disk cache), against a spare's
handover (the supervisor's GO until the worker's code runs).

    .venv/bin/python bench/startup.py [--repeat 3]

Each figure is the median of ``--repeat`` fresh interpreters, wall clock, measured under whatever load
the machine has (say so when quoting them).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without install

from alpha_assets.live.soak_figures import WORKERS  # noqa: E402
from alpha_assets.live.standby import GO, standby_cmd  # noqa: E402

_IMPORT = ("import sys,time\nt=time.perf_counter()\nimport {module}\n"
           "print(time.perf_counter()-t)\n")
_WARM = ("import time\nt=time.perf_counter()\nfrom alpha_assets.live.workers.warmup import warm_signal\n"
         "import alpha_assets.live.workers.signal\nt1=time.perf_counter()\nwarm_signal()\n"
         "print(time.perf_counter()-t1)\n")


def timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """(wall s of the whole interpreter, the float it printed)."""
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env).stdout
    return time.perf_counter() - t0, float(out.strip().splitlines()[-1])


def handover_s(module_dir: Path) -> float:
    """A spare of a module whose main() prints at once: GO written → its line read back."""
    (module_dir / "bench_noop_worker.py").write_text("def main():\n    print('up', flush=True)\n")
    env = {"PYTHONPATH": f"{module_dir}:{Path(__file__).resolve().parent.parent}", "PATH": "/usr/bin:/bin"}
    proc = subprocess.Popen(standby_cmd("bench_noop_worker"), stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
    assert proc.stdin is not None and proc.stdout is not None
    time.sleep(3.0)  # standing by (imported)
    t0 = time.perf_counter()
    proc.stdin.write(GO)
    proc.stdin.close()
    proc.stdout.readline()
    took = time.perf_counter() - t0
    proc.wait(timeout=10)
    return took


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    print("cold start of each worker: a new interpreter and its imports (median of "
          f"{args.repeat}; measured under load: the machine is shared)")
    for name in WORKERS:
        runs = [timed([sys.executable, "-c", _IMPORT.format(module=f"alpha_assets.live.workers.{name}")])
                for _ in range(args.repeat)]
        print(f"  {name:8s} interpreter+imports {statistics.median(r[0] for r in runs) * 1000:7.0f} ms"
              f"  (imports {statistics.median(r[1] for r in runs) * 1000:6.0f} ms)")
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "worker.json"
        cfg.write_text(json.dumps({"run_id": "bench", "data_root": tmp, "symbols": ["BTCUSDT", "ETHUSDT"]}))
        env = {"ALPHA_WORKER_CONFIG": str(cfg), "PATH": "/usr/bin:/bin"}
        warm = [timed([sys.executable, "-c", _WARM], env)[1] for _ in range(args.repeat)]
        print(f"  signal warm-up (engine kernels from numba's cache, 2 symbols) {statistics.median(warm) * 1000:6.0f} ms")
        hand = [handover_s(Path(tmp)) for _ in range(args.repeat)]
        print(f"warm spare's handover (GO → the worker's main runs) {statistics.median(hand) * 1000:6.1f} ms")


if __name__ == "__main__":
    main()
