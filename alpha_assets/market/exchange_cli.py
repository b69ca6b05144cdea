"""Command line of the loopback exchange simulator: ``python -m alpha_assets.market.exchange_cli``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time

from alpha_assets.market.exchange_server import ExchangeServer
from alpha_assets.market.injection import MalformedPlan
from alpha_assets.market.sources import replay_sources, simulator_sources


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Binance USD-M futures exchange simulator on loopback")
    ap.add_argument("--symbols", default="BTCUSDT,ETHUSDT")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--replay", default="", help="path of a raw WS capture to replay instead of simulating")
    ap.add_argument("--speed", type=float, default=1.0)
    ap.add_argument("--malformed-rate", type=float, default=0.0,
                    help="share of messages replaced/joined by a malformed kind (alpha_assets.market.malformed)")
    ap.add_argument("--malformed-seed", type=int, default=0)
    args = ap.parse_args(argv)
    symbols = [s.strip().upper() for s in args.symbols.split(",") if s.strip()]
    now = int(time.time() * 1000)
    sources = replay_sources(args.replay, symbols, now, args.speed) if args.replay else \
        simulator_sources(symbols, args.seed, now)
    plan = MalformedPlan(rate=args.malformed_rate, seed=args.malformed_seed)
    server = ExchangeServer(sources, port=args.port, malformed=plan)

    async def run() -> None:
        task = asyncio.create_task(server.serve_forever())
        while not server._ready.is_set():
            await asyncio.sleep(0.05)
        print(f"Server started {server.stream_url()}", flush=True)
        await task

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())


if __name__ == "__main__":
    main()
