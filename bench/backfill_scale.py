"""Backfill throughput on the scale-out profile: partitions/min with 1 and 2 Celery workers.

    .venv/bin/python bench/backfill_scale.py [--workers 1,2] [--days 7] [--symbols BTCUSDT,ETHUSDT]
                                             [--start 2024-03-01] [--window-minutes 60]

For each worker count it starts the whole profile on this machine (alpha_assets.scale.stack:
throwaway Postgres, redis-server, code server, webserver, dagster-daemon, N Celery workers),
launches a backfill of `daily_pipeline` over days x symbols through the webserver's GraphQL, as
a user would from the UI, and times it from the launch to the end of the last run. It prints
partitions/min, wall time, the mean time a run waited in the queue and ran, the summed step time
(what the workers computed) and the peak RSS of each kind of process.

Data: `--window-minutes N` lands N minutes (from 10:00 UTC) of the seeded simulator's day per
partition in the landing zone, as a soak lands live data; `--window-minutes 0` backfills full
simulated days (2.5 M events per BTCUSDT day: the configuration users run, and much slower).

Needs the `[scale]` extra, postgresql and redis-server. `measure()` is the unit to plug into
bench/backfill.py's PROFILES as `--profile scale`. Each measurement's data root is deleted after
it (about 1 GB per full simulated day) unless --keep-outputs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without install

import dagster as dg  # noqa: E402
import psutil  # noqa: E402

from alpha_assets.scale.processes import STACK_ID_ENV  # noqa: E402


def partitions(start: str, days: int, symbols: list[str]) -> list[str]:
    first = dt.date.fromisoformat(start)
    return [f"{first + dt.timedelta(days=i)}|{s}" for i in range(days) for s in symbols]


def role(cmdline: list[str]) -> str:
    text = " ".join(cmdline)
    if "celery" in text and "worker" in text:
        return "celery_worker"
    if "execute_run" in text or "api execute" in text or "spawn_main" in text:
        return "run_worker"
    if "dagster-daemon" in text or "dagster_daemon" in text:
        return "daemon"
    if "webserver" in text:
        return "webserver"
    if "code-server" in text or "api grpc" in text:
        return "code_server"
    return "other"


class RssSampler:
    """Peak RSS (MB) per process role, sampled every second over the processes of one stack."""

    def __init__(self, stack_id: str) -> None:
        self.stack_id = stack_id
        self.peak: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            for proc in psutil.process_iter(["cmdline"]):
                try:
                    if proc.environ().get(STACK_ID_ENV) != self.stack_id:
                        continue
                    mb = proc.memory_info().rss / 2**20
                except (psutil.Error, OSError):
                    continue
                name = role(proc.info["cmdline"] or [])
                self.peak[name] = max(self.peak.get(name, 0.0), mb)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def measure(workers: int, keys: list[str], window_minutes: int, timeout_s: float = 4 * 3600,
            keep: bool = False) -> dict[str, object]:
    """One backfill of `keys` on a fresh profile with `workers` Celery workers; its figures. The data
    root (about 1 GB per full simulated day) is deleted afterwards unless `keep`."""
    root = Path(tempfile.mkdtemp(prefix="bench-backfill-scale-"))
    try:
        return _measure(root, workers, keys, window_minutes, timeout_s)
    finally:
        if keep:
            print(f"   outputs kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


def _measure(root: Path, workers: int, keys: list[str], window_minutes: int, timeout_s: float) -> dict[str, object]:
    from alpha_assets.scale.sample import land_simulated_window
    from alpha_assets.scale.stack import ScaleStack, StackOptions

    data_root = root / "shared"
    if window_minutes:
        for key in keys:
            date, symbol = key.split("|")
            land_simulated_window(data_root, date, symbol, window_minutes)
    stack = ScaleStack(StackOptions(root=root / "stack", data_root=data_root, workers=workers))
    with stack, RssSampler(stack.stack_id) as rss:
        assert stack.graphql is not None
        instance = stack.instance()
        started = time.time()
        backfill = stack.graphql.launch_backfill("daily_pipeline", keys, title=f"bench {workers} workers")
        tag = {"dagster/backfill": backfill}
        while time.time() - started < timeout_s:
            status = stack.graphql.backfill_status(backfill)
            records = instance.get_run_records(dg.RunsFilter(tags=tag))
            if status != "REQUESTED" and len(records) >= len(keys) and all(r.dagster_run.is_finished for r in records):
                break
            time.sleep(1.0)
        else:
            raise TimeoutError(f"backfill {backfill} not done in {timeout_s} s")
        ended = max(r.end_time or 0.0 for r in records)
        wall = ended - started
        failed = [r.dagster_run.tags.get("dagster/partition") for r in records
                  if r.dagster_run.status != dg.DagsterRunStatus.SUCCESS]
        step_s = []
        for r in records:
            succ = instance.all_logs(r.dagster_run.run_id, of_type=dg.DagsterEventType.STEP_SUCCESS)
            step_s.append(sum(e.dagster_event.event_specific_data.duration_ms for e in succ) / 1000)  # type: ignore[union-attr]
        queued = [(r.start_time or 0) - r.create_timestamp.timestamp() for r in records]
        running = [(r.end_time or 0) - (r.start_time or 0) for r in records]
        instance.dispose()
    return {
        "workers": workers, "partitions": len(keys), "window_minutes": window_minutes or "full day",
        "status": status, "failed": failed, "wall_s": round(wall, 1),
        "partitions_per_min": round(len(keys) / wall * 60, 2),
        "run_queued_s_mean": round(statistics.mean(queued), 1), "run_s_mean": round(statistics.mean(running), 1),
        "step_s_per_partition_mean": round(statistics.mean(step_s), 1),
        "peak_rss_mb": {k: round(v) for k, v in sorted(rss.peak.items())},
        "leftover_processes": len(stack.leftovers),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", default="1,2", help="Celery worker counts to measure (default 1,2)")
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--symbols", default="BTCUSDT,ETHUSDT")
    parser.add_argument("--start", default="2024-03-01")
    parser.add_argument("--window-minutes", type=int, default=60,
                        help="simulated minutes landed per partition; 0 = full simulated days (default 60)")
    parser.add_argument("--keep-outputs", action="store_true", help="keep each measurement's data root")
    args = parser.parse_args(argv)
    from alpha_assets.scale.stack import missing_requirements

    missing = missing_requirements()
    if missing:  # could not measure: a failure with its reason
        print("bench/backfill_scale.py cannot run: " + "; ".join(missing), file=sys.stderr)
        return 2
    keys = partitions(args.start, args.days, [s.strip().upper() for s in args.symbols.split(",") if s.strip()])
    results = []
    for workers in [int(w) for w in args.workers.split(",")]:
        print(f"== {len(keys)} partitions ({args.days} days x {args.symbols}), {workers} Celery worker(s), "
              f"{args.window_minutes or 'full-day'} {'min windows' if args.window_minutes else 'partitions'} …",
              flush=True)
        figures = measure(workers, keys, args.window_minutes, keep=args.keep_outputs)
        results.append(figures)
        print(f"   {figures['partitions_per_min']} partitions/min, wall {figures['wall_s']} s, "
              f"run: {figures['run_queued_s_mean']} s queued + {figures['run_s_mean']} s running (mean), "
              f"steps {figures['step_s_per_partition_mean']} s/partition, status {figures['status']}, "
              f"peak RSS MB {figures['peak_rss_mb']}", flush=True)
    print(json.dumps(results, indent=2))
    return 0 if all(not r["failed"] and r["status"] == "COMPLETED_SUCCESS" for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
