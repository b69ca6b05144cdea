"""The whole batch graph of one partition from the CLI, as a user runs it, on a fresh data root:
wall time, peak RSS, and each step's time and peak RSS.

    .venv/bin/python bench/graph.py [--partition '2024-03-04|BTCUSDT'] [--select SELECTION] [--keep DIR]

The default selection is everything upstream of daily_summary except soak_report: landing_zone (the
live path's edge into harvest_raw) depends on soak_report, so a bare '*daily_summary' also runs a
soak of `minutes` (an hour by default) before the batch graph.

Runs `dagster asset materialize -m alpha_assets.definitions --select ... --partition ...` in a child
process with a fresh ALPHA_DATA_ROOT and DAGSTER_HOME (an instance like the repository's
dagster.yaml, SQLite storage under the data root), samples the child's RSS every 20 ms and splits
the samples by the STEP_START / STEP_SUCCESS lines the CLI prints as they arrive.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent
BATCH_GRAPH = "+key:daily_summary and not key:soak_report"  # see the module docstring
STEP = re.compile(r" - (?P<step>[a-z_]+) - (?P<event>STEP_START|STEP_SUCCESS|STEP_FAILURE) - ")


def instance_yaml(root: Path) -> str:
    return (REPO / "dagster.yaml").read_text().replace("var/dagster", str(root / "dagster"))


def run(partition: str, select: str, root: Path) -> dict:
    home = root / "dagster_home"
    home.mkdir(parents=True)
    (home / "dagster.yaml").write_text(instance_yaml(root))
    env = {**os.environ, "ALPHA_DATA_ROOT": str(root / "var"), "DAGSTER_HOME": str(home)}
    cmd = [str(Path(sys.executable).parent / "dagster"), "asset", "materialize", "-m", "alpha_assets.definitions",
           "--select", select, "--partition", partition]
    samples: list[tuple[float, int]] = []
    events: list[tuple[float, str, str]] = []
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    done = threading.Event()

    def sample() -> None:
        ps = psutil.Process(proc.pid)
        while not done.is_set():
            try:
                samples.append((time.perf_counter() - start, ps.memory_info().rss))
            except psutil.Error:
                return
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    tail: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        m = STEP.search(line)
        if m:
            events.append((time.perf_counter() - start, m["step"], m["event"]))
        tail = (tail + [line])[-20:]
    rc = proc.wait()
    wall = time.perf_counter() - start
    done.set()
    sampler.join()
    peak_children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024  # kernel's peak, KiB
    steps: dict[str, dict[str, float]] = {}
    for t, step, event in events:
        s = steps.setdefault(step, {})
        s["start" if event == "STEP_START" else "end"] = t
    for s in steps.values():
        lo, hi = s.get("start", 0.0), s.get("end", wall)
        s["seconds"] = hi - lo
        s["peak_rss"] = max((r for t, r in samples if lo <= t <= hi), default=0)
    first = min((s["start"] for s in steps.values() if "start" in s), default=wall)
    return {"rc": rc, "wall": wall, "startup": first, "steps": steps, "peak_rss": max(r for _, r in samples),
            "peak_rss_children": peak_children, "tail": tail}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--partition", default="2024-03-04|BTCUSDT")
    ap.add_argument("--select", default=BATCH_GRAPH)
    ap.add_argument("--keep", type=Path, default=None, help="use (and keep) this data root instead of a temp dir")
    args = ap.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="bench-graph-"))
    if args.keep and root.exists() and any(root.iterdir()):
        raise SystemExit(f"{root} is not empty: the figure is for a fresh data root")
    root.mkdir(parents=True, exist_ok=True)
    try:
        res = run(args.partition, args.select, root)
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    if res["rc"] != 0:
        print("".join(res["tail"]))
        raise SystemExit(f"dagster asset materialize exited {res['rc']}")
    print(f"dagster asset materialize --select '{args.select}' --partition '{args.partition}' (fresh data root)")
    print(f"{'step':<16}{'seconds':>9}{'peak RSS MB':>14}")
    print(f"{'(start-up)':<16}{res['startup']:>9.2f}")
    for name, s in sorted(res["steps"].items(), key=lambda kv: kv[1].get("start", 0)):
        print(f"{name:<16}{s['seconds']:>9.2f}{s['peak_rss'] / 2**20:>14,.0f}")
    print(f"{'wall':<16}{res['wall']:>9.2f}{res['peak_rss'] / 2**20:>14,.0f}   (sampled every 20 ms; "
          f"kernel peak RSS of the child {res['peak_rss_children'] / 2**20:,.0f} MB)")


if __name__ == "__main__":
    main()
