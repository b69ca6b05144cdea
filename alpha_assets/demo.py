"""The README's main command: a short soak on the simulated exchange, then the whole asset graph
for each partition it landed and the date roll-up, ending with where to look.

Every run is launched through the code location (workspace.yaml), so the UI lists each under its
job with the current snapshot, exactly as if it had been launched from the UI.
"""

from __future__ import annotations

import argparse
import json
import sys

import dagster as dg

from alpha_assets.launch import follow, submit, workspace
from alpha_assets.layout import Layout
from alpha_assets.settings import settings


def _landed(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    """The partitions the soak run reported as landed (its soak_report materialisation)."""
    for record in instance.fetch_materializations(dg.AssetKey("soak_report"), limit=20).records:
        if record.run_id == run_id and record.asset_materialization is not None:
            return list(record.asset_materialization.metadata["landed_partitions"].value)  # type: ignore[arg-type]
    return []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=2.0, help="soak length (default 2)")
    parser.add_argument("--symbols", default=",".join(settings().symbols))
    args = parser.parse_args(argv)

    symbols = [s.strip().upper() for s in args.symbols.split(",") if s.strip()]
    instance = dg.DagsterInstance.get()
    runs: list[tuple[str, str, dg.DagsterRunStatus]] = []
    with workspace(instance) as ws:
        print(f"[1/3] soak_60m for {args.minutes} min on the simulated exchange ({', '.join(symbols)}) …", flush=True)
        soak_id = submit(instance, ws, job="soak_60m", run_config={"ops": {"soak_report": {"config": {
            "minutes": args.minutes, "symbols": symbols, "export_interval_s": 10.0}}}})
        status = follow(instance, soak_id)
        runs.append(("soak_60m", soak_id, status))
        if status != dg.DagsterRunStatus.SUCCESS:
            print(f"soak run {soak_id} failed; see it in the UI", file=sys.stderr)
            return 1
        partitions = _landed(instance, soak_id)
        print(f"landed partitions: {', '.join(partitions) or '(none)'}")
        for key in partitions:
            print(f"[2/3] daily_pipeline for {key} …", flush=True)
            run_id = submit(instance, ws, job="daily_pipeline", partition=key)
            runs.append((f"daily_pipeline {key}", run_id, follow(instance, run_id)))
        # The roll-up reads every configured symbol of the date: only dates the soak landed whole.
        dates = sorted({k.split("|")[0] for k in partitions})
        for date in dates:
            if all(f"{date}|{s}" in partitions for s in settings().symbols):
                print(f"[3/3] daily_rollup for {date} …", flush=True)
                run_id = submit(instance, ws, job="daily_rollup", partition=date)
                runs.append((f"daily_rollup {date}", run_id, follow(instance, run_id)))

    layout = Layout.from_env()
    print("\n== results ==")
    for name, run_id, status in runs:
        print(f"{name}: {status.value} (run {run_id})")
        for p in sorted(layout.artifacts.glob(f"parity_diff_{run_id}_*.json")):
            figures = json.loads(p.read_text())
            print(f"  parity: max_rel_diff={figures.get('max_rel_diff')} passed={figures.get('passed')}  ({p})")
    reports = sorted(layout.report_dir.glob("summary_*.md"))
    if reports:
        print(f"daily summary: {reports[-1]}")
    print(f"soak manifest: {layout.run_manifest(soak_id)}")
    print("open the UI: make ui   (then http://127.0.0.1:3000; the runs are under Runs and on each job)")
    return 0 if all(s == dg.DagsterRunStatus.SUCCESS for _, _, s in runs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
