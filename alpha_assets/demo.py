"""The README's main command: a short soak on the simulated exchange, then the whole asset
graph for the partition it landed, ending with where to look."""

from __future__ import annotations

import argparse
import json
import sys

import dagster as dg

from alpha_assets.paths import data_root


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=2.0, help="soak length (default 2)")
    parser.add_argument("--symbols", default="BTCUSDT,ETHUSDT")
    args = parser.parse_args(argv)

    from alpha_assets.definitions import defs

    symbols = [s.strip().upper() for s in args.symbols.split(",") if s.strip()]
    instance = dg.DagsterInstance.get()
    print(f"[1/2] soak_60m for {args.minutes} min on the simulated exchange ({', '.join(symbols)}) …", flush=True)
    soak = defs.resolve_job_def("soak_60m").execute_in_process(
        run_config={"ops": {"soak_report": {"config": {"minutes": args.minutes, "symbols": symbols,
                                                         "export_interval_s": 10.0}}}},
        instance=instance,
        raise_on_error=False,
    )
    if not soak.success:
        print("soak failed; see the run in the UI", file=sys.stderr)
        return 1
    meta = soak.asset_materializations_for_node("soak_report")[0].metadata
    partitions: list[str] = meta["landed_partitions"].value  # type: ignore[assignment]
    print(f"soak passed: {meta['soak_passed'].value}; landed partitions: {', '.join(partitions)}")
    pipeline = defs.resolve_job_def("daily_pipeline")
    results = []
    for key in partitions:
        print(f"[2/2] daily_pipeline for {key} …", flush=True)
        res = pipeline.execute_in_process(instance=instance, partition_key=key, raise_on_error=False)
        results.append((key, res))

    root = data_root()
    print("\n== results ==")
    for key, res in results:
        print(f"{key}: {'ok' if res.success else 'FAILED'} (run {res.run_id})")
        parity_files = sorted((root / "artifacts").glob(f"parity_diff_{res.run_id}_*.json"))
        for p in parity_files:
            figures = json.loads(p.read_text())
            print(f"  parity: max_rel_diff={figures.get('max_rel_diff')} passed={figures.get('passed')}  ({p})")
    reports = sorted((root / "logs" / "report").glob("summary_*.md"))
    if reports:
        print(f"daily summary: {reports[-1]}")
    print(f"soak manifest: {root / 'artifacts' / 'run_logs' / f'run_manifest_{soak.run_id}.json'}")
    print("open the UI: make ui   (then http://127.0.0.1:3000)")
    return 0 if all(r.success for _, r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
