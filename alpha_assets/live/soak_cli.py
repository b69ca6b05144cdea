"""The soak from a terminal, without Dagster: ``python -m alpha_assets.live.soak_cli --minutes 30``."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

from alpha_assets.live.soak import run_soak
from alpha_assets.live.soak_config import SoakConfig
from alpha_assets.paths import data_root


def main(argv: list[str] | None = None) -> int:
    """``python -m alpha_assets.live.soak_cli --minutes 30 --sink jsonl [--book-join arrival]``."""
    import argparse

    ap = argparse.ArgumentParser(description="Run the supervised live soak (harvest → lander → signal → broker).")
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--symbols", default="BTCUSDT,ETHUSDT")
    ap.add_argument("--sink", default="dual", choices=["jsonl", "sqlite", "dual"])
    ap.add_argument("--feed", default="simulator", choices=["simulator", "binance", "replay", "external"])
    ap.add_argument("--feed-ws-url", default="")
    ap.add_argument("--feed-rest-url", default="")
    ap.add_argument("--book-join", default="arrival", choices=["arrival", "event_time"])
    ap.add_argument("--sink-flush-ms", type=int, default=500)
    ap.add_argument("--sink-batch-n", type=int, default=500)
    ap.add_argument("--bus-url", default="")
    ap.add_argument("--replay-capture", default="")
    ap.add_argument("--export-interval-s", type=float, default=60.0)
    ap.add_argument("--health-interval-s", type=float, default=10.0)
    ap.add_argument("--pushgateway-url", default="")
    ap.add_argument("--run-id", default="")
    ap.add_argument("--data-root", default="")
    args = ap.parse_args(argv)

    cfg = SoakConfig(minutes=args.minutes, symbols=args.symbols.split(","), sink=args.sink, feed=args.feed,
                     feed_ws_url=args.feed_ws_url, feed_rest_url=args.feed_rest_url, book_join=args.book_join,
                     sink_flush_ms=args.sink_flush_ms, sink_batch_n=args.sink_batch_n, bus_url=args.bus_url,
                     replay_capture=args.replay_capture, export_interval_s=args.export_interval_s,
                     health_interval_s=args.health_interval_s, pushgateway_url=args.pushgateway_url)
    run_id = args.run_id or time.strftime("soak_%Y%m%d_%H%M%S", time.gmtime()) + "_" + uuid.uuid4().hex[:6]
    res = run_soak(cfg, Path(args.data_root) if args.data_root else data_root(), run_id)
    print(json.dumps({"run_id": run_id, "passed": res.passed, "checks": res.checks, "figures": res.figures(),
                      "run_manifest": str(res.run_manifest)}, indent=2, default=str))
    return 0 if res.passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
