"""A backfill through Dagster: days x symbols partitions of the batch graph, timed, extrapolated to a year.

    .venv/bin/python bench/backfill.py [--days 30] [--start 2024-03-01] [--symbols BTCUSDT,ETHUSDT]
                                       [--profile inprocess|multiprocess] [--workers 2] [--select SELECTION]
                                       [--keep-outputs]

Each partition is a Dagster run (`dg.execute_job` of the code location's asset job for the selection,
a real instance with SQLite storage under a fresh data root), the way a backfill launches one run
per partition: no step output is kept in memory once the next step has read it from the IO manager.
(`dg.materialize` is not used: it is `execute_in_process`, which keeps every step's output for its
result, a day's frames held until the run ends and, in a loop, until the next run's result replaces it.) Profiles say how runs are spread over processes:

* `inprocess`: one worker process runs every partition in turn (imports the code once).
* `multiprocess`: `--workers` processes in parallel. Partitions of one symbol never run at once:
  the JSONL spool has one writer per symbol directory (flock), so symbols are dealt to workers.

A profile is a function in PROFILES taking the partition list and returning the workers' reports;
another deployment (e.g. Celery workers over Postgres) plugs in there.

Disk: a simulated BTCUSDT day is ~1.3 GB on disk (JSONL 0.7, SQLite 0.4, warehouse 0.2). Unless
--keep-outputs, a worker deletes each partition's warehouse files, ready JSONL files and SQLite rows
after the partition is done; that time is reported apart ("prune") and is not in the partition time.
Prints partitions/min, wall time, per-process peak RSS and the extrapolated time for a year.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # the packages before bench/ (whose executors.py would shadow `executors`)
Partition = tuple[str, str]  # (date, symbol)


# ----------------------------------------------------------------------------------------- worker
def prune(root: Path, date: str, symbol: str, run_id: str) -> None:
    from alpha_assets.layout import Layout

    layout = Layout(root)
    for asset_dir in layout.warehouse.glob("*"):
        shutil.rmtree(layout.warehouse_partition(asset_dir.name, date, symbol), ignore_errors=True)
    day = date.replace("-", "")
    for path in (layout.runtime.signal_ready / symbol).glob(f"signals_{day}_*.jsonl"):
        path.unlink()
    db = layout.runtime.sqlite_file()
    if db.exists():
        con = sqlite3.connect(db, timeout=60, isolation_level=None)
        try:  # in slices: the other worker's signals step needs the write lock too
            sql = ("DELETE FROM signals WHERE run_id = ?1 AND symbol = ?2 AND seq IN "
                   "(SELECT seq FROM signals WHERE run_id = ?1 AND symbol = ?2 LIMIT 100000)")
            while con.execute(sql, (run_id, symbol)).rowcount:
                pass
        finally:
            con.close()


def worker(partitions: list[Partition], select: str, keep: bool) -> None:
    """Runs the partitions in this process, one Dagster run each; one JSON line per partition."""
    t0 = time.perf_counter()
    import dagster as dg
    import psutil

    from alpha_assets.definitions import defs
    from alpha_assets.partitions import partition_key

    instance = dg.DagsterInstance.get()
    job = defs.resolve_implicit_global_asset_job_def()
    keys = dg.AssetSelection.from_string(select).resolve(defs.resolve_asset_graph())
    # the code location's asset job, reconstructable from its module as `dagster asset materialize -m` builds it
    from dagster._core.definitions.reconstruct import ReconstructableRepository

    recon = ReconstructableRepository.for_module("alpha_assets.definitions", "defs", str(REPO)).get_reconstructable_job(
        job.name)
    root = Path(os.environ["ALPHA_DATA_ROOT"])
    print(json.dumps({"event": "ready", "seconds": time.perf_counter() - t0}), flush=True)
    for date, symbol in partitions:
        t = time.perf_counter()
        key = partition_key(date, symbol)
        with dg.execute_job(recon, instance, tags=job.get_tags_for_partition_key(key, selected_asset_keys=keys),
                            asset_selection=list(keys), raise_on_error=False) as result:
            ok, run_id = result.success, result.run_id
        seconds = time.perf_counter() - t
        t = time.perf_counter()
        if not keep:
            prune(root, date, symbol, run_id)
        print(json.dumps({"event": "partition", "date": date, "symbol": symbol, "ok": ok,
                          "seconds": seconds, "prune_seconds": time.perf_counter() - t,
                          "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                          "rss_after": psutil.Process().memory_info().rss}), flush=True)


# ----------------------------------------------------------------------------------------- profiles
def spawn(partitions: list[Partition], env: dict[str, str], select: str, keep: bool) -> subprocess.Popen:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(partitions), "--select", select]
    if keep:
        cmd.append("--keep-outputs")
    return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, text=True)


def collect(procs: list[subprocess.Popen]) -> list[dict]:
    reports = []
    for k, proc in enumerate(procs):
        assert proc.stdout is not None
        lines = [json.loads(line) for line in proc.stdout if line.startswith("{")]
        if proc.wait() != 0:
            raise SystemExit(f"worker {k} exited {proc.returncode}")
        reports.append({"worker": k, "startup": next(x["seconds"] for x in lines if x["event"] == "ready"),
                        "partitions": [x for x in lines if x["event"] == "partition"]})
    return reports


def run_inprocess(partitions: list[Partition], env: dict[str, str], args: argparse.Namespace) -> list[dict]:
    return collect([spawn(partitions, env, args.select, args.keep_outputs)])


def run_multiprocess(partitions: list[Partition], env: dict[str, str], args: argparse.Namespace) -> list[dict]:
    symbols = sorted({s for _, s in partitions})
    shares: list[list[Partition]] = [[] for _ in range(min(args.workers, len(symbols)))]
    for i, sym in enumerate(symbols):  # one symbol's partitions stay in one worker (one spool writer)
        shares[i % len(shares)] += [p for p in partitions if p[1] == sym]
    return collect([spawn(share, env, args.select, args.keep_outputs) for share in shares])


PROFILES: dict[str, Callable[[list[Partition], dict[str, str], argparse.Namespace], list[dict]]] = {
    "inprocess": run_inprocess,
    "multiprocess": run_multiprocess,
}


# ----------------------------------------------------------------------------------------- main
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--start", default="2024-03-01")
    ap.add_argument("--symbols", default="BTCUSDT,ETHUSDT")
    ap.add_argument("--profile", choices=sorted(PROFILES), default="multiprocess")
    ap.add_argument("--workers", type=int, default=2)
    # the batch graph: a bare "*daily_summary" reaches soak_report through landing_zone (see bench/graph.py)
    ap.add_argument("--select", default="+key:daily_summary and not key:soak_report")
    ap.add_argument("--keep-outputs", action="store_true", help="keep every partition's files (needs ~1.3 GB/day)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker([tuple(p) for p in json.loads(args.worker)], args.select, args.keep_outputs)
        return
    start = dt.date.fromisoformat(args.start)
    symbols = [s.strip().upper() for s in args.symbols.split(",") if s.strip()]
    partitions = [((start + dt.timedelta(days=d)).isoformat(), s) for d in range(args.days) for s in symbols]
    root = Path(tempfile.mkdtemp(prefix="bench-backfill-"))
    home = root / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text((REPO / "dagster.yaml").read_text().replace("var/dagster", str(root / "dagster")))
    env = {**os.environ, "ALPHA_DATA_ROOT": str(root / "var"), "DAGSTER_HOME": str(home)}
    try:
        t = time.perf_counter()
        reports = PROFILES[args.profile](partitions, env, args)
        wall = time.perf_counter() - t
    finally:
        shutil.rmtree(root, ignore_errors=True)
    done = [p for r in reports for p in r["partitions"]]
    failed = [p for p in done if not p["ok"]]
    prune_s = sum(p["prune_seconds"] for p in done)
    # prune time is bench housekeeping: taken out of the wall, spread over the workers that paid it
    work_wall = wall - max(sum(p["prune_seconds"] for p in r["partitions"]) for r in reports)
    per_min = len(done) / (work_wall / 60)
    year = 365 * len(symbols)
    print(f"profile {args.profile}: {len(reports)} process(es), {len(done)} partitions "
          f"({args.days} days x {', '.join(symbols)}), selection {args.select!r}, failed {len(failed)}")
    for r in reports:
        secs = [p["seconds"] for p in r["partitions"]]
        print(f"  worker {r['worker']}: start-up {r['startup']:.1f}s, {len(secs)} partitions, "
              f"mean {sum(secs) / max(len(secs), 1):.1f}s, max {max(secs, default=0):.1f}s, "
              f"peak RSS {max((p['peak_rss'] for p in r['partitions']), default=0) / 2**20:,.0f} MB, RSS after each "
              f"partition {[round(p['rss_after'] / 2**20) for p in r['partitions']]} MB")
    print(f"wall {wall:.1f}s (of which prune {prune_s:.1f}s summed over workers); "
          f"{per_min:.2f} partitions/min without prune")
    print(f"a year x {len(symbols)} symbols = {year} partitions -> {year / per_min:.0f} min extrapolated")
    if failed:
        raise SystemExit(f"{len(failed)} partitions failed: {[(p['date'], p['symbol']) for p in failed][:5]}")


if __name__ == "__main__":
    main()
